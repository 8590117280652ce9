#pragma once
// The checks of one rung at one point, one function each, and checks_on_rung, the list that runs them
// (see verify.hpp for what each check asserts). A check takes the rung's context and returns its
// CheckResult, or nothing where it does not apply.
#include <tuple>

#include "verify_engine.hpp"

namespace bpcheck {
namespace verify_detail {

/// What the checks of rung T at one point share: the point, the layer on T with its output and
/// gradient, the rounding allowances measured against mp100, and the lazily formed references.
template <class T, class Make>
struct RungContext {
  using LayerT = std::remove_cvref_t<decltype(build_on<T>(std::declval<Make&>(), Vector<mp100>()))>;
  using ExactLayer = std::remove_cvref_t<decltype(build_on<mp100>(std::declval<Make&>(), Vector<mp100>()))>;
  static constexpr bool is_mp = std::is_same_v<T, mp100>;

  Make& make;
  PointState& s;
  const VerifyOptions& opt;
  bool reference_wrong;  ///< mp100 already found this code wrong here
  std::string prec = scalar_name<T>();
  double K = opt.rounding_factor;
  mp100 u_T = scalar_cast<mp100>(unit_roundoff<T>());
  mp100 tol = mp100_tolerance(opt.mp100_tolerance);
  Tolerances tolerances = Tolerances::from(opt);
  double rung_digits = -std::log10(to_double(u_T));
  Vector<mp100> u = vec(s.p.U);
  Matrix<T> X = matrix_cast<T>(s.p.X);
  Matrix<T> U = matrix_cast<T>(s.p.U);

  /// What the forward check leaves for the checks after it, passed to each as an argument.
  struct Forward {
    std::optional<LayerT> layer;  ///< the layer on T; empty where forward threw or returned a wrong shape
    Matrix<T> Y;                  ///< forward(X) on T
    bool within_bound = is_mp;    ///< Y_T within the forward bound: it stands for the rounding of Y
  };
  /// What the backward check leaves for the checks after it, passed to each as an argument.
  struct Backward {
    Vector<T> g;                      ///< [vec dX; dθ] of backward(U) on T; empty where backward threw
    bool wrong = false;               ///< judged FAIL
    bool own_range_exceeded = false;  ///< mp100 only: see evidence()
  };

  /// The allowances below are measurements of the point and the layer's own code, memoised: each is
  /// formed by its ensure_ function at the first check that needs it (or up front), and the same
  /// whichever check asks first; no check's verdict or result feeds them.
  /// Changes of the exact gradient (or its projections) and output when the point, and for a network
  /// its activations, move by T's rounding; J likewise when J is formed (measure_conditioning).
  std::vector<Vector<mp100>> g_pert, y_pert;
  std::vector<Matrix<mp100>> J_pert;
  /// What the rounding of the Y backward reads does to its result (output_rounding), in full.
  std::vector<Vector<mp100>> y_changes;
  Vector<mp100> gross_floor;  ///< see gross_floor_of()
  mp100 floor_T = underflow_floor<T>(mp100(s.n + s.out_rows * s.batch), mp100(1) + abs_vec(u).maxCoeff(), K);
  /// Time and passes spent measuring the conditioning up front (full mode), charged to the backward check.
  Clock::duration conditioning_time{};
  std::size_t conditioning_evaluations = 0;
  /// In projection mode what only widens a float/double bound (the conditioning, the rounding of the Y
  /// backward reads) and the gross floor are measured only for an error beyond the bound without them
  /// (ensure_conditioning, ensure_output_rounding): a pass stays a pass, and anything else is judged as
  /// with them measured up front. They take mp100 passes of the layer (two forward and backward at moved
  /// points, one to three backward), half of verify's work on a large layer, for errors well within.
  bool conditioning_measured = false, output_rounding_measured = false;
  /// float/double, full mode: the dual-number oracle is not finite at a point T's rounding moves to.
  bool conditioning_unbounded = false;
  std::optional<Matrix<mp100>> forward_mode_T;  ///< see forward_mode_derivative()

  std::string where(Index i) const { return s.layout.where(i); }
  std::string block(Index i) const { return s.layout.block(i); }
  std::function<std::string(Index)> where_fn() const {
    return [this](Index i) { return where(i); };
  }
  std::function<std::string(Index)> block_fn() const {
    return [this](Index i) { return block(i); };
  }
  Vector<mp100> z_exact() const {
    Vector<mp100> z(s.n);
    z << vec(s.p.X), s.p.theta;
    return z;
  }

  /// The layer's own backward in mp100 at the point, [vec dX; dθ]: computed once per point (the
  /// mp100 rung's g where it ran) and shared by the rungs.
  const Vector<mp100>& own_gradient() {
    if (!s.own_gradient) s.own_gradient = backward_z(build_on<mp100>(make, s.p.theta), s.p.X, s.p.U);
    return *s.own_gradient;
  }
  /// A change of [vec dX; dθ] as the backward check compares it: in full, or projected on V.
  Vector<mp100> project(const Vector<mp100>& change) const {
    return s.truth.full ? change : transposed_product(s.truth.V, change);
  }

  /// The derivative of forward as T computes it, by forward mode on dual<T>: an oracle that reads
  /// forward only. Where T's rounding moves an intermediate across a kink (float's softmax outputs tie
  /// where the exact ones differ by 1e-9, and a max pool then takes the other entry), it leaves the
  /// exact J, and a correct backward follows it, not mp100. J_T, or J_T V in projection mode; formed
  /// only when a check exceeds its bound; null when not finite or in mp100.
  const Matrix<mp100>* forward_mode_derivative() {
    if (is_mp) return nullptr;
    if (!forward_mode_T) {
      forward_mode_T.emplace();
      try {
        // on the rung's own (rounded) X and θ; forward_rung_t<T>: float for the 16-bit rungs
        using R = forward_rung_t<T>;
        auto f = dual_forward(make(rung<dual<R>>{}));
        const Vector<R> theta = vector_cast<R>(vector_cast<T>(s.p.theta));
        const Matrix<R> XR = matrix_cast<R>(X);
        const Matrix<R> D = s.truth.full ? joint_jacobian<R>(f, XR, theta)
                                         : joint_jvp<R>(f, XR, theta, s.truth.V.template cast<R>());
        using std::isfinite;
        if (std::all_of(D.data(), D.data() + D.size(), [](const R& d) { return isfinite(value_of(d)); }))
          *forward_mode_T = matrix_cast<mp100>(D);
      } catch (const std::exception&) {
        // a rung whose forward mode throws offers no reference: the first verdict stands
      }
    }
    return forward_mode_T->size() ? &*forward_mode_T : nullptr;
  }

  /// The layer's own forward and backward on Emulated (emulated.hpp) with T's rounding emulated,
  /// `emulation_runs` times with different δs, at the rung's own X, θ and U: y and [vec dX; dθ] per run.
  /// In mp100 the δ is `mp100_sensitivity_unit` (far above mp100's own rounding, so the spread is
  /// linear in it) and `scale` brings the spread down to u_mp100: mp100's own rounding of the formula
  /// as written (O(1) intermediates behind a result of 1e-77). Formed only when a check exceeds its
  /// bound; empty for a subject that does not build on Emulated (the registry's layers, a network) or
  /// where it throws there.
  struct EmulatedRuns {
    std::vector<Vector<mp100>> y, g;
    mp100 scale{1};
  };
  std::optional<EmulatedRuns> emulated_runs;
  const EmulatedRuns& emulated() {
    if (emulated_runs) return *emulated_runs;
    emulated_runs.emplace();
    if constexpr (requires { make.emulates(); }) {
      if (!make.emulates()) return *emulated_runs;
      const mp100 unit = is_mp ? mp100(tolerances.mp100_sensitivity_unit) : u_T;
      if (is_mp) emulated_runs->scale = u_T / unit;
      // T's gradual underflow, which a relative δ cannot show (a softmax output of 1e-44 in float keeps
      // one digit); none in mp100, whose range the verifier does not leave.
      mp100 subnormal_spacing(0), overflow(0);
      if constexpr (!is_mp) {
        subnormal_spacing = scalar_cast<mp100>(std::numeric_limits<T>::denorm_min());
        overflow = overflow_threshold<T>();  // fp16's 65520: an intermediate beyond it is ∞ there too
      }
      const Vector<mp100> theta_T = vector_cast<mp100>(vector_cast<T>(s.p.theta));
      const Matrix<Emulated> Xe = matrix_cast<Emulated>(X), Ue = matrix_cast<Emulated>(U);
      for (int k = 0; k < tolerances.emulation_runs; ++k) {
        EmulatedRounding rounding(unit, s.seed * 0x9e3779b97f4a7c15ULL + std::uint64_t(k) + 1, subnormal_spacing,
                                  is_mp ? EmulatedRounding::Model::relative : EmulatedRounding::Model::rung_numbers,
                                  overflow);
        try {
          check_deadline();
          const auto layer = build_on<Emulated>(make, theta_T);
          const Matrix<Emulated> Ye = layer.forward(Xe);
          emulated_runs->y.push_back(vec(matrix_cast<mp100>(Ye)));
          emulated_runs->g.push_back(vector_cast<mp100>(backward_z_at(layer, Xe, Ye, Ue)));
        } catch (const time_exceeded&) {
          throw;
        } catch (const std::exception&) {
          // the rung's own checks report a throw; without every run there is no spread to add
          emulated_runs.emplace();
          break;
        }
      }
      // A run that is not finite (an intermediate beyond mp100's capped range, a square root of an
      // underflowed value rounded below 0) measures no spread: the rules without emulation apply, and
      // an underflow stays at most unstable.
      using boost::multiprecision::isfinite;
      const auto finite = [](const Vector<mp100>& v) {
        return std::all_of(v.begin(), v.end(), [](const mp100& x) { return isfinite(x); });
      };
      if (!std::all_of(emulated_runs->y.begin(), emulated_runs->y.end(), finite) ||
          !std::all_of(emulated_runs->g.begin(), emulated_runs->g.end(), finite))
        emulated_runs.emplace();
    }
    return *emulated_runs;
  }
  /// K times the largest distance of `runs` from `center`, entry by entry, at the rung's rounding.
  Vector<mp100> formula_spread(const std::vector<Vector<mp100>>& runs, const Vector<mp100>& center) {
    return Vector<mp100>(max_abs_change(runs, center) * mp100(K * emulated().scale));
  }

  /// The evidence of a comparison, as far as compare() and the context know it.
  /// `own_range_exceeded`: mp100's own backward left the range mp100 computes in within a point (MPFR's
  /// overflow flag, not a division by zero or a NaN of the code's own): nothing can be said of the
  /// layer in mp100 here.
  Evidence evidence(const std::string& what, const CheckResult& r, const Compared& compared,
                    bool own_range_exceeded = false) const {
    Evidence e;
    e.oracle_trouble = own_range_exceeded;
    e.oracle_trouble_reason = "the layer's own backward overflows mp100's range here (its exponent is capped at "
                              "2^65536 within a point), where the exact gradient is finite";
    e.what = what;
    e.precision = prec;
    e.exact_rung = is_mp;
    e.ratio = r.value;
    e.digits = r.digits;
    e.rung_digits = rung_digits;
    e.gross = compared.gross;
    e.reference_wrong = reference_wrong;
    e.value_finite = compared.finite;
    return e;
  }

  /// The allowances of a comparison that belong to its bound but cost passes of their own, measured
  /// only for an error beyond the bound without them (and where mp100 found the code right): the
  /// distance of T's own forward-mode derivative from the exact one (where T's rounding takes another
  /// branch inside the layer), and the spread of the layer's own code with T's rounding emulated.
  /// Either may be empty (not applicable here).
  struct Allowances {
    std::function<std::optional<Vector<mp100>>()> forward_mode;
    std::function<std::optional<Vector<mp100>>()> formula_rounding;
    /// The same code's own mp100 result, around which that spread is measured, where it is not the
    /// expected value: how far beyond its own rounding the rung's result lies is its distance from it.
    std::function<Vector<mp100>()> formula_center;
  };

  /// A comparison against mp100 (forward, backward, explicit Jacobians; the decisive check in mp100),
  /// judged once: `bound` first, then the allowances as needed, then judge(). The result shows the
  /// comparison against the widest bound that was needed. A wrong gradient cannot widen its own bound:
  /// each allowance is a difference of the code's own results (or of forward mode's), never of the
  /// result under test from the truth.
  Judgement judge_against_mp100(CheckResult& r, const std::string& what, const Vector<mp100>& expected,
                           const Vector<T>& actual, const Vector<mp100>& bound, const Vector<mp100>& scale,
                           const std::function<std::string(Index)>& w, const std::function<std::string(Index)>& b,
                           const Vector<mp100>* gross_floor_of_check, const Allowances& extra,
                           bool own_range_exceeded = false) {
    const auto fresh = [&r] {
      CheckResult x = r;
      x.worst.clear();
      x.message.clear();
      return x;
    };
    CheckResult shown = fresh();
    const Compared compared =
        compare(shown, expected, actual, bound, scale, w, b, gross_floor_of_check, tolerances.gross_fraction);
    Evidence e = evidence(what, shown, compared, own_range_exceeded);
    std::string note;
    if (!(shown.value <= 1) && compared.finite && !reference_wrong) {
      Vector<mp100> widened = bound;
      if (extra.forward_mode)
        if (const std::optional<Vector<mp100>> a = extra.forward_mode()) {
          widened += *a;
          CheckResult again = fresh();
          compare(again, expected, actual, widened, scale, w, b, gross_floor_of_check, tolerances.gross_fraction);
          if (again.value <= 1) {
            e.ratio = again.value;
            shown = std::move(again);
            shown.formula += " + |D_T − D|, D_T the derivative of forward in " + prec + " (forward mode)";
            note = fmt::format(
                " once the derivative of {}'s own forward is allowed for: forward mode in {} is {:.3g} from the "
                "exact values, where rounding takes another branch (a kink within {}'s rounding) or cancels",
                prec, prec, to_double(a->maxCoeff()), prec);
          }
        }
      if (!(e.ratio <= 1) && extra.formula_rounding)
        if (const std::optional<Vector<mp100>> spread = extra.formula_rounding()) {
          CheckResult again = fresh();
          compare(again, expected, actual, Vector<mp100>(widened + *spread), scale, w, b, gross_floor_of_check,
                  tolerances.gross_fraction);
          again.evaluations += 2 * std::size_t(tolerances.emulation_runs);
          e.ratio_with_formula_rounding = again.value;
          if (!is_mp) {
            // How far beyond its own rounding the result lies: its distance from the same code's mp100
            // result against the emulated spread, on the entries beyond the bound only. An entry within
            // it needs no explaining, and the emulation may reproduce the rung exactly (1 − tanh²(138)
            // is 0 in double, in its emulation and in mp100, against an exact 1.7e-120).
            Vector<mp100> own = *spread / mp100(K);
            const Vector<mp100> center = extra.formula_center ? extra.formula_center() : expected;
            using boost::multiprecision::sqrt;
            e.beyond_sqrt_u_of_terms = false;
            for (Index i = 0; i < own.size(); ++i) {
              if (abs(expected(i) - scalar_cast<mp100>(actual(i))) <= widened(i)) {
                own(i) = std::numeric_limits<mp100>::max();
                continue;
              }
              // the natural size: the check's gross floor (√u_T of |u|ᵀ|y| per entry) where it has one
              const mp100 residue = gross_floor_of_check ? (*gross_floor_of_check)(i) : mp100(sqrt(u_T) * scale(i));
              if (abs(center(i) - scalar_cast<mp100>(actual(i))) > residue) e.beyond_sqrt_u_of_terms = true;
            }
            CheckResult beyond = fresh();
            compare(beyond, center, actual, own, scale, w, b);
            e.ratio_to_formula_spread = beyond.value;
          }
          if (again.value <= 1) {
            const double first = shown.value;
            shown = std::move(again);
            shown.formula += " + K · spread of the same code with " + prec + "'s rounding emulated";
            note = fmt::format(": the same code with {}'s rounding emulated ({} runs in mp100) moves by up to {:.3g}",
                               prec, tolerances.emulation_runs, to_double(mp100(spread->maxCoeff() / mp100(K))));
            if (!is_mp && shown.digits >= 0)
              note += fmt::format("; it keeps {:.1f} significant digits where a stable form keeps about {:.1f}",
                                  shown.digits, shown.digits + std::log10(first));
          }
        }
    }
    const Judgement j = judge(e, tolerances);
    // compare() notes an exact value beyond T's range in the message; apply() keeps it after the sentence
    shown.message = (j.verdict == Verdict::pass ? note : std::string()) + shown.message;
    apply(shown, j);
    r = std::move(shown);
    return j;
  }

  /// dθ by a second route against `times` × the dθ of one backward call at the same point and U, entry
  /// by entry within the rung's rounding of the sum, judged exactly. A first dθ that already overflowed
  /// in float/double leaves Inf or NaN to compare: that is this rung's overflow (judged by the checks
  /// against mp100), not a verdict on the second route.
  void judge_second_dtheta(CheckResult& r, const Vector<T>& first, int times, const Vector<T>& second,
                           const std::string& what, const std::string& wrong_message) {
    using std::isfinite;
    Evidence e = evidence(what, r, Compared{});
    e.identity = true;
    // A first dθ that overflowed leaves nothing to compare (the checks against mp100 judge that).
    e.value_finite = std::all_of(first.begin(), first.end(), [](const T& v) { return isfinite(value_of(v)); });
    const auto decide = [&] {
      e.ratio = r.value;
      e.digits = r.digits;
      apply(r, judge(e, tolerances));
      if (r.verdict == Verdict::fail) r.message = wrong_message;
    };
    if (second_dtheta_clearly_within(r, first, times, second)) {
      r.evaluations = 3;
      decide();
      return;
    }
    const Vector<mp100> expected = mp100(times) * vector_cast<mp100>(first);
    // A sum rounds relative to what it adds up: the first dθ as this rung computed it, which may stand
    // far above |J|ᵀ|u| where the rung's backward lost digits (attention in float at wide-range inputs).
    const Vector<mp100> scale =
        s.truth.full ? Vector<mp100>(mp100(times) * s.truth.g_scale.tail(s.P)).cwiseMax(abs_vec(expected))
                     : Vector<mp100>(abs_vec(expected));
    // tol · scale + K (times + 2) u |expected| in mp100, K (terms + 2) u · scale + floor otherwise: the
    // constant factors once, then in place (P entries).
    Vector<mp100> bound(s.P);
    const mp100 factor = rounding_bound(mp100(is_mp ? times : s.out_rows * s.batch), mp100(1), K, u_T);
    mp100 term;
    for (Index i = 0; i < s.P; ++i) {
      mpfr_ptr b = bound(i).backend().data();
      if (is_mp) {
        mpfr_mul(b, tol.backend().data(), scale(i).backend().data(), MPFR_RNDN);
        mpfr_abs(term.backend().data(), expected(i).backend().data(), MPFR_RNDN);
        mpfr_mul(term.backend().data(), factor.backend().data(), term.backend().data(), MPFR_RNDN);
        mpfr_add(b, b, term.backend().data(), MPFR_RNDN);
      } else {
        mpfr_mul(b, factor.backend().data(), scale(i).backend().data(), MPFR_RNDN);
        mpfr_add(b, b, floor_T.backend().data(), MPFR_RNDN);
      }
    }
    const Index nx = s.in_rows * s.batch;
    const Layout& L = s.layout;
    compare(
        r, expected, second, bound, scale, [nx, &L](Index i) { return L.where(nx + i); },
        [nx, &L](Index i) { return L.block(nx + i); });
    r.evaluations = 3;
    decide();
  }

  /// judge_second_dtheta's comparison for float and double in projection mode, where the bound is
  /// K (terms + 2) u_T |expected| + floor: screened in long double, in which every T value and
  /// times × first are exact, and the differences and quotients are off by 2⁻⁶⁴ of themselves at most.
  /// When every entry is within half its bound, fills the result as compare() would (the worst entry's
  /// ratio and the fewest digits recomputed in mp100, the worst entry) and returns true; otherwise
  /// leaves the comparison to compare() in mp100. On a 100k-parameter layer the mp100 route took a
  /// tenth of verify.
  bool second_dtheta_clearly_within(CheckResult& r, const Vector<T>& first, int times, const Vector<T>& second) const {
    if constexpr (is_mp) {
      return false;
    } else {
      if (s.truth.full || s.P == 0) return false;
      using LD = long double;
      const mp100 factor = rounding_bound(mp100(s.out_rows * s.batch), mp100(1), K, u_T);
      const LD factor_ld = factor.convert_to<LD>(), floor_ld = floor_T.convert_to<LD>();
      Index worst = 0, least_digits = -1;
      LD worst_ratio = -1, worst_relative = -1;
      bool digits_lost = false;
      for (Index i = 0; i < s.P; ++i) {
        const LD e = LD(times) * LD(first(i)), a = LD(second(i));
        if (!std::isfinite(a) || !(std::abs(e) <= LD(std::numeric_limits<T>::max()))) return false;
        const LD err = std::abs(a - e), bound = factor_ld * std::abs(e) + floor_ld;
        const LD ratio = err == 0 ? LD(0) : err / bound;
        if (!(ratio <= LD(0.5))) return false;
        if (ratio > worst_ratio) worst_ratio = ratio, worst = i;
        if (err != 0) {
          if (e == 0) digits_lost = true;
          else if (err / std::abs(e) > worst_relative) worst_relative = err / std::abs(e), least_digits = i;
        }
      }
      // Entry i as compare() has it: expected, |error|, and its bound, in mp100.
      const auto exact = [&](Index i) {
        const mp100 expected = mp100(times) * scalar_cast<mp100>(first(i));
        const mp100 error = abs(mp100(scalar_cast<mp100>(second(i)) - expected));
        mp100 bound;
        mpfr_abs(bound.backend().data(), expected.backend().data(), MPFR_RNDN);
        mpfr_mul(bound.backend().data(), factor.backend().data(), bound.backend().data(), MPFR_RNDN);
        mpfr_add(bound.backend().data(), bound.backend().data(), floor_T.backend().data(), MPFR_RNDN);
        return std::tuple{expected, error, bound};
      };
      const auto [expected, error, bound] = exact(worst);
      r.value = error == 0 ? 0.0 : to_double(mp100(error / bound));
      r.threshold = 1;
      r.digits = scalar_traits<T>::print_digits;
      if (least_digits >= 0 && !digits_lost) {
        const auto [e, err, b] = exact(least_digits);
        r.digits = std::min(r.digits, std::max(0.0, -std::log10(std::abs(to_double(mp100(err / abs(e)))))));
      }
      if (digits_lost) r.digits = 0;
      const Index nx = s.in_rows * s.batch;
      WorstEntry w;
      w.block = s.layout.block(nx + worst);
      w.row = worst;
      w.col = 0;
      w.where = s.layout.where(nx + worst);
      w.expected = bpcheck::to_string(expected);
      w.actual = bpcheck::to_string(second(worst));
      w.abs_error = to_double(error);
      w.rel_error = expected == 0 ? (error == 0 ? 0.0 : std::numeric_limits<double>::infinity())
                                  : to_double(mp100(error / abs(expected)));
      r.worst.push_back(std::move(w));
      return true;
    }
  }
};

/// Perturbed truths for float/double: what the exact gradient (and output, and J when formed) does
/// when the point moves by a relative u_T and, for a network's loss, when its activations move by T's
/// rounding. Each enters as the exact value plus a change of the code's own mp100 backward, so that a
/// wrong backward cannot fold into its own bound. Returns the passes it took.
template <class T, class Make>
std::size_t measure_conditioning(RungContext<T, Make>& c) {
  std::size_t evaluations = 0;
  const PointState& s = c.s;
  const Vector<mp100>& u = c.u;
  Random rng(s.seed ^ 0x9e3779b97f4a7c15ULL);
  const Vector<mp100> z = c.z_exact();
  std::optional<DualForward<mp100>> f;  // dual<mp100> only where J is formed
  const mp100 down = 1 - c.u_T, up = 1 + c.u_T;
  for (int k = 0; k < 2; ++k) {
    Vector<mp100> zp = z;
    for (Index i = 0; i < zp.size(); ++i) zp(i) *= rng.symmetric() < 0 ? down : up;
    const Matrix<mp100> Xp = Eigen::Map<const Matrix<mp100>>(zp.data(), s.in_rows, s.batch);
    const Vector<mp100> tp = zp.tail(s.P);
    if (s.truth.full) {
      if (!f) f.emplace(dual_forward(c.make(rung<dual<mp100>>{})));
      try {
        const Matrix<mp100> Jp = joint_jacobian<mp100>(*f, Xp, tp);
        c.g_pert.push_back(Jp.transpose() * u);
        c.J_pert.push_back(Jp);
        c.y_pert.push_back(vec(jvp_input<mp100>(*f, Xp, tp, Matrix<mp100>(s.in_rows * s.batch, 0)).output));
      } catch (const not_finite_error&) {
        // The exact derivative leaves every range within T's rounding of the point (e^x then cos at
        // x ≈ 1e3): no bound for T exists here, and none of its checks can say more than the oracle.
        c.conditioning_unbounded = true;
        return evaluations + 1;
      }
      evaluations += 1;
    } else {
      // Projections: the layer's own backward in mp100 (held to the oracle by the decisive check) at
      // the moved point, minus the same at z; one backward pass where dual numbers would take k lanes.
      try {
        const auto moved = build_on<mp100>(c.make, tp);
        const Matrix<mp100> Yp = moved.forward(Xp);
        const Vector<mp100> change = backward_z_at(moved, Xp, Yp, s.p.U) - c.own_gradient();
        c.g_pert.push_back(s.truth.JV.transpose() * u + transposed_product(s.truth.V, change));
        c.y_pert.push_back(vec(Yp));
        evaluations += 2;
      } catch (const std::exception&) {
        // mp100's forward or backward throws: its own checks report that
      }
    }
  }
  // A network's loss (LossLayer): backprop at activations moved by T's rounding of the forward pass,
  // which no move of the inputs shows (a tie or a cancellation inside the network). Its output is
  // 1 × 1, so the gradient for u is u times the row for 1.
  using Exact = typename RungContext<T, Make>::ExactLayer;
  if constexpr (requires(const Exact& l, const Matrix<mp100>& M, const std::vector<Vector<mp100>>& sw, const mp100& r) {
                  l.gradient_at_rounded_activations(M, sw, r, std::uint64_t{});
                  l.gradient_at_activations(std::vector<Matrix<mp100>>{});
                }) {
    if (s.activation_sweeps) {
      const Exact exact = build_on<mp100>(c.make, s.p.theta);
      // Each as its change from backprop at the exact activations, added to the oracle's value: a wrong
      // backprop moves both alike and cannot fold into the bound.
      const Vector<mp100> base = exact.gradient_at_activations(exact.activations(s.p.X));
      const auto add = [&](const Vector<mp100>& row) {
        const Vector<mp100> change = (row - base) * s.p.U(0, 0);
        c.g_pert.push_back(s.truth.full ? Vector<mp100>(s.truth.g + change)
                                        : Vector<mp100>(s.truth.JV.transpose() * u + transposed_product(s.truth.V, change)));
        if (s.truth.full) c.J_pert.push_back(Matrix<mp100>(s.truth.J + (row - base).transpose()));
        evaluations += 1;
      };
      for (std::uint64_t k = 1; k <= 2; ++k)
        add(exact.gradient_at_rounded_activations(s.p.X, *s.activation_sweeps, c.u_T, s.seed + k));
      // And at T's own activations: the exact backward then takes the branches T's rounding took,
      // which random moves of ±u_T F need not find (a three-way tie of float's values in a max pool).
      try {
        std::vector<Matrix<mp100>> xs;
        for (const auto& x : build_on<T>(c.make, s.p.theta).activations(c.X)) xs.push_back(matrix_cast<mp100>(x));
        using boost::multiprecision::isfinite;
        bool finite = true;
        for (const auto& x : xs)
          for (Index i = 0; i < x.size(); ++i) finite = finite && isfinite(x(i));
        if (finite) add(exact.gradient_at_activations(xs));
      } catch (const std::exception&) {
        // T's forward throws: the forward check reports that
      }
    }
  }
  return evaluations;
}

/// An error in a rung's gradient is gross (a wrong code path of that rung) only beyond √u_T of the
/// entry's natural size |u|ᵀ|y| / max(|z_i|, 1) (projected on V in projection mode): batch norm over
/// two samples has an exact gradient of 1e-27 (everything cancels), and float's 1e-10 there at inputs
/// from 1e-8 to 1e8 is lost digits, not a wrong path. (Inputs near 0 do not make that size large: the 1.)
template <class T, class Make>
Vector<mp100> gross_floor_of(const RungContext<T, Make>& c) {
  PointState& s = c.s;
  // √u_T times a floor the rungs share, formed once per point: |u|ᵀ|y| / max(|z_i|, 1), projected on |V|.
  if (!s.gross_floor_unit) {
    const Vector<mp100> z = c.z_exact();
    const mp100 size = abs_dot_mp(c.u, vec(s.truth.Y));
    Vector<mp100> per_entry(s.n);
    for (Index i = 0; i < s.n; ++i) {
      mpfr_ptr e = per_entry(i).backend().data();
      if (mpfr_cmpabs_ui(z(i).backend().data(), 1) > 0) {
        mpfr_div(e, size.backend().data(), z(i).backend().data(), MPFR_RNDN);
        mpfr_abs(e, e, MPFR_RNDN);
      } else {
        mpfr_set(e, size.backend().data(), MPFR_RNDN);
      }
    }
    s.gross_floor_unit = s.truth.full ? per_entry : abs_transposed_product(s.truth.V, per_entry);
  }
  using boost::multiprecision::sqrt;
  return Vector<mp100>(sqrt(c.u_T) * *s.gross_floor_unit);
}

/// measure_conditioning and the gross floor, once per rung; returns the passes taken (0 the second time).
template <class T, class Make>
std::size_t ensure_conditioning(RungContext<T, Make>& c) {
  if (c.conditioning_measured) return 0;
  c.conditioning_measured = true;
  const std::size_t evaluations = measure_conditioning(c);
  c.gross_floor = gross_floor_of(c);
  return evaluations;
}

/// output_rounding, once per rung: its changes of backward, kept (c.y_changes) and, on float/double,
/// added to the perturbed truths; returns the passes taken. mp100's Y is the truth's own (no Y_T to
/// try). Not for a network's loss, whose backward recomputes its activations (it reads no Y).
template <class T, class Make>
std::size_t ensure_output_rounding(RungContext<T, Make>& c, const typename RungContext<T, Make>::Forward& f) {
  if (c.output_rounding_measured || c.s.activation_sweeps) return 0;
  c.output_rounding_measured = true;
  std::size_t evaluations = 0;
  if constexpr (std::is_same_v<T, mp100>) {
    c.y_changes = output_rounding<Make, mp100>(c.make, c.s, c.u_T, nullptr, c.own_gradient(), evaluations);
    return evaluations;
  }
  try {
    c.y_changes =
        output_rounding(c.make, c.s, c.u_T, f.within_bound ? &f.Y : nullptr, c.own_gradient(), evaluations);
    const Vector<mp100> exact = c.s.truth.full ? c.s.truth.g : Vector<mp100>(c.s.truth.JV.transpose() * c.u);
    for (const auto& change : c.y_changes) c.g_pert.push_back(Vector<mp100>(exact + c.project(change)));
  } catch (const std::exception&) {
    // mp100's backward throws: the decisive check reports it
  }
  return evaluations;
}

/// A float/double check whose bound takes allowances measured on demand (RungContext::
/// conditioning_measured): `judge(final)` once, where `pending` says they are not measured yet, and
/// where that first verdict is not a pass, again after `measure()` (which returns the passes it took,
/// added to the result's evaluations). `judge` leaves what only a final verdict needs (the re-judgements
/// that widen the bound further) to final = true. A pass at the first judgement says so in the formula.
template <class Judge, class Measure>
void judge_measuring_on_demand(CheckResult& r, bool pending, const Judge& judge, const Measure& measure) {
  judge(!pending);
  if (!pending) return;
  if (r.verdict == Verdict::pass && r.value <= 1) {
    r.formula += " (allowances measured only beyond the bound without them: not needed here)";
    return;
  }
  const std::size_t passes = measure();
  judge(true);
  r.evaluations += passes;
}

/// Builds the layer on T and runs forward; against the mp100 output within the rounding bound on
/// float/double. A throw or a wrong shape here is a consistency failure (Stan's rule), and the rung's
/// other checks cannot run (the returned layer stays empty). mp100's forward is the reference: reported only
/// when it fails.
template <class T, class Make>
std::pair<std::optional<CheckResult>, typename RungContext<T, Make>::Forward> check_forward(RungContext<T, Make>& c) {
  typename RungContext<T, Make>::Forward f;
  const PointState& s = c.s;
  CheckScope scope(c.is_mp ? "forward (reference)" : "forward vs mp100", s.subject, c.prec, s.seed);
  CheckResult& r = scope.r;
  try {
    f.layer.emplace(build_on<T>(c.make, s.p.theta));
    f.Y = f.layer->forward(c.X);
    r.evaluations = 1;
  } catch (const std::exception& e) {
    f.layer.reset();
    apply(r, judge(Evidence::of_throw(std::string("forward throws in ") + c.prec + " but not in mp100: " + e.what()),
                   c.tolerances));
    return {scope.done(), std::move(f)};
  }
  if (f.Y.rows() != s.p.U.rows() || f.Y.cols() != s.p.U.cols()) {
    apply(r, judge(Evidence::of_throw(fmt::format("forward returns {}×{} in {} but {}×{} in mp100", f.Y.rows(),
                                                  f.Y.cols(), c.prec, s.p.U.rows(), s.p.U.cols())),
                   c.tolerances));
    f.layer.reset();
    return {scope.done(), std::move(f)};
  }
  if (c.is_mp) return {std::nullopt, std::move(f)};
  r.metric = "max |y_T − y| / bound";
  r.formula = "bound = K ((terms + 2) u_T (|y| + |J||z|) + cond) + floor ≥ |y_T − y|";
  const Vector<mp100> y = vec(s.truth.Y);
  Vector<mp100> yscale = abs_vec(y);
  Vector<mp100> nterms = Vector<mp100>::Constant(y.size(), mp100(s.n));
  if (s.truth.full) {
    // The inputs' and parameters' rounding moves y by up to M|z|, M the stated absolute Jacobian (or
    // the absolute sweep for a network's loss) where |J| alone cancels.
    const Vector<mp100> z = c.z_exact();
    yscale += (s.absolute_J ? *s.absolute_J : abs_mat(s.truth.J)) * abs_vec(z);
    if (s.sweep_unit && y.size() == 1)
      yscale(0) = std::max(yscale(0), mp100(abs_vec(y)(0) + s.sweep_unit->dot(abs_vec(z))));
    nterms = terms(s.truth.J, false);
  } else {
    yscale.array() += abs_vec(y).maxCoeff();
  }
  // A loss rounds relative to the terms it sums, which may cancel far below them.
  if (s.value_terms && y.size() == 1) yscale(0) = std::max(yscale(0), *s.value_terms);
  Vector<mp100> bound(y.size());
  Grounds grounds = Grounds::within_bound;
  const auto judge_now = [&](bool final) {
    const Vector<mp100> cond = max_abs_change(c.y_pert, y);
    for (Index i = 0; i < y.size(); ++i)
      bound(i) = rounding_bound(nterms(i), yscale(i), c.K, c.u_T) + mp100(c.K) * cond(i) + c.floor_T;
    typename RungContext<T, Make>::Allowances extra;
    if (final)
      extra.formula_rounding = [&c, &y]() -> std::optional<Vector<mp100>> {
        if (c.emulated().y.empty()) return std::nullopt;
        return c.formula_spread(c.emulated().y, y);
      };
    grounds = c.judge_against_mp100(
                   r, "forward", y, vec(f.Y), bound, yscale, [](Index i) { return fmt::format("y[{}]", i); },
                   [](Index) { return std::string("y"); }, nullptr, extra)
                  .grounds;
  };
  judge_measuring_on_demand(r, !c.conditioning_measured, judge_now, [&] { return ensure_conditioning(c); });
  // Y_T stands for the rounding of the output only where it is within the bound proper.
  f.within_bound = r.verdict == Verdict::pass && grounds == Grounds::within_bound;
  return {scope.done(), std::move(f)};
}

/// backward against the oracle (mp100: THE verdict for a bug) or against the mp100 truth within the
/// rounding bound (float, double). Leaves the returned g empty when backward throws.
template <class T, class Make>
std::pair<CheckResult, typename RungContext<T, Make>::Backward> check_backward(
    RungContext<T, Make>& c, const typename RungContext<T, Make>::Forward& f) {
  typename RungContext<T, Make>::Backward bw;
  PointState& s = c.s;
  const Vector<mp100>& u = c.u;
  const double K = c.K;
  CheckScope scope(c.is_mp ? "backward vs oracle" : "backward vs mp100", s.subject, c.prec, s.seed);
  // measured for this check: the exact values it compares with (mp100) or its bound (float, double)
  scope.start -= c.is_mp ? s.truth.time : c.conditioning_time;
  CheckResult& r = scope.r;
  try {
    if constexpr (std::is_same_v<T, mp100>) mpfr_clear_overflow();
    bw.g = backward_z_at(*f.layer, c.X, f.Y, c.U);  // at the forward check's Y: forward(X) just ran on this layer
    if constexpr (std::is_same_v<T, mp100>) {
      using boost::multiprecision::isfinite;
      bw.own_range_exceeded =
          mpfr_overflow_p() && !std::all_of(bw.g.begin(), bw.g.end(), [](const mp100& x) { return isfinite(x); });
    }
    r.evaluations = 2 + (c.is_mp ? std::size_t(s.truth.evaluations) : c.conditioning_evaluations);
  } catch (const std::exception& e) {
    bw.g.resize(0);
    apply(r, judge(Evidence::of_throw(std::string("backward throws in ") + c.prec + ": " + e.what()), c.tolerances));
    return {scope.done(), std::move(bw)};
  }
  if constexpr (std::is_same_v<T, mp100>)
    s.own_gradient = bw.g;  // the code's own mp100 backward, which the other rungs reuse
  Vector<mp100> expected, scale, bound;
  Vector<T> actual;
  std::function<std::string(Index)> w = c.where_fn(), b = c.block_fn();
  if (s.truth.full) {
    expected = s.truth.g;
    scale = s.truth.g_scale;
    actual = bw.g;
  } else {
    // Projection mode: compare Vᵀ(Jᵀu) with (J V)ᵀu.
    expected = s.truth.JV.transpose() * u;
    if constexpr (std::is_same_v<T, mp100>)
      actual = transposed_product(s.truth.V, bw.g);
    else
      actual = Matrix<T>(s.truth.V.template cast<T>()).transpose() * bw.g;
    scale.resize(expected.size());
    if (!s.V_norms) {
      s.V_norms.emplace(s.truth.V.cols());
      mp100 sum, entry;  // in place (see dot_mp); a float's square is exact in mp100
      for (Index k = 0; k < s.truth.V.cols(); ++k) {
        mpfr_set_zero(sum.backend().data(), 1);
        for (Index i = 0; i < s.truth.V.rows(); ++i) {
          mpfr_set_flt(entry.backend().data(), s.truth.V(i, k), MPFR_RNDN);
          mpfr_sqr(entry.backend().data(), entry.backend().data(), MPFR_RNDN);
          mpfr_add(sum.backend().data(), sum.backend().data(), entry.backend().data(), MPFR_RNDN);
        }
        (*s.V_norms)(k) = sqrt(sum);
      }
    }
    // ‖g‖ in place from T's values (see dot_mp)
    mp100 g_norm(0), entry;
    for (Index i = 0; i < bw.g.size(); ++i) {
      entry = scalar_cast<mp100>(bw.g(i));
      mpfr_sqr(entry.backend().data(), entry.backend().data(), MPFR_RNDN);
      mpfr_add(g_norm.backend().data(), g_norm.backend().data(), entry.backend().data(), MPFR_RNDN);
    }
    g_norm = sqrt(g_norm);
    for (Index k = 0; k < expected.size(); ++k)
      scale(k) = u.norm() * s.truth.JV.col(k).norm() + g_norm * (*s.V_norms)(k);
    w = [](Index k) { return fmt::format("projection {}", k); };
    b = [](Index) { return std::string("projection"); };
  }
  bound.resize(expected.size());
  if constexpr (std::is_same_v<T, mp100>) {
    // Beside the tolerance, mp100's own rounding of the terms g is formed from (an exactly zero
    // gradient of O(1) terms comes out as 1e-101, and the oracle rounds alike).
    Vector<mp100> magnitude = scale;
    Vector<mp100> nterms = Vector<mp100>::Constant(expected.size(), mp100(s.n));
    if (s.truth.full) magnitude = s.gradient_magnitude(u), nterms = s.gradient_terms();
    // An entry may be formed from terms as large as the largest entry's (a layer that mixes its
    // inputs): mp100's rounding of those is the floor, K (n + 2) u_mp100 · max magnitude.
    const mp100 floor = magnitude.size() ? rounding_bound(nterms.maxCoeff(), magnitude.maxCoeff(), K, c.u_T) : mp100(0);
    typename RungContext<T, Make>::Allowances extra;
    extra.formula_rounding = [&c, &bw]() -> std::optional<Vector<mp100>> {
      if (c.emulated().g.empty()) return std::nullopt;
      std::vector<Vector<mp100>> runs;
      for (const auto& g : c.emulated().g) runs.push_back(c.project(g));
      return c.formula_spread(runs, c.project(bw.g));
    };
    const auto judge_now = [&](bool) {
      // and mp100's rounding of Y where backward reads it (s ⊙ (g − sᵀg) at a saturated softmax, whose
      // exact gradient is 1e-18916 while s rounds at 1e-100): measured only beyond the bound without it
      Vector<mp100> output_cond = Vector<mp100>::Zero(expected.size());
      for (const auto& change : c.y_changes) output_cond = output_cond.cwiseMax(abs_vec(c.project(change)));
      for (Index i = 0; i < expected.size(); ++i)
        bound(i) = c.tol * scale(i) + rounding_bound(nterms(i), magnitude(i), K, c.u_T) + floor +
                   mp100(K) * output_cond(i) + c.floor_T;
      r.metric = "max |g − Jᵀu| / (tol |J|ᵀ|u| + rounding)";
      r.formula = fmt::format(
          "pass when ≤ 1; tol = {:.0e}; rounding = K (terms + 2) u_mp100 · (|J|ᵀ|u|, or the "
          "absolute sweep); J by dual numbers in mp100",
          c.opt.mp100_tolerance);
      c.judge_against_mp100(r, "backward", expected, actual, bound, scale, w, b, nullptr, extra,
                            bw.own_range_exceeded);
    };
    judge_measuring_on_demand(r, !c.output_rounding_measured && !s.activation_sweeps, judge_now,
                              [&] { return ensure_output_rounding(c, f); });
    bw.wrong = r.verdict == Verdict::fail;
    if (r.verdict == Verdict::fail)
      r.message = "wrong gradient: backward disagrees with the exact Jacobian (mp100, dual numbers); worst at " +
                  (r.worst.empty() ? std::string("?") : r.worst.front().where);
  } else {
    if (s.truth.full) r.evaluations += ensure_output_rounding(c, f);
    Vector<mp100> nterms = Vector<mp100>::Constant(expected.size(), mp100(s.n));
    if (s.truth.full) scale = s.gradient_magnitude(u), nterms = s.gradient_terms();
    r.metric = "max |g_T − g| / bound";
    r.formula =
        "bound = K ((terms + 2) u_T |J|ᵀ|u| + cond) + floor; cond: change of g when the point (for a network "
        "also its activations) moves by T's rounding, and when the output Y that backward reads moves by "
        "u_T|Y| or is T's own";
    const auto judge_now = [&](bool final) {
      const Vector<mp100> cond = max_abs_change(c.g_pert, s.truth.full ? s.truth.g : expected);
      for (Index i = 0; i < expected.size(); ++i)
        bound(i) = rounding_bound(nterms(i), scale(i), K, c.u_T) + mp100(K) * cond(i) + c.floor_T;
      typename RungContext<T, Make>::Allowances extra;
      if (final) {
        extra.forward_mode = [&]() -> std::optional<Vector<mp100>> {
          const Matrix<mp100>* D = c.forward_mode_derivative();
          if (!D) return std::nullopt;
          // D_Tᵀu: the gradient (or, in projection mode, the projections) of T's forward; where the
          // exact gradient is 0 and T's branch is not, its rounding is relative to |D_T|ᵀ|u|.
          const Vector<mp100> reference = D->transpose() * u;
          const Vector<mp100> magnitude = abs_mat(*D).transpose() * abs_vec(u);
          Vector<mp100> allowance = abs_vec(Vector<mp100>(reference - expected));
          for (Index i = 0; i < allowance.size(); ++i)
            allowance(i) += rounding_bound(mp100(D->rows()), magnitude(i), K, c.u_T);
          return allowance;
        };
        extra.formula_rounding = [&c]() -> std::optional<Vector<mp100>> {
          if (c.emulated().g.empty()) return std::nullopt;
          std::vector<Vector<mp100>> runs;
          for (const auto& g : c.emulated().g) runs.push_back(c.project(g));
          return c.formula_spread(runs, c.project(c.own_gradient()));
        };
        extra.formula_center = [&c] { return c.project(c.own_gradient()); };
      }
      c.judge_against_mp100(r, "backward", expected, actual, bound, scale, w, b,
                            c.conditioning_measured ? &c.gross_floor : nullptr, extra);
    };
    judge_measuring_on_demand(r, !c.conditioning_measured, judge_now,
                              [&] { return ensure_conditioning(c) + ensure_output_rounding(c, f); });
  }
  return {scope.done(), std::move(bw)};
}

/// A second route to dθ at the backward check's point and U, judged by judge_second_dtheta: `route`
/// adds to the dθ it is given, which holds backward's dθ once already when `times` is 2 and is 0 when
/// `times` is 1.
template <class T, class Make, class Route>
CheckResult check_second_dtheta(RungContext<T, Make>& c, const typename RungContext<T, Make>::Backward& bw,
                                const char* check, const char* metric, const char* formula,
                                int times, const Route& route, const char* what, const char* wrong_message,
                                const char* throws_message) {
  CheckScope scope(check, c.s.subject, c.prec, c.s.seed);
  try {
    const Vector<T> first = bw.g.tail(c.s.P);
    Vector<T> second = times == 1 ? Vector<T>(Vector<T>::Zero(c.s.P)) : first;
    route(second);
    scope.r.metric = metric;
    scope.r.formula = formula;
    c.judge_second_dtheta(scope.r, first, times, second, what, wrong_message);
  } catch (const std::exception& e) {
    apply(scope.r, judge(Evidence::of_throw(std::string(throws_message) + e.what()), c.tolerances));
  }
  return scope.done();
}

/// backward must add to dθ, not overwrite it: a second call onto the first result gives twice it.
template <class T, class Make>
std::optional<CheckResult> check_dtheta_accumulates(RungContext<T, Make>& c, typename RungContext<T, Make>::Forward& f, const typename RungContext<T, Make>::Backward& bw) {
  if (c.s.P == 0) return std::nullopt;
  return check_second_dtheta(
      c, bw, "dθ accumulates", "max |dθ after two calls − 2 dθ after one| / bound",
      "backward(X, Y, dY, dθ) must add Jᵀ_θ dY to dθ", 2,
      [&c, &f](Vector<T>& dtheta) { f.layer->backward(c.X, f.Y, c.U, dtheta); }, "dθ accumulation",
      "backward overwrites dθ instead of adding to it", "backward throws: ");
}

/// backward_parameters, where the layer states it, must add to dθ what backward adds.
template <class T, class Make>
std::optional<CheckResult> check_parameter_backward(RungContext<T, Make>& c, typename RungContext<T, Make>::Forward& f, const typename RungContext<T, Make>::Backward& bw) {
  using LayerT = typename RungContext<T, Make>::LayerT;
  if constexpr (LayerWithParameterBackward<LayerT> || std::is_same_v<LayerT, AnyLayer<T>>) {
    bool states = true;
    if constexpr (std::is_same_v<LayerT, AnyLayer<T>>) states = f.layer->has_parameter_backward();
    if (!states || c.s.P == 0) return std::nullopt;
    return check_second_dtheta(
        c, bw, "dθ without dX = backward's", "max |dθ of backward_parameters − dθ of backward| / bound",
        "backward_parameters(X, Y, dY, dθ) must add Jᵀ_θ dY to dθ, as backward does", 1,
        [&c, &f](Vector<T>& dtheta) { f.layer->backward_parameters(c.X, f.Y, c.U, dtheta); }, "backward_parameters",
        "backward_parameters adds another dθ than backward", "backward or backward_parameters throws: ");
  } else {
    return std::nullopt;
  }
}

/// The layer's explicit Jacobians, where it states them, entry by entry (full mode only).
template <class T, class Make>
std::optional<CheckResult> check_jacobians(RungContext<T, Make>& c, typename RungContext<T, Make>::Forward& f, const typename RungContext<T, Make>::Backward& bw) {
  using LayerT = typename RungContext<T, Make>::LayerT;
  if constexpr (LayerWithJacobians<LayerT> || std::is_same_v<LayerT, AnyLayer<T>>) {
    const PointState& s = c.s;
    const double K = c.K;
    CheckScope scope(c.is_mp ? "jacobians vs oracle" : "jacobians vs mp100", s.subject, c.prec, s.seed);
    CheckResult& r = scope.r;
    bool has = true;
    if constexpr (std::is_same_v<LayerT, AnyLayer<T>>) has = f.layer->has_jacobians();
    if (!has || !s.truth.full) {
      apply(r, judge(Evidence::of_not_applicable(has ? "layer too large for full Jacobians (projection mode)"
                                                     : "the layer states no Jacobians"),
                     c.tolerances));
      return scope.done();
    }
    try {
      const Matrix<T> Jx = f.layer->jacobian_input(c.X);
      const Matrix<T> Jt = f.layer->jacobian_parameters(c.X);
      if (Jx.rows() != s.truth.J.rows() || Jx.cols() + Jt.cols() != s.truth.J.cols() || Jt.rows() != Jx.rows())
        throw error(fmt::format("explicit Jacobians are {}×{} and {}×{}; expected {} rows and {} + {} columns",
                                Jx.rows(), Jx.cols(), Jt.rows(), Jt.cols(), s.truth.J.rows(), s.in_rows * s.batch,
                                s.P));
      Matrix<T> J(Jx.rows(), Jx.cols() + Jt.cols());
      J << Jx, Jt;
      const Matrix<mp100>& Jtrue = s.truth.J;
      const Vector<mp100> e = vec(Jtrue);
      const Vector<mp100> sc = abs_vec(e);
      Vector<mp100> bound(e.size());
      const Index rows = Jtrue.rows();
      // What the stated J rounds relative to: the absolute Jacobian where the layer states one (its
      // row's nonzeros the terms), the absolute sweep for a gradient row, else |J| itself.
      Vector<mp100> magnitude = sc;
      Vector<mp100> nterms = Vector<mp100>::Constant(e.size(), mp100(2));
      if (s.absolute_J) {
        magnitude = magnitude.cwiseMax(vec(*s.absolute_J));
        const Vector<mp100> row_terms = terms(*s.absolute_J, false);
        for (Index i = 0; i < e.size(); ++i) nterms(i) = row_terms(i % rows);
      }
      if (s.sweep_unit && rows == 1) {
        magnitude = magnitude.cwiseMax(*s.sweep_unit);
        nterms.setConstant(s.sweep_terms);
      }
      std::vector<Vector<mp100>> jp;
      for (const auto& m : c.J_pert) jp.push_back(vec(m));
      const Vector<mp100> cond = c.is_mp ? Vector<mp100>() : max_abs_change(jp, e);
      // A one-row Jacobian (a network's loss) is a gradient: the absolute sweep bounds its rounding.
      const bool sweep = s.sweep_unit && rows == 1;
      if (c.is_mp) {
        // As for backward: mp100's rounding of the largest terms is the floor.
        const mp100 floor =
            e.size() ? rounding_bound(mp100(s.n + s.out_rows * s.batch), magnitude.maxCoeff(), K, c.u_T) : mp100(0);
        for (Index i = 0; i < e.size(); ++i)
          bound(i) = c.tol * sc(i) + rounding_bound(nterms(i), magnitude(i), K, c.u_T) + floor;
      } else if (s.absolute_J) {
        for (Index i = 0; i < e.size(); ++i)
          bound(i) = rounding_bound(nterms(i), magnitude(i), K, c.u_T) + mp100(K) * cond(i) + c.floor_T;
      } else {
        for (Index i = 0; i < e.size(); ++i)
          bound(i) = (sweep ? rounding_bound(s.sweep_terms, std::max(sc(i), (*s.sweep_unit)(i)), K, c.u_T)
                            : rounding_bound(mp100(2), sc(i), K, c.u_T)) +
                     mp100(K) * cond(i) + c.floor_T;
      }
      r.metric = c.is_mp ? "max |J_layer − J| / (tol |J|)" : "max |J_T − J| / bound";
      r.formula = c.is_mp        ? "pass when ≤ 1; J by dual numbers in mp100"
                  : s.absolute_J ? "bound = K ((terms + 2) u_T M + cond) + floor, M the absolute Jacobian"
                                 : "bound = K (4 u_T |J| + cond) + floor";
      const Layout& L = s.layout;
      const std::function<std::string(Index)> where_J = [rows, &L](Index i) {
        return fmt::format("J[{},{}] (∂y{} / ∂{})", i % rows, i / rows, i % rows, L.where(i / rows).substr(1));
      };
      const std::function<std::string(Index)> block_J = [rows, &L](Index i) { return "J_" + L.block(i / rows); };
      typename RungContext<T, Make>::Allowances extra;
      if (!c.is_mp)
        extra.forward_mode = [&]() -> std::optional<Vector<mp100>> {
          const Matrix<mp100>* D = c.forward_mode_derivative();
          if (!D) return std::nullopt;
          return Vector<mp100>(abs_vec(Vector<mp100>(vec(*D) - e)) + mp100(4 * K) * c.u_T * abs_vec(vec(*D)));
        };
      c.judge_against_mp100(r, "explicit Jacobian", e, Vector<T>(vec(J)), bound, sc, where_J, block_J, nullptr, extra);
    } catch (const std::exception& e) {
      apply(r, judge(Evidence::of_throw(std::string("explicit Jacobians: ") + e.what()), c.tolerances));
    }
    return scope.done();
  } else {
    return std::nullopt;
  }
}

/// The sizes uᵀ(Jv)'s terms reach, from the exact quantities: what its rounding is relative to.
template <class T, class Make>
mp100 exact_dot_product_scale(const RungContext<T, Make>& c) {
  const PointState& s = c.s;
  mp100 scale = abs(s.slope_true);
  if (s.truth.full) scale = std::max(scale, mp100(abs_vec(c.u).dot(abs_mat(s.truth.J) * abs_vec(s.p.v))));
  if (s.sweep) scale = std::max(scale, mp100(s.sweep->dot(abs_vec(s.p.v))));
  if (s.absolute_J) scale = std::max(scale, mp100(abs_vec(c.u).dot(*s.absolute_J * abs_vec(s.p.v))));
  return scale;
}

/// Dot-product identity: uᵀ(J v) by forward mode on dual<T> against (Jᵀu)ᵀv by backward, in T.
template <class T, class Make>
CheckResult check_dot_product(RungContext<T, Make>& c, typename RungContext<T, Make>::Forward& f, const typename RungContext<T, Make>::Backward& bw) {
  const PointState& s = c.s;
  const Vector<mp100>& u = c.u;
  const double K = c.K;
  CheckScope scope("dot-product identity", s.subject, c.prec, s.seed);
  CheckResult& r = scope.r;
  try {
    // In mp100, forward mode on dual<mp100> along v is the truth's own pass: uᵀ(Jv) is slope_true.
    Matrix<T> Jv;
    T lhs, rhs;
    if constexpr (std::is_same_v<T, mp100>) {
      Jv = s.truth.full ? Matrix<mp100>(s.truth.J * s.p.v) : Matrix<mp100>(s.truth.JVv.col(c.opt.projections));
      lhs = s.slope_true;
      rhs = dot_mp(bw.g, s.p.v);
    } else {
      const Matrix<T> v = matrix_cast<T>(Matrix<mp100>(s.p.v));
      using R = forward_rung_t<T>;  // float for the 16-bit rungs, on their rounded X, θ and v
      auto forward_mode = dual_forward(c.make(rung<dual<R>>{}));
      Jv = matrix_cast<T>(Matrix<R>(joint_jvp<R>(forward_mode, matrix_cast<R>(c.X),
                                                 vector_cast<R>(vector_cast<T>(s.p.theta)), matrix_cast<R>(v))));
      lhs = vec(c.U).dot(Jv.col(0));
      rhs = bw.g.dot(v.col(0));
    }
    // The sums over z in place (see dot_mp), once: ‖g_T‖, ‖v‖ and |g_T|ᵀ|v|.
    const Vector<mp100> g_T = vector_cast<mp100>(bw.g);
    const mp100 g_norm = sqrt(dot_mp(g_T, g_T)), v_norm = sqrt(dot_mp(s.p.v, s.p.v));
    const mp100 g_v_terms = abs_dot_mp(g_T, s.p.v);
    // In projection mode the rounding of the Y that backward reads is measured only for an error beyond
    // the bound without it (RungContext::conditioning_measured).
    const auto judge_now = [&](bool final) {
      r.message.clear();
      r.formula.clear();
      mp100 scale;
      if (s.truth.full)
        scale = abs_vec(u).dot(abs_mat(s.truth.J) * abs_vec(s.p.v));
      else
        scale = u.norm() * vector_cast<mp100>(Vector<T>(Jv.col(0))).norm() + g_norm * v_norm;
      if (s.sweep) scale = std::max(scale, mp100(s.sweep->dot(abs_vec(s.p.v)) * s.sweep_terms));
      if (s.absolute_J) scale = std::max(scale, mp100(abs_vec(u).dot(*s.absolute_J * abs_vec(s.p.v))));
      // Both dot products sum terms that may cancel: each rounds relative to its own terms, as computed.
      const Vector<mp100> Jv_T = vector_cast<mp100>(Vector<T>(Jv.col(0)));
      const mp100 terms_scale = std::max(scale, mp100(abs_vec(u).dot(abs_vec(Jv_T)) + g_v_terms));
      const mp100 err = abs(scalar_cast<mp100>(lhs) - scalar_cast<mp100>(rhs));
      const mp100 nterms(2 * s.n + 2 * s.out_rows * s.batch);
      // The rounding of Y that backward reads moves (Jᵀu)ᵀv too.
      mp100 output_cond_v(0);
      for (const auto& change : c.y_changes) output_cond_v = std::max(output_cond_v, mp100(abs(change.dot(s.p.v))));
      mp100 bound = c.tol * scale + rounding_bound(nterms, terms_scale, K, c.u_T) + mp100(K) * output_cond_v + c.floor_T;
      if (!c.is_mp) {
        // Forward mode on dual<T> is the reference here, and it rounds too: where the derivative of
        // forward cancels (x/√(x² + ε) at a dominant x), Jv in T is off by more than any bound from |J|.
        // Its own error, measured against the exact uᵀJv, and the change of g under a u_T perturbation
        // (backward's conditioning) join the bound; a wrong backward still shows beyond both.
        using boost::multiprecision::isfinite;
        const mp100 jvp_error = abs(scalar_cast<mp100>(lhs) - s.slope_true);
        const mp100 cond = s.truth.full ? mp100(K) * max_abs_change(c.g_pert, s.truth.g).dot(abs_vec(s.p.v)) : mp100(0);
        bound = rounding_bound(nterms, terms_scale, K, c.u_T) + (isfinite(jvp_error) ? jvp_error : mp100(0)) + cond +
                mp100(K) * output_cond_v + c.floor_T;
      }
      r.metric = "|uᵀ(Jv) − (Jᵀu)ᵀv| / bound";
      r.formula = c.is_mp ? "pass when ≤ 1; bound = tol |u|ᵀ|J||v| + K · terms · u_mp100 · (|u|ᵀ|Jv| + |Jᵀu|ᵀ|v|)"
                          : "bound = K · terms · u_T (|u|ᵀ|Jv| + |Jᵀu|ᵀ|v|) + |uᵀ(Jv)_T − uᵀJv| + K |cond_g|ᵀ|v| + floor";
      const auto ratio = [&err](const mp100& b) {
        return err == 0 ? 0.0 : b == 0 ? std::numeric_limits<double>::infinity() : to_double(err / b);
      };
      r.value = ratio(bound);
      r.threshold = 1;
      r.evaluations = 2;
      r.digits = err == 0 ? double(scalar_traits<T>::print_digits)
                          : std::max(0.0, -std::log10(to_double(err / std::max(scale, mp100(1e-300)))));
      using std::isfinite;
      Evidence e = c.evidence("uᵀ(Jv) = (Jᵀu)ᵀv", r, Compared{});
      e.value_finite = isfinite(value_of(rhs));
      if (!isfinite(value_of(lhs)) && e.value_finite) {
        // Forward mode on dual<T> is bpcheck's reference here: where it overflows and backward's own
        // result is finite, nothing is said of the layer.
        e.oracle_trouble = !c.is_mp;
        e.oracle_trouble_reason = "forward mode (dual numbers) overflows or is NaN in " + c.prec +
                                  " where backward's own result is finite";
        r.value = std::numeric_limits<double>::infinity();
        e.ratio = r.value;
      }
      if (!e.value_finite) r.value = e.ratio = std::numeric_limits<double>::infinity();
      // Gross as for the checks against mp100: a tenth of the identity's terms and beyond √u_T of its
      // natural size Σ|v_i| |u|ᵀ|y| / max(|z_i|, 1), so that a value that cancels to nearly 0 (1 − t² of a
      // saturated tanh) only loses digits.
      // Only an error beyond the bound needs it (a sum over z: a tenth of verify on a large layer).
      // √u_T of the identity's natural size Σ|v_i| |u|ᵀ|y| / max(|z_i|, 1)
      const auto natural_floor = [&] {
        const Vector<mp100> z = c.z_exact();
        const mp100 size = abs_dot_mp(u, vec(s.truth.Y));
        mp100 natural(0);
        for (Index i = 0; i < s.n; ++i)
          natural += abs(s.p.v(i)) * size / std::max(mp100(1), mp100(abs(z(i))));
        return mp100(sqrt(c.u_T) * natural);
      };
      if (!(r.value <= 1) && gross_error(err, scale, nullptr, c.tolerances.gross_fraction)) {
        const mp100 floor = natural_floor();
        e.gross = gross_error(err, scale, &floor, c.tolerances.gross_fraction);
      }
      if (final && !(r.value <= 1) && e.value_finite && !e.oracle_trouble && !c.reference_wrong &&
          !c.emulated().g.empty()) {
        // (Jᵀu)ᵀv inherits the rounding of backward's formula as written: K times its emulated spread
        // along v (around the code's own mp100 gradient, as for the backward check) joins the bound.
        const Vector<mp100>& center = c.is_mp ? g_T : c.own_gradient();
        std::vector<Vector<mp100>> along_v;
        for (const auto& g : c.emulated().g)
          along_v.push_back(Vector<mp100>::Constant(1, mp100(abs_vec(Vector<mp100>(g - center)).dot(abs_vec(s.p.v)))));
        const mp100 spread = c.formula_spread(along_v, Vector<mp100>::Zero(1))(0);
        r.evaluations += 2 * c.emulated().g.size();
        e.ratio_with_formula_rounding = ratio(bound + spread);
        // How far beyond its own rounding the rung's (Jᵀu)ᵀv lies: its distance from the same code's
        // mp100 result along v (not from forward mode, which rounds otherwise), as for backward.
        if (!c.is_mp) {
          const mp100 own_err = abs(scalar_cast<mp100>(rhs) - dot_mp(center, s.p.v));
          const mp100 own_spread = spread / mp100(K);
          e.beyond_sqrt_u_of_terms = own_err > natural_floor();
          e.ratio_to_formula_spread = own_err == 0 ? 0.0
                                      : own_spread == 0 ? std::numeric_limits<double>::infinity()
                                                        : to_double(mp100(own_err / own_spread));
        }
        if (*e.ratio_with_formula_rounding <= 1) {
          r.value = *e.ratio_with_formula_rounding;
          r.formula += " + K · spread of (Jᵀu)ᵀv with " + c.prec + "'s rounding emulated";
        }
      }
      apply(r, judge(e, c.tolerances));
      if (r.verdict != Verdict::pass && r.verdict != Verdict::skipped)
        r.message += fmt::format(" (forward mode {:.17g} vs reverse mode {:.17g})", scalar_cast<double>(lhs),
                                 scalar_cast<double>(rhs));
    };
    judge_measuring_on_demand(r, !c.output_rounding_measured && !s.activation_sweeps, judge_now,
                              [&] { return ensure_output_rounding(c, f); });
  } catch (const time_exceeded&) {
    throw;
  } catch (const std::exception& e) {
    // Forward mode in T multiplies the local derivatives in absolute size along the way; where it
    // throws (an overflow guard, or the exact terms already beyond T's largest number) and backward's
    // own result stands, that is bpcheck's reference failing, not the layer.
    Evidence ev = c.evidence("uᵀ(Jv) = (Jᵀu)ᵀv", r, Compared{});
    ev.ratio = std::numeric_limits<double>::infinity();
    ev.oracle_trouble = !c.is_mp;
    const mp100 exact_scale = exact_dot_product_scale(c);
    ev.oracle_trouble_reason =
        exact_scale > scalar_cast<mp100>(std::numeric_limits<T>::max())
            ? fmt::format("forward mode overflows {}: the exact terms of uᵀ(Jv) reach {:.3g}, beyond its range ({})",
                          c.prec, to_double(exact_scale), e.what())
            : fmt::format("forward mode in {} throws ({})", c.prec, e.what());
    apply(r, judge(ev, c.tolerances));
    if (c.is_mp) r.message = std::string("dot-product identity could not be evaluated: ") + e.what();
  }
  return scope.done();
}

/// Taylor test on φ(z) = uᵀ f(z): the remainder |φ(z + h v) − φ(z) − h gᵀv| must fall like h².
template <class T, class Make>
CheckResult check_taylor(RungContext<T, Make>& c, typename RungContext<T, Make>::Forward& f, const typename RungContext<T, Make>::Backward& bw) {
  const PointState& s = c.s;
  const Vector<mp100>& u = c.u;
  CheckScope scope("taylor order", s.subject, c.prec, s.seed);
  Vector<T> z(s.n);
  z << vec(c.X), vector_cast<T>(s.p.theta);
  const Vector<T> v = vector_cast<T>(s.p.v);
  const Vector<T> uT = vec(c.U);
  const T phi0 = T(uT.dot(vec(f.Y)));  // φ(z): the forward check's output is f(z) in T
  // Round-off floor of the remainder: a few ulps of Σ|u||y|.
  const mp100 mag = abs_vec(u).dot(abs_vec(vector_cast<mp100>(vec(f.Y))));
  const mp100 floor = mp100(100 * c.K) * c.u_T * (mag + abs(scalar_cast<mp100>(phi0))) + c.floor_T;
  // φ(z + h v) and h gᵀv round at their own magnitudes, which grow with h when z is small next to
  // h v (inputs near a kink): a few ulps of Σ|u||y(z + h v)| and of h Σ|g||v| join the floor.
  mp100 gv_mag(0), term;  // Σ |g_i||v_i|, in place (see dot_mp)
  for (Index i = 0; i < s.n; ++i) {
    term = scalar_cast<mp100>(bw.g(i));
    mpfr_mul(term.backend().data(), term.backend().data(), s.p.v(i).backend().data(), MPFR_RNDN);
    mpfr_abs(term.backend().data(), term.backend().data(), MPFR_RNDN);
    mpfr_add(gv_mag.backend().data(), gv_mag.backend().data(), term.backend().data(), MPFR_RNDN);
  }
  auto& moved = *f.layer;  // parameters set per step, restored after the ladder: no copy per step
  const Vector<T> theta_T = vector_cast<T>(s.p.theta);
  const auto forward_on = [&](const Vector<T>& zz) {
    moved.set_parameters(zz.tail(s.P));
    return Matrix<T>(moved.forward(Eigen::Map<const Matrix<T>>(zz.data(), s.in_rows, s.batch)));
  };
  // g in T is known only to within the backward check's rounding bound, which may be far above |g|
  // (softmax over scores of 1e4): h times that bound along v is a remainder linear in h that says
  // nothing about the gradient's correctness, and joins the floor too.
  mp100 g_bound_v(0);
  if (!c.is_mp && s.truth.full) {
    const Vector<mp100> a = s.gradient_magnitude(u), nt = s.gradient_terms();
    const Vector<mp100> cond = max_abs_change(c.g_pert, s.truth.g);
    for (Index i = 0; i < a.size(); ++i)
      g_bound_v += (rounding_bound(nt(i), a(i), c.K, c.u_T) + mp100(c.K) * cond(i)) * abs(s.p.v(i));
  }
  struct Step {
    int k;
    Vector<T> zz;           ///< z + h v as rounded in T
    mp100 phi, r, floor_h;  ///< φ(zz) in T, its remainder, the floor
    Vector<T> y;            ///< f(zz) in T
  };
  std::vector<Step> steps;
  // |u|ᵀ|f(z + h v)| for a step's floor. In float and double a long-double sum (u's entries are floats,
  // exact there): the floor's factor of 100 K leaves its last bits without effect, and a vector of
  // mp100 numbers per step cost more than the forward pass of a parameter-free layer.
  std::vector<long double> u_abs;
  if constexpr (!std::is_same_v<T, mp100>)
    for (Index i = 0; i < u.size(); ++i) u_abs.push_back(std::abs(u(i).template convert_to<long double>()));
  const auto output_terms = [&](const Matrix<T>& Yh) {
    if constexpr (std::is_same_v<T, mp100>) {
      return mp100(abs_vec(u).dot(abs_vec(vec(Yh))));
    } else {
      long double sum = 0;
      for (Index i = 0; i < Yh.size(); ++i) sum += u_abs[std::size_t(i)] * std::abs(static_cast<long double>(Yh(i)));
      return mp100(sum);
    }
  };
  // The fit takes the `fit` smallest steps above the floor: the ladder runs from its smallest step up
  // and first stops there, which leaves that fit as it was and saves the forward passes of the larger
  // steps (a third of the check on a large dense layer, half of it in double). mp100 adds no noise to
  // the fit and never needs them; float and double take them only when the order is low (below).
  // Four steps in float and double, whose remainders carry round-off noise; three in mp100, whose
  // remainders are exact to 1e-97 against h² ≥ 1e-36 (three points fix a slope there as four do, and
  // each step is an mp100 forward pass: a fifth of verify on ResNet-20).
  const std::size_t fit = c.is_mp ? 3 : 4;
  std::vector<int> ladder = taylor_ladder<T>();
  std::reverse(ladder.begin(), ladder.end());
  std::size_t next_step = 0;
  std::size_t above_floor = 0;
  const auto climb = [&](bool stop_at_fit) {
    for (; next_step < ladder.size(); ++next_step) {
      if (stop_at_fit && above_floor == fit) break;
      check_deadline();
      const int k = ladder[next_step];
      const T h = T(std::ldexp(1.0, -k));
      Vector<T> zz;
      if constexpr (std::is_same_v<T, mp100>) {
        zz.resize(s.n);  // z + h v in place (see dot_mp); h = 2⁻ᵏ scales exactly
        for (Index i = 0; i < s.n; ++i) {
          mpfr_mul_2si(zz(i).backend().data(), v(i).backend().data(), -k, MPFR_RNDN);
          mpfr_add(zz(i).backend().data(), zz(i).backend().data(), z(i).backend().data(), MPFR_RNDN);
        }
      } else {
        zz = z + h * v;
      }
      const Matrix<T> Yh = forward_on(zz);
      // The remainder of the step actually taken: z + h v rounds in T by up to u_T |z|, which moves φ by
      // gᵀδ, a constant that does not fall with h and can exceed the floor where |g||z| ≫ |u||y|
      // (layer_norm at a tie: gradients of γ/√ε next to outputs of β). gᵀ(zz − z): step_slope.
      const mp100 phi_h = scalar_cast<mp100>(T(uT.dot(vec(Yh))));
      const mp100 r = abs(mp100(phi_h - scalar_cast<mp100>(phi0) - step_slope(bw.g, zz, z)));
      using boost::multiprecision::isfinite;
      if (!isfinite(r)) continue;
      const mp100 floor_h = floor +
                            mp100(100 * c.K) * c.u_T *
                                (output_terms(Yh) + scalar_cast<mp100>(h) * gv_mag) +
                            scalar_cast<mp100>(h) * g_bound_v;
      above_floor += r > floor_h;
      steps.push_back({k, std::move(zz), phi_h, r, floor_h, vec(Yh)});
    }
    std::sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) { return a.k < b.k; });
  };
  climb(true);
  // The `fit` smallest steps whose remainder stands above its floor plus `noise(step)`, as (h, r) for the
  // fit, largest first: all the fit and the verdicts below read. Sought from the smallest step up, so
  // that the noise (an mp100 forward pass a step) is measured at no larger step than needed.
  std::vector<double> hs, rs;
  std::vector<int> ks;
  const auto select = [&](const auto& noise) {
    hs.clear(), rs.clear(), ks.clear();
    for (auto st = steps.rbegin(); st != steps.rend() && hs.size() < fit; ++st) {
      if (st->r <= st->floor_h || st->r <= st->floor_h + noise(*st)) continue;  // noise only where needed
      hs.push_back(std::ldexp(1.0, -st->k));
      rs.push_back(to_double(st->r / floor));  // normalised so that double holds mp100's tiny remainders
      ks.push_back(st->k);
    }
    std::reverse(hs.begin(), hs.end()), std::reverse(rs.begin(), rs.end()), std::reverse(ks.begin(), ks.end());
  };
  const auto order = [&] {
    const std::size_t m = std::min(fit, hs.size());
    return slope(std::vector<double>(hs.end() - m, hs.end()), std::vector<double>(rs.end() - m, rs.end()));
  };
  select([](const Step&) { return mp100(0); });
  if (!c.is_mp && hs.size() >= 2 && order() < 1.5 && next_step < ladder.size()) {
    climb(false);  // the noise below may reject some of the steps: the larger ones stand in for them
    select([](const Step&) { return mp100(0); });
  }
  moved.set_parameters(theta_T);
  std::optional<decltype(build_on<mp100>(c.make, s.p.theta))> lm;
  // The same ladder in mp100 with the exact slope on the selected steps (the last m of ks): the exact
  // function's order, or nullopt where an exact remainder is 0. Memoised by the steps it was taken on.
  std::vector<int> exact_ks;
  std::optional<double> exact_order_memo;
  const auto exact_order_on_selection = [&]() -> std::optional<double> {
    const std::size_t m = std::min(fit, hs.size());
    const std::vector<int> sel(ks.end() - m, ks.end());
    if (!exact_ks.empty() && sel == exact_ks) return exact_order_memo;
    const Vector<mp100> zm = vector_cast<mp100>(z);
    const Vector<mp100> vm = vector_cast<mp100>(v);
    if (!lm) lm.emplace(build_on<mp100>(c.make, s.p.theta));
    lm->set_parameters(s.p.theta);
    const auto phim = [&](const Vector<mp100>& zz) {
      return mp100(u.dot(vec(forward_at(*lm, zz, s.in_rows, s.batch))));
    };
    // φ at z itself is the truth's output when z holds the point's numbers (they are floats, exact in
    // every rung): the same mp100 forward pass, not run twice.
    const Index nx = s.p.X.size();
    const bool at_point = zm.head(nx).cwiseEqual(Vector<mp100>(vec(s.p.X))).all() &&
                          zm.tail(s.P).cwiseEqual(s.p.theta).all();
    const mp100 p0 = at_point ? mp100(u.dot(vec(s.truth.Y))) : phim(zm);
    std::vector<double> rt;
    bool ok = true;
    for (const int k : sel) {
      const mp100 h = ldexp(mp100(1), -k);
      const mp100 r = abs(phim(Vector<mp100>(zm + h * vm)) - p0 - h * s.slope_true);
      if (r == 0) ok = false;
      rt.push_back(ok ? to_double(r / floor) : 1.0);
    }
    exact_ks = sel;
    exact_order_memo = ok ? std::optional<double>(slope(std::vector<double>(hs.end() - m, hs.end()), rt)) : std::nullopt;
    return exact_order_memo;
  };
  // A low order in float or double that the exact function shows on the same steps (a kink within h)
  // passes as below, whatever the floor's noise terms would add: taken first, it spares the noise's
  // mp100 forward pass a step (most of the check on a large network, where the steps cross ReLU kinks).
  bool function_order = false;
  if (!c.is_mp && hs.size() >= 2 && order() < c.tolerances.taylor_min_order) {
    const std::optional<double> eo = exact_order_on_selection();
    function_order = eo && std::abs(*eo - order()) <= c.tolerances.taylor_order_match;
  }
  std::string noise_note;
  // The noise a step's remainder must stand above, beside its floor; the lambdas it calls live as long.
  std::function<mp100(const Step&)> noise = [](const Step&) { return mp100(0); };
  const auto forward_error = [&](const Vector<T>& zz, const Vector<mp100>& rounded) {
    const Vector<mp100> zm = vector_cast<mp100>(zz);
    lm->set_parameters(zm.tail(s.P));
    const Vector<mp100> exact = vec(lm->forward(Eigen::Map<const Matrix<mp100>>(zm.data(), s.in_rows, s.batch)));
    return mp100(abs_vec(u).dot(abs_vec(Vector<mp100>(rounded - exact))));
  };
  if (!function_order && !c.is_mp && hs.size() >= 2 && order() < c.tolerances.taylor_min_order) {
    // Forward in T may round relative to inner terms far larger than y (attention scores of 1e4 turned
    // into O(1) weights), and that noise, not h², is what the remainder shows at small h. Measured
    // against mp100 at z and at each z + h v, four times it joins the floor; a wrong gradient's h|Δg·v|
    // still stands above it at the larger steps.
    lm.emplace(build_on<mp100>(c.make, s.p.theta));
    const mp100 e0 = forward_error(z, vector_cast<mp100>(Vector<T>(vec(f.Y))));
    noise = [&, e0](const Step& st) { return mp100(4) * (e0 + forward_error(st.zz, vector_cast<mp100>(st.y))); };
    select(noise);
    lm->set_parameters(s.p.theta);
    noise_note = " (the forward pass's own rounding, measured against mp100, in the floor)";
  }
  if (!function_order && hs.size() >= 2 && order() < c.tolerances.taylor_min_order && !c.emulated().g.empty()) {
    // g carries the rounding of backward's formula as written, which may stand far above the bound
    // from |J|ᵀ|u| (softplus′ as 1 − e^(−y) below u_T): h times K times its emulated spread along v is
    // a remainder linear in h that says nothing of the gradient's correctness, and joins the floor.
    const Vector<mp100> center = c.is_mp ? Vector<mp100>(vector_cast<mp100>(bw.g)) : c.own_gradient();
    std::vector<Vector<mp100>> along_v;
    for (const auto& g : c.emulated().g)
      along_v.push_back(Vector<mp100>::Constant(1, mp100(abs_vec(Vector<mp100>(g - center)).dot(abs_vec(s.p.v)))));
    const mp100 spread_v = c.formula_spread(along_v, Vector<mp100>::Zero(1))(0);
    const auto before = noise;
    noise = [before, spread_v](const Step& st) { return before(st) + ldexp(mp100(1), -st.k) * spread_v; };
    select(noise);
    if (lm) lm->set_parameters(s.p.theta);
    noise_note += " (h times the spread of backward's formula with the rung's rounding emulated, in the floor)";
  }
  scope.r.evaluations = 2 * steps.size() + 1;
  scope.r.metric = "observed order of the Taylor remainder";
  scope.r.formula = fmt::format(
      "least-squares slope of log r(h) on the {} smallest h above the round-off floor; pass when ≥ 1.5 "
      "(≈2 for a right gradient, ≈1 for a wrong one), or when the exact remainder (or, in float/double, "
      "the remainder with forward mode's slope in that rung) has the same order",
      fit);
  scope.r.threshold = c.tolerances.taylor_min_order;
  bool holds = true;
  if (hs.size() < 2) {
    holds = true;
    scope.r.value = 2;
    scope.r.message = "remainder at round-off level along v: f is linear along v at this resolution" + noise_note;
  } else {
    const std::size_t m = std::min(fit, hs.size());
    std::vector<double> h_fit(hs.end() - m, hs.end());
    scope.r.value = order();
    if (scope.r.value >= c.tolerances.taylor_min_order) {
      holds = true;
      scope.r.message = fmt::format("remainder falls with order {:.2f}", scope.r.value) + noise_note;
    } else {
      // Same ladder in mp100 with the exact slope: is the low order a property of f (a kink within h)?
      const std::optional<double> exact = exact_order_on_selection();
      const bool ok = exact.has_value();
      const double exact_order = ok ? *exact : 2.0;
      // T's own function: the same ladder with the slope of forward mode in T (dual<T>, which reads
      // forward only) along each step. Where T's rounding puts a kink within reach of z (float's
      // sigmoid ties inputs 1e-9 apart and a max pool takes the other entry), the function T computes
      // has another derivative at z than along the ladder, and backward follows it: the same low order
      // with that slope says so. The checks against mp100 judge that gradient.
      std::optional<double> own_order;
      if (!c.is_mp && !(ok && std::abs(exact_order - scope.r.value) <= c.tolerances.taylor_order_match)) {
        try {
          using R = forward_rung_t<T>;  // float for the 16-bit rungs, on their rounded X and θ
          auto forward_mode = dual_forward(c.make(rung<dual<R>>{}));
          const Vector<R> theta = vector_cast<R>(vector_cast<T>(s.p.theta));
          const Matrix<R> XR = matrix_cast<R>(c.X);
          std::vector<double> ro;
          for (std::size_t i = hs.size() - m; i < hs.size(); ++i) {
            const auto st = std::find_if(steps.begin(), steps.end(), [&](const Step& x) { return x.k == ks[i]; });
            const Matrix<T> d = Vector<T>(st->zz - z);
            const Vector<mp100> Jd =
                vector_cast<mp100>(Vector<R>(joint_jvp<R>(forward_mode, XR, theta, matrix_cast<R>(d)).col(0)));
            const mp100 r = abs(mp100(st->phi - scalar_cast<mp100>(phi0) - u.dot(Jd)));
            using boost::multiprecision::isfinite;
            if (r == 0 || !isfinite(r)) throw error("no remainder");
            ro.push_back(to_double(r / floor));
          }
          own_order = slope(h_fit, ro);
        } catch (const std::exception&) {
          // no usable forward mode in T here: the exact order alone decides
        }
      }
      if (ok && std::abs(exact_order - scope.r.value) <= c.tolerances.taylor_order_match) {
        holds = true;
        scope.r.message = fmt::format("order {:.2f}, as the exact function's ({:.2f}): f is not smooth at this scale",
                                      scope.r.value, exact_order);
      } else if (own_order && *own_order < c.tolerances.taylor_min_order &&
                 std::abs(*own_order - scope.r.value) <= c.tolerances.taylor_order_match) {
        holds = true;
        scope.r.message = fmt::format(
            "order {:.2f}, as with {}'s own forward-mode slope ({:.2f}; exact function: "
            "{:.2f}): the function {} computes has a kink within its rounding of z",
            scope.r.value, c.prec, *own_order, exact_order, c.prec);
      } else {
        holds = false;
        scope.r.message = fmt::format(
            "Taylor remainder falls with order {:.2f} (exact gradient: {:.2f}): the gradient "
            "is wrong",
            scope.r.value, exact_order);
      }
    }
  }
  // A tolerance-free identity on every rung: the order holds (or is the function's own) or the
  // gradient is wrong.
  Evidence e;
  e.what = "the Taylor remainder's order";
  e.precision = c.prec;
  e.exact_rung = c.is_mp;
  e.identity = true;
  e.ratio = holds ? 0.0 : std::numeric_limits<double>::infinity();
  const std::string said = scope.r.message;
  apply(scope.r, judge(e, c.tolerances));
  scope.r.message = said;
  return scope.done();
}

/// Batch: for sample-independent layers each sample alone gives the same output and its dθ sums up.
template <class T, class Make>
std::optional<CheckResult> check_batch(RungContext<T, Make>& c, typename RungContext<T, Make>::Forward& f, const typename RungContext<T, Make>::Backward& bw) {
  const PointState& s = c.s;
  const Vector<mp100>& u = c.u;
  if (!(s.sample_independent && s.batch > 1 && s.truth.full)) return std::nullopt;
  CheckScope scope("batch = sum of samples", s.subject, c.prec, s.seed);
  try {
    Vector<T> dtheta_sum = Vector<T>::Zero(s.P);
    Matrix<T> Ycols(f.Y.rows(), f.Y.cols());
    for (Index b = 0; b < s.batch; ++b) {
      const Matrix<T> Xb = c.X.col(b);
      const Matrix<T> Yb = f.layer->forward(Xb);
      // One dθ for all samples: backward must add to it, so a backward that assigns dθ keeps only
      // the last sample's share and shows here (backward_z starts from dθ = 0 and cannot see it).
      f.layer->backward(Xb, Yb, Matrix<T>(c.U.col(b)), dtheta_sum);
      Ycols.col(b) = Yb;
    }
    Vector<T> joined(f.Y.size() + s.P), batched(f.Y.size() + s.P);
    joined << vec(Ycols), dtheta_sum;
    batched << vec(f.Y), bw.g.tail(s.P);
    const Vector<mp100> e = vector_cast<mp100>(batched);
    Vector<mp100> sc(e.size());
    sc << abs_vec(vec(s.truth.Y)) +
              (s.absolute_J ? *s.absolute_J : abs_mat(s.truth.J)) *
                  abs_vec(Vector<mp100>((Vector<mp100>(s.n) << vec(s.p.X), s.p.theta).finished())),
        s.gradient_magnitude(u).tail(s.P);
    Vector<mp100> bound(e.size());
    for (Index i = 0; i < e.size(); ++i)
      bound(i) = c.is_mp ? c.tol * sc(i) + rounding_bound(mp100(s.n + s.batch), sc(i), c.K, c.u_T)
                         : rounding_bound(mp100(s.n + s.batch), sc(i), c.K, c.u_T) + c.floor_T;
    scope.r.metric = "max |batch − per-sample| / bound";
    scope.r.formula = "forward column by column and Σ_s dθ_s against the batch results";
    const Index ny = f.Y.size();
    const Layout& L = s.layout;
    const Index nx = s.in_rows * s.batch;
    const std::function<std::string(Index)> where = [ny, nx, &L](Index i) {
      return i < ny ? fmt::format("y[{}]", i) : L.where(nx + i - ny);
    };
    const std::function<std::string(Index)> block = [ny, nx, &L](Index i) {
      return i < ny ? std::string("y") : L.block(nx + i - ny);
    };
    const Compared compared = compare(scope.r, e, joined, bound, sc, where, block);
    Evidence ev = c.evidence("batch of one per sample", scope.r, compared);
    ev.identity = true;
    // A batch that overflows in float/double (the checks against mp100 judge that) leaves nothing to
    // compare: NaN never equals NaN, and overflowing does not make a layer couple samples.
    using boost::multiprecision::isfinite;
    ev.value_finite = compared.finite && std::all_of(e.begin(), e.end(), [](const mp100& x) { return isfinite(x); });
    if (!(scope.r.value <= 1) && ev.value_finite && !c.emulated().g.empty()) {
      // Both routes round the same formula: they may differ by twice its emulated spread (a mean over
      // a batch and over one sample sum in another order).
      // around the code's own mp100 results (a wrong batch route cannot widen its own bound)
      const Vector<mp100> center_y = vec(s.truth.Y);
      const Vector<mp100> center_g = c.is_mp ? Vector<mp100>(vector_cast<mp100>(bw.g)) : c.own_gradient();
      std::vector<Vector<mp100>> runs;
      for (std::size_t k = 0; k < c.emulated().y.size(); ++k) {
        Vector<mp100> run(e.size());
        run << c.emulated().y[k], c.emulated().g[k].tail(s.P);
        runs.push_back(std::move(run));
      }
      Vector<mp100> center(e.size());
      center << center_y, center_g.tail(s.P);
      CheckResult again = scope.r;
      again.worst.clear(), again.message.clear();
      compare(again, e, joined, Vector<mp100>(bound + mp100(2) * c.formula_spread(runs, center)), sc, where, block);
      ev.ratio_with_formula_rounding = again.value;
      if (again.value <= 1) {
        scope.r = std::move(again);
        scope.r.formula += " + 2K · spread of the same code with " + c.prec + "'s rounding emulated";
      }
    }
    apply(scope.r, judge(ev, c.tolerances));
    if (scope.r.verdict == Verdict::fail)
      scope.r.message = "a batch differs from its samples one at a time (samples coupled or dθ not accumulated)";
    scope.r.evaluations = 2 * s.batch;
  } catch (const std::exception& e) {
    apply(scope.r, judge(Evidence::of_throw(std::string("batch of one: ") + e.what()), c.tolerances));
  }
  return scope.done();
}

/// Runs every check on rung T at one point and adds their results to `out`. `reference_wrong`: mp100
/// already found this code wrong here. `judge_only` (mp100 when it was not asked for): backward against
/// the oracle only, kept out of the report, so that a float/double error beyond its bound is called
/// wrong when mp100 finds the same code wrong. Returns whether backward is wrong on this rung.
template <class T, class Make>
bool checks_on_rung(Make& make, PointState& s, const VerifyOptions& opt, Collector& out, bool reference_wrong,
                    bool judge_only = false, bool* own_range_exceeded = nullptr) {
  RungContext<T, Make> c{make, s, opt, reference_wrong};
  const AccumulationScope accumulation(opt.accumulation);  // the 16-bit rungs' products (float16.hpp)
  if constexpr (!std::is_same_v<T, mp100>) {
    // A point beyond the rung's range (wide_range's 1e8 in fp16, whose largest number is 65504) is no
    // point of the rung: its checks there are not evaluated, and say why.
    using std::isfinite;
    const auto finite = [](const auto& M) {
      return std::all_of(M.data(), M.data() + M.size(), [](const T& x) { return isfinite(x); });
    };
    if (!finite(c.X) || !finite(c.U) || !finite(Vector<T>(vector_cast<T>(s.p.theta)))) {
      CheckScope scope("range", s.subject, c.prec, s.seed);
      Evidence e;
      e.what = "the point";
      e.oracle_trouble = true;
      e.oracle_trouble_reason =
          fmt::format("the point's inputs or parameters lie beyond {}'s range (its largest number is {:.6g}), so "
                      "there is no {} computation at it",
                      c.prec, double(std::numeric_limits<T>::max()), c.prec);
      apply(scope.r, judge(e, c.tolerances));
      if (!judge_only) out.add(scope.done());
      return false;
    }
  }
  if constexpr (!std::is_same_v<T, mp100>) {
    if (s.truth.full) {  // small layers: measured up front (see RungContext::conditioning_measured)
      const Clock::time_point start = Clock::now();
      c.conditioning_evaluations = ensure_conditioning(c);
      c.conditioning_time = Clock::now() - start;
      if (c.conditioning_unbounded) {
        CheckScope scope("conditioning", s.subject, c.prec, s.seed);
        Evidence e;
        e.what = "the rounding bound";
        e.oracle_trouble = true;
        e.oracle_trouble_reason = fmt::format(
            "the exact derivative (dual numbers in mp100) is not finite within {}'s rounding of this point: no "
            "rounding bound exists for {} here, so its checks are not evaluated at this point",
            c.prec, c.prec);
        apply(scope.r, judge(e, c.tolerances));
        if (!judge_only) out.add(scope.done());
        return false;
      }
    }
  }
  // Each check takes what the forward and backward checks left (the layer on T, Y, g) as arguments.
  auto [forward_result, f] = check_forward(c);
  if (forward_result) out.add(std::move(*forward_result));
  if (!f.layer) return c.is_mp;
  auto [backward_result, bw] = check_backward(c, f);
  // mp100's own backward beyond its capped range: the point says nothing; the caller sets it aside.
  if (own_range_exceeded && bw.own_range_exceeded) {
    *own_range_exceeded = true;
    return false;
  }
  if (!judge_only) out.add(std::move(backward_result));
  if (bw.g.size() == 0) return c.is_mp;
  if (judge_only) return bw.wrong;
  using Context = RungContext<T, Make>;
  using Check = std::optional<CheckResult> (*)(Context&, typename Context::Forward&, const typename Context::Backward&);
  const Check checks[] = {
      check_dtheta_accumulates<T, Make>,
      check_parameter_backward<T, Make>,
      check_jacobians<T, Make>,
      [](Context& r, typename Context::Forward& f, const typename Context::Backward& b) -> std::optional<CheckResult> {
        return check_dot_product(r, f, b);
      },
      [](Context& r, typename Context::Forward& f, const typename Context::Backward& b) -> std::optional<CheckResult> {
        return check_taylor(r, f, b);
      },
      check_batch<T, Make>,
  };
  // Whether backward adds to dθ (and backward_parameters adds what backward does) is a property of the
  // code, not of its rounding, and these checks judge it as an identity on every rung: on a large layer
  // (projection mode) mp100 leaves them to double, where each costs a double backward instead of an
  // mp100 one (an eighth of verify on ResNet-20). Where double is not judged, or J is formed, mp100 runs them.
  const bool identities_on_double =
      c.is_mp && !s.truth.full &&
      std::find(opt.precisions.begin(), opt.precisions.end(), "double") != opt.precisions.end();
  for (const Check check : checks) {
    if (identities_on_double && (check == checks[0] || check == checks[1])) continue;
    if (std::optional<CheckResult> result = check(c, f, bw)) out.add(std::move(*result));
  }
  return bw.wrong;
}

}  // namespace verify_detail
}  // namespace bpcheck
