// Fuzzes the command-line parser: the input is split at newlines into arguments after "bpcheck" and
// parsed by the program's own run_command_line, which stops after parsing. Bad arguments must give
// exit code 2 and one line starting "bpcheck: error: "; --help and --version give 0.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = bpcheck::fuzz::text_of(data, size);
  std::vector<std::string> args{"bpcheck"};
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    args.push_back(text.substr(start, end - start));
  if (start < text.size()) args.push_back(text.substr(start));
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);

  std::ostringstream out, err;
  const int code = bpcheck::cli::run_command_line(int(args.size()), argv.data(), out, err, false);
  const std::string e = err.str();
  const bool one_error_line = e.rfind("bpcheck: error: ", 0) == 0 && e.find('\n') == e.size() - 1;
  if (code == 2 && !one_error_line) __builtin_trap();
  if (code != 0 && code != 2) __builtin_trap();
  return 0;
}
