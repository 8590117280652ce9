#pragma once
// Finite-difference derivatives of a vector function: an oracle that only ever calls `forward`.
//
//   auto f = [](const bpcheck::Vector<double>& x) -> bpcheck::Vector<double> { return x.array().tanh().matrix(); };
//   auto d = bpcheck::directional_derivative_fd(f, x, v);                   // f'(x)·v, central
//   auto J = bpcheck::jacobian_fd(f, x, bpcheck::FdScheme::richardson);     // J.value, J.error_estimate
//   auto Jx = bpcheck::jacobian_input_fd(layer, X, bpcheck::FdScheme::central6);
//
// Error analysis. A stencil of order p approximates g'(0), g(t) = f(x + t v), by
// D(h) = Σ_k w_k g(k h) / h. Two errors add up:
//   truncation   D(h) − g'(0) ≈ C_p h^p g^(p+1)     forward/backward: h/2 g''      central: h²/6 g'''
//                                                  central4: h⁴/30 g⁽⁵⁾          central6: h⁶/140 g⁽⁷⁾
//   round-off    |δD| ≤ η Σ_k |w_k| |g(k h)| / h    (each g evaluated with relative error ≤ η ≈ ε)
// Their sum C h^p + η S |g| / h is smallest at h* = (η S |g| / (p C))^(1/(p+1)) ∝ ε^(1/(p+1)), where
// the error is ∝ ε^(p/(p+1)). Hence the default steps h = ε^(1/(p+1)) · max(1, |x|):
//   forward ε^(1/2), central ε^(1/3), central4 ε^(1/5), central6 ε^(1/7).
// In double (ε ≈ 2.2e-16) that gives ≈ 1.5e-8, 4e-11, 3e-13 and 4e-14 relative accuracy; in mp100
// (ε ≈ 1e-100) central differences alone reach ≈ 1e-66, and a step of 1e-25 still leaves only
// ≈ 1e-50 of truncation error. A step of √ε for central differences (seen in the wild) wastes
// half the digits.
//
// Exact steps. The default h is rounded down to a power of two, so k·h is exact for every stencil
// offset k, and then nudged to h = (x + h) − x, so x + h is exactly representable. The abscissae
// x + k h are then exact as long as they stay in x's binade; where one crosses into the next, its
// rounding (≤ ε|x|) perturbs the derivative by about ε|x||f'|/h, the size of the round-off term.
//
// Error estimates. Fixed stencils also evaluate D(2h) (sharing points) and return
//   |D(h) − D(2h)| / (2^p − 1)  +  2ε Σ_k |w_k| |g(k h)| / h  +  4ε |D(h)|,
// the first term the truncation estimate (D(2h) − D(h) ≈ (2^p − 1) C h^p), the rest a round-off
// bound for a function evaluated to about one ulp. Richardson extrapolation (Ridders' method)
// builds a tableau of central differences with h shrinking by 7/5 per row, extrapolated to h → 0
// (Neville's scheme in h², with the actual nudged steps); each entry's error is estimated by its
// distance to its two parents, the entry with the smallest estimate wins, and a row whose
// diagonal has grown past twice the best error stops the search (round-off has taken over).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bpcheck/layer.hpp"
#include "bpcheck/scalar.hpp"

namespace bpcheck {

enum class FdScheme {
  forward,     ///< (g(h) − g(0)) / h, order 1
  backward,    ///< (g(0) − g(−h)) / h, order 1
  central,     ///< (g(h) − g(−h)) / 2h, order 2
  central4,    ///< order 4, offsets ±1, ±2
  central6,    ///< order 6, offsets ±1, ±2, ±3
  richardson,  ///< Ridders' extrapolated tableau of central differences, with its error estimate
};

/// "forward", "backward", "central", "central4", "central6", "richardson".
std::string fd_scheme_name(FdScheme s);

/// The order p of a fixed stencil (truncation ∝ h^p); 0 for Richardson, whose order adapts.
constexpr int fd_order(FdScheme s) {
  switch (s) {
    case FdScheme::forward:
    case FdScheme::backward: return 1;
    case FdScheme::central: return 2;
    case FdScheme::central4: return 4;
    case FdScheme::central6: return 6;
    case FdScheme::richardson: return 0;
  }
  return 0;
}

/// How to difference. Converts implicitly from a scheme: `jacobian_fd(f, x, FdScheme::central6)`.
template <class T>
struct FdOptions {
  FdScheme scheme = FdScheme::central;
  /// Overrides the step h (the first, largest step for Richardson). Still nudged so that x + h is
  /// exact; must be positive.
  std::optional<T> step;
  /// Rows of the Richardson tableau; 0 chooses from T's precision (5 float, 7 double, 29 mp100).
  int richardson_rows = 0;

  FdOptions() = default;
  FdOptions(FdScheme s) : scheme(s) {}  // NOLINT: a scheme is a complete set of options
  FdOptions(FdScheme s, T h) : scheme(s), step(std::move(h)) {}
};

/// f'(x)·v with its error estimate and the step used (h is the step in t along v: x + t v).
template <class T>
struct FdDerivative {
  Vector<T> value;
  Vector<T> error_estimate;  ///< per entry, same units as value
  T step{};
  FdScheme scheme = FdScheme::central;
};

/// The Jacobian ∂f/∂x, column j from a difference along e_j with step step(j).
template <class T>
struct FdJacobian {
  Matrix<T> value;
  Matrix<T> error_estimate;  ///< per entry
  Vector<T> step;            ///< per column
  FdScheme scheme = FdScheme::central;
};

/// Left and right derivatives of every Jacobian entry (backward and forward differences).
/// `jump(i, j)` marks entries where they disagree by more than 4 × (left_error + right_error): at a
/// smooth point the two differ by ≈ h |f''| ≈ the sum of their error estimates, at a kink by the
/// size of the jump (relu at 0: left 0, right 1).
template <class T>
struct OneSidedJacobians {
  Matrix<T> left, right;
  Matrix<T> left_error, right_error;
  Eigen::Matrix<bool, Eigen::Dynamic, Eigen::Dynamic> jump;
  Vector<T> step;  ///< per column
  Index jump_count() const { return jump.count(); }
  bool any_jump() const { return jump.any(); }
};

/// A function of a vector: the only thing the finite-difference oracle sees.
template <class T>
using VectorFunction = std::function<Vector<T>(const Vector<T>&)>;

/// The default step for a scheme at coordinate x: ε^(1/(p+1)) · max(1, |x|) rounded down to a
/// power of two, then nudged to (x + h) − x. For Richardson, the first step ε^(1/(2r+1)) · max(1, |x|),
/// r the number of rows.
template <class T>
T fd_default_step(FdScheme scheme, const T& x, int richardson_rows = 0);

/// Nudges h so that x + h is exactly representable: returns (x + h) − x. Throws input_error when h
/// vanishes against x (h below half an ulp of x).
template <class T>
T fd_nudge_step(const T& x, const T& h);

// The cores take a std::function so they are compiled once per rung (lib/src/instantiate_*.cpp).
template <class T>
FdDerivative<T> directional_derivative_fd(const VectorFunction<T>& f, const Vector<T>& x, const Vector<T>& v,
                                          const FdOptions<T>& options);
template <class T>
FdJacobian<T> jacobian_fd(const VectorFunction<T>& f, const Vector<T>& x, const FdOptions<T>& options);
template <class T>
OneSidedJacobians<T> one_sided_disagreement(const VectorFunction<T>& f, const Vector<T>& x,
                                            const std::optional<T>& step);

namespace fd_detail {
template <class T, class F>
VectorFunction<T> wrap(F&& f) {
  if constexpr (std::is_same_v<std::decay_t<F>, VectorFunction<T>>) {
    return f;
  } else {
    return [g = std::forward<F>(f)](const Vector<T>& y) -> Vector<T> {
      Matrix<T> r = g(y);
      if (r.cols() != 1)
        throw input_error("finite differences: the function must return a vector, got " +
                          std::to_string(r.rows()) + " × " + std::to_string(r.cols()));
      return r;
    };
  }
}
}  // namespace fd_detail

/// f'(x)·v for any callable f: Vector<T> → Vector<T>.
template <class F, class T>
  requires(!std::is_same_v<std::decay_t<F>, VectorFunction<T>>)
FdDerivative<T> directional_derivative_fd(F&& f, const Vector<T>& x, const Vector<T>& v,
                                          const std::type_identity_t<FdOptions<T>>& options = {}) {
  return directional_derivative_fd<T>(fd_detail::wrap<T>(std::forward<F>(f)), x, v, options);
}

/// ∂f/∂x for any callable f: Vector<T> → Vector<T>, one column (one directional derivative) at a time.
template <class F, class T>
  requires(!std::is_same_v<std::decay_t<F>, VectorFunction<T>>)
FdJacobian<T> jacobian_fd(F&& f, const Vector<T>& x, const std::type_identity_t<FdOptions<T>>& options = {}) {
  return jacobian_fd<T>(fd_detail::wrap<T>(std::forward<F>(f)), x, options);
}

/// Left and right derivatives of ∂f/∂x for any callable f.
template <class F, class T>
  requires(!std::is_same_v<std::decay_t<F>, VectorFunction<T>>)
OneSidedJacobians<T> one_sided_disagreement(F&& f, const Vector<T>& x,
                                            const std::optional<std::type_identity_t<T>>& step = {}) {
  return one_sided_disagreement<T>(fd_detail::wrap<T>(std::forward<F>(f)), x, step);
}

// ---- layers -----------------------------------------------------------------------------------

namespace fd_detail {
/// vec(X) ↦ vec(layer.forward(X)), X of X.rows() × X.cols().
template <Layer L>
VectorFunction<typename L::scalar_type> input_map(const L& layer, Index rows, Index cols) {
  using T = typename L::scalar_type;
  return [&layer, rows, cols](const Vector<T>& x) -> Vector<T> {
    const Matrix<T> Y = layer.forward(Eigen::Map<const Matrix<T>>(x.data(), rows, cols));
    return Eigen::Map<const Vector<T>>(Y.data(), Y.size());
  };
}
/// θ ↦ vec(copy.forward(X)) with copy.set_parameters(θ): the layer under test is never modified.
template <Layer L>
  requires std::copy_constructible<L>
VectorFunction<typename L::scalar_type> parameter_map(const L& layer, const Matrix<typename L::scalar_type>& X) {
  using T = typename L::scalar_type;
  auto copy = std::make_shared<L>(layer);
  return [copy, &X](const Vector<T>& theta) -> Vector<T> {
    copy->set_parameters(theta);
    const Matrix<T> Y = copy->forward(X);
    return Eigen::Map<const Vector<T>>(Y.data(), Y.size());
  };
}
template <class T>
Vector<T> vec(const Matrix<T>& X) {
  return Eigen::Map<const Vector<T>>(X.data(), X.size());
}
}  // namespace fd_detail

/// J_x on the batch, out·B × in·B, same layout as layer.jacobian_input(X): differences of vec(X).
template <Layer L>
FdJacobian<typename L::scalar_type> jacobian_input_fd(
    const L& layer, const Matrix<typename L::scalar_type>& X,
    const FdOptions<typename L::scalar_type>& options = {}) {
  return jacobian_fd(fd_detail::input_map(layer, X.rows(), X.cols()), fd_detail::vec(X), options);
}

/// J_θ on the batch, out·B × P, same layout as layer.jacobian_parameters(X): differences of θ on a
/// copy of the layer.
template <Layer L>
  requires std::copy_constructible<L>
FdJacobian<typename L::scalar_type> jacobian_parameters_fd(
    const L& layer, const Matrix<typename L::scalar_type>& X,
    const FdOptions<typename L::scalar_type>& options = {}) {
  using T = typename L::scalar_type;
  const Vector<T> theta = layer.parameters();
  return jacobian_fd(fd_detail::parameter_map(layer, X), theta, options);
}

/// Left and right derivatives of J_x at X (a kink of an activation shows as a jump).
template <Layer L>
OneSidedJacobians<typename L::scalar_type> one_sided_disagreement_input(
    const L& layer, const Matrix<typename L::scalar_type>& X,
    const std::optional<typename L::scalar_type>& step = {}) {
  return one_sided_disagreement(fd_detail::input_map(layer, X.rows(), X.cols()), fd_detail::vec(X), step);
}

/// Left and right derivatives of J_θ at the layer's parameters.
template <Layer L>
  requires std::copy_constructible<L>
OneSidedJacobians<typename L::scalar_type> one_sided_disagreement_parameters(
    const L& layer, const Matrix<typename L::scalar_type>& X,
    const std::optional<typename L::scalar_type>& step = {}) {
  using T = typename L::scalar_type;
  const Vector<T> theta = layer.parameters();
  return one_sided_disagreement(fd_detail::parameter_map(layer, X), theta, step);
}

// ---- definitions ------------------------------------------------------------------------------

namespace fd_detail {

template <class T>
void require_real_rung() {
  static_assert(!scalar_traits<T>::is_dual, "finite differences run on float, double or mp100, not on duals");
}

template <class T>
int richardson_rows(const FdOptions<T>& o) {
  if (o.richardson_rows != 0) {
    if (o.richardson_rows < 2) throw input_error("richardson: the tableau needs at least 2 rows");
    return o.richardson_rows;
  }
  return std::numeric_limits<T>::digits10 / 4 + 4;
}

/// One stencil: derivative ≈ Σ weights[i] g(offsets[i] h) / h.
template <class T>
struct Stencil {
  std::vector<int> offsets;
  std::vector<T> weights;
};

template <class T>
Stencil<T> stencil(FdScheme s) {
  switch (s) {
    case FdScheme::forward: return {{0, 1}, {T(-1), T(1)}};
    case FdScheme::backward: return {{-1, 0}, {T(-1), T(1)}};
    case FdScheme::central: return {{-1, 1}, {T(-1) / 2, T(1) / 2}};
    case FdScheme::central4: return {{-2, -1, 1, 2}, {T(1) / 12, T(-2) / 3, T(2) / 3, T(-1) / 12}};
    case FdScheme::central6:
      return {{-3, -2, -1, 1, 2, 3}, {T(-1) / 60, T(3) / 20, T(-3) / 4, T(3) / 4, T(-3) / 20, T(1) / 60}};
    case FdScheme::richardson: break;
  }
  throw error("finite differences: no fixed stencil for " + fd_scheme_name(s));
}

/// The scale of x seen along v: max(1, max |x_j| over v_j ≠ 0) / max |v_j|, and the index of the
/// largest |v_j| (used to nudge the step).
template <class T>
std::pair<T, Index> direction_scale(const Vector<T>& x, const Vector<T>& v) {
  using std::abs;
  T xs(1), vs(0);
  Index m = 0;
  for (Index j = 0; j < v.size(); ++j) {
    if (v(j) == T(0)) continue;
    if (abs(x(j)) > xs) xs = abs(x(j));
    if (abs(v(j)) > vs) vs = abs(v(j)), m = j;
  }
  if (vs == T(0)) throw input_error("finite differences: the direction v is zero");
  return {T(xs / vs), m};
}

/// Nudges the step t along v at the largest component m: x_m + t v_m is exact for unit directions.
template <class T>
T nudge_along(const Vector<T>& x, const Vector<T>& v, Index m, const T& t) {
  const T moved = fd_nudge_step<T>(x(m), T(t * v(m)));
  return T(moved / v(m));
}

template <class T>
T power_of_two_below(const T& h) {
  using std::frexp;
  using std::ldexp;
  int e = 0;
  (void)frexp(h, &e);  // h = m 2^e, m in [1/2, 1)
  return T(ldexp(T(1), e - 1));
}

template <class T>
Vector<T> evaluate(const VectorFunction<T>& f, const Vector<T>& x, const Vector<T>& v, const T& t,
                   Index expected_size) {
  using std::isfinite;
  const Vector<T> y = f(Vector<T>(x + t * v));
  if (expected_size >= 0 && y.size() != expected_size)
    throw input_error("finite differences: the function returned " + std::to_string(y.size()) +
                      " values at one point and " + std::to_string(expected_size) + " at another");
  for (Index i = 0; i < y.size(); ++i)
    if (!isfinite(y(i)))
      throw not_finite_error("finite differences: the function is not finite at a stencil point (entry " +
                  std::to_string(i) + ", step " + to_string(t) + ")");
  return y;
}

template <class T>
void check_inputs(const Vector<T>& x, const Vector<T>& v) {
  using std::isfinite;
  if (x.size() == 0) throw input_error("finite differences: empty point x");
  if (v.size() != x.size())
    throw input_error("finite differences: direction has " + std::to_string(v.size()) + " entries, point has " +
                      std::to_string(x.size()));
  for (Index j = 0; j < x.size(); ++j)
    if (!isfinite(x(j)) || !isfinite(v(j))) throw input_error("finite differences: x and v must be finite");
}

template <class T>
FdDerivative<T> fixed_stencil(const VectorFunction<T>& f, const Vector<T>& x, const Vector<T>& v,
                              const FdOptions<T>& o, const Vector<T>* f0) {
  using std::abs;
  const auto [scale, m] = direction_scale(x, v);
  T h;
  if (o.step) {
    if (!(*o.step > T(0))) throw input_error("finite differences: the step must be positive");
    h = nudge_along(x, v, m, T(*o.step / (abs(v(m)))));
  } else {
    const int p = fd_order(o.scheme);
    using std::pow;
    const T raw = pow(scalar_traits<T>::epsilon(), T(1) / T(p + 1)) * scale;
    h = nudge_along(x, v, m, power_of_two_below(raw));
  }
  const Stencil<T> s = stencil<T>(o.scheme);
  std::map<int, Vector<T>> g;  // g(k h) by offset k; D(2h) reuses the even points
  Index n = f0 ? f0->size() : -1;
  auto at = [&](int k) -> const Vector<T>& {
    auto it = g.find(k);
    if (it != g.end()) return it->second;
    Vector<T> y = (k == 0 && f0) ? *f0 : evaluate(f, x, v, T(T(k) * h), n);
    n = y.size();
    return g.emplace(k, std::move(y)).first->second;
  };
  Vector<T> d1, d2, roundoff;
  for (std::size_t i = 0; i < s.offsets.size(); ++i) {
    const Vector<T>& y1 = at(s.offsets[i]);
    if (i == 0) d1 = Vector<T>::Zero(y1.size()), roundoff = d1;
    d1 += s.weights[i] * y1;
    roundoff += abs(s.weights[i]) * y1.cwiseAbs();
  }
  for (std::size_t i = 0; i < s.offsets.size(); ++i) {
    const Vector<T>& y2 = at(2 * s.offsets[i]);
    if (i == 0) d2 = Vector<T>::Zero(y2.size());
    d2 += s.weights[i] * y2;
  }
  d1 /= h;
  d2 /= T(2 * h);
  const T eps = scalar_traits<T>::epsilon();
  const T denom = T((1 << fd_order(o.scheme)) - 1);
  FdDerivative<T> r;
  r.value = d1;
  r.error_estimate = (d1 - d2).cwiseAbs() / denom + roundoff * T(T(2) * eps / h) + d1.cwiseAbs() * T(4 * eps);
  r.step = h;
  r.scheme = o.scheme;
  return r;
}

template <class T>
FdDerivative<T> richardson(const VectorFunction<T>& f, const Vector<T>& x, const Vector<T>& v,
                           const FdOptions<T>& o) {
  using std::abs;
  using std::pow;
  const int rows = richardson_rows(o);
  const auto [scale, m] = direction_scale(x, v);
  const T shrink = T(7) / T(5);
  const T safe(2);
  const T eps = scalar_traits<T>::epsilon();
  T h;
  if (o.step) {
    if (!(*o.step > T(0))) throw input_error("finite differences: the step must be positive");
    h = nudge_along(x, v, m, T(*o.step / abs(v(m))));
  } else {
    h = nudge_along(x, v, m, T(pow(eps, T(1) / T(2 * rows + 1)) * scale));
  }
  std::vector<T> t;                    // h_i², the abscissae of the extrapolation
  std::vector<Vector<T>> prev, cur;    // tableau rows
  Vector<T> best, err;
  std::vector<bool> done;
  Index n = -1;
  T first_step = h;
  for (int i = 0; i < rows; ++i) {
    if (i > 0) h = nudge_along(x, v, m, T(h / shrink));
    const Vector<T> yp = evaluate(f, x, v, h, n);
    n = yp.size();
    const Vector<T> ym = evaluate(f, x, v, T(-h), n);
    t.push_back(h * h);
    cur.assign(1, Vector<T>((yp - ym) / T(2 * h)));
    const Vector<T> roundoff = (yp.cwiseAbs() + ym.cwiseAbs()) * T(eps / h);
    if (i == 0) {
      best = cur[0];
      err = Vector<T>::Constant(n, std::numeric_limits<T>::infinity());
      done.assign(static_cast<std::size_t>(n), false);
    }
    for (int j = 1; j <= i; ++j) {
      // Neville: extrapolate the polynomial in h² through rows i−j … i to h² = 0.
      const T factor = t[i] / (t[i - j] - t[i]);
      cur.push_back(cur[j - 1] + (cur[j - 1] - prev[j - 1]) * factor);
      for (Index c = 0; c < n; ++c) {
        if (done[c]) continue;
        const T e1 = abs(T(cur[j](c) - cur[j - 1](c)));
        const T e2 = abs(T(cur[j](c) - prev[j - 1](c)));
        const T e = (e1 > e2 ? e1 : e2) + roundoff(c);
        if (e <= err(c)) err(c) = e, best(c) = cur[j](c);
      }
    }
    if (i > 0) {
      bool all = true;
      for (Index c = 0; c < n; ++c) {
        if (!done[c] && abs(T(cur[i](c) - prev[i - 1](c))) >= safe * err(c)) done[c] = true;
        all = all && done[c];
      }
      if (all) break;
    }
    prev.swap(cur);
  }
  FdDerivative<T> r;
  r.value = best;
  r.error_estimate = err + best.cwiseAbs() * T(4 * eps);
  r.step = first_step;
  r.scheme = FdScheme::richardson;
  return r;
}

}  // namespace fd_detail

template <class T>
T fd_nudge_step(const T& x, const T& h) {
  const T moved = x + h;
  const T exact = moved - x;
  if (exact == T(0))
    throw input_error("finite differences: step " + bpcheck::to_string(h) + " vanishes against x = " + bpcheck::to_string(x));
  return exact;
}

template <class T>
T fd_default_step(FdScheme scheme, const T& x, int richardson_rows) {
  fd_detail::require_real_rung<T>();
  using std::abs;
  using std::pow;
  const T scale = abs(x) > T(1) ? T(abs(x)) : T(1);
  const T eps = scalar_traits<T>::epsilon();
  if (scheme == FdScheme::richardson) {
    FdOptions<T> o(scheme);
    o.richardson_rows = richardson_rows;
    const int rows = fd_detail::richardson_rows(o);
    return fd_nudge_step<T>(x, T(pow(eps, T(1) / T(2 * rows + 1)) * scale));
  }
  const T raw = pow(eps, T(1) / T(fd_order(scheme) + 1)) * scale;
  return fd_nudge_step<T>(x, fd_detail::power_of_two_below(raw));
}

template <class T>
FdDerivative<T> directional_derivative_fd(const VectorFunction<T>& f, const Vector<T>& x, const Vector<T>& v,
                                          const FdOptions<T>& options) {
  fd_detail::require_real_rung<T>();
  fd_detail::check_inputs(x, v);
  if (options.scheme == FdScheme::richardson) return fd_detail::richardson(f, x, v, options);
  return fd_detail::fixed_stencil<T>(f, x, v, options, nullptr);
}

template <class T>
FdJacobian<T> jacobian_fd(const VectorFunction<T>& f, const Vector<T>& x, const FdOptions<T>& options) {
  fd_detail::require_real_rung<T>();
  if (x.size() == 0) {  // nothing to differentiate by (a layer without parameters): m × 0
    const Vector<T> f0 = f(x);
    return {Matrix<T>(f0.size(), 0), Matrix<T>(f0.size(), 0), Vector<T>(0), options.scheme};
  }
  fd_detail::check_inputs(x, x);
  const Vector<T> f0 = fd_detail::evaluate(f, x, x, T(0), -1);
  FdJacobian<T> J;
  J.value.resize(f0.size(), x.size());
  J.error_estimate.resize(f0.size(), x.size());
  J.step.resize(x.size());
  J.scheme = options.scheme;
  Vector<T> e = Vector<T>::Zero(x.size());
  for (Index j = 0; j < x.size(); ++j) {
    e(j) = T(1);
    const FdDerivative<T> d = options.scheme == FdScheme::richardson
                                  ? fd_detail::richardson(f, x, e, options)
                                  : fd_detail::fixed_stencil<T>(f, x, e, options, &f0);
    if (d.value.size() != f0.size())
      throw input_error("finite differences: the function changed its output size");
    J.value.col(j) = d.value;
    J.error_estimate.col(j) = d.error_estimate;
    J.step(j) = d.step;
    e(j) = T(0);
  }
  return J;
}

template <class T>
OneSidedJacobians<T> one_sided_disagreement(const VectorFunction<T>& f, const Vector<T>& x,
                                            const std::optional<T>& step) {
  FdOptions<T> o(FdScheme::backward);
  o.step = step;
  const FdJacobian<T> left = jacobian_fd<T>(f, x, o);
  o.scheme = FdScheme::forward;
  const FdJacobian<T> right = jacobian_fd<T>(f, x, o);
  OneSidedJacobians<T> r;
  r.left = left.value;
  r.right = right.value;
  r.left_error = left.error_estimate;
  r.right_error = right.error_estimate;
  r.step = right.step;
  r.jump.resize(r.left.rows(), r.left.cols());
  // A kink's jump is of the size of the derivatives themselves; a smooth function's one-sided
  // differences differ by O(h) f'', which the error estimates may undercut (exp at near-tied inputs
  // in mp100: 2e-50 of 2.1). Both must be exceeded: four times the estimates and √h of the sizes.
  for (Index i = 0; i < r.left.size(); ++i) {
    using std::abs, std::sqrt;
    const T jump = abs(T(r.right(i) - r.left(i)));
    const T size = T(abs(r.right(i)) + abs(r.left(i)));
    r.jump(i) = jump > T(4) * T(r.left_error(i) + r.right_error(i)) && jump > T(sqrt(r.step(i / r.left.rows())) * size);
  }
  return r;
}

#define BPCHECK_EXTERN_FD(T)                                                                                 \
  extern template T fd_default_step<T>(FdScheme, const T&, int);                                             \
  extern template T fd_nudge_step<T>(const T&, const T&);                                                    \
  extern template FdDerivative<T> directional_derivative_fd<T>(const VectorFunction<T>&, const Vector<T>&,   \
                                                               const Vector<T>&, const FdOptions<T>&);       \
  extern template FdJacobian<T> jacobian_fd<T>(const VectorFunction<T>&, const Vector<T>&, const FdOptions<T>&); \
  extern template OneSidedJacobians<T> one_sided_disagreement<T>(const VectorFunction<T>&, const Vector<T>&, \
                                                                 const std::optional<T>&);
BPCHECK_EXTERN_FD(float)
BPCHECK_EXTERN_FD(double)
BPCHECK_EXTERN_FD(::bpcheck::mp100)
#undef BPCHECK_EXTERN_FD

}  // namespace bpcheck
