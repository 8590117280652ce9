// The bpcheck program behind main(): the commands, parsing, and the error contract.
// Every failure on bad input is one line on stderr, "bpcheck: error: <file>: <problem>", and exit 2.
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bpcheck/error.hpp"
#include "cli.hpp"
#include "commands.hpp"

namespace bpcheck::cli {

namespace {

int fail(std::ostream& err, std::string message, int code = 2) {
  // One line, whatever the input put into the message: control characters (newlines, terminal
  // escapes from a hostile file) become spaces, and a huge quoted value is cut.
  for (auto& c : message)
    if ((unsigned char)c < 0x20 || c == 0x7f) c = ' ';
  if (constexpr std::size_t most = 1000; message.size() > most) message = message.substr(0, most) + " …";
  while (!message.empty() && message.back() == ' ') message.pop_back();
  err << "bpcheck: error: " << message << '\n';
  return code;
}

/// CLI11 reports a mistyped command only as a missing one; name it and list the known ones.
std::string no_command(int argc, const char* const* argv, const std::vector<Command>& commands) {
  std::string known;
  for (const auto& c : commands) known += (known.empty() ? "" : ", ") + c.app->get_name();
  std::string first;
  for (int i = 1; i < argc && first.empty(); ++i)
    if (argv[i][0] != '-') first = argv[i];
  if (!first.empty()) return "unknown command '" + first + "' (known: " + known + "; try --help)";
  return "a command is required (" + known + "; try --help)";
}

}  // namespace

int run_command_line(int argc, const char* const* argv, std::ostream& out, std::ostream& err, bool run_command) {
  CLI::App app{"bpcheck: checks backprop gradients against the explicit Jacobian product and higher precision",
               "bpcheck"};
  app.set_version_flag("--version", std::string("bpcheck ") + BPCHECK_VERSION);
  app.require_subcommand(1);
  std::vector<Command> commands{add_gradient_command(app), add_example_command(app), add_verify_command(app),
                                add_compare_command(app), add_report_command(app),
                                add_hvp_command(app)};
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) return app.exit(e, out, err);  // --help, --version
      if (dynamic_cast<const CLI::RequiredError*>(&e) && app.get_subcommands().empty())
        return fail(err, no_command(argc, argv, commands));
      return fail(err, e.what());
    }
    for (const auto& c : commands) {
      if (!c.app->parsed()) continue;
      if (!run_command) return 0;
      const int code = c.run(out);
      // A result that could not be written (a full disk, a closed pipe) must not pass as success.
      if (!out.flush()) return fail(err, "cannot write the result to standard output");
      return code;
    }
    return fail(err, no_command(argc, argv, commands));
  } catch (const bpcheck::error& e) {
    return fail(err, e.what());
  } catch (const nlohmann::json::exception& e) {
    return fail(err, e.what());
  } catch (const std::bad_alloc&) {
    return fail(err, "out of memory (is a layer size or the batch too large?)");
  } catch (const std::exception& e) {
    return fail(err, std::string("internal: ") + e.what(), 1);
  }
}

}  // namespace bpcheck::cli
