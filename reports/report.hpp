#pragma once
// The error-analysis report: how far float and double stray from the 100-digit truth, and why.
//
//   bpcheck::report::ReportOptions o;                       // the built-in default set, seed 42
//   auto items = bpcheck::report::plan(o);                  // independent work items
//   std::vector<nlohmann::ordered_json> results;
//   for (const auto& item : items) results.push_back(bpcheck::report::compute(item, o));
//   auto report = bpcheck::report::assemble(bpcheck::report::run_identity(o, items), items, results);
//   for (auto& [name, text] : bpcheck::report::render(report)) ...   // CSVs and index.html
//
// A sweep is a list of work items, each computed on its own (the unit of threads and of shards), each
// result a JSON object that holds only deterministic numbers: the same options give byte-identical
// output whatever the number of threads or shards. The sweeps:
//   finite_differences  error of each scheme versus the step h, per subject and precision
//   backprop            float/double gradient (and the chosen 16-bit rungs') versus mp100, per network
//                       (activation, width, depth) and parameter block, with the singular values of the
//                       network's Jacobians
//   verification        every check of `verify` on each layer and on the default network
//   layerwise           a user's model only: per precision, every layer's forward and backward error
//   second_order        per precision, along one direction v: the central difference of the gradient
//                       versus h, and the rung's own H v per parameter block, against the mp100 H v
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpcheck/network.hpp"

namespace bpcheck::report {

using json = nlohmann::ordered_json;

struct ReportOptions {
  bool quick = false;           ///< the small sweep for CI
  std::uint64_t seed = 42;
  std::optional<ModelSpec> model;  ///< a user's network; none: the built-in default set
  std::optional<nlohmann::json> parameters;  ///< the model's parameters (parameter format); none: from the seed
  std::optional<nlohmann::json> data;        ///< the model's batch (data format); none: generated from the seed
  /// Finite differences: jitter a point that sits on a kink off it (true), or report the subject as
  /// non-differentiable there (false).
  bool move_off_kinks = true;
  /// The rungs measured against mp100 (names of known_precisions()): finite differences, layer by layer and
  /// second order run on each; backprop always has float and double, and adds the 16-bit rungs chosen.
  std::vector<std::string> precisions{"float", "double"};
  /// How the 16-bit rungs' matrix products add up (see docs/precision.md).
  Accumulation accumulation = Accumulation::same;
};

/// The rungs the report can measure, in the order its rows follow: float, double, bf16, fp16.
const std::vector<std::string>& known_precisions();

/// Checks a list of rung names (`--precision`): every name known, none twice, at least one. Throws
/// input_error naming the first bad one. Returns the list in known_precisions()' order.
std::vector<std::string> checked_precisions(const std::vector<std::string>& names);

/// One independent unit of work: its kind ("finite_differences", "backprop", "verification", "layerwise",
/// "second_order") and
/// what to compute, as JSON so that shard files describe themselves.
struct WorkItem {
  std::string kind;
  json params;
};

/// The work items of a run, in a fixed order.
std::vector<WorkItem> plan(const ReportOptions& options);

/// The layer object (type and options) and input size the report verifies a registered layer type
/// with: its default options, or a small example where the type has no default shape.
std::pair<json, Index> example_layer(const std::string& type);

/// What identifies a run (format version, model, seed, sweep sizes): shards merge only when equal.
json run_identity(const ReportOptions& options, const std::vector<WorkItem>& items);

/// Computes one item. Throws input_error for a model that cannot be evaluated.
json compute(const WorkItem& item, const ReportOptions& options);

/// A network's verification from the results of the items that hold its units (verify's units, in any
/// order; `params` those of any of the items; `run` the run's identity): the result one verification item of
/// the whole network gives.
json join_verification_units(const json& params, const std::vector<json>& parts, const json& run);

/// The whole report from every item's result (results[i] belongs to items[i]): report.json.
json assemble(const json& run, const std::vector<WorkItem>& items, const std::vector<json>& results);

/// The files of the report from report.json: one CSV per sweep and index.html (plots by gnuplot).
/// Throws error when gnuplot cannot be run.
std::map<std::string, std::string> render(const json& report);

/// The agreement of the numbers with theory, as a list of statements with measured values and
/// whether each holds (also part of report.json under "theory").
json theory_checks(const json& report);

}  // namespace bpcheck::report
