// Validates LearnableSwish with bpcheck: every check, on float, double and mp100, then the whole
// property suite at generated points.
#define CATCH_CONFIG_MAIN
#include <bpcheck/catch.hpp>
#include <bpcheck/properties/check_layer.hpp>
#include <bpcheck/verify/verify.hpp>

#include "learnable_swish.hpp"

namespace {
// One factory object per layer, shared by both tests: the checker is instantiated once per factory.
constexpr auto make_swish = []<class T>(bpcheck::rung<T>) { return LearnableSwish<T>(5); };
constexpr auto make_broken_swish = []<class T>(bpcheck::rung<T>) { return LearnableSwishMissingFactor<T>(5); };
}  // namespace

TEST_CASE("learnable swish: backward is right on every rung") {
  auto report = bpcheck::verify_layer(make_swish);
  REQUIRE_THAT(report, bpcheck::AllGradientsCorrect());
}

TEST_CASE("learnable swish with a missing factor: the checker names the block") {
  auto report = bpcheck::verify_layer(make_broken_swish);
  REQUIRE_THAT(report, !bpcheck::AllGradientsCorrect());
  bool named = false;
  for (const auto& c : report.checks)
    if (c.check == "backward vs oracle" && !c.worst.empty()) named = c.worst.front().block == "beta";
  CHECK(named);
}

TEST_CASE("learnable swish satisfies every property on every rung") {
  bpcheck::properties::check_layer(make_swish);
}

TEST_CASE("learnable swish with a missing factor fails the property suite with a shrunk counterexample") {
  const auto report = bpcheck::properties::check_layer_report(make_broken_swish);
  CHECK(!report.passed());
  bool shrunk = false;
  for (const auto& [name, run] : report.runs)
    if (!run.passed) shrunk = shrunk || run.counterexample.find("batch 1") != std::string::npos;
  CHECK(shrunk);
}
