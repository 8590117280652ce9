#pragma once
// Catch2 integration: a failing verification prints its whole table.
//
//   TEST_CASE("my layer's backward is right") {
//     auto report = bpcheck::verify_layer([]<class T>(bpcheck::rung<T>) { return MyLayer<T>(4, 3); });
//     REQUIRE_THAT(report, bpcheck::AllGradientsCorrect());
//   }
//
// Include after <catch2/catch.hpp>; the header needs nothing else from Catch2's build.
#include <catch2/catch.hpp>

#include "bpcheck/verify/result.hpp"

namespace Catch {
template <>
struct StringMaker<bpcheck::VerificationReport> {
  static std::string convert(const bpcheck::VerificationReport& r) { return "\n" + bpcheck::format_table(r); }
};
}  // namespace Catch

namespace bpcheck {

/// Matches a report in which no check failed (unstable points count as failures unless the options
/// said otherwise).
class AllGradientsCorrectMatcher : public Catch::MatcherBase<VerificationReport> {
 public:
  bool match(const VerificationReport& r) const override { return r.passed(); }
  std::string describe() const override { return "has every gradient correct"; }
};

inline AllGradientsCorrectMatcher AllGradientsCorrect() { return {}; }

}  // namespace bpcheck
