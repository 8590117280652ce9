// bpcheck verify --model M.json [--params P.json] [--data D.json] [--precision float,double,mp100]
//                [--junit FILE] [--json FILE] [--seed N] [--points N] [--allow-unstable] [--no-resample]
// Exit 0 when every gradient is right, 1 when one is wrong, 2 on bad input.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/verify.hpp"
#include "commands.hpp"

namespace bpcheck::cli {

namespace {

struct VerifyCommandOptions {
  std::string model, params, data, junit, json;
  std::vector<std::string> precisions{"float", "double", "mp100"};
  std::uint64_t seed = 42;
  int points = 2;
  bool allow_unstable = false, no_resample = false;
};

}  // namespace

/// Writes `text` to `path` through a temporary file in the same folder and a rename, so that a
/// failed write leaves no partial file behind.
void write_file_atomically(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp");
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw input_error(path + ": cannot be written");
    f << text;
    f.flush();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw input_error(path + ": write failed");
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw input_error(path + ": cannot be written (" + ec.message() + ")");
  }
}

Command add_verify_command(CLI::App& parent) {
  auto o = std::make_shared<VerifyCommandOptions>();
  CLI::App* app = parent.add_subcommand(
      "verify", "Verify a model's gradients (backprop and the explicit Jacobian product) against exact oracles in "
                "mp100 and judge float/double against their rounding bounds. Exit 0: all right, 1: a gradient is "
                "wrong, 2: bad input");
  app->add_option("--model", o->model, "model spec JSON file")->required();
  app->add_option("--params", o->params, "parameters JSON file (default: Network::initialize(seed))");
  app->add_option("--data", o->data, "data JSON file (default: a batch generated from the seed)");
  app->add_option("--precision", o->precisions, "rungs to judge, comma separated (mp100 is always the reference)")
      ->delimiter(',')
      ->check(CLI::IsMember(precision_names()))
      ->capture_default_str();
  app->add_option("--junit", o->junit, "also write the results as JUnit XML to FILE");
  app->add_option("--json", o->json, "also write the results as JSON to FILE");
  app->add_option("--seed", o->seed, "seed for generated parameters, data and check points")->capture_default_str();
  app->add_option("--points", o->points, "random points per layer")->check(CLI::Range(1, 10000))->capture_default_str();
  app->add_flag("--allow-unstable", o->allow_unstable, "do not fail on float/double error beyond the rounding bound");
  app->add_flag("--no-resample", o->no_resample, "report non-differentiable points instead of moving off them");
  return {app, [o](std::ostream& out) {
            NetworkSubject subject;
            subject.spec = read_model_spec(o->model);
            if (!o->params.empty()) {
              subject.parameters = read_json_file(o->params);
              subject.parameters_file = o->params;
            }
            if (!o->data.empty()) {
              subject.data = read_json_file(o->data);
              subject.data_file = o->data;
            }
            VerifyOptions options;
            options.seed = o->seed;
            options.points = o->points;
            options.precisions = o->precisions;
            options.unstable_fails = !o->allow_unstable;
            options.resample_kinks = !o->no_resample;
            const VerificationReport report = verify_network(subject, options);
            if (!o->json.empty()) write_file_atomically(o->json, to_json(report).dump(2) + "\n");
            if (!o->junit.empty()) write_file_atomically(o->junit, to_junit_xml(report));
            out << format_table(report);
            return report.exit_code();
          }};
}

}  // namespace bpcheck::cli
