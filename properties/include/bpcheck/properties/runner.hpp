#pragma once
// Runs a RapidCheck property deterministically: same seed ⇒ same cases ⇒ same verdict.
//
//   auto run = bpcheck::properties::run_property("softmax rows sum to one", 50, [] { ... RC_ASSERT(...); });
//   run.passed;          // false: run.counterexample is the shrunk case, run.message says how to rerun it
//
// Number of cases. Each property states its default (kept small so that `ctest` stays fast); the
// environment variable BPCHECK_PROPERTY_CASES=N runs N cases instead (mp100 properties N/10, at
// least 2): the nightly setting is BPCHECK_PROPERTY_CASES=10000. RC_PARAMS is honoured on top:
// `RC_PARAMS="seed=7 max_success=500"` overrides both the seed and the count.
//
// Layers. BPCHECK_PROPERTY_LAYERS=dense,tanh limits the per-layer properties to those layer types
// (comma-separated registry names), so that a nightly run can be split over machines by layer.
//
// Seed. Without a seed in RC_PARAMS every property uses the fixed default_seed, so two runs of the
// test command see the same cases; a failure prints the RC_PARAMS that reproduces it.
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <rapidcheck.h>

namespace bpcheck::properties {

inline constexpr std::uint64_t default_seed = 20261127;

/// The cases a property runs: BPCHECK_PROPERTY_CASES when set (a tenth, at least 2, for mp100),
/// else `default_cases`. Throws input_error for a value that is not a positive integer.
int case_count(int default_cases, bool mp100 = false);

/// The layer types the per-layer properties run on: BPCHECK_PROPERTY_LAYERS when set, else every
/// registered type. Throws input_error naming an unknown type, or for an empty list.
std::vector<std::string> property_layer_types();

/// Whether RC_PARAMS sets the key (e.g. "seed", "max_success").
bool rc_params_set(const std::string& key);

/// The RapidCheck parameters of a run: RC_PARAMS, with the fixed seed and `cases` unless it sets them.
rc::detail::TestParams property_parameters(int cases);

struct PropertyRun {
  bool passed = false;
  int cases = 0;              ///< cases that passed
  std::uint64_t seed = 0;
  std::string counterexample; ///< the shrunk failing case, as RapidCheck shows it
  std::string failure;        ///< what the property said about it
  std::string message;        ///< everything for people: result, counterexample, how to reproduce
};

/// Turns RapidCheck's result into a PropertyRun.
PropertyRun summarize(const std::string& description, const rc::detail::TestResult& result,
                      const rc::detail::TestParams& params);

/// Runs `testable` (a RapidCheck property: a callable using *gen and RC_ASSERT) for `cases` cases.
template <class Testable>
PropertyRun run_property(const std::string& description, int cases, Testable&& testable) {
  const rc::detail::TestParams params = property_parameters(cases);
  rc::detail::TestMetadata metadata;
  metadata.id = description;
  metadata.description = description;
  const auto result = rc::detail::checkTestable(std::forward<Testable>(testable), metadata, params);
  return summarize(description, result, params);
}

}  // namespace bpcheck::properties
