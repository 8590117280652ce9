// Validates LearnableSwish with bpcheck: every check, on float, double and mp100.
#define CATCH_CONFIG_MAIN
#include <bpcheck/catch.hpp>
#include <bpcheck/verify/verify.hpp>

#include "learnable_swish.hpp"

TEST_CASE("learnable swish: backward is right on every rung") {
  auto report = bpcheck::verify_layer([]<class T>(bpcheck::rung<T>) { return LearnableSwish<T>(5); });
  REQUIRE_THAT(report, bpcheck::AllGradientsCorrect());
}

TEST_CASE("learnable swish with a missing factor: the checker names the block") {
  auto report = bpcheck::verify_layer([]<class T>(bpcheck::rung<T>) { return LearnableSwishMissingFactor<T>(5); });
  REQUIRE_THAT(report, !bpcheck::AllGradientsCorrect());
  bool named = false;
  for (const auto& c : report.checks)
    if (c.check == "backward vs oracle" && !c.worst.empty()) named = c.worst.front().block == "beta";
  CHECK(named);
}
