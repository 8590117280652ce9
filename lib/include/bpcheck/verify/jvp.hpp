#pragma once
// Forward-mode oracle: Jacobian–vector products from one `forward` pass on dual numbers.
//
//   // any layer: say how to run it on dual<T> with given parameters
//   auto f = [](const Matrix<dual<double>>& X, const Vector<dual<double>>& theta) {
//     bpcheck::Dense<dual<double>> d(4, 3);
//     d.set_parameters(theta);
//     return d.forward(X);
//   };
//   Matrix<double> Jx = bpcheck::jacobian_input_jvp(f, X, theta);       // ⌈in·B / 8⌉ passes
//   Matrix<double> Jt = bpcheck::jacobian_parameters_jvp(f, X, theta);  // ⌈P / 8⌉ passes
//   // a registered layer: built on dual<T> from its spec
//   Matrix<double> J = bpcheck::jacobian_input_jvp(LayerSpec{"gelu", {}}, X, theta);
//
// The math. Seeding x + Σ_k v_k ε_k (ε_j ε_k = 0) and running f gives f(x) + Σ_k (J v_k) ε_k: lane k
// of the output's tangents is J v_k, exact up to the rounding of the derivative rules themselves
// (no step, no truncation). With dual_width = 8 lanes a pass yields 8 columns of J·V; seeding
// V = I on vec(X) (θ held constant) gives J_x, seeding V = I on θ (X constant) gives J_θ. The layer
// code that runs is the code under test, instantiated on dual<T>; only its `forward` is called.
#include <algorithm>
#include <functional>
#include <memory>
#include <type_traits>

#include "bpcheck/layer.hpp"
#include "bpcheck/scalar.hpp"

namespace bpcheck {

/// Runs a layer on dual numbers: (X, θ) ↦ forward(X) with parameters θ.
template <class T>
using DualForward = std::function<Matrix<dual<T>>(const Matrix<dual<T>>&, const Vector<dual<T>>&)>;

/// The forward value and the directional derivatives J·V (one column per direction).
template <class T>
struct Jvp {
  Matrix<T> output;     ///< forward(X) with parameters θ
  Matrix<T> tangents;   ///< out·B × k: column c is J v_c, on vec of the output batch
  Index passes = 0;     ///< forward passes on dual<T> (⌈k / dual_width⌉, at least 1)
};

/// J_x V: the columns of V (in·B × k) are directions in vec(X).
template <class T>
Jvp<T> jvp_input(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X, const Vector<T>& theta,
                 const Matrix<T>& V);

/// J_θ V: the columns of V (P × k) are directions in θ.
template <class T>
Jvp<T> jvp_parameters(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X, const Vector<T>& theta,
                      const Matrix<T>& V);

/// [J_x J_θ] V: the columns of V ((in·B + P) × k) are directions in z = [vec X; θ], both seeded in the
/// same pass (⌈k / 8⌉ passes, where J_x V_x + J_θ V_θ separately would take twice as many).
template <class T>
Jvp<T> jvp(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X, const Vector<T>& theta,
           const Matrix<T>& V);

/// J_x on the batch (out·B × in·B, the layout of jacobian_input), from ⌈in·B / 8⌉ passes.
template <class T>
Matrix<T> jacobian_input_jvp(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X,
                             const Vector<T>& theta);

/// J_θ on the batch (out·B × P, the layout of jacobian_parameters), from ⌈P / 8⌉ passes.
template <class T>
Matrix<T> jacobian_parameters_jvp(const std::type_identity_t<DualForward<T>>& f, const Matrix<T>& X,
                                  const Vector<T>& theta);

/// A DualForward from a layer already built on dual<T> (e.g. Dense<dual<T>>(4, 3)); the layer is kept
/// and its parameters are replaced at each call. Taken by value, so that a layer built in the call is
/// moved in rather than copied (on dual<mp100> a dense layer's θ alone is 720 bytes per parameter).
template <Layer L>
  requires(scalar_traits<typename L::scalar_type>::is_dual && std::copy_constructible<L>)
DualForward<real_t<typename L::scalar_type>> dual_forward(L layer_on_dual) {
  using D = typename L::scalar_type;
  auto copy = std::make_shared<L>(std::move(layer_on_dual));
  return [copy](const Matrix<D>& X, const Vector<D>& theta) -> Matrix<D> {
    copy->set_parameters(theta);
    return copy->forward(X);
  };
}

/// A DualForward for a registered layer: make_layer<dual<T>>(spec, input_size).
template <class T>
DualForward<T> dual_forward(const LayerSpec& spec, Index input_size) {
  return dual_forward(make_layer<dual<T>>(spec, input_size));
}

/// J_x of the registered layer `spec` with parameters θ at X (input size X.rows()).
template <class T>
Matrix<T> jacobian_input_jvp(const LayerSpec& spec, const Matrix<T>& X, const Vector<T>& theta) {
  return jacobian_input_jvp<T>(dual_forward<T>(spec, X.rows()), X, theta);
}

/// J_θ of the registered layer `spec` with parameters θ at X (input size X.rows()).
template <class T>
Matrix<T> jacobian_parameters_jvp(const LayerSpec& spec, const Matrix<T>& X, const Vector<T>& theta) {
  return jacobian_parameters_jvp<T>(dual_forward<T>(spec, X.rows()), X, theta);
}

// Defined in the library (lib/src/jvp_impl.hpp) for the three rungs below.
#define BPCHECK_EXTERN_JVP(T)                                                                                 \
  extern template Jvp<T> jvp_input<T>(const DualForward<T>&, const Matrix<T>&, const Vector<T>&,              \
                                      const Matrix<T>&);                                                      \
  extern template Jvp<T> jvp_parameters<T>(const DualForward<T>&, const Matrix<T>&, const Vector<T>&,         \
                                           const Matrix<T>&);                                                 \
  extern template Jvp<T> jvp<T>(const DualForward<T>&, const Matrix<T>&, const Vector<T>&, const Matrix<T>&); \
  extern template Matrix<T> jacobian_input_jvp<T>(const DualForward<T>&, const Matrix<T>&, const Vector<T>&); \
  extern template Matrix<T> jacobian_parameters_jvp<T>(const DualForward<T>&, const Matrix<T>&,               \
                                                       const Vector<T>&);
BPCHECK_EXTERN_JVP(float)
BPCHECK_EXTERN_JVP(double)
BPCHECK_EXTERN_JVP(::bpcheck::mp100)
#undef BPCHECK_EXTERN_JVP

}  // namespace bpcheck
