#pragma once
// Definitions of the identities in bpcheck/properties/identities.hpp; instantiated once per rung in
// identities_fast.cpp and identities_mp100.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>

#include <fmt/format.h>

#include "bpcheck/properties/identities.hpp"
#include "bpcheck/verify/finite_difference.hpp"
#include "bpcheck/verify/jvp.hpp"
#include "rounding_bound.hpp"

namespace bpcheck::properties {

namespace identities_detail {

template <class T>
Vector<T> vec(const Matrix<T>& M) {
  return Eigen::Map<const Vector<T>>(M.data(), M.size());
}

template <class T>
double to_double(const T& x) {
  return scalar_cast<double>(x);
}

/// The relative tolerance of a comparison between two routes on rung T: K (n + 2) u_T, or the mp100
/// tolerance in mp100 (the verifier's, rounding.hpp).
template <class T>
T tolerance(Index terms) {
  if constexpr (std::is_same_v<T, mp100>)
    return mp100_tolerance();
  else
    return rounding_bound<T>(T(terms), T(1));
}

/// The smallest scale a bound is taken relative to: 1 in float and double (rounding errors of the
/// size of O(1) terms that cancel); in mp100 the scale at which its tolerance reaches the rounding
/// bound of O(1) terms (bpcheck::rounding_bound, as in the verifier: ≈ 1.8e-59, an absolute 1.8e-99),
/// since a network output of 3.5e-63 computed through O(1) terms in log_softmax differed by 2e-102
/// between forward and reverse mode.
template <class T>
T scale_floor() {
  if constexpr (std::is_same_v<T, mp100>)
    return rounding_bound<mp100>(mp100(0), mp100(1)) / tolerance<mp100>(0);
  else
    return T(1);
}

template <class T>
T max_abs(const Matrix<T>& M) {
  T m(0);
  for (Index i = 0; i < M.size(); ++i) {
    using std::abs;
    const T a = abs(M(i));
    if (a > m) m = a;
  }
  return m;
}

template <class T>
bool all_finite(const Matrix<T>& M) {
  using std::isfinite;
  using boost::multiprecision::isfinite;
  for (Index i = 0; i < M.size(); ++i)
    if (!isfinite(M(i))) return false;
  return true;
}

/// Entry (i, j) of the m-row matrix as "name[i,j]".
inline std::string entry(const std::string& name, Index k, Index rows) {
  return fmt::format("{}[{},{}]", name, k % rows, k / rows);
}

/// Whether a and b agree entrywise within tol · max(max S, floor) + extra (extra: per entry, or
/// empty); on failure records the worst entry in o.
template <class T>
bool agree(Outcome& o, const std::string& what, const std::string& name_a, const Matrix<T>& a,
           const std::string& name_b, const Matrix<T>& b, const Matrix<T>& S, const T& tol,
           const Matrix<T>& extra = Matrix<T>(),
           const char* extra_what = "4 × the finite-difference error estimate") {
  using std::abs;
  if (a.rows() != b.rows() || a.cols() != b.cols()) {
    o.fail(fmt::format("{}: {} is {}×{} but {} is {}×{}", what, name_a, a.rows(), a.cols(), name_b, b.rows(),
                       b.cols()));
    return false;
  }
  if (!all_finite(a) || !all_finite(b)) {
    o.fail(fmt::format("{}: a non-finite entry in {} or {}", what, name_a, name_b));
    return false;
  }
  if (!all_finite(S)) {
    // The magnitudes of the terms pass T's largest number: T cannot bound its rounding here (as the
    // verifier skips a check whose exact terms exceed float's range). Nothing to judge.
    o.vacuous = true;
    return true;
  }
  const T scale = std::max(max_abs(S), scale_floor<T>());
  const T base = tol * scale;
  Index worst = -1;
  T worst_ratio(0);
  for (Index k = 0; k < a.size(); ++k) {
    const T d = abs(T(a(k) - b(k)));
    const T bound = base + (extra.size() ? extra(k) : T(0));
    if (d > bound) {
      const T ratio = bound > 0 ? T(d / bound) : T(1e30);
      if (worst < 0 || ratio > worst_ratio) worst = k, worst_ratio = ratio;
    }
  }
  if (worst < 0) return true;
  o.fail(fmt::format("{}: {} ≠ {} at {}: {} vs {}, difference {:.3g} > bound {:.3g} ({} · max(max S = {:.3g}, floor){})",
                     what, name_a, name_b, entry("J", worst, a.rows()), bpcheck::to_string(a(worst)),
                     bpcheck::to_string(b(worst)), to_double(T(abs(T(a(worst) - b(worst))))),
                     to_double(T(base + (extra.size() ? extra(worst) : T(0)))), to_double(tol), to_double(scale),
                     extra.size() ? fmt::format(" + {}", extra_what) : std::string()));
  return false;
}

template <class T>
Index terms(const LayerAtPoint<T>& p) {
  return p.rounding_terms > 0 ? p.rounding_terms : p.X.size() + p.theta.size();
}

/// [vec dX; dθ] of backward(U).
template <class T>
Vector<T> pullback(const LayerAtPoint<T>& p, const Matrix<T>& U) {
  Vector<T> dtheta = Vector<T>::Zero(p.theta.size());
  const Matrix<T> dX = p.backward(p.X, p.theta, U, dtheta);
  if (dX.rows() != p.X.rows() || dX.cols() != p.X.cols())
    throw error(fmt::format("backward returned dX of {}×{} for X of {}×{}", dX.rows(), dX.cols(), p.X.rows(),
                            p.X.cols()));
  Vector<T> g(dX.size() + dtheta.size());
  g << vec(dX), dtheta;
  return g;
}

/// J·V for directions V (columns in z = [vec X; θ]), by dual numbers.
template <class T>
Matrix<T> push_forward(const LayerAtPoint<T>& p, const Matrix<T>& V) {
  const Index nx = p.X.size(), P = p.theta.size();
  Matrix<T> JV = jvp_input<T>(p.dual, p.X, p.theta, Matrix<T>(V.topRows(nx))).tangents;
  if (P > 0) JV += jvp_parameters<T>(p.dual, p.X, p.theta, Matrix<T>(V.bottomRows(P))).tangents;
  return JV;
}

/// Evaluates the map at z = [vec X; θ].
template <class T>
Matrix<T> forward_at(const LayerAtPoint<T>& p, const Vector<T>& z) {
  const Index nx = p.X.size();
  const Matrix<T> X = Eigen::Map<const Matrix<T>>(z.data(), p.X.rows(), p.X.cols());
  return p.forward(X, Vector<T>(z.tail(z.size() - nx)));
}

template <class T>
Vector<T> z_of(const LayerAtPoint<T>& p) {
  Vector<T> z(p.X.size() + p.theta.size());
  z << vec(p.X), p.theta;
  return z;
}

/// 4 |J − J_mp100|: four times the measured error of the dual-number J of rung T (empty: no reference).
template <class T>
Matrix<T> oracle_error(const LayerAtPoint<T>& p, const Matrix<T>& J) {
  if (!p.reference_jacobian) return Matrix<T>();
  return T(4) * (J - p.reference_jacobian()).cwiseAbs();
}

inline constexpr const char* oracle_error_what = "4 × the dual-number J's own error against mp100";

/// Runs `check(outcome, extra)` with no extra allowance; if it fails, takes the verdict again with
/// the allowance that `allowance()` computes from the exact route's measured error (when there is one).
template <class Check, class Allowance>
void judge(Outcome& o, Check check, Allowance allowance) {
  Outcome first;
  if (check(first, decltype(allowance())())) return;
  const auto extra = allowance();
  if (extra.size() == 0) {
    o.fail(first.message);
    return;
  }
  check(o, extra);
}

template <class T>
Matrix<T> magnitude(const LayerAtPoint<T>& p, const Matrix<T>& J) {
  return p.magnitude ? p.magnitude(p.X, p.theta) : Matrix<T>(J.cwiseAbs());
}

}  // namespace identities_detail

template <class T>
Matrix<T> jacobian_by_jvp(const LayerAtPoint<T>& p) {
  const Index P = p.theta.size();
  const Matrix<T> Jx = jacobian_input_jvp<T>(p.dual, p.X, p.theta);
  if (P == 0) return Jx;
  const Matrix<T> Jt = jacobian_parameters_jvp<T>(p.dual, p.X, p.theta);
  Matrix<T> J(Jx.rows(), Jx.cols() + Jt.cols());
  J << Jx, Jt;
  return J;
}

// explicit J = columns of the JVP (J e_j) = rows of the VJP (e_iᵀ J) = finite differences
template <class T>
Outcome jacobian_routes(const LayerAtPoint<T>& p) {
  using namespace identities_detail;
  Outcome o;
  const Matrix<T> J = jacobian_by_jvp(p);
  const Matrix<T> S = magnitude(p, J);
  const T tol = tolerance<T>(terms(p));
  // rows of the VJP: backward with the unit cotangents e_i
  Matrix<T> rows(J.rows(), J.cols());
  Matrix<T> E = Matrix<T>::Zero(p.U.rows(), p.U.cols());
  for (Index i = 0; i < J.rows(); ++i) {
    E(i) = T(1);
    rows.row(i) = pullback(p, E).transpose();
    E(i) = T(0);
  }
  Matrix<T> oracle;  // the dual-number J's measured error, computed at most once and only if needed
  const auto allowance = [&] {
    if (oracle.size() == 0) oracle = oracle_error(p, J);
    return oracle;
  };
  judge(o, [&](Outcome& out, const Matrix<T>& extra) {
    return agree(out, "VJP rows vs JVP columns", "rows of backward", rows, "dual-number J", J, S, tol, extra, oracle_error_what);
  }, allowance);
  if (p.jacobian) {
    const Matrix<T> stated = p.jacobian(p.X, p.theta);
    judge(o, [&](Outcome& out, const Matrix<T>& extra) {
      return agree(out, "stated J vs JVP columns", "stated Jacobian", stated, "dual-number J", J, S, tol, extra,
                   oracle_error_what);
    }, allowance);
  }
  // Finite differences of forward, judged with their own error estimate: in mp100 only. In float and
  // double a step of ≈ ε^(1/3) max(1, |z_j|) can be long next to the scale on which the map bends (a
  // learnable slope β with x = 1e4: a step in β moves βx by 49), and no error estimate from the same
  // stencil notices; there the three exact-derivative routes above are the identity.
  if constexpr (!std::is_same_v<T, mp100>) return o;
  // Indices (an embedding's input) are not differentiated: the differences run over θ only.
  const Index fixed = p.index_input ? p.X.size() : 0;
  if (fixed == J.cols()) return o;
  const Vector<T> z0 = z_of(p);
  const Vector<T> z = z0.tail(z0.size() - fixed);
  const VectorFunction<T> f = [&p, &z0, fixed](const Vector<T>& zz) {
    Vector<T> full = z0;
    full.tail(full.size() - fixed) = zz;
    return vec(forward_at(p, full));
  };
  const Matrix<T> Jd = J.rightCols(J.cols() - fixed), Sd = S.rightCols(S.cols() - fixed);
  const FdJacobian<T> fd = jacobian_fd<T>(f, z, FdOptions<T>(FdScheme::central));
  const T fd_tol = from_string<T>("1e-30");
  const T safety(4);  // × the error estimate: h ≈ 1e-34 is deep in the asymptotic regime
  Outcome fd_outcome;
  if (agree(fd_outcome, "finite differences vs JVP columns", "central differences", fd.value, "dual-number J", Jd, Sd,
            fd_tol, Matrix<T>(safety * fd.error_estimate)))
    return o;
  // Columns that disagree are no counterexample when a kink lies within the stencil's reach (±2h):
  // there the one-sided differences along that column, with the column's own step, disagree.
  const T base = fd_tol * std::max(max_abs(Sd), scale_floor<T>());
  bool unexplained = false;
  for (Index j = 0; j < Jd.cols() && !unexplained; ++j) {
    bool column_disagrees = false;
    for (Index i = 0; i < Jd.rows(); ++i) {
      using std::abs;
      column_disagrees = column_disagrees || abs(T(fd.value(i, j) - Jd(i, j))) > base + safety * fd.error_estimate(i, j);
    }
    if (!column_disagrees) continue;
    Vector<T> e = Vector<T>::Zero(z.size());
    e(j) = T(1);
    const T h = T(2) * fd.step(j);
    const FdDerivative<T> right = directional_derivative_fd<T>(f, z, e, FdOptions<T>(FdScheme::forward, h));
    const FdDerivative<T> left = directional_derivative_fd<T>(f, z, e, FdOptions<T>(FdScheme::backward, h));
    bool kink = false;
    for (Index i = 0; i < right.value.size(); ++i) {
      using std::abs;
      kink = kink || abs(T(right.value(i) - left.value(i))) > T(4) * (right.error_estimate(i) + left.error_estimate(i));
    }
    unexplained = !kink;
  }
  if (unexplained)
    o.fail(fd_outcome.message);
  else
    o.vacuous = true;
  return o;
}

// uᵀ(J v) = (Jᵀu)ᵀ v: forward mode against reverse mode, no differences
template <class T>
Outcome dot_product(const LayerAtPoint<T>& p) {
  using namespace identities_detail;
  using std::abs;
  Outcome o;
  const Vector<T> u = vec(p.U);
  const T forward_mode = u.dot(push_forward(p, Matrix<T>(p.v)).col(0));
  const T reverse_mode = pullback(p, p.U).dot(p.v);
  const Matrix<T> J = jacobian_by_jvp(p);
  const Matrix<T> S = magnitude(p, J);
  const T scale = u.cwiseAbs().dot(S * p.v.cwiseAbs());
  Matrix<T> a(1, 1), b(1, 1), s(1, 1);
  a << forward_mode;
  b << reverse_mode;
  s << scale;
  judge(o, [&](Outcome& out, const Matrix<T>& extra) {
    return agree(out, "uᵀ(Jv) vs (Jᵀu)ᵀv", "uᵀ(Jv) by JVP", a, "(Jᵀu)ᵀv by backward", b, s, tolerance<T>(terms(p)), extra,
                 "4 × |u|ᵀ|J − J_mp100||v|, the dual-number route's own error");
  }, [&] {
    const Matrix<T> E = oracle_error(p, J);
    if (E.size() == 0) return Matrix<T>();
    Matrix<T> e(1, 1);
    e << u.cwiseAbs().dot(E * p.v.cwiseAbs());
    return e;
  });
  return o;
}

// J(a v₁ + b v₂) = a J v₁ + b J v₂ and Jᵀ(a u₁ + b u₂) = a Jᵀu₁ + b Jᵀu₂, with a = 3, b = −1/2
template <class T>
Outcome linearity(const LayerAtPoint<T>& p) {
  using namespace identities_detail;
  Outcome o;
  const T a(3), b = T(-1) / T(2);
  const Matrix<T> J = jacobian_by_jvp(p);
  const Matrix<T> S = magnitude(p, J);
  const T tol = tolerance<T>(terms(p));
  const Vector<T> v1 = p.v, v2 = p.v.reverse();
  Matrix<T> V(v1.size(), 3);
  V << v1, v2, a * v1 + b * v2;
  const Matrix<T> JV = push_forward(p, V);
  const Vector<T> jvp_scale = S * (T(3) * v1.cwiseAbs() + v2.cwiseAbs() / T(2));
  judge(o, [&](Outcome& out, const Matrix<T>& extra) {
    return agree(out, "JVP linearity", "J(a v₁ + b v₂)", Matrix<T>(JV.col(2)), "a J v₁ + b J v₂",
                 Matrix<T>(a * JV.col(0) + b * JV.col(1)), Matrix<T>(jvp_scale), tol, extra,
                 "4 × |J − J_mp100| (|a v₁| + |b v₂| + |a v₁ + b v₂|), the dual-number route's own error");
  }, [&] {
    const Matrix<T> E = oracle_error(p, J);
    if (E.size() == 0) return Matrix<T>();
    return Matrix<T>(E * Vector<T>(T(3) * v1.cwiseAbs() + v2.cwiseAbs() / T(2) + V.col(2).cwiseAbs()));
  });
  const Matrix<T> U1 = p.U;
  const Matrix<T> U2 = Eigen::Map<const Matrix<T>>(Vector<T>(vec(p.U).reverse()).data(), p.U.rows(), p.U.cols());
  const Vector<T> g1 = pullback(p, U1), g2 = pullback(p, U2), g12 = pullback(p, Matrix<T>(a * U1 + b * U2));
  const Vector<T> vjp_scale = S.transpose() * (T(3) * vec(U1).cwiseAbs() + vec(U2).cwiseAbs() / T(2));
  agree(o, "VJP linearity", "Jᵀ(a u₁ + b u₂)", Matrix<T>(g12), "a Jᵀu₁ + b Jᵀu₂", Matrix<T>(a * g1 + b * g2),
        Matrix<T>(vjp_scale), tol);
  return o;
}

// r(h) = |φ(z + h v) − φ(z) − h gᵀv| = O(h²) for φ = uᵀf and g = Jᵀu; with a wrong g, O(h)
template <class T>
Outcome taylor(const LayerAtPoint<T>& p) {
  using namespace identities_detail;
  using std::abs;
  using std::log2;
  Outcome o;
  const Vector<T> u = vec(p.U), z = z_of(p);
  if (p.index_input && !p.v.head(p.X.size()).isZero())
    throw error("taylor: the direction must leave index inputs fixed (its X part zero)");
  // The step as T rounds it: z + h v rounds to z + d(h), and the remainder is taken for d(h), not for
  // h v. With h v the rounding adds gᵀ(d − h v), a constant that does not fall with h.
  const auto step = [&](const T& h) { return Vector<T>(Vector<T>(z + h * p.v) - z); };
  const auto phi = [&](const T& h) { return u.dot(vec(forward_at(p, Vector<T>(z + step(h))))); };
  const T phi0 = phi(T(0));
  const Vector<T> g = pullback(p, p.U);
  const T slope_backward = g.dot(p.v);
  const auto along_backward = [&](const T& h) { return T(g.dot(step(h))); };
  const auto along_exact = [&](const T& h) { return T(u.dot(push_forward(p, Matrix<T>(step(h))).col(0))); };
  const Vector<T> y0 = vec(forward_at(p, z));
  const T size_phi = u.cwiseAbs().dot(y0.cwiseAbs());
  const T noise_factor = T(1000) * T(terms(p) + 2) * unit_roundoff<T>();
  // Below T's smallest normal number a result rounds by an absolute half of the smallest subnormal, not
  // relative to itself (silu at −100 in float, φ ≈ 1e-42; gelu at −21 in double, φ ≈ 1e-316).
  T underflow(0);
  if constexpr (!std::is_same_v<T, mp100>) underflow = T(1000) * T(terms(p) + 2) * std::numeric_limits<T>::denorm_min();
  // order of the remainder at the smallest pair of steps where it stands above round-off, that is
  // above noise_factor · (size + |gᵀd| + h size_per_h) + underflow
  const auto order = [&](const auto& linear, const T& size, const T& size_per_h) -> std::optional<double> {
    std::optional<double> result;
    T r_prev(-1);
    int k_prev = 0;
    for (int k : taylor_ladder<T>()) {  // the verifier's steps (rounding.hpp)
      using std::ldexp;
      const T h = ldexp(T(1), -k);
      const T lin = linear(h);
      const T r = abs(T(phi(h) - phi0 - lin));
      const T noise = noise_factor * (size + abs(lin) + h * size_per_h) + underflow;
      if (r <= noise) break;
      if (r_prev > 0) result = to_double(T(log2(T(r_prev / r)))) / double(k - k_prev);
      r_prev = r, k_prev = k;
    }
    return result;
  };
  auto with_backward = order(along_backward, size_phi, T(0));
  if (with_backward && *with_backward < 1.5 && !std::is_same_v<T, mp100>) {
    // Round-off by the size of the terms rather than of φ: |u|ᵀS(|z| + h|v|), S the magnitudes of the
    // terms (a stated absolute Jacobian: attention's scores of 1e3 round at 1e3 u, where φ is O(1)).
    Matrix<T> S;
    try {
      S = magnitude(p, jacobian_by_jvp(p));
    } catch (const error&) {
      o.vacuous = true;  // the tangents pass T's largest number (jvp refuses them): no round-off floor in T
      return o;
    }
    const Vector<T> Su = S.transpose() * u.cwiseAbs();
    const T size_terms = Su.dot(z.cwiseAbs()), size_per_h = Su.dot(p.v.cwiseAbs());
    using std::isfinite;
    if (!isfinite(size_terms) || !isfinite(size_per_h)) {
      o.vacuous = true;  // the terms pass T's largest number: no round-off floor in T
      return o;
    }
    with_backward = order(along_backward, std::max(size_phi, size_terms), size_per_h);
  }
  if (!with_backward) {
    o.vacuous = true;  // the remainder never rose above round-off
    return o;
  }
  if (*with_backward >= 1.5) return o;
  // The exact slope (dual numbers) shows whether the function itself is not smooth within reach.
  std::optional<double> with_exact;
  T slope_exact;
  try {
    with_exact = order(along_exact, size_phi, T(0));
    slope_exact = u.dot(push_forward(p, Matrix<T>(p.v)).col(0));
  } catch (const error&) {
    o.vacuous = true;  // the tangents pass T's largest number (jvp refuses them): no exact slope in T
    return o;
  }
  if (!with_exact || *with_exact < 1.5) {
    o.vacuous = true;
    return o;
  }
  o.fail(fmt::format("Taylor remainder with the backward gradient falls with order {:.2f} (< 1.5), with the "
                     "dual-number slope with order {:.2f}: gᵀv = {} but uᵀJv = {}",
                     *with_backward, *with_exact, bpcheck::to_string(slope_backward), bpcheck::to_string(slope_exact)));
  return o;
}

}  // namespace bpcheck::properties
