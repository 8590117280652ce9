// bpcheck: verifies backprop gradients against oracles in higher precision.
// Every failure on bad input is one line on stderr, "bpcheck: error: <file>: <problem>", and exit 2.
#include <iostream>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bpcheck/error.hpp"
#include "commands.hpp"

namespace {

int fail(std::string message, int code = 2) {
  for (auto& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  while (!message.empty() && message.back() == ' ') message.pop_back();
  std::cerr << "bpcheck: error: " << message << '\n';
  return code;
}

/// CLI11 reports a mistyped command only as a missing one; name it and list the known ones.
std::string no_command(int argc, char** argv, const std::vector<bpcheck::cli::Command>& commands) {
  std::string known;
  for (const auto& c : commands) known += (known.empty() ? "" : ", ") + c.app->get_name();
  std::string first;
  for (int i = 1; i < argc && first.empty(); ++i)
    if (argv[i][0] != '-') first = argv[i];
  if (!first.empty()) return "unknown command '" + first + "' (known: " + known + "; try --help)";
  return "a command is required (" + known + "; try --help)";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bpcheck: checks backprop gradients against the explicit Jacobian product and higher precision",
               "bpcheck"};
  app.set_version_flag("--version", std::string("bpcheck ") + BPCHECK_VERSION);
  app.require_subcommand(1);
  std::vector<bpcheck::cli::Command> commands{bpcheck::cli::add_gradient_command(app),
                                              bpcheck::cli::add_example_command(app),
                                              bpcheck::cli::add_verify_command(app),
                                              bpcheck::cli::add_report_command(app)};
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
      if (dynamic_cast<const CLI::RequiredError*>(&e) && app.get_subcommands().empty())
        return fail(no_command(argc, argv, commands));
      return fail(e.what());
    }
    for (const auto& c : commands)
      if (c.app->parsed()) return c.run(std::cout);
    return fail(no_command(argc, argv, commands));
  } catch (const bpcheck::error& e) {
    return fail(e.what());
  } catch (const nlohmann::json::exception& e) {
    return fail(e.what());
  } catch (const std::bad_alloc&) {
    return fail("out of memory (is a layer size or the batch too large?)");
  } catch (const std::exception& e) {
    return fail(std::string("internal: ") + e.what(), 1);
  }
}
