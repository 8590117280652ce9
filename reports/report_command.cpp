// bpcheck report [--model M.json [--params P.json] [--data D.json]] [--precision float,double,bf16,fp16]
//                [--accumulate same|float] [--quick] [--seed N] [--out DIR] [--jobs N] [--shard k/n]
// bpcheck report merge [--out DIR] PART...
//
// The work items of a sweep run on --jobs threads (MPFR is thread-safe in Debian's build). With
// --shard k/n only items i with i mod n = k − 1 run and DIR/report.json holds their results; `merge`
// joins the parts of one run into exactly the report an unsharded run writes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/parallel.hpp"
#include "commands.hpp"
#include "report.hpp"

namespace bpcheck::cli {

namespace {

using report::json;

struct ReportCommandOptions {
  std::string model, params, data, out = "bpcheck-report", shard, accumulate = "same";
  std::vector<std::string> precisions{"float", "double"};
  bool quick = false;
  std::uint64_t seed = 42;
  int jobs = 0;
  std::vector<std::string> parts;
  std::string merge_out = "bpcheck-report";
};

struct Shard {
  std::size_t index = 1, count = 1;  ///< 1 ≤ index ≤ count
};

Shard parse_shard(const std::string& text) {
  static const std::regex form(R"(([0-9]{1,6})/([0-9]{1,6}))");
  std::smatch m;
  if (!std::regex_match(text, m, form))
    throw input_error("--shard: expected k/n, part k of n (e.g. 1/4), got '" + text + "'");
  const Shard s{std::stoul(m[1]), std::stoul(m[2])};
  if (s.count < 1 || s.index < 1 || s.index > s.count)
    throw input_error("--shard: part k of n needs 1 <= k <= n, got '" + text + "'");
  return s;
}

/// Creates the output folder and proves it writable before any work is spent.
void prepare_output(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw input_error(dir + ": cannot create the output folder (" + (ec ? ec.message() : "not a folder") + ")");
  const fs::path probe = fs::path(dir) / ".bpcheck-write-probe";
  {
    std::ofstream f(probe);
    if (!f || !(f << "probe") || !f.flush()) throw input_error(dir + ": the output folder is not writable");
  }
  fs::remove(probe, ec);
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(std::size_t total) : total_(total), shown_(::isatty(STDERR_FILENO) == 1 && total > 0) {}
  void advance() {
    std::lock_guard lock(mutex_);
    ++done_;
    if (!shown_) return;
    constexpr int width = 40;
    const int filled = int(width * done_ / total_);
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    std::cerr << fmt::format("\rreport [{}{}] {}/{} items, {:.0f} s", std::string(filled, '#'),
                             std::string(width - filled, '.'), done_, total_, seconds)
              << (done_ == total_ ? "\n" : "") << std::flush;
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::mutex mutex_;
  std::size_t total_, done_ = 0;
  bool shown_;
  Clock::time_point start_ = Clock::now();
};

/// Computes the chosen items on `jobs` threads; results[i] for item chosen[i]. The first failure (in
/// item order) is rethrown once every thread has stopped.
std::vector<json> compute_all(const std::vector<report::WorkItem>& items, const std::vector<std::size_t>& chosen,
                              const report::ReportOptions& options, int jobs) {
  std::vector<json> results(chosen.size());
  Progress progress(chosen.size());
  // The long items start first (verification and finite differences take the most per item), so that the
  // short ones fill the threads at the end; results keep the items' order.
  auto rank = [](const std::string& kind) { return kind == "verification" ? 0 : kind == "finite_differences" ? 1 : 2; };
  std::vector<std::size_t> order(chosen.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return rank(items[chosen[a]].kind) < rank(items[chosen[b]].kind);
  });
  std::vector<std::exception_ptr> failed(chosen.size());
  try {
    parallel_for(order.size(), jobs, [&](std::size_t s) {
      const std::size_t i = order[s];
      try {
        results[i] = report::compute(items[chosen[i]], options);
      } catch (...) {
        failed[i] = std::current_exception();
        throw;
      }
      progress.advance();
    });
  } catch (...) {
    for (const auto& f : failed)
      if (f) std::rethrow_exception(f);
    throw;
  }
  return results;
}

std::string absolute(const std::string& path) {
  return std::filesystem::weakly_canonical(std::filesystem::absolute(path)).string();
}

/// Writes report.json, the CSVs and index.html; returns the exit code (1 when a gradient is wrong).
int write_report(const std::string& dir, const json& full, std::ostream& out) {
  const auto files = report::render(full);
  write_file_atomically((std::filesystem::path(dir) / "report.json").string(), full.dump(1) + "\n");
  for (const auto& [name, text] : files) write_file_atomically((std::filesystem::path(dir) / name).string(), text);
  // A statement whose assumptions fail at the subject (a kink) is not applicable: neither held nor failed.
  std::size_t holding = 0, applicable = 0;
  for (const auto& t : full.at("theory")) {
    holding += t.at("holds") == true;
    applicable += !t.at("holds").is_null();
  }
  const std::size_t skipped = full.at("theory").size() - applicable;
  out << fmt::format("bpcheck report: {} of {} statements of theory hold{}; verification: {}\n", holding, applicable,
                     skipped ? fmt::format(" ({} not applicable)", skipped) : std::string(),
                     full.at("passed").get<bool>() ? "every gradient right" : "A GRADIENT IS WRONG");
  for (const auto& lw : full.value("layerwise", json::array())) {
    std::string names;
    for (const auto& f : lw.value("backward_under_2_digits", json::array()))
      names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", f.at("layer").get<int>(), f.at("type").get<std::string>());
    if (!names.empty())
      out << fmt::format("bpcheck report: {}'s gradient keeps fewer than 2 digits after the backward of layer {}\n",
                         lw.at("precision").get<std::string>(), names);
  }
  out << "open file://" << absolute((std::filesystem::path(dir) / "index.html").string()) << "\n";
  return full.at("passed").get<bool>() ? 0 : 1;
}

int run_report(const ReportCommandOptions& o, std::ostream& out) {
  const auto start = std::chrono::steady_clock::now();
  report::ReportOptions options;
  options.quick = o.quick;
  options.seed = o.seed;
  if (std::find(o.precisions.begin(), o.precisions.end(), "mp100") != o.precisions.end())
    throw input_error("--precision: mp100 is the report's reference, not a rung it measures (known for report: "
                      "float, double, bf16, fp16)");
  options.precisions = report::checked_precisions(o.precisions);
  options.accumulation = accumulation_of(o.accumulate);
  if (o.accumulate != "same" && std::none_of(options.precisions.begin(), options.precisions.end(),
                                             [](const auto& p) { return p == "bf16" || p == "fp16"; }))
    throw input_error("--accumulate applies to the 16-bit precisions (bf16, fp16) only");
  std::optional<Shard> shard;
  if (!o.shard.empty()) shard = parse_shard(o.shard);
  if (!o.model.empty()) options.model = read_model_spec(o.model);
  if ((!o.params.empty() || !o.data.empty()) && !options.model)
    throw input_error("--params and --data describe a user's model: give it with --model");
  if (options.model) {
    // Read and checked here, in double, so that a bad file is reported by name before any work.
    Network<double> net(*options.model);
    if (!o.params.empty()) {
      options.parameters = read_json_file(o.params);
      parameters_from_json(net, *options.parameters, o.params);
    }
    if (!o.data.empty()) {
      options.data = read_json_file(o.data);
      (void)batch_from_json(net, *options.data, o.data);
    }
  }
  prepare_output(o.out);

  const auto items = report::plan(options);
  const json run = report::run_identity(options, items);
  std::vector<std::size_t> chosen;
  for (std::size_t i = 0; i < items.size(); ++i)
    if (!shard || i % shard->count == shard->index - 1) chosen.push_back(i);
  const int jobs = thread_count(o.jobs);
  const std::vector<json> results = compute_all(items, chosen, options, jobs);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << fmt::format("report: {} items in {:.1f} s on {} threads\n", chosen.size(), seconds, jobs);

  if (shard) {
    json part;
    part["format"] = "bpcheck report shard";
    part["run"] = run;
    part["shard"] = {{"index", shard->index}, {"count", shard->count}};
    json list = json::array();
    for (std::size_t i = 0; i < chosen.size(); ++i)
      list.push_back({{"index", chosen[i]}, {"kind", items[chosen[i]].kind}, {"params", items[chosen[i]].params},
                      {"result", results[i]}});
    part["items"] = std::move(list);
    const std::string path = (std::filesystem::path(o.out) / "report.json").string();
    write_file_atomically(path, part.dump(1) + "\n");
    out << fmt::format("bpcheck report: shard {}/{} ({} of {} items) written to {}; join the parts with "
                       "`bpcheck report merge --out DIR PART...`\n",
                       shard->index, shard->count, chosen.size(), items.size(), absolute(path));
    return 0;
  }
  return write_report(o.out, report::assemble(run, items, results), out);
}

json read_ordered(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw input_error(path + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw input_error(path + ": malformed JSON (" + std::string(e.what()) + ")");
  }
}

/// The first key in which two runs differ, for the message.
std::string first_difference(const json& a, const json& b) {
  for (const auto& [key, value] : a.items())
    if (!b.contains(key) || b.at(key) != value) return key;
  for (const auto& [key, value] : b.items())
    if (!a.contains(key)) return key;
  return "?";
}

int run_merge(const ReportCommandOptions& o, std::ostream& out) {
  namespace fs = std::filesystem;
  std::optional<json> run;
  std::string first_path;
  std::size_t count = 0;
  std::map<std::size_t, std::string> shard_files;
  std::map<std::size_t, std::pair<report::WorkItem, json>> by_index;
  for (const auto& part : o.parts) {
    const std::string path = fs::is_directory(part) ? (fs::path(part) / "report.json").string() : part;
    const json j = read_ordered(path);
    try {
      if (!j.is_object() || j.value("format", "") != "bpcheck report shard")
        throw input_error(path + ": not a shard of bpcheck report (written by `bpcheck report --shard k/n`)");
      const json& r = j.at("run");
      const std::size_t k = j.at("shard").at("index").get<std::size_t>(), n = j.at("shard").at("count").get<std::size_t>();
      if (!run) {
        run = r;
        first_path = path;
        count = n;
      } else if (nlohmann::json(r) != nlohmann::json(*run)) {  // key order aside
        const std::string key = first_difference(*run, r);
        throw input_error(fmt::format("{}: a shard of a different run than {} ('{}' differs: {} vs {})", path,
                                      first_path, key, r.value(key, json()).dump(), run->value(key, json()).dump()));
      } else if (n != count) {
        throw input_error(fmt::format("{}: shard of {} parts, {} has {}", path, n, first_path, count));
      }
      if (k < 1 || k > n) throw input_error(fmt::format("{}: shard index {} outside 1..{}", path, k, n));
      if (auto it = shard_files.find(k); it != shard_files.end())
        throw input_error(fmt::format("{}: shard {}/{} given twice (also {})", path, k, n, it->second));
      shard_files[k] = path;
      for (const auto& item : j.at("items")) {
        const std::size_t i = item.at("index").get<std::size_t>();
        if (i >= run->at("items").get<std::size_t>() || i % n != k - 1)
          throw input_error(fmt::format("{}: item {} does not belong to shard {}/{}", path, i, k, n));
        by_index[i] = {report::WorkItem{item.at("kind").get<std::string>(), item.at("params")}, item.at("result")};
      }
    } catch (const json::exception& e) {
      throw input_error(path + ": not a shard of bpcheck report (" + std::string(e.what()) + ")");
    }
  }
  std::string missing;
  for (std::size_t k = 1; k <= count; ++k)
    if (!shard_files.count(k)) missing += (missing.empty() ? "" : ", ") + fmt::format("{}/{}", k, count);
  if (!missing.empty()) throw input_error("merge: missing shard " + missing + " of this run");
  if (by_index.size() != run->at("items").get<std::size_t>())
    throw input_error(fmt::format("merge: {} of {} items present", by_index.size(), run->at("items").get<std::size_t>()));
  prepare_output(o.merge_out);
  std::vector<report::WorkItem> items;
  std::vector<json> results;
  for (auto& [i, ir] : by_index) {
    items.push_back(std::move(ir.first));
    results.push_back(std::move(ir.second));
  }
  return write_report(o.merge_out, report::assemble(*run, items, results), out);
}

}  // namespace

Command add_report_command(CLI::App& parent) {
  auto o = std::make_shared<ReportCommandOptions>();
  CLI::App* app = parent.add_subcommand(
      "report",
      "The error-analysis report: finite-difference error versus step, float/double (--precision: also bf16, fp16) "
      "backprop error versus mp100 "
      "along depth, width and activation (for --model: layer by layer, forward and backward), Jacobian "
      "conditioning, and the verification summary. Writes "
      "report.json, one CSV per sweep and index.html (plots by gnuplot) to --out");
  app->add_option("--model", o->model, "model spec JSON file (default: the built-in set of layers and networks)");
  app->add_option("--params", o->params, "parameters JSON file for --model (default: from the seed)");
  app->add_option("--data", o->data, "data JSON file for --model (default: a batch generated from the seed)");
  app->add_option("--precision", o->precisions,
                  "rungs measured against mp100, comma separated: float, double, bf16, fp16")
      ->delimiter(',')
      ->capture_default_str();
  add_accumulate_option(app, o->accumulate);
  app->add_flag("--quick", o->quick, "the small sweep (for CI)");
  app->add_option("--seed", o->seed, "seed for parameters, data, directions and check points")
      ->check(seed_check())
      ->capture_default_str();
  // The last --out wins, so scripts/run.sh's default can be overridden from its command line.
  app->add_option("--out", o->out, "output folder")->capture_default_str()->multi_option_policy(
      CLI::MultiOptionPolicy::TakeLast);
  app->add_option("--jobs", o->jobs, "threads (default: the machine's cores)")->check(CLI::Range(1, 4096));
  app->add_option("--shard", o->shard, "k/n: compute only part k of n (1 <= k <= n); join with `report merge`");
  CLI::App* merge = app->add_subcommand("merge", "Join the shards of one run (folders or their report.json) into the full report");
  merge->add_option("parts", o->parts, "shard folders or report.json files")->required();
  merge->add_option("--out", o->merge_out, "output folder")->capture_default_str();
  app->require_subcommand(0, 1);
  return {app, [o, app, merge](std::ostream& out) {
            if (!merge->parsed()) return run_report(*o, out);
            // The parts carry their run's options: any given to `report` before `merge` would be ignored.
            for (const char* name : {"--model", "--params", "--data", "--precision", "--accumulate", "--quick", "--seed", "--out",
                                     "--jobs", "--shard"})
              if (app->count(name))
                throw input_error(std::string("report merge: ") + name +
                                  " belongs to the runs that made the parts; merge takes only --out and the parts");
            return run_merge(*o, out);
          }};
}

}  // namespace bpcheck::cli
