#pragma once
// The verification engine behind verify.hpp, templated on the factory: the library instantiates it
// for AnyLayerFactory (every layer a user or the registry checks) and for networks (LossLayer), in
// lib/src. Include it only to run the engine on another factory type without erasure.
#include <algorithm>

#include "bpcheck/verify/verify.hpp"

namespace bpcheck {
namespace verify_detail {

template <class T, class Make>
auto build_on(Make& make, const Vector<mp100>& theta) {
  // A user factory's layer type was checked where it entered (AnyLayerFactory); LossLayer is the
  // library's own.
  auto layer = make(rung<T>{});
  if (theta.size() != parameter_count(layer.parameter_blocks()))
    throw input_error("the layer has " + std::to_string(parameter_count(layer.parameter_blocks())) +
                      " parameters on " + scalar_name<T>() + " but " + std::to_string(theta.size()) + " elsewhere");
  layer.set_parameters(vector_cast<T>(theta));
  return layer;
}

/// z = [vec X; θ] ↦ [J_x J_θ] by dual numbers, or J V for the columns of V.
template <class T>
Matrix<T> joint_jacobian(const DualForward<T>& f, const Matrix<T>& X, const Vector<T>& theta) {
  const Matrix<T> Jx = jacobian_input_jvp<T>(f, X, theta);
  const Matrix<T> Jt = jacobian_parameters_jvp<T>(f, X, theta);
  Matrix<T> J(Jx.rows(), Jx.cols() + Jt.cols());
  J << Jx, Jt;
  return J;
}
template <class T>
Matrix<T> joint_jvp(const DualForward<T>& f, const Matrix<T>& X, const Vector<T>& theta, const Matrix<T>& V) {
  return jvp<T>(f, X, theta, V).tangents;
}

/// backward(X, Y, U) at a given output Y as one vector [vec dX; dθ]; checks the shapes the layer returns.
template <class L, class T = typename L::scalar_type>
Vector<T> backward_z_at(const L& layer, const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& U) {
  Vector<T> dtheta = Vector<T>::Zero(parameter_count(layer.parameter_blocks()));
  const Matrix<T> dX = layer.backward(X, Y, U, dtheta);
  if (dX.rows() != X.rows() || dX.cols() != X.cols())
    throw error(fmt::format("backward returned dX of shape {}×{} for X of shape {}×{}", dX.rows(), dX.cols(),
                            X.rows(), X.cols()));
  Vector<T> z(X.size() + dtheta.size());
  z << vec(dX), dtheta;
  return z;
}

/// backward(U) at Y = forward(X), as one vector [vec dX; dθ].
template <class L, class T = typename L::scalar_type>
Vector<T> backward_z(const L& layer, const Matrix<T>& X, const Matrix<T>& U) {
  return backward_z_at(layer, X, Matrix<T>(layer.forward(X)), U);
}

/// forward at z = [vec X; θ] on a copy of the layer.
template <class L, class T = typename L::scalar_type>
Matrix<T> forward_at(const L& layer, const Vector<T>& z, Index rows, Index cols) {
  L copy = layer;
  const Index nx = rows * cols;
  copy.set_parameters(z.tail(z.size() - nx));
  return copy.forward(Eigen::Map<const Matrix<T>>(z.data(), rows, cols));
}

inline Vector<mp100> abs_vec(const Vector<mp100>& v) {
  return v.unaryExpr([](const mp100& x) { return mp100(abs(x)); });
}
inline Matrix<mp100> abs_mat(const Matrix<mp100>& m) {
  return m.unaryExpr([](const mp100& x) { return mp100(abs(x)); });
}

/// Entry by entry: max |a − b| over two perturbed evaluations (the measured conditioning).
inline Vector<mp100> max_abs_change(const std::vector<Vector<mp100>>& perturbed, const Vector<mp100>& base) {
  Vector<mp100> c = Vector<mp100>::Zero(base.size());
  for (const auto& p : perturbed)
    for (Index i = 0; i < base.size(); ++i) c(i) = std::max(c(i), mp100(abs(p(i) - base(i))));
  return c;
}

/// Nonzeros per row (or column) of J: how many terms a sum over that row adds up.
inline Vector<mp100> terms(const Matrix<mp100>& J, bool by_column) {
  const Index n = by_column ? J.cols() : J.rows();
  Vector<mp100> t(n);
  for (Index i = 0; i < n; ++i) {
    Index k = 0;
    if (by_column)
      for (Index r = 0; r < J.rows(); ++r) k += J(r, i) != 0;
    else
      for (Index c = 0; c < J.cols(); ++c) k += J(i, c) != 0;
    t(i) = mp100(std::max<Index>(k, 1));
  }
  return t;
}

/// Per-check bookkeeping: timing, names, verdicts from compare().
struct CheckScope {
  CheckResult r;
  Clock::time_point start = Clock::now();
  CheckScope(std::string check, std::string subject, std::string precision, std::uint64_t seed) {
    r.check = std::move(check);
    r.subject = std::move(subject);
    r.precision = std::move(precision);
    r.seed = seed;
    if (progress()) (*progress())(r.subject + ": " + r.check + " [" + r.precision + "]");
  }
  /// The progress callback of the verification running on this thread, if any.
  static const std::function<void(const std::string&)>*& progress() {
    thread_local const std::function<void(const std::string&)>* callback = nullptr;
    return callback;
  }
  CheckResult done() {
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return std::move(r);
  }
};

/// Verdict for a float/double comparison against the rounding bound (value = error / bound).
/// Verdict for a float/double comparison against the rounding bound (value = error / bound). Beyond
/// the bound, the error is a wrong gradient when mp100 found the same code wrong or when the error is
/// gross (a tenth of its block's largest value: a code path of this rung is wrong); otherwise the code
/// loses digits in this rung: unstable.
inline void judge_rounding(CheckResult& r, const std::string& what, bool gross, bool reference_wrong) {
  const std::string note = r.message;  // compare() may have noted an out-of-range exact value
  if (!std::isfinite(r.value)) {
    r.verdict = Verdict::unstable;
    r.message = what + " overflowed or is NaN in " + r.precision + " where the mp100 value is finite";
  } else if (r.value <= 1) {
    r.verdict = Verdict::pass;
    r.message = what + " within the rounding bound of " + r.precision;
  } else if (reference_wrong) {
    r.verdict = Verdict::fail;
    r.message = fmt::format("{} is wrong ({:.3g}× the rounding bound of {}), as in mp100", what, r.value,
                            r.precision);
  } else if (gross) {
    r.verdict = Verdict::fail;
    r.message = fmt::format("{} is wrong in {} only ({:.3g}× the rounding bound; right in mp100): a code path of "
                            "this precision is wrong",
                            what, r.precision, r.value);
  } else {
    r.verdict = Verdict::unstable;
    r.message = fmt::format("{} loses more digits in {} than its rounding bound allows ({:.3g}× the bound; right "
                            "in mp100): numerically unstable code, a right gradient",
                            what, r.precision, r.value);
    // digits = −log10(err/scale) and a stable form's error is at most the bound, err/value
    if (r.digits >= 0)
      r.message += fmt::format(" (it keeps {:.1f} significant digits; a stable form keeps about {:.1f})", r.digits,
                               r.digits + std::log10(r.value));
  }
  r.message += note;
}

inline void judge_exact(CheckResult& r, const std::string& what) {
  r.verdict = r.value <= 1 ? Verdict::pass : Verdict::fail;
  r.message = r.value <= 1 ? what + " agrees" : what + " is wrong";
}

/// One input drawn from a named distribution (verify.hpp), float-exact so that every rung starts from
/// the same point; `base` is the value near ties gather around.
inline double draw_input(const std::string& distribution, Random& rng, double scale, double base) {
  const double sign = rng.symmetric() < 0 ? -1 : 1;
  if (distribution == "uniform") return float_round(scale * rng.symmetric());
  if (distribution == "saturation") return sign * (20 + double(rng.below(320)) / 8);  // 20 ≤ |x| < 60
  if (distribution == "wide_range")
    return float_round(sign * (1 + double(rng.below(1024)) / 1024) * std::pow(10.0, double(rng.below(17)) - 8));
  if (distribution == "near_ties")  // up to 2⁻¹⁴ apart, in units of 2⁻²⁴, relative to the shared value
    return float_round(base + std::ldexp(double(rng.below(2049)) - 1024, -24) * std::max(1.0, std::abs(base)));
  throw input_error("verify: unknown input distribution '" + distribution + "'");
}

/// gᵀ(zz − z), the slope along the Taylor step actually taken. In mp100 exactly enough; for float and
/// double in long double, where the difference of two T values is exact (or off by 2⁻⁶⁴ of itself) and
/// the sum's rounding, n·2⁻⁶⁴ of Σ|g||zz − z|, stays far below the test's floor of a hundred ulps of T:
/// converting the whole step to mp100 at each rung of the ladder cost more than the rest of the test.
template <class T>
mp100 step_slope(const Vector<T>& g, const Vector<T>& zz, const Vector<T>& z) {
  if constexpr (std::is_same_v<T, mp100>) {
    return g.dot(Vector<mp100>(zz - z));
  } else {
    long double sum = 0;
    for (Index i = 0; i < g.size(); ++i)
      sum += static_cast<long double>(g(i)) * (static_cast<long double>(zz(i)) - static_cast<long double>(z(i)));
    return mp100(sum);
  }
}

/// Least-squares slope of log r against log h.
inline double slope(const std::vector<double>& h, const std::vector<double>& r) {
  const std::size_t n = h.size();
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = std::log(h[i]), y = std::log(r[i]);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

/// The Taylor ladder of a rung: h = 2^-k for k in [first, last] by `stride`.
template <class T>
std::vector<int> taylor_ladder() {
  std::vector<int> ks;
  if constexpr (std::is_same_v<T, float>)
    for (int k = 1; k <= 14; ++k) ks.push_back(k);
  else if constexpr (std::is_same_v<T, double>)
    for (int k = 1; k <= 34; ++k) ks.push_back(k);
  else  // h from 2⁻¹⁰ to 2⁻⁶⁰: the remainder h² stays far above mp100's rounding (10⁻¹⁰⁰) throughout
    for (int k = 10; k <= 60; k += 10) ks.push_back(k);
  return ks;
}

/// The state shared by the checks of one point.
struct PointState {
  Point p;
  Layout layout;
  Truth truth;
  std::string subject;
  std::uint64_t seed = 0;
  Index in_rows = 0, batch = 0, out_rows = 0, n = 0, P = 0;
  bool sample_independent = true;
  mp100 slope_true;  ///< uᵀ(J v) exact, by JVP
  /// For composite layers that state it (LossLayer): the backward sweep in absolute values for the
  /// cotangent U and for a unit cotangent, and the roundings a value accumulates; empty otherwise.
  std::optional<Vector<mp100>> sweep, sweep_unit;
  mp100 sweep_terms{0};
  /// For a layer that states it (LossLayer::absolute_value): the size of the terms its 1 × 1 value is
  /// formed from, what the value rounds relative to.
  std::optional<mp100> value_terms;
  /// For a network's loss (LossLayer::activation_sweeps): per activation, what its rounding is relative to.
  std::optional<std::vector<Vector<mp100>>> activation_sweeps;
  /// The layer's stated absolute Jacobian (LayerWithAbsoluteJacobian), when it states one.
  std::optional<Matrix<mp100>> absolute_J;

  /// The magnitude every route to g = Jᵀu rounds relative to, entry by entry: |J|ᵀ|u|, or the stated
  /// absolute Jacobian's Mᵀ|u|, or the absolute sweep, whichever is largest.
  Vector<mp100> gradient_magnitude(const Vector<mp100>& u) const {
    Vector<mp100> a = truth.g_scale;
    if (absolute_J) a = a.cwiseMax(Vector<mp100>(absolute_J->transpose() * abs_vec(u)));
    if (sweep) a = a.cwiseMax(*sweep);
    return a;
  }
  /// How many terms a value of g sums (per entry): the nonzeros of its column of J (or of M), or the
  /// widths along a network.
  Vector<mp100> gradient_terms() const {
    Vector<mp100> t = terms(absolute_J ? *absolute_J : truth.J, true);
    for (Index i = 0; i < t.size(); ++i) t(i) = std::max(t(i), sweep_terms);
    return t;
  }
};

/// What the rounding of the output Y that backward receives does to the gradient: the layer's own
/// backward in mp100 at Y moved by ±u|Y| (two draws) and, when given and finite, at a lower rung's
/// rounded output Y_T, each minus the same backward at the exact Y. A backward written in terms of y
/// (1 − y², y(1 − y), s ⊙ (g − sᵀg)) inherits the rounding of y, which no move of the point shows.
/// Returns the changes ([vec dX; dθ]): differences of the code's own backward, which a wrong backward
/// cannot fold into the bound. `at_Y` is that backward at the exact Y. A backward whose result does not
/// move at all with Y (dense reads X only) is not evaluated again.
template <class Make, class T>
std::vector<Vector<mp100>> output_rounding(Make& make, const PointState& s, const mp100& u, const Matrix<T>* Y_T,
                                           const Vector<mp100>& at_Y) {
  std::vector<Vector<mp100>> out;
  const auto exact = build_on<mp100>(make, s.p.theta);
  bool moves = false;
  const auto add = [&](const Matrix<mp100>& Yp) {
    const Vector<mp100> change = backward_z_at(exact, s.p.X, Yp, s.p.U) - at_Y;
    moves = moves || !change.isZero(0);
    out.push_back(change);
  };
  Random rng(s.seed ^ 0x5851f42d4c957f2dULL);
  for (int k = 0; k < 2; ++k) {
    Matrix<mp100> Yp = s.truth.Y;
    for (Index i = 0; i < Yp.size(); ++i) Yp(i) += (rng.symmetric() < 0 ? -u : u) * abs(Yp(i));
    add(Yp);
    if (!moves) return out;
  }
  if (Y_T && Y_T->rows() == s.truth.Y.rows() && Y_T->cols() == s.truth.Y.cols()) {
    using std::isfinite;
    if (std::all_of(Y_T->data(), Y_T->data() + Y_T->size(), [](const T& y) { return isfinite(value_of(y)); }))
      add(matrix_cast<mp100>(*Y_T));
  }
  return out;
}

/// bpcheck::rounding_bound with the rung's unit roundoff u given in mp100 (the checker's arithmetic).
inline mp100 rounding_bound(double K, const mp100& u, const mp100& terms, const mp100& magnitude) {
  return mp100(K) * (terms + 2) * u * magnitude;
}

/// Runs every check on rung T at one point. `reference_wrong`: mp100 already found this code wrong
/// here. Returns whether backward is wrong on this rung (what mp100's answer means for the others).
template <class T, class Make>
bool checks_on_rung(Make& make, const PointState& s, const VerifyOptions& opt, Collector& out,
                    bool reference_wrong, bool judge_only = false) {
  bool backward_wrong = false;
  using std::abs;
  const std::string prec = scalar_name<T>();
  const bool is_mp = std::is_same_v<T, mp100>;
  const double K = opt.rounding_factor;
  const mp100 u_T = scalar_cast<mp100>(unit_roundoff<T>());
  const mp100 tol = from_string<mp100>(fmt::format("{:.17g}", opt.mp100_tolerance));
  const Vector<mp100> u = vec(s.p.U);
  const auto where = [&s](Index i) { return s.layout.where(i); };
  const auto block = [&s](Index i) { return s.layout.block(i); };
  const Matrix<T> X = matrix_cast<T>(s.p.X);
  const Matrix<T> U = matrix_cast<T>(s.p.U);

  // judge_only (mp100 when it was not asked for): backward against the oracle, kept out of the report,
  // so that a float/double error beyond its bound is called wrong when mp100 finds the same code wrong.
  Collector judge_out;
  Collector& sink = judge_only ? judge_out : out;
  // The layer's own backward in mp100 at the point, [vec dX; dθ], formed once when needed.
  std::optional<Vector<mp100>> own_gradient_at_z;
  const auto own_gradient = [&]() -> const Vector<mp100>& {
    if (!own_gradient_at_z) own_gradient_at_z = backward_z(build_on<mp100>(make, s.p.theta), s.p.X, s.p.U);
    return *own_gradient_at_z;
  };
  // Perturbed truths: what the exact gradient does when the point moves by a relative u_T.
  std::vector<Vector<mp100>> g_pert, y_pert;
  // What the rounding of the Y backward reads does to its result (output_rounding), and a change of
  // [vec dX; dθ] as the backward check compares it: in full, or projected on V.
  std::vector<Vector<mp100>> y_changes;
  const auto project = [&s](const Vector<mp100>& change) {
    return s.truth.full ? change : Vector<mp100>(s.truth.V.transpose() * change);
  };
  std::vector<Matrix<mp100>> J_pert;
  if (!is_mp) {
    Random rng(s.seed ^ 0x9e3779b97f4a7c15ULL);
    auto f = dual_forward(make(rung<dual<mp100>>{}));
    Vector<mp100> z(s.n);
    z << vec(s.p.X), s.p.theta;
    for (int k = 0; k < 2; ++k) {
      Vector<mp100> zp = z;
      for (Index i = 0; i < zp.size(); ++i) zp(i) *= mp100(1) + (rng.symmetric() < 0 ? -u_T : u_T);
      const Matrix<mp100> Xp = Eigen::Map<const Matrix<mp100>>(zp.data(), s.in_rows, s.batch);
      const Vector<mp100> tp = zp.tail(s.P);
      if (s.truth.full) {
        const Matrix<mp100> Jp = joint_jacobian<mp100>(f, Xp, tp);
        g_pert.push_back(Jp.transpose() * u);
        J_pert.push_back(Jp);
        const Matrix<mp100> Yp = jvp_input<mp100>(f, Xp, tp, Matrix<mp100>(s.in_rows * s.batch, 0)).output;
        y_pert.push_back(vec(Yp));
      } else {
        // Projections: the layer's own backward in mp100 (held to the oracle by the decisive check) at
        // the moved point, minus the same at z, so that a wrong backward cannot fold into the bound; one
        // backward pass where dual numbers would take k lanes.
        try {
          const auto moved = build_on<mp100>(make, tp);
          const Matrix<mp100> Yp = moved.forward(Xp);
          const Vector<mp100> change = backward_z_at(moved, Xp, Yp, s.p.U) - own_gradient();
          g_pert.push_back(s.truth.JV.transpose() * u + s.truth.V.transpose() * change);
          y_pert.push_back(vec(Yp));
        } catch (const std::exception&) {
          // mp100's forward or backward throws: its own checks report that
        }
      }
    }
    // A network's loss (LossLayer): backprop at activations moved by T's rounding of the forward pass,
    // which no move of the inputs shows (a tie or a cancellation inside the network). Its output is
    // 1 × 1, so the gradient for u is u times the row for 1.
    if (s.activation_sweeps) {
      using Exact = decltype(build_on<mp100>(make, s.p.theta));
      if constexpr (requires(const Exact& l, const Matrix<mp100>& M, const mp100& r) {
                      l.gradient_at_rounded_activations(M, *s.activation_sweeps, r, std::uint64_t{});
                      l.gradient_at_activations(std::vector<Matrix<mp100>>{});
                    }) {
        const Exact exact = build_on<mp100>(make, s.p.theta);
        // Each as its change from backprop at the exact activations, added to the oracle's value: a
        // wrong backprop moves both alike and cannot fold into the bound.
        const Vector<mp100> base = exact.gradient_at_activations(exact.activations(s.p.X));
        const auto add = [&](const Vector<mp100>& row) {
          const Vector<mp100> change = (row - base) * s.p.U(0, 0);
          g_pert.push_back(s.truth.full ? Vector<mp100>(s.truth.g + change)
                                        : Vector<mp100>(s.truth.JV.transpose() * u + s.truth.V.transpose() * change));
          if (s.truth.full) J_pert.push_back(Matrix<mp100>(s.truth.J + (row - base).transpose()));
        };
        for (std::uint64_t k = 1; k <= 2; ++k)
          add(exact.gradient_at_rounded_activations(s.p.X, *s.activation_sweeps, u_T, s.seed + k));
        // And at T's own activations: the exact backward then takes the branches T's rounding took,
        // which random moves of ±u_T F need not find (a three-way tie of float's values in a max pool).
        try {
          std::vector<Matrix<mp100>> xs;
          for (const auto& x : build_on<T>(make, s.p.theta).activations(X)) xs.push_back(matrix_cast<mp100>(x));
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
  }
  // An error in a rung's gradient is gross (a wrong code path of that rung) only beyond √u_T of the
  // entry's natural size |u|ᵀ|y| / max(|z_i|, 1) (projected on V in projection mode): batch norm over
  // two samples has an exact gradient of 1e-27 (everything cancels), and float's 1e-10 there at inputs
  // from 1e-8 to 1e8 is lost digits, not a wrong path. (Inputs near 0 do not make that size large: the 1.)
  const Vector<mp100> gross_floor = [&] {
    Vector<mp100> z(s.n);
    z << vec(s.p.X), s.p.theta;
    using boost::multiprecision::sqrt;
    const mp100 size = sqrt(u_T) * abs_vec(u).dot(abs_vec(vec(s.truth.Y)));
    Vector<mp100> per_entry(s.n);
    for (Index i = 0; i < s.n; ++i) per_entry(i) = size / std::max(mp100(1), mp100(abs(z(i))));
    return s.truth.full ? per_entry : Vector<mp100>(abs_mat(s.truth.V).transpose() * per_entry);
  }();
  const mp100 floor_T = mp100(K * min_normal<T>()) * mp100(s.n + s.out_rows * s.batch) *
                        (mp100(1) + abs_vec(u).maxCoeff());

  // The derivative of forward as T computes it, by forward mode on dual<T>: an oracle that reads
  // forward only. Where T's rounding moves an intermediate across a kink (float's softmax outputs tie
  // where the exact ones differ by 1e-9, and a max pool then takes the other entry), it leaves the
  // exact J, and a correct backward follows it, not mp100. Formed only when a check exceeds its bound.
  std::optional<Matrix<mp100>> forward_mode_T;  // J_T, or J_T V in projection mode; empty if not finite
  const auto forward_mode_derivative = [&]() -> const Matrix<mp100>* {
    if (is_mp) return nullptr;
    if (!forward_mode_T) {
      forward_mode_T.emplace();
      try {
        auto f = dual_forward(make(rung<dual<T>>{}));
        const Vector<T> theta = vector_cast<T>(s.p.theta);
        const Matrix<T> D = s.truth.full ? joint_jacobian<T>(f, X, theta)
                                         : joint_jvp<T>(f, X, theta, matrix_cast<T>(s.truth.V));
        using std::isfinite;
        if (std::all_of(D.data(), D.data() + D.size(), [](const T& d) { return isfinite(value_of(d)); }))
          *forward_mode_T = matrix_cast<mp100>(D);
      } catch (const std::exception&) {
        // a rung whose forward mode throws offers no reference: the first verdict stands
      }
    }
    return forward_mode_T->size() ? &*forward_mode_T : nullptr;
  };
  // A float/double comparison beyond its bound is judged again with the forward-mode derivative's own
  // distance from the exact values added to the bound (`reference_error`, entry by entry, with the
  // rounding of the branch T takes, relative to its own magnitudes): the part of the error that T's
  // forward, not backward, causes. A wrong backward still shows beyond both.
  const auto rejudge_against_forward_mode = [&](CheckResult& r, const std::string& what, const Vector<mp100>& expected,
                                                const Vector<T>& actual, const Vector<mp100>& bound,
                                                const Vector<mp100>& scale, const Vector<mp100>& reference_error,
                                                const std::function<std::string(Index)>& w,
                                                const std::function<std::string(Index)>& b,
                                                const Vector<mp100>* gross_floor_of_check = nullptr) {
    CheckResult again = r;
    again.worst.clear();
    again.message.clear();
    const bool gross = compare(again, expected, actual, Vector<mp100>(bound + reference_error), scale, w, b, gross_floor_of_check);
    judge_rounding(again, what, gross, false);
    if (again.verdict != Verdict::pass) return;
    again.formula = r.formula + " + |D_T − D|, D_T the derivative of forward in " + r.precision + " (forward mode)";
    again.message += fmt::format(
        " once the derivative of {}'s own forward is allowed for: forward mode in {} is {:.3g} from the exact "
        "values, where rounding takes another branch (a kink within {}'s rounding) or cancels",
        r.precision, r.precision, to_double(reference_error.maxCoeff()), r.precision);
    r = std::move(again);
  };

  // Build the layer; a throw here or in forward is a consistency failure (Stan's rule).
  std::optional<decltype(build_on<T>(make, s.p.theta))> layer;
  Matrix<T> Y;
  bool forward_within_bound = is_mp;
  {
    CheckScope c(is_mp ? "forward (reference)" : "forward vs mp100", s.subject, prec, s.seed);
    try {
      layer.emplace(build_on<T>(make, s.p.theta));
      Y = layer->forward(X);
      c.r.evaluations = 1;
    } catch (const std::exception& e) {
      c.r.verdict = Verdict::fail;
      c.r.message = std::string("forward throws in ") + prec + " but not in mp100: " + e.what();
      out.add(c.done());
      return is_mp;
    }
    if (Y.rows() != s.p.U.rows() || Y.cols() != s.p.U.cols()) {
      c.r.verdict = Verdict::fail;
      c.r.message = fmt::format("forward returns {}×{} in {} but {}×{} in mp100", Y.rows(), Y.cols(), prec,
                                s.p.U.rows(), s.p.U.cols());
      out.add(c.done());
      return is_mp;
    }
    if (!is_mp) {
      c.r.metric = "max |y_T − y| / bound";
      c.r.formula = "bound = K (terms u_T (|y| + |J||z|) + cond) + floor ≥ |y_T − y|";
      const Vector<mp100> y = vec(s.truth.Y);
      Vector<mp100> yscale = abs_vec(y);
      Vector<mp100> nterms = Vector<mp100>::Constant(y.size(), mp100(s.n));
      if (s.truth.full) {
        Vector<mp100> z(s.n);
        z << vec(s.p.X), s.p.theta;
        // The inputs' and parameters' rounding moves y by up to M|z|, M the stated absolute Jacobian (or
        // the absolute sweep for a network's loss) where |J| alone cancels.
        yscale += (s.absolute_J ? *s.absolute_J : abs_mat(s.truth.J)) * abs_vec(z);
        if (s.sweep_unit && y.size() == 1) yscale(0) = std::max(yscale(0), mp100(abs_vec(y)(0) + s.sweep_unit->dot(abs_vec(z))));
        nterms = terms(s.truth.J, false);
      } else {
        yscale.array() += abs_vec(y).maxCoeff();
      }
      // A loss rounds relative to the terms it sums, which may cancel far below them.
      if (s.value_terms && y.size() == 1) yscale(0) = std::max(yscale(0), *s.value_terms);
      const Vector<mp100> cond = max_abs_change(y_pert, y);
      Vector<mp100> bound(y.size());
      for (Index i = 0; i < y.size(); ++i) bound(i) = mp100(K) * (nterms(i) * u_T * yscale(i) + cond(i)) + floor_T;
      const bool gross = compare(c.r, y, vec(Y), bound, yscale, [](Index i) { return fmt::format("y[{}]", i); },
                                 [](Index) { return std::string("y"); });
      judge_rounding(c.r, "forward", gross, reference_wrong);
      forward_within_bound = c.r.verdict == Verdict::pass;
      out.add(c.done());
    }
  }

  // backward against the oracle (mp100) or against the mp100 truth (float, double).
  Vector<T> g;
  {
    CheckScope c(is_mp ? "backward vs oracle" : "backward vs mp100", s.subject, prec, s.seed);
    try {
      g = backward_z(*layer, X, U);
      c.r.evaluations = 2;
    } catch (const std::exception& e) {
      c.r.verdict = Verdict::fail;
      c.r.message = std::string("backward throws in ") + prec + ": " + e.what();
      sink.add(c.done());
      return is_mp;
    }
    Vector<mp100> expected, scale, bound, actual_mp;
    Vector<T> actual;
    std::function<std::string(Index)> w = where, b = block;
    if (s.truth.full) {
      expected = s.truth.g;
      scale = s.truth.g_scale;
      actual = g;
    } else {
      // Projection mode: compare Vᵀ(Jᵀu) with (J V)ᵀu.
      expected = s.truth.JV.transpose() * u;
      actual = matrix_cast<T>(s.truth.V).transpose() * g;
      scale.resize(expected.size());
      const Vector<mp100> gm = vector_cast<mp100>(g);
      for (Index k = 0; k < expected.size(); ++k)
        scale(k) = u.norm() * s.truth.JV.col(k).norm() + gm.norm() * s.truth.V.col(k).norm();
      w = [](Index k) { return fmt::format("projection {}", k); };
      b = [](Index) { return std::string("projection"); };
    }
    bound.resize(expected.size());
    if (is_mp) {
      // Beside the tolerance, mp100's own rounding of the terms g is formed from (an exactly zero
      // gradient of O(1) terms comes out as 1e-101, and the oracle rounds alike).
      Vector<mp100> magnitude = scale;
      Vector<mp100> nterms = Vector<mp100>::Constant(expected.size(), mp100(s.n));
      if (s.truth.full) magnitude = s.gradient_magnitude(u), nterms = s.gradient_terms();
      // An entry may be formed from terms as large as the largest entry's (a layer that mixes its
      // inputs): mp100's rounding of those is the floor, K (n + 2) u_mp100 · max magnitude.
      const mp100 floor = magnitude.size() ? rounding_bound(K, u_T, nterms.maxCoeff(), magnitude.maxCoeff()) : mp100(0);
      // and mp100's rounding of Y where backward reads it (s ⊙ (g − sᵀg) at a saturated softmax, whose
      // exact gradient is 1e-18916 while s rounds at 1e-100)
      Vector<mp100> output_cond = Vector<mp100>::Zero(expected.size());
      if (!s.activation_sweeps) {
        y_changes = output_rounding<Make, mp100>(make, s, u_T, nullptr, vector_cast<mp100>(g));
        for (const auto& change : y_changes) output_cond = output_cond.cwiseMax(abs_vec(project(change)));
      }
      for (Index i = 0; i < expected.size(); ++i)
        bound(i) = tol * scale(i) + rounding_bound(K, u_T, nterms(i), magnitude(i)) + floor + mp100(K) * output_cond(i) +
                   floor_T;
      c.r.metric = "max |g − Jᵀu| / (tol |J|ᵀ|u| + rounding)";
      c.r.formula = fmt::format("pass when ≤ 1; tol = {:.0e}; rounding = K (terms + 2) u_mp100 · (|J|ᵀ|u|, or the "
                                "absolute sweep); J by dual numbers in mp100",
                                opt.mp100_tolerance);
      compare(c.r, expected, actual, bound, scale, w, b);
      judge_exact(c.r, "backward");
      backward_wrong = c.r.verdict == Verdict::fail;
      if (c.r.verdict == Verdict::fail)
        c.r.message = "wrong gradient: backward disagrees with the exact Jacobian (mp100, dual numbers); worst at " +
                      (c.r.worst.empty() ? std::string("?") : c.r.worst.front().where);
    } else {
      // Skipped for a network's loss, whose backward recomputes its activations (it reads no Y).
      if (!s.activation_sweeps) try {
          y_changes = output_rounding(make, s, u_T, forward_within_bound ? &Y : nullptr, own_gradient());
          for (const auto& change : y_changes)
            g_pert.push_back(Vector<mp100>((s.truth.full ? s.truth.g : expected) + project(change)));
        } catch (const std::exception&) {
          // mp100's backward throws: the decisive check reports it
        }
      const Vector<mp100> cond = max_abs_change(g_pert, s.truth.full ? s.truth.g : expected);
      Vector<mp100> nterms = Vector<mp100>::Constant(expected.size(), mp100(s.n));
      if (s.truth.full) scale = s.gradient_magnitude(u), nterms = s.gradient_terms();
      for (Index i = 0; i < expected.size(); ++i)
        bound(i) = mp100(K) * ((nterms(i) + 2) * u_T * scale(i) + cond(i)) + floor_T;
      c.r.metric = "max |g_T − g| / bound";
      c.r.formula = "bound = K ((terms + 2) u_T |J|ᵀ|u| + cond) + floor; cond: change of g when the point (for a network also its activations) moves by T's rounding, and when the output Y that backward reads moves by u_T|Y| or is T's own";
      const bool gross = compare(c.r, expected, actual, bound, scale, w, b, &gross_floor);
      judge_rounding(c.r, "backward", gross, reference_wrong);
      if (c.r.verdict != Verdict::pass && !reference_wrong)
        if (const Matrix<mp100>* D = forward_mode_derivative()) {
          // D_Tᵀu: the gradient (or, in projection mode, the projections) of T's forward; where the
          // exact gradient is 0 and T's branch is not, its rounding is relative to |D_T|ᵀ|u|.
          const Vector<mp100> reference = D->transpose() * u;
          const Vector<mp100> magnitude = abs_mat(*D).transpose() * abs_vec(u);
          Vector<mp100> allowance = abs_vec(Vector<mp100>(reference - expected));
          for (Index i = 0; i < allowance.size(); ++i)
            allowance(i) += mp100(K) * (mp100(D->rows()) + 2) * u_T * magnitude(i);
          rejudge_against_forward_mode(c.r, "backward", expected, actual, bound, scale, allowance, w, b, &gross_floor);
        }
    }
    sink.add(c.done());
  }
  if (judge_only) return backward_wrong;

  // dθ by a second route against `times` × the dθ of one backward call at the same point and U, entry by
  // entry within the rung's rounding of the sum, judged exactly. A first dθ that already overflowed in
  // float/double leaves Inf or NaN to compare: that is this rung's overflow (judged by the checks against
  // mp100), not a verdict on the second route.
  const auto judge_second_dtheta = [&](CheckResult& r, const Vector<T>& first, int times, const Vector<T>& second,
                                       const std::string& what, const std::string& wrong_message) {
    const Vector<mp100> expected = mp100(times) * vector_cast<mp100>(first);
    // A sum rounds relative to what it adds up: the first dθ as this rung computed it, which may stand
    // far above |J|ᵀ|u| where the rung's backward lost digits (attention in float at wide-range inputs).
    const Vector<mp100> scale = s.truth.full ? Vector<mp100>(mp100(times) * s.truth.g_scale.tail(s.P)).cwiseMax(abs_vec(expected))
                                             : Vector<mp100>(abs_vec(expected));
    Vector<mp100> bound(s.P);
    for (Index i = 0; i < s.P; ++i)
      bound(i) = is_mp ? tol * scale(i) + rounding_bound(K, u_T, mp100(times), mp100(abs(expected(i))))
                       : mp100(K) * mp100(s.out_rows * s.batch + 2) * u_T * scale(i) + floor_T;
    const Index nx = s.in_rows * s.batch;
    const Layout& L = s.layout;
    compare(
        r, expected, second, bound, scale, [nx, &L](Index i) { return L.where(nx + i); },
        [nx, &L](Index i) { return L.block(nx + i); });
    r.evaluations = 3;
    judge_exact(r, what);
    if (r.verdict == Verdict::fail) r.message = wrong_message;
    using std::isfinite;
    if (r.verdict == Verdict::fail && !is_mp &&
        std::any_of(first.begin(), first.end(), [](const T& v) { return !isfinite(value_of(v)); })) {
      r.verdict = Verdict::unstable;
      r.message = "dθ overflowed or is NaN in " + prec + " after one call: " + what + " not comparable";
    }
  };

  // backward must add to dθ, not overwrite it: a second call onto the first result gives twice it.
  if (s.P > 0) {
    CheckScope c("dθ accumulates", s.subject, prec, s.seed);
    try {
      // The dθ of the backward check's call is the first; one more call must add as much again.
      const Vector<T> once = g.tail(s.P);
      Vector<T> dtheta = once;
      layer->backward(X, Y, U, dtheta);
      c.r.metric = "max |dθ after two calls − 2 dθ after one| / bound";
      c.r.formula = "backward(X, Y, dY, dθ) must add Jᵀ_θ dY to dθ";
      judge_second_dtheta(c.r, once, 2, dtheta, "dθ accumulation", "backward overwrites dθ instead of adding to it");
    } catch (const std::exception& e) {
      c.r.verdict = Verdict::fail;
      c.r.message = std::string("backward throws: ") + e.what();
    }
    out.add(c.done());
  }

  // backward_parameters, where the layer states it, must add to dθ what backward adds.
  using LayerType = std::remove_cvref_t<decltype(*layer)>;
  if constexpr (LayerWithParameterBackward<LayerType> || std::is_same_v<LayerType, AnyLayer<T>>) {
    bool states = true;
    if constexpr (std::is_same_v<LayerType, AnyLayer<T>>) states = layer->has_parameter_backward();
    if (states && s.P > 0) {
      CheckScope c("dθ without dX = backward's", s.subject, prec, s.seed);
      try {
        const Vector<T> with_dx = g.tail(s.P);  // the backward check's call
        Vector<T> without_dx = Vector<T>::Zero(s.P);
        layer->backward_parameters(X, Y, U, without_dx);
        c.r.metric = "max |dθ of backward_parameters − dθ of backward| / bound";
        c.r.formula = "backward_parameters(X, Y, dY, dθ) must add Jᵀ_θ dY to dθ, as backward does";
        judge_second_dtheta(c.r, with_dx, 1, without_dx, "backward_parameters",
                            "backward_parameters adds another dθ than backward");
      } catch (const std::exception& e) {
        c.r.verdict = Verdict::fail;
        c.r.message = std::string("backward or backward_parameters throws: ") + e.what();
      }
      out.add(c.done());
    }
  }

  // The layer's explicit Jacobians, if it states them.
  if constexpr (LayerWithJacobians<std::remove_cvref_t<decltype(*layer)>> ||
                std::is_same_v<std::remove_cvref_t<decltype(*layer)>, AnyLayer<T>>) {
    CheckScope c(is_mp ? "jacobians vs oracle" : "jacobians vs mp100", s.subject, prec, s.seed);
    bool has = true;
    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(*layer)>, AnyLayer<T>>) has = layer->has_jacobians();
    if (!has || !s.truth.full) {
      c.r.verdict = Verdict::skipped;
      c.r.message = has ? "layer too large for full Jacobians (projection mode)" : "the layer states no Jacobians";
    } else {
      try {
        const Matrix<T> Jx = layer->jacobian_input(X);
        const Matrix<T> Jt = layer->jacobian_parameters(X);
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
        if (is_mp) {
          // As for backward: mp100's rounding of the largest terms is the floor.
          const mp100 floor =
              e.size() ? rounding_bound(K, u_T, mp100(s.n + s.out_rows * s.batch), magnitude.maxCoeff()) : mp100(0);
          for (Index i = 0; i < e.size(); ++i)
            bound(i) = tol * sc(i) + rounding_bound(K, u_T, nterms(i), magnitude(i)) + floor;
        } else if (s.absolute_J) {
          std::vector<Vector<mp100>> jp;
          for (const auto& m : J_pert) jp.push_back(vec(m));
          const Vector<mp100> cond = max_abs_change(jp, e);
          for (Index i = 0; i < e.size(); ++i)
            bound(i) = rounding_bound(K, u_T, nterms(i), magnitude(i)) + mp100(K) * cond(i) + floor_T;
        } else {
          std::vector<Vector<mp100>> jp;
          for (const auto& m : J_pert) jp.push_back(vec(m));
          const Vector<mp100> cond = max_abs_change(jp, e);
          // A one-row Jacobian (a network's loss) is a gradient: the absolute sweep bounds its rounding.
          const bool sweep = s.sweep_unit && rows == 1;
          for (Index i = 0; i < e.size(); ++i)
            bound(i) = sweep ? mp100(K) * ((s.sweep_terms + 2) * u_T * std::max(sc(i), (*s.sweep_unit)(i)) + cond(i)) +
                                   floor_T
                             : mp100(K) * (mp100(4) * u_T * sc(i) + cond(i)) + floor_T;
        }
        c.r.metric = is_mp ? "max |J_layer − J| / (tol |J|)" : "max |J_T − J| / bound";
        c.r.formula = is_mp       ? "pass when ≤ 1; J by dual numbers in mp100"
                      : s.absolute_J ? "bound = K ((terms + 2) u_T M + cond) + floor, M the absolute Jacobian"
                                     : "bound = K (4 u_T |J| + cond) + floor";
        const Layout& L = s.layout;
        const std::function<std::string(Index)> where_J = [rows, &L](Index i) {
          return fmt::format("J[{},{}] (∂y{} / ∂{})", i % rows, i / rows, i % rows, L.where(i / rows).substr(1));
        };
        const std::function<std::string(Index)> block_J = [rows, &L](Index i) { return "J_" + L.block(i / rows); };
        const bool gross = compare(c.r, e, vec(J), bound, sc, where_J, block_J);
        if (is_mp) {
          judge_exact(c.r, "explicit Jacobian");
        } else {
          judge_rounding(c.r, "explicit Jacobian", gross, reference_wrong);
          if (c.r.verdict != Verdict::pass && !reference_wrong)
            if (const Matrix<mp100>* D = forward_mode_derivative())
              rejudge_against_forward_mode(
                  c.r, "explicit Jacobian", e, Vector<T>(vec(J)), bound, sc,
                  Vector<mp100>(abs_vec(Vector<mp100>(vec(*D) - e)) + mp100(4 * K) * u_T * abs_vec(vec(*D))),
                  where_J, block_J);
        }
      } catch (const std::exception& e) {
        c.r.verdict = Verdict::fail;
        c.r.message = std::string("explicit Jacobians: ") + e.what();
      }
    }
    out.add(c.done());
  }

  // Dot-product identity: uᵀ(J v) by forward mode on dual<T> against (Jᵀu)ᵀv by backward, in T.
  {
    CheckScope c("dot-product identity", s.subject, prec, s.seed);
    try {
      const Matrix<T> v = matrix_cast<T>(Matrix<mp100>(s.p.v));
      // In mp100, forward mode on dual<mp100> along v is the truth's own pass: uᵀ(Jv) is slope_true.
      Matrix<T> Jv;
      T lhs;
      if constexpr (std::is_same_v<T, mp100>) {
        Jv = s.truth.full ? Matrix<mp100>(s.truth.J * s.p.v) : Matrix<mp100>(s.truth.JVv.col(opt.projections));
        lhs = s.slope_true;
      } else {
        auto f = dual_forward(make(rung<dual<T>>{}));
        Jv = joint_jvp<T>(f, X, vector_cast<T>(s.p.theta), v);
        lhs = vec(U).dot(Jv.col(0));
      }
      const T rhs = g.dot(v.col(0));
      mp100 scale;
      if (s.truth.full)
        scale = abs_vec(u).dot(abs_mat(s.truth.J) * abs_vec(s.p.v));
      else
        scale = u.norm() * vector_cast<mp100>(Vector<T>(Jv.col(0))).norm() + vector_cast<mp100>(g).norm() * s.p.v.norm();
      if (s.sweep) scale = std::max(scale, mp100(s.sweep->dot(abs_vec(s.p.v)) * s.sweep_terms));
      if (s.absolute_J) scale = std::max(scale, mp100(abs_vec(u).dot(*s.absolute_J * abs_vec(s.p.v))));
      // Both dot products sum terms that may cancel: each rounds relative to its own terms, as computed.
      const Vector<mp100> Jv_T = vector_cast<mp100>(Vector<T>(Jv.col(0)));
      const Vector<mp100> g_T = vector_cast<mp100>(g);
      const mp100 terms_scale =
          std::max(scale, mp100(abs_vec(u).dot(abs_vec(Jv_T)) + abs_vec(g_T).dot(abs_vec(s.p.v))));
      const mp100 err = abs(scalar_cast<mp100>(lhs) - scalar_cast<mp100>(rhs));
      const mp100 nterms(2 * s.n + 2 * s.out_rows * s.batch);
      // The rounding of Y that backward reads moves (Jᵀu)ᵀv too.
      mp100 output_cond_v(0);
      for (const auto& change : y_changes) output_cond_v = std::max(output_cond_v, mp100(abs(change.dot(s.p.v))));
      mp100 bound = tol * scale + rounding_bound(K, u_T, nterms, terms_scale) + mp100(K) * output_cond_v + floor_T;
      if (!is_mp) {
        // Forward mode on dual<T> is the reference here, and it rounds too: where the derivative of
        // forward cancels (x/√(x² + ε) at a dominant x), Jv in T is off by more than any bound from |J|.
        // Its own error, measured against the exact uᵀJv, and the change of g under a u_T perturbation
        // (backward's conditioning) join the bound; a wrong backward still shows beyond both.
        using boost::multiprecision::isfinite;
        const mp100 jvp_error = abs(scalar_cast<mp100>(lhs) - s.slope_true);
        const mp100 cond = s.truth.full ? mp100(K) * max_abs_change(g_pert, s.truth.g).dot(abs_vec(s.p.v)) : mp100(0);
        bound = rounding_bound(K, u_T, nterms, terms_scale) + (isfinite(jvp_error) ? jvp_error : mp100(0)) + cond + mp100(K) * output_cond_v +
                floor_T;
      }
      c.r.metric = "|uᵀ(Jv) − (Jᵀu)ᵀv| / bound";
      c.r.formula = is_mp ? "pass when ≤ 1; bound = tol |u|ᵀ|J||v| + K · terms · u_mp100 · (|u|ᵀ|Jv| + |Jᵀu|ᵀ|v|)"
                          : "bound = K · terms · u_T (|u|ᵀ|Jv| + |Jᵀu|ᵀ|v|) + |uᵀ(Jv)_T − uᵀJv| + K |cond_g|ᵀ|v| + floor";
      c.r.value = err == 0 ? 0.0 : bound == 0 ? std::numeric_limits<double>::infinity() : to_double(err / bound);
      c.r.threshold = 1;
      c.r.evaluations = 2;
      c.r.digits = err == 0 ? double(scalar_traits<T>::print_digits)
                            : std::max(0.0, -std::log10(to_double(err / std::max(scale, mp100(1e-300)))));
      using std::isfinite;
      if (!isfinite(value_of(lhs)) || !isfinite(value_of(rhs))) c.r.value = std::numeric_limits<double>::infinity();
      if (is_mp)
        judge_exact(c.r, "uᵀ(Jv) = (Jᵀu)ᵀv");
      else
        judge_rounding(c.r, "uᵀ(Jv) = (Jᵀu)ᵀv", err * 10 > scale, reference_wrong);
      if (c.r.verdict != Verdict::pass)
        c.r.message += fmt::format(" (forward mode {:.17g} vs reverse mode {:.17g})", scalar_cast<double>(lhs),
                                   scalar_cast<double>(rhs));
    } catch (const std::exception& e) {
      // Forward mode in T multiplies the local derivatives in absolute size along the way; where their
      // exact product already passes T's largest number, an overflow is the rung's range, not the code.
      mp100 exact_scale = abs(s.slope_true);
      if (s.truth.full) exact_scale = std::max(exact_scale, mp100(abs_vec(u).dot(abs_mat(s.truth.J) * abs_vec(s.p.v))));
      if (s.sweep) exact_scale = std::max(exact_scale, mp100(s.sweep->dot(abs_vec(s.p.v))));
      if (s.absolute_J) exact_scale = std::max(exact_scale, mp100(abs_vec(u).dot(*s.absolute_J * abs_vec(s.p.v))));
      if (!is_mp && exact_scale > mp100(std::numeric_limits<T>::max())) {
        c.r.verdict = Verdict::skipped;
        c.r.message = fmt::format("forward mode overflows {} here: the exact terms of uᵀ(Jv) reach {:.3g}, beyond its "
                                  "range ({})",
                                  prec, to_double(exact_scale), e.what());
      } else {
        c.r.verdict = is_mp ? Verdict::fail : Verdict::unstable;
        c.r.message = std::string("dot-product identity could not be evaluated: ") + e.what();
      }
    }
    out.add(c.done());
  }

  // Taylor test on φ(z) = uᵀ f(z): remainder |φ(z + h v) − φ(z) − h gᵀv| must fall like h².
  {
    CheckScope c("taylor order", s.subject, prec, s.seed);
    Vector<T> z(s.n);
    z << vec(X), vector_cast<T>(s.p.theta);
    const Vector<T> v = vector_cast<T>(s.p.v);
    const Vector<T> uT = vec(U);
    const auto phi = [&](const Vector<T>& zz) { return T(uT.dot(vec(forward_at(*layer, zz, s.in_rows, s.batch)))); };
    const T phi0 = phi(z);
    // Round-off floor of the remainder: a few ulps of Σ|u||y|.
    const mp100 mag = abs_vec(u).dot(abs_vec(vector_cast<mp100>(vec(Y))));
    const mp100 floor = mp100(100 * K) * u_T * (mag + abs(scalar_cast<mp100>(phi0))) + floor_T;
    // φ(z + h v) and h gᵀv round at their own magnitudes, which grow with h when z is small next to
    // h v (inputs near a kink): a few ulps of Σ|u||y(z + h v)| and of h Σ|g||v| join the floor.
    const mp100 gv_mag = abs_vec(vector_cast<mp100>(g)).dot(abs_vec(vector_cast<mp100>(v)));
    auto& moved = *layer;  // parameters set per step, restored after the ladder: no copy per step
    const Vector<T> theta_T = vector_cast<T>(s.p.theta);
    const auto forward_on = [&](const Vector<T>& zz) {
      moved.set_parameters(zz.tail(s.P));
      return Matrix<T>(moved.forward(Eigen::Map<const Matrix<T>>(zz.data(), s.in_rows, s.batch)));
    };
    // g in T is known only to within the backward check's rounding bound, which may be far above |g|
    // (softmax over scores of 1e4): h times that bound along v is a remainder linear in h that says
    // nothing about the gradient's correctness, and joins the floor too.
    mp100 g_bound_v(0);
    if (!is_mp && s.truth.full) {
      const Vector<mp100> a = s.gradient_magnitude(u), nt = s.gradient_terms();
      const Vector<mp100> cond = max_abs_change(g_pert, s.truth.g);
      for (Index i = 0; i < a.size(); ++i)
        g_bound_v += mp100(K) * ((nt(i) + 2) * u_T * a(i) + cond(i)) * abs(s.p.v(i));
    }
    struct Step {
      int k;
      Vector<T> zz;  ///< z + h v as rounded in T
      mp100 phi, r, floor_h;  ///< φ(zz) in T, its remainder, the floor
      Vector<mp100> y;        ///< f(zz) in T
    };
    std::vector<Step> steps;
    for (int k : taylor_ladder<T>()) {
      const T h = T(std::ldexp(1.0, -k));
      Vector<T> zz = z + h * v;
      const Matrix<T> Yh = forward_on(zz);
      // The remainder of the step actually taken: z + h v rounds in T by up to u_T |z|, which moves φ by
      // gᵀδ, a constant that does not fall with h and can exceed the floor where |g||z| ≫ |u||y|
      // (layer_norm at a tie: gradients of γ/√ε next to outputs of β). gᵀ(zz − z): step_slope.
      const mp100 phi_h = scalar_cast<mp100>(T(uT.dot(vec(Yh))));
      const mp100 r = abs(mp100(phi_h - scalar_cast<mp100>(phi0) - step_slope(g, zz, z)));
      using boost::multiprecision::isfinite;
      if (!isfinite(r)) continue;
      const mp100 floor_h = floor + mp100(100 * K) * u_T *
                                        (abs_vec(u).dot(abs_vec(vector_cast<mp100>(vec(Yh)))) +
                                         scalar_cast<mp100>(h) * gv_mag) +
                            scalar_cast<mp100>(h) * g_bound_v;
      steps.push_back({k, std::move(zz), phi_h, r, floor_h, vector_cast<mp100>(Vector<T>(vec(Yh)))});
    }
    moved.set_parameters(theta_T);
    // The steps whose remainder stands above its floor plus `noise(step)`, as (h, r) for the fit.
    std::vector<double> hs, rs;
    std::vector<int> ks;
    const auto select = [&](const auto& noise) {
      hs.clear(), rs.clear(), ks.clear();
      for (const Step& st : steps) {
        if (st.r <= st.floor_h || st.r <= st.floor_h + noise(st)) continue;  // noise only where needed
        hs.push_back(std::ldexp(1.0, -st.k));
        rs.push_back(to_double(st.r / floor));  // normalised so that double holds mp100's tiny remainders
        ks.push_back(st.k);
      }
    };
    const auto order = [&] {
      const std::size_t m = std::min<std::size_t>(4, hs.size());
      return slope(std::vector<double>(hs.end() - m, hs.end()), std::vector<double>(rs.end() - m, rs.end()));
    };
    select([](const Step&) { return mp100(0); });
    std::optional<decltype(build_on<mp100>(make, s.p.theta))> lm;
    std::string noise_note;
    if (!is_mp && hs.size() >= 2 && order() < 1.5) {
      // Forward in T may round relative to inner terms far larger than y (attention scores of 1e4 turned
      // into O(1) weights), and that noise, not h², is what the remainder shows at small h. Measured
      // against mp100 at z and at each z + h v, four times it joins the floor; a wrong gradient's h|Δg·v|
      // still stands above it at the larger steps.
      lm.emplace(build_on<mp100>(make, s.p.theta));
      const auto forward_error = [&](const Vector<T>& zz, const Vector<mp100>& rounded) {
        const Vector<mp100> zm = vector_cast<mp100>(zz);
        lm->set_parameters(zm.tail(s.P));
        const Vector<mp100> exact = vec(lm->forward(Eigen::Map<const Matrix<mp100>>(zm.data(), s.in_rows, s.batch)));
        return mp100(abs_vec(u).dot(abs_vec(Vector<mp100>(rounded - exact))));
      };
      const mp100 e0 = forward_error(z, vector_cast<mp100>(Vector<T>(vec(Y))));
      select([&](const Step& st) { return mp100(4) * (e0 + forward_error(st.zz, st.y)); });
      lm->set_parameters(s.p.theta);
      noise_note = " (the forward pass's own rounding, measured against mp100, in the floor)";
    }
    c.r.evaluations = 2 * taylor_ladder<T>().size() + 1;
    c.r.metric = "observed order of the Taylor remainder";
    c.r.formula = "least-squares slope of log r(h) on the 4 smallest h above the round-off floor; pass when ≥ 1.5 "
                  "(≈2 for a right gradient, ≈1 for a wrong one), or when the exact remainder (or, in float/double, "
                  "the remainder with forward mode's slope in that rung) has the same order";
    c.r.threshold = 1.5;
    if (hs.size() < 2) {
      c.r.verdict = Verdict::pass;
      c.r.value = 2;
      c.r.message = "remainder at round-off level along v: f is linear along v at this resolution" + noise_note;
    } else {
      const std::size_t m = std::min<std::size_t>(4, hs.size());
      std::vector<double> h4(hs.end() - m, hs.end());
      c.r.value = order();
      if (c.r.value >= 1.5) {
        c.r.verdict = Verdict::pass;
        c.r.message = fmt::format("remainder falls with order {:.2f}", c.r.value) + noise_note;
      } else {
        // Same ladder in mp100 with the exact slope: is the low order a property of f (a kink within h)?
        const Vector<mp100> zm = vector_cast<mp100>(z);
        const Vector<mp100> vm = vector_cast<mp100>(v);
        if (!lm) lm.emplace(build_on<mp100>(make, s.p.theta));
        const auto phim = [&](const Vector<mp100>& zz) {
          return mp100(u.dot(vec(forward_at(*lm, zz, s.in_rows, s.batch))));
        };
        const mp100 p0 = phim(zm);
        std::vector<double> rt;
        bool ok = true;
        for (std::size_t i = hs.size() - m; i < hs.size(); ++i) {
          const mp100 h = ldexp(mp100(1), -ks[i]);
          const mp100 r = abs(phim(Vector<mp100>(zm + h * vm)) - p0 - h * s.slope_true);
          if (r == 0) ok = false;
          rt.push_back(ok ? to_double(r / floor) : 1.0);
        }
        const double exact_order = ok ? slope(h4, rt) : 2.0;
        // T's own function: the same ladder with the slope of forward mode in T (dual<T>, which reads
        // forward only) along each step. Where T's rounding puts a kink within reach of z (float's
        // sigmoid ties inputs 1e-9 apart and a max pool takes the other entry), the function T computes
        // has another derivative at z than along the ladder, and backward follows it: the same low order
        // with that slope says so. The checks against mp100 judge that gradient.
        std::optional<double> own_order;
        if (!is_mp && !(ok && std::abs(exact_order - c.r.value) <= 0.3)) {
          try {
            auto f = dual_forward(make(rung<dual<T>>{}));
            const Vector<T> theta = vector_cast<T>(s.p.theta);
            std::vector<double> ro;
            for (std::size_t i = hs.size() - m; i < hs.size(); ++i) {
              const auto st = std::find_if(steps.begin(), steps.end(), [&](const Step& x) { return x.k == ks[i]; });
              const Matrix<T> d = Vector<T>(st->zz - z);
              const Vector<mp100> Jd = vector_cast<mp100>(Vector<T>(joint_jvp<T>(f, X, theta, d).col(0)));
              const mp100 r = abs(mp100(st->phi - scalar_cast<mp100>(phi0) - u.dot(Jd)));
              using boost::multiprecision::isfinite;
              if (r == 0 || !isfinite(r)) throw error("no remainder");
              ro.push_back(to_double(r / floor));
            }
            own_order = slope(h4, ro);
          } catch (const std::exception&) {
            // no usable forward mode in T here: the exact order alone decides
          }
        }
        if (ok && std::abs(exact_order - c.r.value) <= 0.3) {
          c.r.verdict = Verdict::pass;
          c.r.message = fmt::format("order {:.2f}, as the exact function's ({:.2f}): f is not smooth at this scale",
                                    c.r.value, exact_order);
        } else if (own_order && *own_order < 1.5 && std::abs(*own_order - c.r.value) <= 0.3) {
          c.r.verdict = Verdict::pass;
          c.r.message = fmt::format("order {:.2f}, as with {}'s own forward-mode slope ({:.2f}; exact function: "
                                    "{:.2f}): the function {} computes has a kink within its rounding of z",
                                    c.r.value, prec, *own_order, exact_order, prec);
        } else {
          c.r.verdict = Verdict::fail;
          c.r.message = fmt::format("Taylor remainder falls with order {:.2f} (exact gradient: {:.2f}): the gradient "
                                    "is wrong",
                                    c.r.value, exact_order);
        }
      }
    }
    out.add(c.done());
  }

  // Batch: for sample-independent layers each sample alone gives the same output and its dθ sums up.
  if (s.sample_independent && s.batch > 1 && s.truth.full) {
    CheckScope c("batch = sum of samples", s.subject, prec, s.seed);
    try {
      Vector<T> dtheta_sum = Vector<T>::Zero(s.P);
      Matrix<T> Ycols(Y.rows(), Y.cols());
      for (Index b = 0; b < s.batch; ++b) {
        const Matrix<T> Xb = X.col(b);
        const Matrix<T> Yb = layer->forward(Xb);
        // One dθ for all samples: backward must add to it, so a backward that assigns dθ keeps only
        // the last sample's share and shows here (backward_z starts from dθ = 0 and cannot see it).
        layer->backward(Xb, Yb, Matrix<T>(U.col(b)), dtheta_sum);
        Ycols.col(b) = Yb;
      }
      Vector<T> joined(Y.size() + s.P), batched(Y.size() + s.P);
      joined << vec(Ycols), dtheta_sum;
      batched << vec(Y), g.tail(s.P);
      const Vector<mp100> e = vector_cast<mp100>(batched);
      Vector<mp100> sc(e.size());
      sc << abs_vec(vec(s.truth.Y)) + (s.absolute_J ? *s.absolute_J : abs_mat(s.truth.J)) *
                                          abs_vec(Vector<mp100>((Vector<mp100>(s.n) << vec(s.p.X), s.p.theta).finished())),
          s.gradient_magnitude(u).tail(s.P);
      Vector<mp100> bound(e.size());
      for (Index i = 0; i < e.size(); ++i)
        bound(i) = is_mp ? tol * sc(i) + rounding_bound(K, u_T, mp100(s.n + s.batch), sc(i))
                         : mp100(K) * mp100(s.n + s.batch) * u_T * sc(i) + floor_T;
      c.r.metric = "max |batch − per-sample| / bound";
      c.r.formula = "forward column by column and Σ_s dθ_s against the batch results";
      const Index ny = Y.size();
      const Layout& L = s.layout;
      const Index nx = s.in_rows * s.batch;
      compare(
          c.r, e, joined, bound, sc,
          [ny, nx, &L](Index i) { return i < ny ? fmt::format("y[{}]", i) : L.where(nx + i - ny); },
          [ny, nx, &L](Index i) { return i < ny ? std::string("y") : L.block(nx + i - ny); });
      judge_exact(c.r, "batch of one per sample");
      if (c.r.verdict == Verdict::fail)
        c.r.message = "a batch differs from its samples one at a time (samples coupled or dθ not accumulated)";
      // A batch that overflows in float/double (flagged `unstable` by the checks against mp100) leaves
      // nothing to compare: NaN never equals NaN, and overflowing does not make a layer couple samples.
      using boost::multiprecision::isfinite;
      if (!is_mp && c.r.verdict == Verdict::fail &&
          std::any_of(e.begin(), e.end(), [](const mp100& x) { return !isfinite(x); })) {
        c.r.verdict = Verdict::unstable;
        c.r.message = "batch of one not comparable: the batch overflows or is NaN in " + prec;
      }
      c.r.evaluations = 2 * s.batch;
    } catch (const std::exception& e) {
      c.r.verdict = Verdict::fail;
      c.r.message = std::string("batch of one: ") + e.what();
    }
    out.add(c.done());
  }
  return backward_wrong;
}

}  // namespace verify_detail

namespace verify_detail {

/// Whether [J_x J_θ] (rows × n) is formed: on request up to the limit (refused beyond it), otherwise only
/// where it is small enough to cost a bounded number of passes.
inline bool full_jacobians(const VerifyOptions& opt, Index rows, Index n) {
  const Index entries = rows * n;
  if (opt.full && entries > opt.full_jacobian_limit)
    throw input_error(fmt::format("verify: full Jacobians here have {} entries ({} × {}), above the limit of {}; "
                                  "raise the limit (--full-limit {}) or judge by projections (without --full)",
                                  entries, rows, n, opt.full_jacobian_limit, entries));
  return opt.full ? true : n <= opt.full_jacobian_columns && entries <= opt.full_jacobian_limit;
}

/// Sets the thread's progress callback for the lifetime of one verification.
struct ProgressScope {
  const std::function<void(const std::string&)>* saved = CheckScope::progress();
  explicit ProgressScope(const VerifyOptions& opt) {
    if (opt.progress) CheckScope::progress() = &opt.progress;
  }
  ~ProgressScope() { CheckScope::progress() = saved; }
  ProgressScope(const ProgressScope&) = delete;
  ProgressScope& operator=(const ProgressScope&) = delete;
};

/// The checks of one factory; see verify.hpp.
template <class Make>
VerificationReport verify_layer_with(Make& make, const VerifyOptions& opt) {
  const ProgressScope progress(opt);
  if (opt.projections < 1) throw input_error("verify: projections must be positive");
  if (opt.points <= 0) throw input_error("verify: points must be positive");
  if (opt.batch <= 0 && !opt.inputs) throw input_error("verify: batch must be positive");
  for (const auto& p : opt.precisions)
    if (p != "float" && p != "double" && p != "mp100")
      throw input_error("verify: unknown precision '" + p + "' (known: float, double, mp100)");
  for (const auto& d : opt.distributions)
    if (std::find(point_distributions().begin(), point_distributions().end(), d) == point_distributions().end())
      throw input_error("verify: unknown input distribution '" + d +
                        "' (known: uniform, saturation, wide_range, near_ties)");
  if (!(opt.input_scale > 0) || !std::isfinite(opt.input_scale))
    throw input_error("verify: the input scale must be positive and finite");

  auto proto = make(rung<mp100>{});
  const Index in = proto.input_size();
  // An input of integer indices (embedding) is drawn as valid indices and never moved: no gradient
  // with respect to it exists, so the Taylor and dot-product directions leave it alone.
  const bool index_input = has_index_input(proto);
  const Index index_count = index_input_count(proto);
  if (index_input && index_count <= 0) throw input_error("verify: a layer with index input must have indices to draw");
  const auto blocks = proto.parameter_blocks();
  const Index P = parameter_count(blocks);
  VerificationReport report;
  report.subject = proto.type_name();
  Collector out;
  const auto f_mp = dual_forward(make(rung<dual<mp100>>{}));
  std::vector<std::string> inputs_used;

  for (int point = 0; point < opt.points; ++point) {
    const std::uint64_t seed = opt.seed + 7919ULL * std::uint64_t(point);
    Random rng(seed);
    const std::string& distribution =
        opt.distributions.empty() ? point_distributions().front()
                                  : opt.distributions[std::size_t(point) % opt.distributions.size()];
    PointState s;
    s.subject = report.subject;
    s.seed = seed;
    s.in_rows = in;
    s.P = P;
    s.sample_independent = proto.input_size() > 0 && [&] {
      if constexpr (std::is_same_v<decltype(proto), AnyLayer<mp100>>)
        return proto.sample_independent();
      else
        return is_sample_independent<decltype(proto)>();
    }();

    // Draw (X, θ), then resample while the point sits on a kink.
    int resamples = 0;
    bool on_kink = false;
    OneSidedJacobians<mp100> sides;
    for (;;) {
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
                                 : mp100(draw_input(distribution, rng, opt.input_scale, base));
      }
      s.batch = s.p.X.cols();
      if (opt.random_parameters) {
        s.p.theta.resize(P);
        const double scale = 1.0 / std::sqrt(double(std::max<Index>(in, 1)));
        for (Index i = 0; i < P; ++i) s.p.theta(i) = mp100(float_round(scale * rng.symmetric()));
      } else {
        s.p.theta = vector_cast<mp100>(Vector<mp100>(proto.parameters()));
      }
      s.n = s.p.X.size() + P;
      auto layer_mp = build_on<mp100>(make, s.p.theta);
      Vector<mp100> z(s.n);
      z << vec(s.p.X), s.p.theta;
      if (!full_jacobians(opt, layer_mp.output_size() * s.batch, s.n)) break;  // one-sided Jacobians cost as much
      sides = one_sided_disagreement(
          [&layer_mp, &s](const Vector<mp100>& zz) { return vec(forward_at(layer_mp, zz, s.in_rows, s.batch)); }, z);
      on_kink = sides.any_jump();
      if (!on_kink || !opt.resample_kinks || resamples >= opt.max_resamples) break;
      ++resamples;
    }
    s.layout = Layout{in, s.batch, blocks};
    {
      const std::string kind = opt.inputs ? std::string("given")
                               : index_input ? std::string("indices")
                               : distribution == "uniform" ? fmt::format("uniform ±{:g}", opt.input_scale)
                                                           : distribution;
      if (std::find(inputs_used.begin(), inputs_used.end(), kind) == inputs_used.end()) inputs_used.push_back(kind);
    }

    if (on_kink) {
      CheckScope c("differentiability", s.subject, "mp100", seed);
      c.r.verdict = Verdict::non_differentiable;
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
      c.r.message = "non-differentiable at " + first + (opt.resample_kinks ? " (after resampling)" : "") +
                    ": one-sided derivatives disagree, so there is no gradient to check here";
      out.add(c.done());
      continue;
    }
    if (resamples > 0) {
      CheckScope c("differentiability", s.subject, "mp100", seed);
      c.r.verdict = Verdict::pass;
      c.r.value = resamples;
      c.r.metric = "points resampled away from a kink";
      c.r.message = fmt::format("{} point(s) sat on a non-differentiable point and were resampled", resamples);
      out.add(c.done());
    }

    // The mp100 truth by dual numbers.
    auto layer_mp = build_on<mp100>(make, s.p.theta);
    const Matrix<mp100> Y = layer_mp.forward(s.p.X);
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
      s.truth.J = joint_jacobian<mp100>(f_mp, s.p.X, s.p.theta);
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
      s.truth.V.resize(s.n, opt.projections);
      for (Index i = 0; i < s.truth.V.size(); ++i) s.truth.V(i) = mp100(float_round(rng.symmetric()));
      // J [V v] in one pass of dual numbers (k + 1 lanes)
      Matrix<mp100> Vv(s.n, opt.projections + 1);
      Vv << s.truth.V, s.p.v;
      const Matrix<mp100> JVv = joint_jvp<mp100>(f_mp, s.p.X, s.p.theta, Vv);
      s.truth.JV = JVv.leftCols(opt.projections);
      s.truth.JVv = JVv;
      s.slope_true = u.dot(JVv.col(opt.projections));
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

    // The oracles must agree with each other before either judges the layer.
    std::optional<CheckResult> oracles;
    if (s.truth.full) {
      CheckScope c("oracles agree (JVP = FD)", s.subject, "mp100", seed);
      Vector<mp100> z(s.n);
      z << vec(s.p.X), s.p.theta;
      const auto fd = jacobian_fd(
          [&layer_mp, &s](const Vector<mp100>& zz) { return vec(forward_at(layer_mp, zz, s.in_rows, s.batch)); }, z,
          FdScheme::central);
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
        bound(i) = fd_tol * sc(i) + floor + mp100(4) * (fd.error_estimate(i) + 2 * eps * y_terms(i % rows) / fd.step(i / rows));
      const Layout& L = s.layout;
      compare(
          c.r, e, a, bound, sc, [rows, &L](Index i) { return fmt::format("J[{},{}]", i % rows, i / rows); },
          [rows, &L](Index i) { return "J_" + L.block(i / rows); });
      c.r.metric = "max |J_jvp − J_fd| / (1e-30 |J| + 4 (error estimate + 2ε (|y| + M|z|)/h))";
      c.r.formula = "central differences in mp100 (step ≈ 1e-34) against dual numbers";
      judge_exact(c.r, "the dual-number Jacobian and central differences");
      if (c.r.verdict == Verdict::fail)
        c.r.message = "the oracles disagree: forward is not transparent to dual numbers (a cast to double?) or "
                      "not smooth here";
      c.r.evaluations = 2 * s.n;
      oracles = c.done();
    }

    // mp100 first: its verdict tells whether a float/double error is the same bug or that rung's own.
    const auto wants = [&opt](const char* p) {
      return std::find(opt.precisions.begin(), opt.precisions.end(), p) != opt.precisions.end();
    };
    // mp100 judges even when it was not asked for (then only its decisive check runs, unreported):
    // without it a wrong gradient in float or double could read as merely unstable.
    const bool mp100_wrong = checks_on_rung<mp100>(make, s, opt, out, false, !wants("mp100"));
    // Differences that disagree with dual numbers which backward matches to 1e-40: either forward mode and
    // backward are wrong alike, or forward rounds too coarsely here for differences (x·½(1 + erf(x/√2))
    // at x = −20 keeps 11 of mp100's digits, constant over a step of 1e-34). Not a verdict on backward.
    if (oracles && oracles->verdict == Verdict::fail && !mp100_wrong) {
      oracles->verdict = Verdict::skipped;
      oracles->message = "central differences disagree with dual numbers, which backward matches: forward rounds too "
                         "coarsely here for differences (or forward mode and backward are wrong alike)";
    }
    if (oracles) out.add(std::move(*oracles));
    if (wants("float")) checks_on_rung<float>(make, s, opt, out, mp100_wrong);
    if (wants("double")) checks_on_rung<double>(make, s, opt, out, mp100_wrong);
  }
  report.checks = out.take();
  report.unstable_fails = opt.unstable_fails;
  report.inputs = std::move(inputs_used);
  return report;
}

}  // namespace verify_detail
}  // namespace bpcheck
