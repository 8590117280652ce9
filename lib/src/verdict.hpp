#pragma once
// The one rule that turns a check's evidence into a verdict (private to the library). Every check of
// verify — forward, backward, the dot-product identity, dθ accumulation, batch = sum of samples, the
// explicit Jacobians, Taylor — gathers what it measured into an Evidence record and calls judge();
// nothing else assigns a verdict to a comparison, and nothing overrides one afterwards.
//
//   the check does not apply                                    → skipped
//   one-sided differences disagree at the point                 → non-differentiable
//   the code threw on this rung only                            → FAIL
//   oracle trouble (only bpcheck's own reference failed here)    → skipped, not evaluable here
//   mp100 (the oracles are exact in practice), and the identities a rung checks against itself:
//     pass  ⇔  error ≤ tol · scale + the rounding (of the terms, and of the code's own formula)
//   float, double:
//     the rung's own value not finite                           → FAIL if mp100 found the code wrong,
//                                                                  else unstable
//     an identity against itself: the mp100 rule (pass within its bound and the formula's rounding)
//   float, double against mp100:
//     error ≤ bound                                             → pass
//     mp100 found the same code wrong                           → FAIL
//     error ≤ bound + K · spread of the same code, emulated     → pass (the formula's own rounding)
//     error ≥ 10³ · spread and more than half the digits lost     → FAIL (a code path of this rung)
//     no emulation, gross (a tenth of its block, ≥ √u_T)        → FAIL
//     keeps at least half of the rung's digits                  → pass
//     otherwise                                                 → unstable (advice)
//   another program's gradient (bpcheck compare: no run of its code in mp100 or emulated exists):
//     not finite                                                → FAIL (wrong)
//     error ≤ bound                                             → pass
//     gross (a tenth of its block, ≥ √u_T A)                    → FAIL (wrong: a wrong formula)
//     otherwise                                                 → unstable (less accurate than T allows)
//
// One gross predicate, gross_error(), serves both: an error of at least gross_fraction of its block's
// largest value and above the entry's floor (√u_T times its natural size).
#include <cmath>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "bpcheck/verify/compare.hpp"
#include "bpcheck/verify/result.hpp"
#include "bpcheck/verify/rounding.hpp"
#include "bpcheck/verify/verify.hpp"
#include "rounding_bound.hpp"

namespace bpcheck {
namespace verify_detail {

/// Every threshold of the verdict, each named once (Stan's ad_tolerances): the engine, its checks and
/// the property suite read them from here. K and the mp100 tolerance come from VerifyOptions.
struct Tolerances {
  double rounding_factor = default_rounding_factor;  ///< K: slack on every rounding bound
  double mp100_tolerance = default_mp100_tolerance;  ///< relative tolerance of the decisive mp100 checks
  /// An error is gross when it reaches this fraction of its block's largest value…
  double gross_fraction = 0.1;
  /// …and exceeds √u_T times the entry's natural size (gross_floor_of): digits lost in a value that
  /// cancels to nearly 0 are not gross.
  /// A rung-specific code path is wrong when its error is this many times beyond the same code's own
  /// rounding (the bound plus K times the emulated spread) and beyond √u_T of the value's size.
  double precision_specific_factor = 1e3;
  /// The share of the rung's digits a result may lose, beyond its bound, before it is called unstable
  /// (right in mp100): a result that keeps more than half its digits passes.
  double kept_digits_fraction = 0.5;
  /// Runs of the layer's own code with the rung's rounding emulated (Monte Carlo arithmetic).
  int emulation_runs = 4;
  /// The δ with which mp100's own rounding of the layer's formula is measured (linear in δ, far above
  /// mp100's 1e-100 so that its own arithmetic adds nothing), scaled to u_mp100 afterwards.
  double mp100_sensitivity_unit = 1e-50;
  /// Taylor: a right gradient's remainder falls with order ≈ 2, a wrong one's with ≈ 1.
  double taylor_min_order = 1.5;
  /// Taylor: a low order is the function's own when the exact (or the rung's own) remainder shows an
  /// order within this of it.
  double taylor_order_match = 0.3;
  /// Points redrawn at most, per point, when the drawn one cannot be evaluated (beyond double's
  /// range, or an oracle that is not finite there).
  int max_redraws = 16;
  /// Second order: one-sided differences of the Jacobian along v (h = 2⁻¹⁵⁰) that disagree by more than
  /// this fraction of their size show a kink of the first derivative; smooth, they differ by ~1e-45.
  double second_order_kink_fraction = 1e-30;
  /// compare's section: the bound on another program's gradient (λ, K on cond, M on bpcheck's own
  /// error; docs/compare.md). Its verdict uses the pass at error/bound ≤ 1 and gross_fraction above.
  CompareThresholds compare;

  static Tolerances from(const VerifyOptions& opt) {
    Tolerances t;
    t.rounding_factor = opt.rounding_factor;
    t.mp100_tolerance = opt.mp100_tolerance;
    return t;
  }
  static Tolerances from(const CompareOptions& opt) {
    Tolerances t;
    t.compare = opt.thresholds;
    return t;
  }
};

/// The one gross predicate (verify's checks and compare): the error reaches gross_fraction of its
/// block's largest value (a positive one) and exceeds the entry's floor, when given (√u_T times its
/// natural size: digits lost in a value that cancels to nearly 0 are not gross).
inline bool gross_error(const mp100& error, const mp100& block_largest, const mp100* floor, double gross_fraction) {
  if (!(block_largest > 0)) return false;
  if (!(error * mp100(1 / gross_fraction) > block_largest)) return false;
  return !floor || error > *floor;
}

/// What a check measured, for judge(). Ratios are error / bound, ∞ where a value is not finite.
struct Evidence {
  std::string what;              ///< "backward", "uᵀ(Jv) = (Jᵀu)ᵀv", …: the subject of the message
  std::string precision;         ///< the rung's name
  bool exact_rung = false;       ///< mp100: the oracles are exact in practice there
  /// An identity the rung checks against itself (a second route to dθ, a batch against its samples):
  /// beyond its bound the code is wrong, whatever mp100 says.
  bool identity = false;
  double ratio = 0;              ///< error / bound, the bound from the magnitudes the computation rounds
  /// error / (bound + K · spread of the layer's own code with the rung's rounding emulated), when
  /// that spread was measured (a user's layer, beyond the bound).
  std::optional<double> ratio_with_formula_rounding;
  /// error / spread of the layer's own code with the rung's rounding emulated, when measured: how far
  /// beyond what its own rounding does to it the result lies.
  std::optional<double> ratio_to_formula_spread;
  /// Whether that distance from the same code's mp100 result exceeds √u_T of the result's natural size
  /// (the terms it is formed from) somewhere beyond the bound: an error below it is rounding residue of
  /// some order of operations, whatever the spread (a softmax's Σ s − 1 that four emulated runs all
  /// happened to round to 0). True where not measured.
  bool beyond_sqrt_u_of_terms = true;
  double digits = -1;            ///< significant digits kept (−1 unknown)
  double rung_digits = 0;        ///< −log10 u_T
  bool gross = false;            ///< a tenth of its block's largest value and beyond √u_T (no emulation)
  bool reference_wrong = false;  ///< mp100 found the same code wrong at this point
  bool value_finite = true;      ///< the rung's own result is finite (the exact one is)
  /// Only bpcheck's own reference (forward mode in T, differences) overflowed or failed here, while the
  /// layer's own values are finite: nothing can be said of the layer at this point.
  bool oracle_trouble = false;
  std::string oracle_trouble_reason;
  /// The code under test threw on this rung where it did not in mp100 (Stan's rule: a throw in one rung
  /// only is a failure); `what` then says what threw and why.
  bool threw = false;
  /// The check does not apply here (no explicit Jacobians stated, …); `what` says why.
  bool not_applicable = false;
  /// The point sits on a kink: there is no gradient to check; `what` says where.
  bool kink = false;
  /// Another program's result (bpcheck compare): no run of its code in mp100 or with T's rounding
  /// emulated exists, so beyond the bound only gross (wrong) or not (unstable: less accurate) remain.
  bool external = false;

  /// The evidence of a throw in the code under test.
  static Evidence of_throw(std::string what) {
    Evidence e;
    e.what = std::move(what);
    e.threw = true;
    return e;
  }
  /// The evidence of a point where the function has no derivative (one-sided differences disagree).
  static Evidence of_kink(std::string where) {
    Evidence e;
    e.what = std::move(where);
    e.kink = true;
    return e;
  }
  /// The evidence of a check that does not apply.
  static Evidence of_not_applicable(std::string why) {
    Evidence e;
    e.what = std::move(why);
    e.not_applicable = true;
    return e;
  }
};

/// The grounds of a verdict, for its message.
enum class Grounds {
  within_bound,
  within_formula_rounding,
  keeps_half_digits,
  wrong_in_mp100,
  wrong_as_in_mp100,
  precision_specific,
  gross,
  not_finite,
  beyond_bound_right_in_mp100,
  oracle_trouble,
  threw,
  not_applicable,
  kink,
  beyond_bound_external,
};

struct Judgement {
  Verdict verdict = Verdict::pass;
  Grounds grounds = Grounds::within_bound;
  std::string message;
};

/// The verdict on a check's evidence: the rule at the top of this file, and nowhere else.
inline Judgement judge(const Evidence& e, const Tolerances& t) {
  // more than half the rung's digits lost (an unknown count counts as lost)
  const bool lost_half = e.digits < 0 || e.digits < t.kept_digits_fraction * e.rung_digits;
  const auto said = [&](Verdict v, Grounds g, std::string m) { return Judgement{v, g, std::move(m)}; };
  const bool within = std::isfinite(e.ratio) && e.ratio <= 1;
  if (e.not_applicable) return said(Verdict::skipped, Grounds::not_applicable, e.what);
  if (e.kink) return said(Verdict::non_differentiable, Grounds::kink, e.what);
  if (e.threw) return said(Verdict::fail, Grounds::threw, e.what);
  if (e.oracle_trouble)
    return said(Verdict::skipped, Grounds::oracle_trouble,
                "not evaluable here: " + e.oracle_trouble_reason + " (bpcheck's reference, not the layer)");
  if (e.exact_rung) {
    if (within) return said(Verdict::pass, Grounds::within_bound, e.what + " agrees");
    if (e.ratio_with_formula_rounding && *e.ratio_with_formula_rounding <= 1)
      return said(Verdict::pass, Grounds::within_formula_rounding,
                  e.what + " agrees within " + e.precision + "'s own rounding of its formula as written");
    return said(Verdict::fail, Grounds::wrong_in_mp100, e.what + " is wrong");
  }
  if (e.external) {
    if (!e.value_finite)
      return said(Verdict::fail, Grounds::not_finite, e.what + " is NaN or Inf where the exact value is finite");
    if (within) return said(Verdict::pass, Grounds::within_bound, e.what + " within the rounding bound of " + e.precision);
    if (e.gross)
      return said(Verdict::fail, Grounds::gross,
                  fmt::format("{} is wrong: {:.3g}× the rounding bound of {}, an error far beyond any rounding "
                              "(a wrong formula)",
                              e.what, e.ratio, e.precision));
    return said(Verdict::unstable, Grounds::beyond_bound_external,
                fmt::format("{} loses more digits than rounding in {} explains ({:.3g}× the bound)", e.what,
                            e.precision, e.ratio));
  }
  if (!e.value_finite) {
    if (e.identity)
      return said(Verdict::unstable, Grounds::not_finite,
                  e.what + " not comparable: the result overflowed or is NaN in " + e.precision);
    if (e.reference_wrong)
      return said(Verdict::fail, Grounds::wrong_as_in_mp100, e.what + " is wrong (as in mp100) and not finite in " + e.precision);
    return said(Verdict::unstable, Grounds::not_finite,
                e.what + " overflowed or is NaN in " + e.precision + " where the mp100 value is finite");
  }
  if (e.identity) {
    if (within) return said(Verdict::pass, Grounds::within_bound, e.what + " agrees");
    if (e.ratio_with_formula_rounding && *e.ratio_with_formula_rounding <= 1)
      return said(Verdict::pass, Grounds::within_formula_rounding,
                  e.what + " agrees within the rounding of its formula as written in " + e.precision);
    return said(Verdict::fail, Grounds::wrong_in_mp100, e.what + " is wrong");
  }
  if (within) return said(Verdict::pass, Grounds::within_bound, e.what + " within the rounding bound of " + e.precision);
  if (e.reference_wrong)
    return said(Verdict::fail, Grounds::wrong_as_in_mp100,
                fmt::format("{} is wrong ({:.3g}× the rounding bound of {}), as in mp100", e.what, e.ratio, e.precision));
  if (e.ratio_with_formula_rounding) {
    const double r = *e.ratio_with_formula_rounding;
    if (r <= 1)
      return said(Verdict::pass, Grounds::within_formula_rounding,
                  e.what + " within the rounding of its formula as written in " + e.precision);
    const double beyond = e.ratio_to_formula_spread.value_or(r);
    if (beyond >= t.precision_specific_factor && lost_half && e.beyond_sqrt_u_of_terms)
      return said(Verdict::fail, Grounds::precision_specific,
                  fmt::format("{} is wrong in {} only: {:.3g}× the spread of the same code with {}'s rounding "
                              "emulated, and right in mp100: a code path of this precision is wrong",
                              e.what, e.precision, beyond, e.precision));
  } else if (e.gross) {
    return said(Verdict::fail, Grounds::gross,
                fmt::format("{} is wrong in {} only ({:.3g}× the rounding bound; right in mp100): a code path of "
                            "this precision is wrong",
                            e.what, e.precision, e.ratio));
  }
  if (!lost_half)
    return said(Verdict::pass, Grounds::keeps_half_digits,
                fmt::format("{} beyond its rounding bound in {} ({:.3g}×) but right in mp100 and keeps {:.1f} "
                            "significant digits, more than half of the precision's",
                            e.what, e.precision, e.ratio, e.digits));
  std::string m = fmt::format(
      "{} loses more digits in {} than its rounding bound allows ({:.3g}× the bound; right in mp100): "
      "numerically unstable code, a right gradient",
      e.what, e.precision, e.ratio);
  if (e.digits >= 0 && std::isfinite(e.ratio))
    m += fmt::format(" (it keeps {:.1f} significant digits; a stable form keeps about {:.1f})", e.digits,
                     e.digits + std::log10(e.ratio));
  return said(Verdict::unstable, Grounds::beyond_bound_right_in_mp100, std::move(m));
}

/// Applies a judgement to a result (the verdict and its sentence; a note the comparison left, such as
/// an exact value beyond the rung's range, stays at the end).
inline void apply(CheckResult& r, const Judgement& j) {
  const std::string note = r.message;
  r.verdict = j.verdict;
  r.message = j.message + note;
}

}  // namespace verify_detail
}  // namespace bpcheck
