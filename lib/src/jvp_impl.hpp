#pragma once
// The definitions of the dual-number JVP oracle (bpcheck/verify/jvp.hpp), instantiated once per rung in
// the library (instantiations.hpp); jvp_detail::run is also the verifier's own seeding loop.
#include <algorithm>
#include <string>

#include "bpcheck/error.hpp"
#include "bpcheck/verify/jvp.hpp"

namespace bpcheck {

namespace jvp_detail {

template <class T>
Matrix<dual<T>> lift(const Matrix<T>& M) {
  return M.unaryExpr([](const T& x) { return dual<T>(x); });
}

/// Runs ⌈k/8⌉ passes; seed(pass_first_column, lanes, Xd, thetad) writes the tangents.
template <class T, class Seed>
Jvp<T> run(const DualForward<T>& f, const Matrix<T>& X, const Vector<T>& theta, Index directions, Seed seed) {
  using std::isfinite;
  static_assert(!scalar_traits<T>::is_dual, "the JVP oracle lifts a real rung to dual numbers");
  if (X.size() == 0) throw input_error("jvp: empty batch");
  Jvp<T> r;
  const Index passes = directions == 0 ? 1 : (directions + dual_width - 1) / dual_width;
  for (Index p = 0; p < passes; ++p) {
    Matrix<dual<T>> Xd = lift(X);
    // lifted straight into a vector: through a matrix it would be built twice, θ's size in duals each
    Vector<dual<T>> td = theta.unaryExpr([](const T& x) { return dual<T>(x); });
    const Index first = p * dual_width;
    const Index lanes = std::min<Index>(dual_width, directions - first);
    seed(first, lanes, Xd, td);
    const ActiveLanes active{static_cast<int>(lanes)};
    const Matrix<dual<T>> Yd = f(Xd, td);
    if (p == 0) {
      r.output = Yd.unaryExpr([](const dual<T>& y) { return y.v; });
      r.tangents.resize(Yd.size(), directions);
    } else if (Yd.rows() != r.output.rows() || Yd.cols() != r.output.cols()) {
      throw input_error("jvp: the layer's output shape changed between passes");
    }
    for (Index i = 0; i < Yd.size(); ++i) {
      for (Index l = 0; l < lanes; ++l) r.tangents(i, first + l) = Yd(i).d[static_cast<std::size_t>(l)];
    }
  }
  for (Index i = 0; i < r.tangents.size(); ++i)
    if (!isfinite(r.tangents(i))) throw not_finite_error("jvp: a tangent is not finite (the layer overflowed on duals)");
  r.passes = passes;
  return r;
}

}  // namespace jvp_detail

template <class T>
Jvp<T> jvp_input(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X, const Vector<T>& theta,
                 const Matrix<T>& V) {
  if (V.rows() != X.size())
    throw input_error("jvp_input: directions have " + std::to_string(V.rows()) + " rows, vec(X) has " +
                      std::to_string(X.size()));
  return jvp_detail::run<T>(f, X, theta, V.cols(),
                            [&V](Index first, Index lanes, Matrix<dual<T>>& Xd, Vector<dual<T>>&) {
                              for (Index i = 0; i < Xd.size(); ++i)
                                for (Index l = 0; l < lanes; ++l)
                                  Xd(i).d[static_cast<std::size_t>(l)] = V(i, first + l);
                            });
}

template <class T>
Jvp<T> jvp_parameters(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X, const Vector<T>& theta,
                      const Matrix<T>& V) {
  if (V.rows() != theta.size())
    throw input_error("jvp_parameters: directions have " + std::to_string(V.rows()) + " rows, θ has " +
                      std::to_string(theta.size()));
  return jvp_detail::run<T>(f, X, theta, V.cols(),
                            [&V](Index first, Index lanes, Matrix<dual<T>>&, Vector<dual<T>>& td) {
                              for (Index i = 0; i < td.size(); ++i)
                                for (Index l = 0; l < lanes; ++l)
                                  td(i).d[static_cast<std::size_t>(l)] = V(i, first + l);
                            });
}

template <class T>
Jvp<T> jvp(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X, const Vector<T>& theta,
           const Matrix<T>& V) {
  if (V.rows() != X.size() + theta.size())
    throw input_error("jvp: directions have " + std::to_string(V.rows()) + " rows, [vec X; θ] has " +
                      std::to_string(X.size() + theta.size()));
  const Index nx = X.size();
  return jvp_detail::run<T>(f, X, theta, V.cols(),
                            [&V, nx](Index first, Index lanes, Matrix<dual<T>>& Xd, Vector<dual<T>>& td) {
                              for (Index l = 0; l < lanes; ++l) {
                                for (Index i = 0; i < nx; ++i) Xd(i).d[static_cast<std::size_t>(l)] = V(i, first + l);
                                for (Index i = 0; i < td.size(); ++i)
                                  td(i).d[static_cast<std::size_t>(l)] = V(nx + i, first + l);
                              }
                            });
}

// The identity directions are seeded one lane per column without forming I.
template <class T>
Matrix<T> jacobian_input_jvp(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X,
                             const Vector<T>& theta) {
  return jvp_detail::run<T>(f, X, theta, X.size(),
                            [](Index first, Index lanes, Matrix<dual<T>>& Xd, Vector<dual<T>>&) {
                              for (Index l = 0; l < lanes; ++l)
                                Xd(first + l).d[static_cast<std::size_t>(l)] = T(1);
                            })
      .tangents;
}

template <class T>
Matrix<T> jacobian_parameters_jvp(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X,
                                  const Vector<T>& theta) {
  return jvp_detail::run<T>(f, X, theta, theta.size(),
                            [](Index first, Index lanes, Matrix<dual<T>>&, Vector<dual<T>>& td) {
                              for (Index l = 0; l < lanes; ++l)
                                td(first + l).d[static_cast<std::size_t>(l)] = T(1);
                            })
      .tangents;
}

}  // namespace bpcheck
