#pragma once
// The identities the property suite checks, on one rung at one point, for any layer-like map
// (X, θ) ↦ Y seen through std::function: a layer, a whole network, a network with its loss.
//
//   auto p = bpcheck::properties::layer_at_point(make(rung<double>{}), make(rung<dual<double>>{}), X, θ, U, v);
//   bpcheck::properties::Outcome o = bpcheck::properties::jacobian_routes(p);   // o.holds, o.message
//
// With z = [vec X; θ], J = [J_x J_θ] and u = vec U:
//   jacobian_routes   explicit J (when stated) = columns of the JVP = rows of the VJP, and in mp100 also
//                     = finite differences
//   dot_product       uᵀ(J v) by forward mode = (Jᵀu)ᵀ v by reverse mode
//   linearity         J(a v₁ + b v₂) = a J v₁ + b J v₂  and  Jᵀ(a u₁ + b u₂) = a Jᵀu₁ + b Jᵀu₂
//   taylor            r(h) = |φ(z + h v) − φ(z) − h gᵀv|, φ = uᵀf, g = Jᵀu by backward, falls like h²
//
// Tolerances. Two routes computed in the same rung T differ by rounding only: entry (i, j) may differ
// by K (n + 2) u_T · max(S_ij, max S, floor) with u_T the unit roundoff, n the number of terms summed,
// S the magnitude of the terms (|J| for a layer, the absolute product |J_L|⋯|J_1| for a network), K = 16.
// Where that fails in float or double and the point has an mp100 twin (LayerAtPoint::reference_jacobian),
// the verdict is taken again with 4× the dual-number route's own measured error added.
// In float and double the floor is 1: entries computed through cancellation (gelu′ near its zero)
// carry rounding errors the size of their O(1) terms. In mp100 the comparison uses the relative
// tolerance 1e-40 and the floor 1e-60 (an absolute 1e-100, mp100's own rounding of O(1) terms):
// exact in practice, so any wrong route shows.
// Finite differences (central, mp100 only: in float and double their step can be long next to the
// scale on which the map bends, and no estimate from the same stencil notices) add 4× their own error
// estimate; where they still disagree and one-sided differences with the column's own step show a
// kink within reach, the point is not a counterexample (Outcome::vacuous).
#include <functional>
#include <string>
#include <utility>

#include "bpcheck/layer.hpp"
#include "bpcheck/scalar.hpp"
#include "bpcheck/verify/jvp.hpp"

namespace bpcheck::properties {

/// The verdict of one identity at one point: whether it holds and, if not, where and by how much.
struct Outcome {
  bool holds = true;
  bool vacuous = false;  ///< nothing could be measured (e.g. a Taylor remainder below round-off)
  std::string message;
  void fail(const std::string& why) {
    if (holds) message = why;
    holds = false;
  }
};

/// A map (X, θ) ↦ Y on rung T at one point, with its backward and (optionally) stated Jacobians.
template <class T>
struct LayerAtPoint {
  std::string name;
  std::function<Matrix<T>(const Matrix<T>& X, const Vector<T>& theta)> forward;
  /// dX = J_xᵀ vec(U); adds J_θᵀ vec(U) to dtheta.
  std::function<Matrix<T>(const Matrix<T>& X, const Vector<T>& theta, const Matrix<T>& U, Vector<T>& dtheta)>
      backward;
  DualForward<T> dual;  ///< the same map on dual<T>
  /// The stated [J_x J_θ] (empty function: the layer states none).
  std::function<Matrix<T>(const Matrix<T>& X, const Vector<T>& theta)> jacobian;
  /// Magnitudes S of the terms behind each entry of J (empty function: |J| itself): a layer's stated
  /// absolute Jacobian, the absolute product of the layers' for a network.
  std::function<Matrix<T>(const Matrix<T>& X, const Vector<T>& theta)> magnitude;
  Matrix<T> X;
  Vector<T> theta;
  Matrix<T> U;  ///< a cotangent, the shape of the output
  Vector<T> v;  ///< a direction in z = [vec X; θ]
  Index rounding_terms = 0;  ///< n in the bound; 0: in·B + |θ|
  /// X holds indices (an embedding): no gradient with respect to them, so finite differences and
  /// Taylor steps leave X where it is (v's X part must be zero).
  bool index_input = false;
  /// J by dual numbers in mp100 at the same point, rounded to T (empty in mp100, or when no mp100
  /// twin is known). Where a route disagrees with the dual-number J of rung T beyond the rounding
  /// bound, that J's own error against this reference is added to the bound: the exact route can
  /// cancel where the code under test does not (layer_norm over two values), and its measured
  /// rounding is no counterexample. Computed only then, so it costs nothing on the common path.
  std::function<Matrix<T>()> reference_jacobian;
};

template <class T>
Outcome jacobian_routes(const LayerAtPoint<T>& p);
template <class T>
Outcome dot_product(const LayerAtPoint<T>& p);
template <class T>
Outcome linearity(const LayerAtPoint<T>& p);
template <class T>
Outcome taylor(const LayerAtPoint<T>& p);

/// [J_x J_θ] of the map by dual numbers (its JVP with unit directions).
template <class T>
Matrix<T> jacobian_by_jvp(const LayerAtPoint<T>& p);

/// Any Layer (on T and on dual<T>) at a point. T is the layer's real rung.
template <class L, class LD>
LayerAtPoint<typename L::scalar_type> layer_at_point(const L& layer, const LD& layer_on_dual,
                                                      Matrix<typename L::scalar_type> X,
                                                      Vector<typename L::scalar_type> theta,
                                                      Matrix<typename L::scalar_type> U,
                                                      Vector<typename L::scalar_type> v) {
  using T = typename L::scalar_type;
  LayerAtPoint<T> p;
  p.name = layer.type_name();
  p.forward = [layer](const Matrix<T>& x, const Vector<T>& th) {
    L copy = layer;
    copy.set_parameters(th);
    return Matrix<T>(copy.forward(x));
  };
  p.backward = [layer](const Matrix<T>& x, const Vector<T>& th, const Matrix<T>& u, Vector<T>& dtheta) {
    L copy = layer;
    copy.set_parameters(th);
    const Matrix<T> y = copy.forward(x);
    return Matrix<T>(copy.backward(x, y, u, dtheta));
  };
  p.dual = dual_forward(layer_on_dual);
  bool stated = false;
  if constexpr (requires { layer.has_jacobians(); })
    stated = layer.has_jacobians();
  else
    stated = LayerWithJacobians<L>;
  if constexpr (LayerWithJacobians<L>) {
    if (stated)
      p.jacobian = [layer](const Matrix<T>& x, const Vector<T>& th) {
        L copy = layer;
        copy.set_parameters(th);
        const Matrix<T> jx = copy.jacobian_input(x), jt = copy.jacobian_parameters(x);
        Matrix<T> J(jx.rows(), jx.cols() + jt.cols());
        J << jx, jt;
        return J;
      };
  }
  // The magnitude of the terms is the layer's stated absolute Jacobian where it states one, as in the
  // verifier: |J| can be far below the terms that round (attention's scores, a normalisation's x̂).
  if constexpr (LayerWithAbsoluteJacobian<L>) {
    bool absolute = true;
    if constexpr (requires { layer.has_absolute_jacobian(); }) absolute = layer.has_absolute_jacobian();
    if (absolute)
      p.magnitude = [layer](const Matrix<T>& x, const Vector<T>& th) {
        L copy = layer;
        copy.set_parameters(th);
        return Matrix<T>(copy.absolute_jacobian(x));
      };
  }
  p.index_input = has_index_input(layer);
  p.X = std::move(X);
  p.theta = std::move(theta);
  p.U = std::move(U);
  p.v = std::move(v);
  return p;
}

#define BPCHECK_EXTERN_IDENTITIES(T)                                  \
  extern template Outcome jacobian_routes<T>(const LayerAtPoint<T>&); \
  extern template Outcome dot_product<T>(const LayerAtPoint<T>&);     \
  extern template Outcome linearity<T>(const LayerAtPoint<T>&);       \
  extern template Outcome taylor<T>(const LayerAtPoint<T>&);          \
  extern template Matrix<T> jacobian_by_jvp<T>(const LayerAtPoint<T>&);
BPCHECK_EXTERN_IDENTITIES(float)
BPCHECK_EXTERN_IDENTITIES(double)
BPCHECK_EXTERN_IDENTITIES(::bpcheck::mp100)
#undef BPCHECK_EXTERN_IDENTITIES

}  // namespace bpcheck::properties
