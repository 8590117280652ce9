// bpcheck verify --model M.json [--params P.json] [--data D.json] [--precision float,double,mp100]
//                [--junit FILE] [--json FILE] [--seed N] [--points N] [--distributions LIST] [--strict]
//                [--allow-unstable] [--no-resample] [--no-timings] [--projections | --full [--full-limit N]]
//                [--order 1|2] [--shard k/n [--out FILE]]
// bpcheck verify merge [--json FILE] [--junit FILE] PART...
//
// With --shard k/n only the units of work i with i mod n = k − 1 run (unit 0: the network's loss, then
// each point of each layer, so that every part gets an equal share of every layer), and FILE holds
// their results; `merge` joins the parts of one run into exactly the unsharded run's output.
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
#include <optional>
#include <utility>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/verify/network_units.hpp"
#include "bpcheck/verify/verify.hpp"
#include "commands.hpp"
#include "verify_shard.hpp"

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
  std::string shard, shard_out, accumulate = "same";
  std::vector<std::string> parts;
  std::string merge_json, merge_junit;
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

namespace {

/// The subject and the options of a run, from the command line; refuses bad input before any work.
std::pair<NetworkSubject, VerifyOptions> subject_and_options(const VerifyCommandOptions& o) {
  NetworkSubject subject;
  subject.spec = read_model_spec(o.model);
  check_model_memory(subject.spec, sizeof(dual<mp100>), scalar_name<dual<mp100>>(), o.model);
  if (!o.params.empty()) {
    subject.parameters = read_json_file(o.params);
    subject.parameters_file = o.params;
  }
  if (!o.data.empty()) {
    subject.data = read_json_file(o.data);
    subject.data_file = o.data;
  }
  VerifyOptions options;
  options.seed = o.seed;
  options.points = o.points;
  options.precisions = o.precisions;
  options.distributions = o.distributions;
  options.unstable_fails = o.strict;
  if (o.projections) options.full_jacobian_limit = 0;
  options.full = o.full;
  if (o.full) {
    options.full_jacobian_limit = o.full_limit;
    const FullJacobianCost cost = full_jacobian_cost(subject, options);
    if (cost.largest_entries > o.full_limit)
      throw input_error(fmt::format("verify --full: {}'s Jacobian has {} entries, above the limit of {}: "
                                    "raise it with --full-limit {}, or drop --full to judge by projections",
                                    cost.largest_subject, cost.largest_entries, o.full_limit,
                                    cost.largest_entries));
    std::cerr << fmt::format("verify --full: the largest Jacobian is {}'s, {} entries; about {} dual-number "
                             "passes in mp100 per point and rung\n",
                             cost.largest_subject, cost.largest_entries, cost.passes);
  }
  options.resample_kinks = !o.no_resample;
  options.threads = o.threads;
  options.time_limit = o.time_limit;
  options.order = o.order;
  options.accumulation = accumulation_of(o.accumulate);
  if (o.accumulate != "same" && std::find(o.precisions.begin(), o.precisions.end(), "bf16") == o.precisions.end() &&
      std::find(o.precisions.begin(), o.precisions.end(), "fp16") == o.precisions.end())
    throw input_error("--accumulate applies to the 16-bit precisions (bf16, fp16) only");
  return {std::move(subject), std::move(options)};
}

/// Everything a run's results depend on, for a shard file: parts of runs that differ in any of it
/// are refused by merge. Threads are left out (the results do not depend on them).
nlohmann::json verify_run_identity(const VerifyCommandOptions& o, const NetworkSubject& subject, const VerifyOptions& options) {
  nlohmann::json identity = {{"model", nlohmann::json(model_spec_to_json(subject.spec))},
          {"parameters", subject.parameters ? nlohmann::json(json_fingerprint(*subject.parameters)) : nlohmann::json()},
          {"data", subject.data ? nlohmann::json(json_fingerprint(*subject.data)) : nlohmann::json()},
          {"seed", options.seed},
          {"points", options.points},
          {"distributions", options.distributions},
          {"precisions", options.precisions},
          {"strict", options.unstable_fails},
          {"resample", options.resample_kinks},
          {"full", options.full},
          {"full_jacobian_limit", options.full_jacobian_limit},
          {"time_limit", options.time_limit},
          {"order", options.order},
          {"no_timings", o.no_timings},
          {"units", network_unit_count(subject, options)}};
  if (o.accumulate != "same") identity["accumulate"] = o.accumulate;  // absent: the default, as before
  return identity;
}

/// The table, the JSON and JUnit files and the exit code of a finished run.
int finish_verify(VerificationReport& report, bool no_timings, const std::string& json, const std::string& junit,
           std::ostream& out) {
  // Wall-clock times are the only numbers that differ between runs of the same seed.
  if (no_timings)
    for (auto& c : report.checks) c.seconds = 0;
  if (!json.empty()) write_file_atomically(json, to_json(report).dump(2) + "\n");
  if (!junit.empty()) write_file_atomically(junit, to_junit_xml(report));
  out << format_table(report);
  return report.exit_code();
}

int run_verify(const VerifyCommandOptions& o, std::ostream& out) {
  std::optional<ShardIndex> shard;
  if (!o.shard.empty()) {
    shard = parse_verify_shard(o.shard);
    if (!o.json.empty() || !o.junit.empty())
      throw input_error("verify --shard: --json and --junit belong to `verify merge`, which writes the joined results");
  }
  auto [subject, options] = subject_and_options(o);
  const std::string shard_path =
      !shard ? std::string()
             : !o.shard_out.empty() ? o.shard_out
                                    : fmt::format("verify-shard-{}-of-{}.json", shard->index, shard->count);
  if (shard) {
    // Refuse an unwritable folder before the work, not after it.
    namespace fs = std::filesystem;
    const fs::path folder = fs::path(shard_path).parent_path().empty() ? fs::path(".") : fs::path(shard_path).parent_path();
    std::error_code ec;
    if (!fs::is_directory(folder, ec) || ::access(folder.c_str(), W_OK) != 0)
      throw input_error(shard_path + ": cannot be written (its folder does not exist or is not writable)");
  }
  ProgressLine progress_line;
  if (progress_line.enabled()) options.progress = [&progress_line](const std::string& where) { progress_line.show(where); };
  if (!shard) {
    VerificationReport report = verify_network(subject, options);
    return finish_verify(report, o.no_timings, o.json, o.junit, out);
  }
  const std::size_t units = network_unit_count(subject, options);
  std::vector<std::size_t> chosen;
  for (std::size_t i = shard->index - 1; i < units; i += shard->count) chosen.push_back(i);
  std::vector<VerificationReport> reports = verify_network_units(subject, options, chosen);
  VerifyShard part;
  part.run = verify_run_identity(o, subject, options);
  part.shard = *shard;
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    if (o.no_timings)
      for (auto& c : reports[i].checks) c.seconds = 0;
    part.units.emplace_back(chosen[i], std::move(reports[i]));
  }
  write_file_atomically(shard_path, shard_to_json(part).dump(1) + "\n");
  out << fmt::format("bpcheck verify: shard {}/{} ({} of {} units) written to {}; join the parts with "
                     "`bpcheck verify merge PART...`\n",
                     shard->index, shard->count, chosen.size(), units, shard_path);
  return 0;
}

int run_verify_merge(const VerifyCommandOptions& o, std::ostream& out) {
  JoinedShards joined = join_verify_shards(o.parts);
  // The join needs the model's layers and the points per layer; the rest of the run is in the units.
  NetworkSubject subject;
  VerifyOptions options;
  try {
    subject.spec = model_spec_from_json(joined.run.at("model"), o.parts.front() + ": run.model");
    options.points = joined.run.at("points").get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw input_error(o.parts.front() + ": not a valid shard of bpcheck verify (" + std::string(e.what()) + ")");
  }
  if (network_unit_count(subject, options) != joined.units.size())
    throw input_error(fmt::format("{}: the run's model and points make {} units, its shards hold {}", o.parts.front(),
                                  network_unit_count(subject, options), joined.units.size()));
  VerificationReport report = join_network_units(subject, options, joined.units);
  return finish_verify(report, joined.run.value("no_timings", false), o.merge_json, o.merge_junit, out);
}

}  // namespace

Command add_verify_command(CLI::App& parent) {
  auto o = std::make_shared<VerifyCommandOptions>();
  CLI::App* app = parent.add_subcommand(
      "verify", "Verify a model's gradients (backprop and the explicit Jacobian product) against exact oracles in "
                "mp100 and judge float/double against their rounding bounds. Exit 0: all right, 1: a gradient is "
                "wrong, 2: bad input, 3: no point could be evaluated");
  app->add_option("--model", o->model, "model spec JSON file (required, but for `verify merge`)");
  app->add_option("--params", o->params, "parameters JSON file (default: Network::initialize(seed))");
  app->add_option("--data", o->data, "data JSON file (default: a batch generated from the seed)");
  app->add_option("--precision", o->precisions, "rungs to judge, comma separated (mp100 is always the reference)")
      ->delimiter(',')
      ->check(CLI::IsMember(precision_names_16()))
      ->capture_default_str();
  add_accumulate_option(app, o->accumulate);
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
                  "1: first-order checks; 2: also the second-order checks of each layer and of the network's loss "
                  "in its parameters (backward differentiated on "
                  "dual numbers against an mp100 oracle, and the symmetry of its Hessian)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (text == "1" || text == "2") return {};
            return "the order is 1 (first-order checks) or 2 (also second-order), got '" + text + "'";
          },
          "1|2"))
      ->capture_default_str();
  app->add_option("--shard", o->shard,
                  "k/n: run only part k of n (1 <= k <= n) and write it to --out; join with `verify merge`");
  app->add_option("--out", o->shard_out, "with --shard: the shard file (default verify-shard-K-of-N.json)");
  CLI::App* merge = app->add_subcommand(
      "merge", "Join the shards of one run (`verify --shard k/n`) into exactly the unsharded run's table, JSON, "
               "JUnit and exit code");
  merge->add_option("parts", o->parts, "shard files")->required();
  merge->add_option("--json", o->merge_json, "also write the results as JSON to FILE");
  merge->add_option("--junit", o->merge_junit, "also write the results as JUnit XML to FILE");
  app->require_subcommand(0, 1);
  return {app, [o, app, merge](std::ostream& out) {
            if (merge->parsed()) {
              // The parts carry their run's options: any given to `verify` before `merge` would be ignored.
              for (const CLI::Option* option : app->get_options())
                if (option->count() > 0)
                  throw input_error("verify merge: " + option->get_name() +
                                    " belongs to the runs that made the parts; merge takes only --json, --junit "
                                    "and the parts");
              return run_verify_merge(*o, out);
            }
            if (o->model.empty()) throw input_error("verify: --model is required");
            if (o->shard.empty() && !o->shard_out.empty())
              throw input_error("verify: --out names a shard file: give --shard k/n too");
            return run_verify(*o, out);
          }};
}

}  // namespace bpcheck::cli
