#pragma once
// verify_layer_with: the points of a verification (drawn from the named distributions, resampled off
// kinks), the exact quantities at each by the oracles in mp100, and the checks of every rung
// (verify_checks.hpp), mp100 first. Instantiated in lib/src for AnyLayerFactory (verify_layer.cpp)
// and for a network's loss (verify_builtin.cpp).
#include <mutex>

#include "bpcheck/parallel.hpp"
#include "verify_second_order.hpp"

namespace bpcheck {
namespace verify_detail {

/// Whether [J_x J_θ] (rows × n) is formed: on request up to the limit (refused beyond it), otherwise only
/// where it is small enough to cost a bounded number of passes.
inline bool full_jacobians(const VerifyOptions& opt, Index rows, Index n) {
  const Index entries = rows * n;
  if (opt.full && entries > opt.full_jacobian_limit)
    throw input_error(
        fmt::format("verify: full Jacobians here have {} entries ({} × {}), above the limit of {}; "
                    "raise the limit (--full-limit {}) or judge by projections (without --full)",
                    entries, rows, n, opt.full_jacobian_limit, entries));
  return opt.full ? true : n <= opt.full_jacobian_columns && entries <= opt.full_jacobian_limit;
}

/// Options that cannot describe a verification are refused before any work.
inline void validate_options(const VerifyOptions& opt) {
  if (opt.threads < 0) throw input_error("verify: threads must be 0 (one per core) or positive");
  if (opt.projections < 1) throw input_error("verify: projections must be positive");
  if (opt.order != 1 && opt.order != 2)
    throw input_error(fmt::format("verify: order must be 1 (first-order checks) or 2 (also second-order), not {}",
                                  opt.order));
  if (opt.points <= 0) throw input_error("verify: points must be positive");
  if (!(opt.time_limit >= 0) || !std::isfinite(opt.time_limit))
    throw input_error("verify: the time limit must be a number of seconds ≥ 0 (0: none)");
  if (opt.batch <= 0 && !opt.inputs) throw input_error("verify: batch must be positive");
  for (const auto& p : opt.precisions)
    if (p != "float" && p != "double" && p != "mp100" && p != "bf16" && p != "fp16")
      throw input_error("verify: unknown precision '" + p + "' (known: float, double, mp100, bf16, fp16)");
  for (const auto& d : opt.distributions)
    if (std::find(point_distributions().begin(), point_distributions().end(), d) == point_distributions().end())
      throw input_error("verify: unknown input distribution '" + d +
                        "' (known: uniform, saturation, wide_range, near_ties)");
  if (!(opt.input_scale > 0) || !std::isfinite(opt.input_scale))
    throw input_error("verify: the input scale must be positive and finite");
}

/// The exact quantities at a drawn (X, θ): Y, the cotangent U and direction v (drawn from `rng`),
/// and J by dual numbers in mp100, or J [V v] in one pass in projection mode; the absolute Jacobian
/// and sweeps a layer states. Its own dual layer (dual_forward sets parameters on it) keeps points
/// independent, so that they may run in parallel.
template <class Make>
void exact_truth(Make& make, PointState& s, const VerifyOptions& opt, Random& rng, bool index_input,
                 std::optional<Matrix<mp100>> forward_done = std::nullopt) {
  const Clock::time_point start = Clock::now();
  // The layer on dual<mp100> (nine mp100 per parameter) is built for the oracle's pass only and gone
  // after it: it is the largest thing a point holds.
  auto layer_mp = build_on<mp100>(make, s.p.theta);
  const Matrix<mp100> Y = forward_done ? std::move(*forward_done) : Matrix<mp100>(layer_mp.forward(s.p.X));
  s.out_rows = Y.rows();
  s.p.U.resize(Y.rows(), Y.cols());
  for (Index i = 0; i < s.p.U.size(); ++i) s.p.U(i) = mp100(float_round(rng.symmetric()));
  s.p.v.resize(s.n);
  for (Index i = 0; i < s.n; ++i) s.p.v(i) = mp100(float_round(rng.symmetric()));
  if (index_input) s.p.v.head(s.p.X.size()).setZero();
  s.truth.Y = Y;
  const Vector<mp100> u = vec(s.p.U);
  s.truth.full = full_jacobians(opt, Y.size(), s.n);
  if (s.truth.full) {
    s.truth.J = joint_jacobian<mp100>(dual_forward(make(rung<dual<mp100>>{})), s.p.X, s.p.theta);
    s.truth.evaluations = (s.n + dual_width - 1) / dual_width;
    s.truth.g = s.truth.J.transpose() * u;
    s.truth.g_scale = abs_mat(s.truth.J).transpose() * abs_vec(u);
    s.slope_true = u.dot(s.truth.J * s.p.v);
    // AnyLayer always has the member (it falls back to |J|): ask whether the layer inside states it.
    if constexpr (std::is_same_v<decltype(layer_mp), AnyLayer<mp100>>) {
      if (layer_mp.has_absolute_jacobian()) s.absolute_J = layer_mp.absolute_jacobian(s.p.X);
    } else if constexpr (LayerWithAbsoluteJacobian<decltype(layer_mp)>) {
      s.absolute_J = layer_mp.absolute_jacobian(s.p.X);
    }
    if (s.absolute_J && (s.absolute_J->rows() != s.truth.J.rows() || s.absolute_J->cols() != s.truth.J.cols()))
      throw error(fmt::format("absolute_jacobian is {}×{}; [J_x J_θ] is {}×{}", s.absolute_J->rows(),
                              s.absolute_J->cols(), s.truth.J.rows(), s.truth.J.cols()));
    if constexpr (requires { layer_mp.absolute_sweep(s.p.X, s.p.U); }) {
      s.sweep = layer_mp.absolute_sweep(s.p.X, s.p.U);
      s.sweep_unit = layer_mp.absolute_sweep(s.p.X, Matrix<mp100>::Ones(s.p.U.rows(), s.p.U.cols()));
      s.sweep_terms = mp100(layer_mp.rounding_terms());
    }
  } else {
    // J [V v] in one pass of dual numbers (k + 1 lanes), seeded from the float directions and v
    // (column-major, one lane per column). Half of V moves X only and half θ only (all of it the one
    // there is, when there is one; mixed for k = 1): each block's gradient is judged on its own, an
    // error in the small dX not beside the size of dθ, and a lane that moves one factor of a product
    // (W x) needs one product of its tangent where a mixed one needs two.
    const Index k = opt.projections, nx = s.p.X.size();
    s.truth.V.resize(s.n, k);
    for (Index i = 0; i < s.n * k; ++i) s.truth.V(i) = float(rng.symmetric());
    const Index input_columns = s.P == 0 ? k : index_input ? 0 : k == 1 ? -1 : k / 2;
    if (input_columns >= 0) {
      s.truth.V.topRightCorner(nx, k - input_columns).setZero();
      s.truth.V.bottomLeftCorner(s.P, input_columns).setZero();
    }
    const auto seed = [&](Index first, Index lanes, Matrix<dual<mp100>>& Xd, Vector<dual<mp100>>& td) {
      for (Index l = 0; l < lanes; ++l) {
        const auto lane = static_cast<std::size_t>(l);
        const auto direction = [&](Index i) { return first + l < k ? mp100(s.truth.V(i, first + l)) : s.p.v(i); };
        for (Index i = 0; i < nx; ++i) Xd(i).d[lane] = direction(i);
        for (Index i = 0; i < s.P; ++i) td(i).d[lane] = direction(nx + i);
      }
    };
    const Jvp<mp100> pass =
        jvp_detail::run<mp100>(dual_forward(make(rung<dual<mp100>>{})), s.p.X, s.p.theta, k + 1, seed);
    s.truth.JVv = pass.tangents;
    s.truth.evaluations = pass.passes;
    s.truth.JV = s.truth.JVv.leftCols(k);
    s.slope_true = u.dot(s.truth.JVv.col(k));
  }
  if constexpr (requires { layer_mp.activation_sweeps(s.p.X); }) {
    if (s.p.U.size() == 1) {
      if (s.truth.full) {
        s.activation_sweeps = layer_mp.activation_sweeps(s.p.X);
      } else {
        // The sweeps in absolute values form every layer's absolute Jacobian, O(Jacobian) work that
        // projections never do: each activation's rounding is taken relative to its own size instead.
        s.activation_sweeps.emplace();
        for (const auto& x : layer_mp.activations(s.p.X)) s.activation_sweeps->push_back(abs_vec(vec(x)));
      }
      s.value_terms = layer_mp.absolute_value(s.p.X, s.activation_sweeps->back());
    }
  }
  s.truth.time = Clock::now() - start;
}

/// The two oracles, dual numbers and central differences in mp100, must agree before either judges
/// the layer (full mode only: differences cost a pass per column).
template <class Make>
CheckResult check_oracles(Make& make, const PointState& s, bool backward_wrong) {
  const auto layer_mp = build_on<mp100>(make, s.p.theta);
  CheckScope c("oracles agree (JVP = FD)", s.subject, "mp100", s.seed);
  Vector<mp100> z(s.n);
  z << vec(s.p.X), s.p.theta;
  std::optional<FdJacobian<mp100>> differences;
  try {
    differences.emplace(jacobian_fd(
        [&layer_mp, &s](const Vector<mp100>& zz) { return vec(forward_at(layer_mp, zz, s.in_rows, s.batch)); }, z,
        FdScheme::central));
  } catch (const not_finite_error& e) {
    Evidence trouble;
    trouble.what = "the oracles";
    trouble.oracle_trouble = true;
    trouble.oracle_trouble_reason = std::string("central differences: ") + e.what();
    apply(c.r, judge(trouble, Tolerances{}));
    return c.done();
  }
  const auto& fd = *differences;
  const Vector<mp100> e = vec(s.truth.J), a = vec(fd.value);
  const Vector<mp100> sc = abs_vec(e);
  Vector<mp100> bound(e.size());
  const mp100 fd_tol = from_string<mp100>("1e-30");
  const mp100 floor = fd_tol * (sc.size() ? sc.maxCoeff() : mp100(0)) + mp100(1e-300);
  const Index rows = s.truth.J.rows();
  // Central differences round relative to the terms forward sums, which the error estimate (from
  // |y|) misses where they cancel: an nll of tanh outputs 1 + (−1 + 1e-90) is 1e-90 from terms of 1,
  // and a step of 1e-30 moves it by 1e-120, below mp100's resolution of those terms. 2ε (|y| + M|z|)/h.
  Vector<mp100> y_terms = abs_vec(vec(s.truth.Y)) + (s.absolute_J ? *s.absolute_J : abs_mat(s.truth.J)) * abs_vec(z);
  if (s.value_terms && y_terms.size() == 1) y_terms(0) = std::max(y_terms(0), *s.value_terms);
  const mp100 eps = scalar_traits<mp100>::epsilon();
  for (Index i = 0; i < e.size(); ++i)
    bound(i) =
        fd_tol * sc(i) + floor + mp100(4) * (fd.error_estimate(i) + 2 * eps * y_terms(i % rows) / fd.step(i / rows));
  const Layout& L = s.layout;
  compare(
      c.r, e, a, bound, sc, [rows, &L](Index i) { return fmt::format("J[{},{}]", i % rows, i / rows); },
      [rows, &L](Index i) { return "J_" + L.block(i / rows); });
  c.r.metric = "max |J_jvp − J_fd| / (1e-30 |J| + 4 (error estimate + 2ε (|y| + M|z|)/h))";
  c.r.formula = "central differences in mp100 (step ≈ 1e-34) against dual numbers";
  Evidence agreement;
  agreement.what = "the dual-number Jacobian and central differences";
  agreement.precision = "mp100";
  agreement.exact_rung = true;
  agreement.ratio = c.r.value;
  // Differences that disagree with dual numbers which backward matches to 1e-40: either forward mode
  // and backward are wrong alike, or forward rounds too coarsely here for differences
  // (x·½(1 + erf(x/√2)) at x = −20 keeps 11 of mp100's digits, constant over a step of 1e-34).
  agreement.oracle_trouble = !(c.r.value <= 1) && !backward_wrong;
  agreement.oracle_trouble_reason =
      "central differences disagree with dual numbers, which backward matches: forward rounds too coarsely here "
      "for differences (or forward mode and backward are wrong alike)";
  apply(c.r, judge(agreement, Tolerances{}));
  if (c.r.verdict == Verdict::fail)
    c.r.message =
        "the oracles disagree: forward is not transparent to dual numbers (a cast to double?) or "
        "not smooth here";
  c.r.evaluations = 2 * s.n;
  return c.done();
}

/// What one point adds to a report: its results, in the order the checks ran, and the kind of inputs
/// it drew.
struct PointOutcome {
  Collector out;
  std::string inputs;
  std::vector<SetAside> redrawn;         ///< draws replaced, by reason
  std::optional<std::string> not_evaluated;  ///< why the point has no verdict
};

/// Why a drawn point cannot be evaluated by the mp100 checks of a float/double verdict, or empty: the
/// layer's own forward in mp100 leaves double's range there, at its output or in any intermediate
/// (MPFR raises its overflow flag under double's exponent range), or is not finite. Otherwise no result
/// reached the lowered largest exponent (the smallest is not changed), so every operation rounded as in
/// mp100's own range: Y is the exact forward, handed to `forward_done` for the truth to reuse.
template <class L>
std::string unevaluable_forward(const L& layer_mp, const Matrix<mp100>& X,
                                std::optional<Matrix<mp100>>* forward_done = nullptr) {
  const ExponentRange range(ExponentRange::of_double);
  mpfr_clear_overflow();
  Matrix<mp100> Y = layer_mp.forward(X);
  using boost::multiprecision::isfinite;
  if (mpfr_overflow_p()) {
    mpfr_clear_overflow();
    return "the exact forward (mp100) leaves double's range there";
  }
  if (!std::all_of(Y.data(), Y.data() + Y.size(), [](const mp100& y) { return isfinite(y); }))
    return "the exact forward (mp100) is not finite there";
  if (forward_done) *forward_done = std::move(Y);
  return {};
}

/// Whether the oracles' exact quantities at the point are finite (dual numbers in mp100 may overflow
/// where the values do not: the derivative of x/(1 + e⁻ˣ) at x = −700).
inline bool truth_finite(const PointState& s) {
  using boost::multiprecision::isfinite;
  const auto finite = [](const auto& M) {
    return std::all_of(M.data(), M.data() + M.size(), [](const mp100& x) { return isfinite(x); });
  };
  return isfinite(s.slope_true) && finite(s.truth.Y) && (s.truth.full ? finite(s.truth.J) : finite(s.truth.JVv));
}

/// One subject of a verification (a layer factory, or a network's loss): what its points share, read
/// only once built, so that its points may run in any order and on any thread (given a factory that
/// may be called from several threads at once).
template <class Make>
class Subject {
 public:
  Subject(Make& make, const VerifyOptions& opt) : make(make), opt(opt) {
    validate_options(opt);
    if (opt.time_limit > 0)
      deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.time_limit));
    auto proto = make(rung<mp100>{});
    in = proto.input_size();
    // An input of integer indices (embedding) is drawn as valid indices and never moved: no gradient
    // with respect to it exists, so the Taylor and dot-product directions leave it alone.
    index_input = has_index_input(proto);
    index_count = index_input_count(proto);
    if (index_input && index_count <= 0)
      throw input_error("verify: a layer with index input must have indices to draw");
    blocks = proto.parameter_blocks();
    P = parameter_count(blocks);
    subject = proto.type_name();
    sample_independent = proto.input_size() > 0 && [&] {
      if constexpr (std::is_same_v<decltype(proto), AnyLayer<mp100>>)
        return proto.sample_independent();
      else
        return is_sample_independent<decltype(proto)>();
    }();
    if (!opt.random_parameters) given_theta = Vector<mp100>(proto.parameters());
  }

  int points() const { return opt.points; }

  /// The checks at point `point` (its seed and distribution follow from the index alone); a point still
  /// running at the deadline is abandoned (its partial results dropped) and reported as not evaluated.
  PointOutcome run_point(int point) const {
    const DeadlineScope deadline_scope(deadline);
    const ExponentRange range(ExponentRange::within_point);
    try {
      return run_point_within_limits(point);
    } catch (const time_exceeded&) {
      PointOutcome outcome;
      outcome.not_evaluated = fmt::format("the time limit of {:g} s was reached", opt.time_limit);
      return outcome;
    }
  }

 private:
  PointOutcome run_point_within_limits(int point) const {
    PointOutcome outcome;
    const std::uint64_t seed = opt.seed + 7919ULL * std::uint64_t(point);
    Random rng(seed);
    const std::string& distribution = opt.distributions.empty()
                                          ? point_distributions().front()
                                          : opt.distributions[std::size_t(point) % opt.distributions.size()];
    PointState s;
    s.subject = subject;
    s.seed = seed;
    s.in_rows = in;
    s.P = P;
    s.sample_independent = sample_independent;

    // Draw (X, θ), resample while the point sits on a kink, and redraw while it cannot be evaluated.
    int resamples = 0, redraws = 0;
    bool on_kink = false;
    OneSidedJacobians<mp100> sides;
    const Tolerances tolerances = Tolerances::from(opt);
    for (;;) {
      std::string unevaluable;
      if (opt.inputs) {
        s.p.X = *opt.inputs;
        if (s.p.X.rows() != in)
          throw input_error(fmt::format("verify: inputs have {} rows, the layer takes {}", s.p.X.rows(), in));
        if (resamples > 0 && !index_input)  // jitter the given inputs by a relative 2^-10 to step off the kink
          for (Index i = 0; i < s.p.X.size(); ++i)
            s.p.X(i) += (abs(s.p.X(i)) + 1) * mp100(float_round(0x1p-10 * rng.symmetric()));
      } else {
        s.p.X.resize(in, opt.batch);
        const double base = float_round(opt.input_scale * rng.symmetric());
        for (Index i = 0; i < s.p.X.size(); ++i)
          s.p.X(i) = index_input ? mp100(rng.below(std::uint64_t(index_count)))
                                 : mp100(draw_input(distribution, rng, opt.input_scale, base, redraws));
      }
      s.batch = s.p.X.cols();
      if (opt.random_parameters) {
        s.p.theta.resize(P);
        const double scale = 1.0 / std::sqrt(double(std::max<Index>(in, 1)));
        for (Index i = 0; i < P; ++i) s.p.theta(i) = mp100(float_round(scale * rng.symmetric()));
      } else {
        s.p.theta = given_theta;
      }
      s.n = s.p.X.size() + P;
      auto layer_mp = build_on<mp100>(make, s.p.theta);
      // Drawn points only: given inputs are the user's, and are judged as they are.
      std::optional<Matrix<mp100>> forward_done;
      if (!opt.inputs) unevaluable = unevaluable_forward(layer_mp, s.p.X, &forward_done);
      on_kink = false;
      if (unevaluable.empty() && full_jacobians(opt, layer_mp.output_size() * s.batch, s.n)) {
        Vector<mp100> z(s.n);
        z << vec(s.p.X), s.p.theta;
        try {
          sides = one_sided_disagreement(
              [&layer_mp, &s](const Vector<mp100>& zz) { return vec(forward_at(layer_mp, zz, s.in_rows, s.batch)); },
              z);
          on_kink = sides.any_jump();
        } catch (const not_finite_error&) {
          unevaluable = "a difference stencil around the point leaves the function's range";
        }
      }
      if (unevaluable.empty() && on_kink && opt.resample_kinks && resamples < opt.max_resamples) {
        ++resamples;
        continue;
      }
      if (unevaluable.empty() && !on_kink) {
        try {
          exact_truth(make, s, opt, rng, index_input, std::move(forward_done));
          if (!truth_finite(s)) unevaluable = "the dual-number oracle (mp100) is not finite there";
        } catch (const not_finite_error&) {
          unevaluable = "the dual-number oracle (mp100) is not finite there";
        }
      }
      if (unevaluable.empty()) break;
      VerificationReport::count(outcome.redrawn, unevaluable);
      if (opt.inputs || ++redraws > tolerances.max_redraws) {
        outcome.redrawn.clear();
        outcome.not_evaluated = opt.inputs ? unevaluable + " (at the given inputs)"
                                           : fmt::format("{} redraws without an evaluable point; the last: {}",
                                                         tolerances.max_redraws, unevaluable);
        return outcome;
      }
      resamples = 0;
    }
    s.layout = Layout{in, s.batch, blocks};
    {
      const std::string kind = opt.inputs                  ? std::string("given")
                               : index_input               ? std::string("indices")
                               : distribution == "uniform" ? fmt::format("uniform ±{:g}", opt.input_scale)
                                                           : distribution;
      outcome.inputs = kind;
    }

    if (on_kink) {
      CheckScope c("differentiability", s.subject, "mp100", seed);
      c.r.metric = "one-sided derivatives that disagree";
      c.r.formula = "left and right differences (mp100) differ by more than 4× their error estimates";
      c.r.value = double(sides.jump_count());
      std::string first;
      for (Index j = 0; j < sides.jump.cols() && c.r.worst.size() < 5; ++j)
        for (Index i = 0; i < sides.jump.rows() && c.r.worst.size() < 5; ++i)
          if (sides.jump(i, j)) {
            WorstEntry w;
            w.block = s.layout.block(j);
            w.row = i;
            w.col = j;
            w.where = fmt::format("y[{}] w.r.t. {}", i, s.layout.where(j).substr(1));
            w.expected = "left " + bpcheck::to_string(sides.left(i, j));
            w.actual = "right " + bpcheck::to_string(sides.right(i, j));
            w.abs_error = to_double(abs(sides.left(i, j) - sides.right(i, j)));
            c.r.worst.push_back(std::move(w));
            if (first.empty()) first = s.layout.where(j).substr(1);
          }
      apply(c.r, judge(Evidence::of_kink("non-differentiable at " + first +
                                         (opt.resample_kinks ? " (after resampling)" : "") +
                                         ": one-sided derivatives disagree, so there is no gradient to check here"),
                       tolerances));
      outcome.out.add(c.done());
      return outcome;
    }
    if (resamples > 0) {
      CheckScope c("differentiability", s.subject, "mp100", seed);
      c.r.value = resamples;
      c.r.metric = "points resampled away from a kink";
      Evidence e;
      e.what = fmt::format("{} point(s) sat on a non-differentiable point and were resampled", resamples);
      e.exact_rung = true;
      apply(c.r, judge(e, tolerances));
      c.r.message = e.what;
      outcome.out.add(c.done());
    }

    // mp100 first: its verdict tells whether a float/double error is the same bug or that rung's own.
    const auto wants = [this](const char* p) {
      return std::find(opt.precisions.begin(), opt.precisions.end(), p) != opt.precisions.end();
    };
    // mp100 judges even when it was not asked for (then only its decisive check runs, unreported):
    // without it a wrong gradient in float or double could read as merely unstable.
    bool range_exceeded = false;
    const bool mp100_wrong =
        checks_on_rung<mp100>(make, s, opt, outcome.out, false, !wants("mp100"), &range_exceeded);
    if (range_exceeded) {
      // 0 · exp(1e5) in a backward that recomputes an unused intermediate: NaN under mp100's capped range
      // (and in double), while the exact gradient is finite. No verdict rests on this point.
      PointOutcome set_aside;
      set_aside.inputs = outcome.inputs;
      set_aside.redrawn = outcome.redrawn;
      set_aside.not_evaluated =
          "the layer's own backward overflows mp100's range here (its exponent is capped at 2^65536 within a "
          "point) where the exact gradient is finite";
      return set_aside;
    }
    if (s.truth.full) outcome.out.add(check_oracles(make, s, mp100_wrong));
    if (wants("float")) checks_on_rung<float>(make, s, opt, outcome.out, mp100_wrong);
    if (wants("double")) checks_on_rung<double>(make, s, opt, outcome.out, mp100_wrong);
    if (wants("bf16")) checks_on_rung<bf16>(make, s, opt, outcome.out, mp100_wrong);
    if (wants("fp16")) checks_on_rung<fp16>(make, s, opt, outcome.out, mp100_wrong);
    // Second order for a layer (a network's loss, LossLayer, is not a layer factory).
    if constexpr (std::is_same_v<std::remove_const_t<Make>, AnyLayerFactory>)
      if (opt.order == 2) second_order_checks(make, s, opt, outcome.out, index_input, wants);

    return outcome;
  }


 public:
  /// The report of all points, their outcomes in point order.
  VerificationReport report(std::vector<PointOutcome> outcomes) const {
    VerificationReport r;
    r.subject = subject;
    Collector out;
    for (auto& o : outcomes) {
      for (const auto& d : o.redrawn) VerificationReport::count(r.redrawn, d.reason, d.count);
      if (o.not_evaluated) VerificationReport::count(r.not_evaluated, *o.not_evaluated);
      for (auto& c : o.out.take()) out.add(std::move(c));
      if (!o.inputs.empty() && std::find(r.inputs.begin(), r.inputs.end(), o.inputs) == r.inputs.end())
        r.inputs.push_back(o.inputs);
    }
    r.checks = out.take();
    r.unstable_fails = opt.unstable_fails;
    return r;
  }

 private:
  Make& make;
  VerifyOptions opt;
  Index in = 0, index_count = 0, P = 0;
  bool index_input = false, sample_independent = false;
  std::vector<ParameterBlock> blocks;
  std::string subject;
  Vector<mp100> given_theta;
  std::optional<Clock::time_point> deadline;
};

/// Runs `tasks` on `threads` threads (parallel_for), results in task order. Progress from the workers
/// goes to `progress` one message at a time.
template <class R>
std::vector<R> run_tasks(const std::vector<std::function<R()>>& tasks, int threads,
                         const std::function<void(const std::string&)>& progress) {
  std::vector<std::optional<R>> results(tasks.size());
  std::mutex progress_lock;
  const std::function<void(const std::string&)> locked_progress = [&](const std::string& where) {
    const std::lock_guard<std::mutex> lock(progress_lock);
    progress(where);
  };
  parallel_for(tasks.size(), threads, [&](std::size_t i) {
    auto& callback = CheckScope::progress();  // this thread's
    const auto saved = callback;
    if (progress) callback = &locked_progress;
    try {
      results[i].emplace(tasks[i]());
    } catch (...) {
      callback = saved;
      throw;
    }
    callback = saved;
  });
  std::vector<R> out;
  for (auto& r : results) out.push_back(std::move(*r));
  return out;
}

/// The point tasks of a subject, to be run by run_tasks (alone or beside other subjects').
template <class Make>
std::vector<std::function<PointOutcome()>> point_tasks(const Subject<Make>& subject) {
  std::vector<std::function<PointOutcome()>> tasks;
  for (int point = 0; point < subject.points(); ++point)
    tasks.push_back([&subject, point] { return subject.run_point(point); });
  return tasks;
}

/// The checks of one factory; see verify.hpp.
template <class Make>
VerificationReport verify_layer_with(Make& make, const VerifyOptions& opt) {
  const Subject<Make> subject(make, opt);
  return subject.report(run_tasks(point_tasks(subject), opt.threads, opt.progress));
}

}  // namespace verify_detail
}  // namespace bpcheck
