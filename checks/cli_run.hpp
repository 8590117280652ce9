#pragma once
// Running the built `bpcheck` program from a test: a folder of the test process's own, files in it,
// and one call that captures exit code, stdout and stderr.
//
//   const auto r = bpcheck::testing::bpcheck_run("verify --model '" + write_file("m.json", "{}") + "'");
//   CHECK(r.code == 2);
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include <catch2/catch.hpp>

namespace bpcheck::testing {

/// The `bpcheck` program under test: $BPCHECK_CLI (CTest sets it, see checks/CMakeLists.txt), else
/// reports/bpcheck in the build tree this test program was built in. Found at run time rather than
/// compiled in, so that the test objects do not name the build folder and ccache reuses them across
/// clones.
inline const std::string& cli_path() {
  static const std::string path = [] {
    if (const char* env = std::getenv("BPCHECK_CLI"); env != nullptr && *env != '\0') return std::string(env);
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : (self.parent_path().parent_path() / "reports" / "bpcheck").string();
  }();
  if (path.empty() || !std::filesystem::exists(path))
    FAIL("no bpcheck program at '" << path << "': run the tests through ctest, or set BPCHECK_CLI to its path");
  return path;
}

/// A small classifier (3 → dense 4 → tanh → dense 2, cross-entropy) as a model-spec text.
inline const char* const model_text = R"({"input_size": 3,
  "layers": [{"type": "dense", "units": 4}, {"type": "tanh"}, {"type": "dense", "units": 2}],
  "loss": "cross_entropy"})";

struct Run {
  int code = -1;
  std::string out, err;
};

/// A folder of this process's own, removed when the test program ends.
inline const std::filesystem::path& temp_dir() {
  struct Folder {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("bpcheck_checks_" + std::to_string(::getpid()));
    Folder() {
      std::filesystem::remove_all(path);
      std::filesystem::create_directories(path);
    }
    ~Folder() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Folder folder;
  return folder.path;
}

/// The folder's entry `name`, as a string for command lines.
inline std::string temp_path(const std::string& name) { return (temp_dir() / name).string(); }

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Writes `text` (bytes as given) to the folder's file `name` and returns its path.
inline std::string write_file(const std::string& name, const std::string& text) {
  const auto path = temp_path(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

/// Runs `bpcheck <args>` (a shell word list) with stdin from /dev/null; stdout goes to `stdout_to`
/// when given (then Run::out stays empty), else it is captured like stderr.
inline Run bpcheck_run(const std::string& args, const std::string& stdout_to = "") {
  const auto out = temp_dir() / "stdout.txt", err = temp_dir() / "stderr.txt";
  const std::string command = "'" + cli_path() + "' " + args + " > '" +
                              (stdout_to.empty() ? out.string() : stdout_to) + "' 2> '" + err.string() +
                              "' < /dev/null";
  std::filesystem::remove(out);
  const int status = std::system(command.c_str());
  Run r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = stdout_to.empty() ? slurp(out) : "";
  r.err = slurp(err);
  return r;
}

/// The one-line error contract: exit 2, nothing on stdout, one line on stderr with no control
/// characters; returns the line.
inline std::string one_error_line(const Run& r) {
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Catch::Matchers::StartsWith("bpcheck: error: "));
  REQUIRE(!r.err.empty());
  CHECK(r.err.back() == '\n');
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(std::none_of(r.err.begin(), r.err.end() - 1, [](char c) { return (unsigned char)c < 0x20; }));
  CHECK(r.err.size() < 1200);
  return r.err;
}

}  // namespace bpcheck::testing
