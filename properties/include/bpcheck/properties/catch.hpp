#pragma once
// Properties inside Catch2 tests: a failing property fails the test with its shrunk counterexample
// and the RC_PARAMS that reproduces it.
//
//   TEST_CASE("softmax rows sum to one") {
//     bpcheck::properties::require_property("softmax rows sum to one", 100, [] { ... });
//   }
//
// Include after <catch2/catch.hpp>.
#include <catch2/catch.hpp>

#include "bpcheck/properties/runner.hpp"

namespace bpcheck::properties {

/// Runs the property (see run_property) and fails the current test when it does not hold.
template <class Testable>
PropertyRun require_property(const std::string& description, int cases, Testable&& testable) {
  PropertyRun run = run_property(description, cases, std::forward<Testable>(testable));
  INFO(run.message);
  CHECK(run.passed);
  return run;
}

}  // namespace bpcheck::properties
