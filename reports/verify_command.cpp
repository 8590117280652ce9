// bpcheck verify --model M.json [--params P.json] [--data D.json] [--precision float,double,mp100]
//                [--junit FILE] [--json FILE] [--seed N] [--points N] [--distributions LIST] [--strict]
//                [--allow-unstable] [--no-resample] [--no-timings] [--projections | --full [--full-limit N]]
//                [--order 1|2]
// Exit 3 when no point could be evaluated (the time limit, or no evaluable draw).
// Exit 0 when every gradient is right, 1 when one is wrong (or, with --strict, loses more digits than
// its precision's rounding bound allows), 2 on bad input.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/verify/verify.hpp"
#include "commands.hpp"

namespace bpcheck::cli {

namespace {

struct VerifyCommandOptions {
  std::string model, params, data, junit, json;
  std::vector<std::string> precisions{"float", "double", "mp100"};
  std::uint64_t seed = 42;
  int points = 4;
  std::vector<std::string> distributions = point_distributions();
  bool strict = false, allow_unstable = false, no_resample = false, no_timings = false, projections = false,
       full = false;
  Index full_limit = VerifyOptions{}.full_jacobian_limit;
  int threads = 0;
  int order = 1;
  double time_limit = VerifyOptions{}.time_limit;
};

}  // namespace

/// Writes `text` to `path` through a temporary file in the same folder and a rename, so that a
/// failed write leaves no partial file behind. The temporary has a unique name (mkstemp), so that two
/// runs writing the same file do not share it; only a regular file (or nothing) is replaced.
void write_file_atomically(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  std::error_code ec;
  if (fs::exists(target, ec) && !fs::is_regular_file(target, ec))
    throw input_error(path + ": cannot be written (it exists and is not a regular file)");
  const fs::path folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::string tmp = (folder / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw input_error(path + ": cannot be written (" + std::strerror(errno) + ")");
  const mode_t mask = ::umask(0);  // mkstemp makes 0600; the result gets what a plain create would
  ::umask(mask);
  bool ok = ::fchmod(fd, 0666 & ~mask) == 0;
  for (std::size_t done = 0; ok && done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += std::size_t(n);
  }
  const int write_errno = errno;
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    fs::remove(tmp, ec);
    throw input_error(path + ": write failed (" + std::strerror(write_errno) + ")");
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    throw input_error(path + ": cannot be written (" + why + ")");
  }
}

namespace {

/// A one-line progress display on stderr, for a terminal only, shown once a run has taken a second
/// and redrawn at most ten times a second; cleared when the run ends.
class ProgressLine {
 public:
  bool enabled() const { return ::isatty(STDERR_FILENO) == 1; }
  void show(const std::string& where) {
    const auto now = std::chrono::steady_clock::now();
    if (now - start_ < std::chrono::seconds(1) || now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    shown_ = true;
    std::cerr << "\r\033[Kverify: " << where << std::flush;
  }
  ~ProgressLine() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
  bool shown_ = false;
};

}  // namespace

Command add_verify_command(CLI::App& parent) {
  auto o = std::make_shared<VerifyCommandOptions>();
  CLI::App* app = parent.add_subcommand(
      "verify", "Verify a model's gradients (backprop and the explicit Jacobian product) against exact oracles in "
                "mp100 and judge float/double against their rounding bounds. Exit 0: all right, 1: a gradient is "
                "wrong, 2: bad input, 3: no point could be evaluated");
  app->add_option("--model", o->model, "model spec JSON file")->required();
  app->add_option("--params", o->params, "parameters JSON file (default: Network::initialize(seed))");
  app->add_option("--data", o->data, "data JSON file (default: a batch generated from the seed)");
  app->add_option("--precision", o->precisions, "rungs to judge, comma separated (mp100 is always the reference)")
      ->delimiter(',')
      ->check(CLI::IsMember(precision_names()))
      ->capture_default_str();
  app->add_option("--junit", o->junit, "also write the results as JUnit XML to FILE");
  app->add_option("--json", o->json, "also write the results as JSON to FILE");
  app->add_option("--seed", o->seed, "seed for generated parameters, data and check points")
      ->check(seed_check())
      ->capture_default_str();
  app->add_option("--points", o->points, "random points per layer, drawn from the distributions in turn")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app->add_option("--distributions", o->distributions,
                  "where each layer's points are drawn, in turn, comma separated (uniform: in ±1; saturation: "
                  "20 ≤ |x| < 60; wide_range: ±m·10^e, e in [−8, 8]; near_ties)")
      ->delimiter(',')
      ->check(CLI::IsMember(point_distributions()))
      ->capture_default_str();
  app->add_flag("--strict", o->strict,
                "also fail (exit 1) when float/double lose more digits than their rounding bound allows "
                "(unstable): by default that is reported as advice");
  app->add_flag("--allow-unstable", o->allow_unstable, "the default: unstable is reported, not failed")
      ->excludes("--strict");
  app->add_flag("--no-resample", o->no_resample, "report non-differentiable points instead of moving off them");
  app->add_flag("--projections", o->projections,
                "compare every Jacobian through random projections (J V, Jᵀu), never in full: seconds rather than "
                "minutes on models with thousands of parameters");
  app->add_flag("--full", o->full,
                "compare every Jacobian entry by entry, at any size: prints the estimated cost first and refuses "
                "(exit 2) above --full-limit entries")
      ->excludes("--projections");
  app->add_option("--full-limit", o->full_limit, "the most entries of one Jacobian --full may form")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--jobs", o->threads,
                  "threads the checks run on (0: one per core); the results do not depend on it")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app->add_flag("--no-timings", o->no_timings,
                "write 0 for every measured time, so that the same seed gives byte-identical output");
  app->add_option("--time-limit", o->time_limit,
                  "seconds the whole verification may take (0: none); points still running then are reported as "
                  "not evaluated")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--order", o->order,
                  "1: first-order checks; 2: also each layer's second-order checks (backward differentiated on "
                  "dual numbers against an mp100 oracle, and the symmetry of its Hessian)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (text == "1" || text == "2") return {};
            return "the order is 1 (first-order checks) or 2 (also second-order), got '" + text + "'";
          },
          "1|2"))
      ->capture_default_str();
  return {app, [o](std::ostream& out) {
            NetworkSubject subject;
            subject.spec = read_model_spec(o->model);
            check_model_memory(subject.spec, sizeof(dual<mp100>), scalar_name<dual<mp100>>(), o->model);
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
            options.distributions = o->distributions;
            options.unstable_fails = o->strict;
            if (o->projections) options.full_jacobian_limit = 0;
            options.full = o->full;
            if (o->full) {
              options.full_jacobian_limit = o->full_limit;
              const FullJacobianCost cost = full_jacobian_cost(subject, options);
              if (cost.largest_entries > o->full_limit)
                throw input_error(fmt::format("verify --full: {}'s Jacobian has {} entries, above the limit of {}: "
                                              "raise it with --full-limit {}, or drop --full to judge by projections",
                                              cost.largest_subject, cost.largest_entries, o->full_limit,
                                              cost.largest_entries));
              std::cerr << fmt::format("verify --full: the largest Jacobian is {}'s, {} entries; about {} dual-number "
                                       "passes in mp100 per point and rung\n",
                                       cost.largest_subject, cost.largest_entries, cost.passes);
            }
            options.resample_kinks = !o->no_resample;
            options.threads = o->threads;
            options.time_limit = o->time_limit;
            options.order = o->order;
            ProgressLine progress_line;
            if (progress_line.enabled()) options.progress = [&progress_line](const std::string& where) { progress_line.show(where); };
            VerificationReport report = verify_network(subject, options);
            // Wall-clock times are the only numbers that differ between runs of the same seed.
            if (o->no_timings)
              for (auto& c : report.checks) c.seconds = 0;
            if (!o->json.empty()) write_file_atomically(o->json, to_json(report).dump(2) + "\n");
            if (!o->junit.empty()) write_file_atomically(o->junit, to_junit_xml(report));
            out << format_table(report);
            return report.exit_code();
          }};
}

}  // namespace bpcheck::cli
