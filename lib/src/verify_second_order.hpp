#pragma once
// The second-order checks of a layer (VerifyOptions::order = 2), run after the first-order checks of
// every rung at a point. With φ = uᵀf and H its Hessian in z = [vec X; θ], the layer's own backward
// run on dual<T> with X and θ seeded along v (U constant) gives g(z) = ∇φ and its tangent H v
// (forward over reverse). Checked per rung:
//
//   second-order backward   H v from backward on dual<T>, against an oracle that never reads backward:
//                           central differences in mp100 of the forward-mode Jacobian (dual<mp100>
//                           passes of forward at z ± h v, h = 2⁻¹⁵⁰), (J(z + hv) − J(z − hv))ᵀu / 2h.
//                           Nested duals (dual<dual<mp100>>) would give it without a step, but would
//                           instantiate every layer on a seventh rung, the slowest to build; with
//                           h = 2⁻¹⁵⁰ the differences are off by ~1e-90 (h²) and 1e-55 (rounding
//                           over h), far below the mp100 tolerance. In full mode all of H v, otherwise
//                           its projections Vᵀ H v on the first-order directions.
//   second-order identity   wᵀ(H v) = vᵀ(H w), both from backward on dual<T> (two lanes, one pass): H
//                           is symmetric; no differences.
//   second-order smoothness one-sided differences of the same Jacobians, (J(z + hv) − J(z))ᵀu / h
//                           and (J(z) − J(z − hv))ᵀu / h, disagree: the first derivative has a kink along
//                           v here (relu at 0, hardtanh at its ends, max-pool ties, abs): reported
//                           non-differentiable, and no second-order check runs at this point.
//
// Bounds, as for the first-order checks: in mp100 tol · S + K (n + 2) u · S + K · cond + 4 · the
// oracle's error, S = |∂J/∂v|ᵀ|u| (the terms H v sums, in absolute values); in float/double
// K ((n + 2) u_T S + cond) + floor. cond is the change of the layer's own second-order backward in
// mp100 when the output Y it reads moves by ±u_T|Y| and, in float/double, when the point moves by a
// relative u_T: differences of the code's own results, so a wrong backward cannot widen its bound. The
// moves run once per point, at the coarsest rung asked for, and the finer rungs scale them by u_T/u.
// Every verdict comes from judge() (verdict.hpp).
#include "verify_checks.hpp"

namespace bpcheck {
namespace verify_detail {

/// The tangents of [vec dX; dθ] when backward runs on dual<R> at (X, θ) seeded along the columns of D
/// (n × lanes, lanes ≤ dual_width), U constant: H D. `move_y` may move the values of the Y backward reads.
template <class R, class Make>
Matrix<mp100> backward_tangents(Make& make, const Matrix<R>& X, const Vector<R>& theta, const Matrix<R>& U,
                                const Matrix<R>& D, const std::function<void(Matrix<dual<R>>&)>& move_y = {}) {
  using Dl = dual<R>;
  const Index nx = X.size(), P = theta.size(), lanes = D.cols();
  const ActiveLanes active{int(lanes)};
  Matrix<Dl> Xd = matrix_cast<Dl>(X);
  Vector<Dl> td = vector_cast<Dl>(theta);
  for (Index l = 0; l < lanes; ++l) {
    const auto lane = std::size_t(l);
    for (Index i = 0; i < nx; ++i) Xd(i).d[lane] = D(i, l);
    for (Index i = 0; i < P; ++i) td(i).d[lane] = D(nx + i, l);
  }
  check_deadline();
  auto layer = make(rung<Dl>{});
  if (P != parameter_count(layer.parameter_blocks()))
    throw input_error(fmt::format("the layer has {} parameters on {} but {} elsewhere",
                                  parameter_count(layer.parameter_blocks()), scalar_name<Dl>(), P));
  layer.set_parameters(td);
  Matrix<Dl> Yd = layer.forward(Xd);
  if (move_y) move_y(Yd);
  const Vector<Dl> g = backward_z_at(layer, Xd, Yd, Matrix<Dl>(matrix_cast<Dl>(U)));
  Matrix<mp100> out(g.size(), lanes);
  for (Index l = 0; l < lanes; ++l)
    for (Index i = 0; i < g.size(); ++i) out(i, l) = scalar_cast<mp100>(g(i).d[std::size_t(l)]);
  return out;
}

/// What the oracles say at a point, in mp100, shared by the rungs.
struct SecondOrderTruth {
  Vector<mp100> w;          ///< the second direction of the identity (float-exact; X left alone for indices)
  Vector<mp100> Hv;         ///< Wᵀ H v by central differences (W = I in full mode, V otherwise)
  Vector<mp100> terms;      ///< S = |∂J/∂v W|ᵀ|u|, what H v's entries sum in absolute values
  Vector<mp100> error;      ///< the oracle's own error: rounding over 2h plus h |right − left|
  bool kink = false;        ///< one-sided differences disagree
  Index kink_entry = 0;     ///< the first entry where they do
  mp100 kink_left, kink_right;
  Index evaluations = 0;
};

/// The step of the differences along v: 2⁻¹⁵⁰ (z + h v is exact in mp100 for float-exact z and v).
inline mp100 second_order_step() { return ldexp(mp100(1), -150); }

/// The oracle: (J(z ± h v) W)ᵀ u by dual<mp100> forward passes, differenced against each other and
/// against the first-order truth J(z) W.
template <class Make>
SecondOrderTruth second_order_truth(Make& make, const PointState& s, const Tolerances& t, bool index_input) {
  SecondOrderTruth o;
  const Vector<mp100>& v = s.p.v;
  Random rng(s.seed ^ 0xd1b54a32d192ed03ULL);
  o.w.resize(s.n);
  for (Index i = 0; i < s.n; ++i) o.w(i) = mp100(float_round(rng.symmetric()));
  if (index_input) o.w.head(s.p.X.size()).setZero();
  const mp100 h = second_order_step();
  const Vector<mp100> u = vec(s.p.U);
  const Index nx = s.p.X.size();
  // (J W)ᵀu and |J W|ᵀ|u| at z + sign · h v
  const auto at = [&](int sign, Matrix<mp100>& JW) {
    Matrix<mp100> X = s.p.X;
    Vector<mp100> theta = s.p.theta;
    for (Index i = 0; i < nx; ++i) X(i) += sign * h * v(i);
    for (Index i = 0; i < s.P; ++i) theta(i) += sign * h * v(nx + i);
    const auto f = dual_forward(make(rung<dual<mp100>>{}));
    if (s.truth.full) {
      JW = joint_jacobian<mp100>(f, X, theta);
      o.evaluations += (s.n + dual_width - 1) / dual_width;
    } else {
      JW = joint_jvp<mp100>(f, X, theta, Matrix<mp100>(s.truth.V.template cast<mp100>()));
      o.evaluations += 1;
    }
    return Vector<mp100>(JW.transpose() * u);
  };
  Matrix<mp100> Jp, Jm;
  const Vector<mp100> gp = at(1, Jp), gm = at(-1, Jm);
  const Matrix<mp100>& J0 = s.truth.full ? s.truth.J : s.truth.JV;
  const Vector<mp100> g0 = J0.transpose() * u;
  const Index m = gp.size();
  const Vector<mp100> au = abs_vec(u);
  const Vector<mp100> sizes = abs_mat(Jp).transpose() * au + abs_mat(Jm).transpose() * au + abs_mat(J0).transpose() * au;
  o.Hv = (gp - gm) / (2 * h);
  o.terms = abs_mat(Matrix<mp100>(Jp - Jm)).transpose() * au / (2 * h);
  o.error.resize(m);
  const mp100 eps = scalar_traits<mp100>::epsilon();
  const mp100 kink_fraction(t.second_order_kink_fraction);
  for (Index i = 0; i < m; ++i) {
    const mp100 right = (gp(i) - g0(i)) / h, left = (g0(i) - gm(i)) / h;
    const mp100 rounding = 4 * eps * sizes(i) / h;
    o.error(i) = rounding + h * abs(right - left);
    // Smooth: right − left ≈ h · a third derivative (1e-45 of it); across a kink of f′, O(|H|) or O(|J|/h).
    if (!o.kink && abs(right - left) > kink_fraction * (abs(right) + abs(left) + o.terms(i)) + 4 * rounding) {
      o.kink = true;
      o.kink_entry = i;
      o.kink_left = left;
      o.kink_right = right;
    }
  }
  return o;
}

/// What every rung's cond reads, computed once at a point: the code's own mp100 H [v w] (the mp100
/// rung's own) and its changes when Y moves by ±u|Y| (two draws) and, for float/double, when the point
/// moves by a relative u (two draws), u the coarsest rung's unit roundoff. A change is linear in u up to
/// O(u²): a finer rung takes it scaled by u_T / u, which keeps the coarse rung's O(u²) part (a wider
/// bound, never a narrower one).
struct SecondOrderMoves {
  Matrix<mp100> center;
  std::vector<Matrix<mp100>> y_changes, point_changes;
  mp100 u;
  Index evaluations = 0;
};

template <class R, class Make>
SecondOrderMoves second_order_moves(Make& make, const PointState& s, const Matrix<mp100>& vw, const mp100& u,
                                    bool index_input, bool point_moves) {
  SecondOrderMoves m;
  m.u = u;
  const Matrix<R> X = matrix_cast<R>(s.p.X), U = matrix_cast<R>(s.p.U), D = matrix_cast<R>(vw);
  const Vector<R> theta = vector_cast<R>(s.p.theta);
  const R u_R = scalar_cast<R>(u);
  const Matrix<mp100> center = backward_tangents<R>(make, X, theta, U, D);
  ++m.evaluations;
  Random rng(s.seed ^ 0x2545f4914f6cdd1dULL);
  for (int k = 0; k < 2; ++k) {
    std::vector<R> signs;
    for (Index i = 0; i < s.truth.Y.size(); ++i) signs.push_back(rng.symmetric() < 0 ? R(-u_R) : u_R);
    m.y_changes.push_back(backward_tangents<R>(make, X, theta, U, D,
                                               [&signs](Matrix<dual<R>>& Y) {
                                                 using std::abs;
                                                 for (Index i = 0; i < Y.size(); ++i)
                                                   Y(i).v += signs[std::size_t(i)] * abs(Y(i).v);
                                               }) -
                          center);
    ++m.evaluations;
  }
  if (point_moves)
    for (int k = 0; k < 2; ++k) {  // moved in mp100: float-exact values moved by float's u are exact in double
      Matrix<mp100> Xm = s.p.X;
      Vector<mp100> tm = s.p.theta;
      if (!index_input)
        for (Index i = 0; i < Xm.size(); ++i) Xm(i) *= 1 + (rng.symmetric() < 0 ? -u : u);
      for (Index i = 0; i < tm.size(); ++i) tm(i) *= 1 + (rng.symmetric() < 0 ? -u : u);
      m.point_changes.push_back(backward_tangents<R>(make, matrix_cast<R>(Xm), vector_cast<R>(tm), U, D) - center);
      ++m.evaluations;
    }
  if constexpr (std::is_same_v<R, mp100>) m.center = center;
  return m;
}

/// The moves at the coarsest rung asked for, and the code's own mp100 H [v w]. Moves of float's u run
/// on dual<double>: the changes they make (~1e-8 relative) keep eight digits there, and double's own
/// rounding (1e-16 of the terms) is far below float's bound; anything not finite or thrown there, and
/// every finer u, runs on dual<mp100>.
template <class Make>
SecondOrderMoves second_order_moves(Make& make, const PointState& s, const Matrix<mp100>& vw, bool index_input,
                                    const std::function<bool(const char*)>& wants) {
  using boost::multiprecision::isfinite;
  const auto finite = [](const std::vector<Matrix<mp100>>& changes) {
    return std::all_of(changes.begin(), changes.end(), [](const Matrix<mp100>& c) {
      return std::all_of(c.data(), c.data() + c.size(), [](const mp100& x) { return isfinite(x); });
    });
  };
  if (wants("float")) {
    try {
      SecondOrderMoves m = second_order_moves<double>(make, s, vw, scalar_cast<mp100>(unit_roundoff<float>()),
                                                      index_input, true);
      if (finite(m.y_changes) && finite(m.point_changes)) {
        m.center = backward_tangents<mp100>(make, s.p.X, s.p.theta, s.p.U, vw);
        ++m.evaluations;
        return m;
      }
    } catch (const std::exception&) {
      // the layer on dual<double> is no rung of the checks: its moves run on dual<mp100>
    }
  }
  const mp100 u = wants("float")    ? scalar_cast<mp100>(unit_roundoff<float>())
                  : wants("double") ? scalar_cast<mp100>(unit_roundoff<double>())
                                    : unit_roundoff<mp100>();
  return second_order_moves<mp100>(make, s, vw, u, index_input, wants("float") || wants("double"));
}

/// A rung's second-order checks at one point.
template <class T, class Make>
struct SecondOrderRung {
  Make& make;
  const PointState& s;
  const VerifyOptions& opt;
  const SecondOrderTruth& truth;
  bool index_input;
  bool reference_wrong_backward = false;  ///< mp100's second-order backward failed here
  bool reference_wrong_identity = false;  ///< mp100's identity failed here
  const SecondOrderMoves& moves;
  static constexpr bool is_mp = std::is_same_v<T, mp100>;
  std::string prec = scalar_name<T>();
  Tolerances tolerances = Tolerances::from(opt);
  double K = opt.rounding_factor;
  mp100 u_T = scalar_cast<mp100>(unit_roundoff<T>());
  mp100 tol = mp100_tolerance(opt.mp100_tolerance);
  Clock::time_point started = Clock::now();  ///< the backward check's time includes run()
  Matrix<mp100> own;  ///< H [v w] from the rung's backward on dual<T>
  Index evaluations = 0;

  /// W ᵀ x: all of x in full mode, its projections on V otherwise.
  Vector<mp100> project(const Vector<mp100>& x) const {
    return s.truth.full ? x : transposed_product(s.truth.V, x);
  }

  /// The rung's own H [v w] (in mp100, the shared moves' center).
  void run() {
    if constexpr (is_mp) {
      own = moves.center;
    } else {
      Matrix<mp100> vw(s.n, 2);
      vw << s.p.v, truth.w;
      own = backward_tangents<T>(make, matrix_cast<T>(s.p.X), vector_cast<T>(s.p.theta), matrix_cast<T>(s.p.U),
                                 matrix_cast<T>(vw));
      ++evaluations;
    }
  }

  /// Entry by entry, the largest |change| of column `lane` under the moves T's rounding makes (Y only in
  /// mp100, exact at the point), scaled to u_T and projected as the check compares.
  Vector<mp100> cond(Index lane, bool projected) const {
    const mp100 scale = u_T / moves.u;
    std::vector<Vector<mp100>> moved;
    const auto add = [&](const Matrix<mp100>& c) {
      const Vector<mp100> col = c.col(lane) * scale;
      moved.push_back(projected ? project(col) : col);
    };
    for (const auto& c : moves.y_changes) add(c);
    if (!is_mp)
      for (const auto& c : moves.point_changes) add(c);
    const Index m = projected ? truth.Hv.size() : s.n;
    return max_abs_change(moved, Vector<mp100>::Zero(m));
  }

  Evidence evidence(const std::string& what, const CheckResult& r, bool finite, bool reference_wrong) const {
    Evidence e;
    e.what = what;
    e.precision = prec;
    e.exact_rung = is_mp;
    e.ratio = r.value;
    e.digits = r.digits;
    e.rung_digits = -std::log10(to_double(u_T));
    e.reference_wrong = reference_wrong;
    e.value_finite = finite;
    return e;
  }

  /// H v from backward on dual<T> against the oracle.
  CheckResult check_backward() {
    CheckScope c("second-order backward", s.subject, prec, s.seed);
    c.start = started;
    const Vector<mp100> actual = project(own.col(0));
    const Vector<mp100>& S = truth.terms;
    const mp100 terms(s.n + s.out_rows * s.batch);
    const Vector<mp100> condition = cond(0, true);
    Vector<mp100> bound(S.size());
    const mp100 floor = underflow_floor<T>(terms, mp100(1) + abs_vec(vec(s.p.U)).maxCoeff(), K);
    for (Index i = 0; i < S.size(); ++i)
      bound(i) = (is_mp ? tol * S(i) : mp100(0)) + rounding_bound(terms, S(i), K, u_T) + mp100(K) * condition(i) +
                 4 * truth.error(i) + floor;
    const Layout& L = s.layout;
    const bool full = s.truth.full;
    const auto where = [&L, full](Index i) {
      return full ? "(Hv)" + L.where(i).substr(1) : fmt::format("(Vᵀ Hv)[{}]", i);
    };
    const auto block = [&L, full](Index i) { return full ? L.block(i) : std::string("Vᵀ Hv"); };
    const Compared compared = compare(c.r, truth.Hv, actual, bound, S, where, block);
    // Digits kept over the entries above the floor: an entry of 1e-348 (tanh″ at x = 400) that float
    // or double flush to 0 is within its bound and keeps no digit, which says nothing of the formula.
    if (!is_mp && compared.finite) {
      double worst = 0;
      for (Index i = 0; i < S.size(); ++i) {
        const mp100 size = std::max(mp100(abs(truth.Hv(i))), S(i));
        if (size > floor) worst = std::max(worst, to_double(mp100(abs(actual(i) - truth.Hv(i)) / size)));
      }
      c.r.digits = worst == 0 ? double(scalar_traits<T>::print_digits)
                              : std::min(double(scalar_traits<T>::print_digits), std::max(0.0, -std::log10(worst)));
    }
    c.r.metric = "max |Hv_backward − Hv_oracle| / bound";
    c.r.formula = is_mp ? "pass when ≤ 1; bound = tol S + K (terms + 2) u_mp100 S + K cond + 4 · oracle error; "
                          "S = |∂J/∂v|ᵀ|u|; oracle: central differences of dual-number Jacobians in mp100 (h = 2⁻¹⁵⁰)"
                        : "bound = K ((terms + 2) u_T S + cond) + floor; S = |∂J/∂v|ᵀ|u|, cond the change of the "
                          "mp100 second-order backward when the point or Y moves by u_T";
    c.r.evaluations = std::size_t(evaluations + (is_mp ? moves.evaluations : 0));
    const Judgement j = judge(evidence("the derivative of backward along v (Hv)", c.r, compared.finite,
                                       reference_wrong_backward),
                              tolerances);
    apply(c.r, j);
    if (j.verdict == Verdict::fail && is_mp)
      c.r.message += ": backward is right in value but does not differentiate correctly (a factor from a detached "
                     "copy of an input, or a path whose derivative is lost)";
    if (is_mp) reference_wrong_backward = j.verdict == Verdict::fail;
    return c.done();
  }

  /// wᵀ(H v) = vᵀ(H w), both from backward on dual<T>.
  CheckResult check_identity() {
    CheckScope c("second-order identity", s.subject, prec, s.seed);
    const Vector<mp100> Hv = own.col(0), Hw = own.col(1);
    const Vector<mp100>& v = s.p.v;
    const Vector<mp100>& w = truth.w;
    using boost::multiprecision::isfinite;
    const bool finite = std::all_of(own.data(), own.data() + own.size(), [](const mp100& x) { return isfinite(x); });
    const mp100 lhs = dot_mp(w, Hv), rhs = dot_mp(v, Hw);
    const mp100 err = abs(lhs - rhs);
    const mp100 scale = abs_dot_mp(w, Hv) + abs_dot_mp(v, Hw);
    const mp100 cond_terms = abs_dot_mp(w, cond(0, false)) + abs_dot_mp(v, cond(1, false));
    const mp100 terms(2 * s.n + s.out_rows * s.batch);
    const mp100 floor = underflow_floor<T>(terms, mp100(1) + abs_vec(vec(s.p.U)).maxCoeff(), K);
    const mp100 bound =
        (is_mp ? tol * scale : mp100(0)) + rounding_bound(terms, scale, K, u_T) + mp100(K) * cond_terms + floor;
    c.r.metric = "|wᵀ(Hv) − vᵀ(Hw)| / bound";
    c.r.formula = "bound = " + std::string(is_mp ? "tol (|w|ᵀ|Hv| + |v|ᵀ|Hw|) + " : "") +
                  "K (terms + 2) u_T (|w|ᵀ|Hv| + |v|ᵀ|Hw|) + K (|w|ᵀ cond_v + |v|ᵀ cond_w) + floor; H v, H w from "
                  "backward on dual numbers, no differences";
    c.r.value = !finite ? std::numeric_limits<double>::infinity()
                : err == 0 ? 0.0
                : bound == 0 ? std::numeric_limits<double>::infinity()
                             : to_double(mp100(err / bound));
    c.r.threshold = 1;
    c.r.digits = err == 0 ? double(scalar_traits<T>::print_digits)
                          : std::max(0.0, -std::log10(to_double(mp100(err / std::max(scale, mp100(1e-300))))));
    c.r.evaluations = 1;
    const Judgement j =
        judge(evidence("wᵀ(Hv) = vᵀ(Hw)", c.r, finite, reference_wrong_identity), tolerances);
    apply(c.r, j);
    if (j.verdict != Verdict::pass)
      c.r.message += fmt::format(" (wᵀ(Hv) {:.17g} vs vᵀ(Hw) {:.17g}): the Hessian backward differentiates to is not "
                                 "symmetric",
                                 to_double(lhs), to_double(rhs));
    if (is_mp) reference_wrong_identity = j.verdict == Verdict::fail;
    return c.done();
  }
};

/// The second-order checks of every requested rung at a point whose first-order checks have run.
template <class Make>
void second_order_checks(Make& make, const PointState& s, const VerifyOptions& opt, Collector& out,
                         bool index_input, const std::function<bool(const char*)>& wants) {
  const Tolerances tolerances = Tolerances::from(opt);
  SecondOrderTruth truth;
  {
    CheckScope c("second-order smoothness", s.subject, "mp100", s.seed);
    try {
      truth = second_order_truth(make, s, tolerances, index_input);
    } catch (const not_finite_error& e) {
      Evidence trouble;
      trouble.what = "the second-order oracle";
      trouble.oracle_trouble = true;
      trouble.oracle_trouble_reason = std::string("dual numbers at z ± h v: ") + e.what();
      apply(c.r, judge(trouble, tolerances));
      out.add(c.done());
      return;
    }
    using boost::multiprecision::isfinite;
    const bool finite = std::all_of(truth.Hv.begin(), truth.Hv.end(), [](const mp100& x) { return isfinite(x); });
    c.r.metric = "one-sided derivatives of (J W)ᵀu along v that disagree";
    c.r.formula = "(J(z + hv) − J(z))ᵀu / h against (J(z) − J(z − hv))ᵀu / h, h = 2⁻¹⁵⁰, in mp100: beyond " +
                  fmt::format("{:g}", tolerances.second_order_kink_fraction) +
                  " of their size, the first derivative has a kink here";
    c.r.evaluations = std::size_t(truth.evaluations);
    c.r.value = truth.kink ? 1 : 0;
    c.r.threshold = 1;
    Evidence e;
    if (!finite) {
      e.what = "the second-order oracle";
      e.oracle_trouble = true;
      e.oracle_trouble_reason = "the dual-number Jacobians at z ± h v are not finite";
    } else if (truth.kink) {
      const std::string where = s.truth.full ? s.layout.where(truth.kink_entry).substr(1)
                                             : fmt::format("projection {}", truth.kink_entry);
      e = Evidence::of_kink("the first derivative has a kink along v at " + where +
                            ": one-sided second derivatives disagree, so there is no Hessian to check here");
      WorstEntry w;
      w.block = s.truth.full ? s.layout.block(truth.kink_entry) : "Vᵀ Hv";
      w.row = truth.kink_entry;
      w.where = where;
      w.expected = "left " + bpcheck::to_string(truth.kink_left);
      w.actual = "right " + bpcheck::to_string(truth.kink_right);
      w.abs_error = to_double(mp100(abs(truth.kink_left - truth.kink_right)));
      c.r.worst.push_back(std::move(w));
    } else {
      e.what = "the first derivative is smooth along v here";
      e.exact_rung = true;
    }
    apply(c.r, judge(e, tolerances));
    if (c.r.verdict == Verdict::pass) c.r.message = "the first derivative is smooth along v here";
    const bool stop = c.r.verdict != Verdict::pass;
    out.add(c.done());
    if (stop) return;
  }
  // The moves every rung's cond reads, at the coarsest rung's rounding; their time is the mp100
  // backward check's (it runs first).
  const Clock::time_point moves_started = Clock::now();
  std::optional<SecondOrderMoves> moves;
  std::string moves_threw;
  try {
    Matrix<mp100> vw(s.n, 2);
    vw << s.p.v, truth.w;
    moves = second_order_moves(make, s, vw, index_input, wants);
  } catch (const time_exceeded&) {
    throw;
  } catch (const std::exception& e) {
    moves_threw = e.what();
  }
  bool wrong_backward = false, wrong_identity = false;
  const auto rung = [&]<class T>(std::type_identity<T>, bool report) {
    const auto threw = [&](const std::string& what) {
      CheckScope c("second-order backward", s.subject, scalar_name<T>(), s.seed);
      apply(c.r, judge(Evidence::of_throw("backward on dual numbers threw: " + what), tolerances));
      if (report) out.add(c.done());
    };
    if (!moves) return threw(moves_threw);
    SecondOrderRung<T, Make> r{make, s, opt, truth, index_input, wrong_backward, wrong_identity, *moves};
    if (std::is_same_v<T, mp100>) r.started = moves_started;
    try {
      r.run();
    } catch (const time_exceeded&) {
      throw;
    } catch (const std::exception& e) {
      return threw(e.what());
    }
    CheckResult b = r.check_backward();
    CheckResult i = r.check_identity();
    if (std::is_same_v<T, mp100>) {
      wrong_backward = r.reference_wrong_backward;
      wrong_identity = r.reference_wrong_identity;
    }
    if (report) {
      out.add(std::move(b));
      out.add(std::move(i));
    }
  };
  // mp100 first, reported only when asked for: its verdict tells a wrong code from float's rounding.
  rung(std::type_identity<mp100>{}, wants("mp100"));
  if (wants("float")) rung(std::type_identity<float>{}, true);
  if (wants("double")) rung(std::type_identity<double>{}, true);
}

}  // namespace verify_detail
}  // namespace bpcheck
