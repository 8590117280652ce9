// The one rule that turns evidence into a verdict (lib/src/verdict.hpp), row by row of the table in
// docs/verdicts.md: each row with evidence just inside and just outside it.
#include <catch2/catch.hpp>

#include <limits>

#include "verdict.hpp"

using bpcheck::Verdict;
using bpcheck::verify_detail::Evidence;
using bpcheck::verify_detail::Grounds;
using bpcheck::verify_detail::judge;
using bpcheck::verify_detail::Tolerances;

namespace {
Evidence against_mp100(double ratio, double digits = 3) {
  Evidence e;
  e.what = "backward";
  e.precision = "float";
  e.ratio = ratio;
  e.digits = digits;
  e.rung_digits = 7.2;
  return e;
}
const double inf = std::numeric_limits<double>::infinity();
}  // namespace

TEST_CASE("verdict rule: mp100 and identities pass within the bound and fail beyond it", "[verdict]") {
  const Tolerances t;
  Evidence e;
  e.what = "backward";
  e.precision = "mp100";
  e.exact_rung = true;
  e.ratio = 1;
  CHECK(judge(e, t).verdict == Verdict::pass);
  e.ratio = 1.01;
  CHECK(judge(e, t).verdict == Verdict::fail);
  // mp100's own rounding of the formula, measured, widens the bound (and only that)
  e.ratio_with_formula_rounding = 0.5;
  CHECK(judge(e, t).grounds == Grounds::within_formula_rounding);
  e.ratio_with_formula_rounding = 2;
  CHECK(judge(e, t).verdict == Verdict::fail);
  // an identity in float: beyond the bound is wrong, whatever mp100 says
  Evidence id = against_mp100(3, 7);
  id.identity = true;
  CHECK(judge(id, t).verdict == Verdict::fail);
  id.value_finite = false;
  CHECK(judge(id, t).verdict == Verdict::unstable);
}

TEST_CASE("verdict rule: float and double against mp100", "[verdict]") {
  const Tolerances t;
  CHECK(judge(against_mp100(0.9), t).verdict == Verdict::pass);
  // right in mp100, not gross, more than half the digits lost: unstable
  CHECK(judge(against_mp100(5, 2), t).verdict == Verdict::unstable);
  // …at least half of them kept: pass, saying so
  CHECK(judge(against_mp100(5, 4), t).grounds == Grounds::keeps_half_digits);
  // mp100 found the same code wrong: FAIL at any excess
  Evidence wrong = against_mp100(1.5, 6);
  wrong.reference_wrong = true;
  CHECK(judge(wrong, t).verdict == Verdict::fail);
  // gross without emulation: FAIL
  Evidence gross = against_mp100(50, 1);
  gross.gross = true;
  CHECK(judge(gross, t).grounds == Grounds::gross);
  // not finite where mp100 is: unstable; wrong in mp100 too: FAIL
  Evidence overflow = against_mp100(inf, -1);
  overflow.value_finite = false;
  CHECK(judge(overflow, t).verdict == Verdict::unstable);
  overflow.reference_wrong = true;
  CHECK(judge(overflow, t).verdict == Verdict::fail);
}

TEST_CASE("verdict rule: the formula's own rounding, and a code path of one precision", "[verdict]") {
  const Tolerances t;
  // within the emulated spread: pass, even when the error is gross by size (1 − t² of a saturated tanh)
  Evidence e = against_mp100(1e6, 0);
  e.gross = true;
  e.ratio_with_formula_rounding = 0.8;
  e.ratio_to_formula_spread = 10;
  CHECK(judge(e, t).grounds == Grounds::within_formula_rounding);
  // beyond the spread but by less than 10³: unstable, not FAIL, even when gross
  e.ratio_with_formula_rounding = 5;
  e.ratio_to_formula_spread = 999;
  CHECK(judge(e, t).verdict == Verdict::unstable);
  // 10³ beyond and more than half the digits lost: FAIL (a float-only path with a wrong constant)
  e.ratio_to_formula_spread = 1e3;
  e.digits = 3;
  CHECK(judge(e, t).grounds == Grounds::precision_specific);
  // 10³ beyond but more than half the digits kept (a legitimate fast approximation): not FAIL
  e.digits = 5;
  CHECK(judge(e, t).verdict == Verdict::pass);
}

TEST_CASE("verdict rule: oracle trouble, throws, kinks and checks that do not apply", "[verdict]") {
  const Tolerances t;
  Evidence e = against_mp100(inf, -1);
  e.oracle_trouble = true;
  e.oracle_trouble_reason = "forward mode overflows";
  CHECK(judge(e, t).verdict == Verdict::skipped);
  CHECK(judge(e, t).message.find("bpcheck's reference") != std::string::npos);
  e.exact_rung = true;  // in mp100 too: central differences that backward's agreement explains
  CHECK(judge(e, t).verdict == Verdict::skipped);
  CHECK(judge(Evidence::of_throw("backward throws in float"), t).verdict == Verdict::fail);
  CHECK(judge(Evidence::of_kink("at x[0]"), t).verdict == Verdict::non_differentiable);
  CHECK(judge(Evidence::of_not_applicable("no Jacobians"), t).verdict == Verdict::skipped);
}
