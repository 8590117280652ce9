#pragma once
// Generated cases of built-in layers and networks, set up on one rung for the identities.
//
//   const auto c = *bpcheck::properties::gen::network_case({});
//   auto p = bpcheck::properties::network_at<double>(c);         // X ↦ f(X): the network's output
//   auto o = bpcheck::properties::jacobian_routes(p);            // explicit product = JVP = VJP = FD
//   auto l = bpcheck::properties::network_loss_at<double>(c);    // X, θ ↦ ℓ(f(X), t): the theorem
//
// Instantiated for float, double and mp100 in properties/src/cases_*.cpp.
#include "bpcheck/properties/generators.hpp"
#include "bpcheck/properties/identities.hpp"

namespace bpcheck::properties {

/// A built-in layer (make_layer) at the case's point.
template <class T>
LayerAtPoint<T> layer_case_at(const LayerCase& c);

/// The network's output map (X, θ) ↦ f(X; θ). Its stated Jacobian is the explicit product
/// [J_L⋯J_1, J_L⋯J_{k+1}·J_θ,k …], its magnitudes the same product in absolute values.
template <class T>
LayerAtPoint<T> network_at(const NetworkCase& c);

/// The network with its loss, (X, θ) ↦ ℓ(f(X), t): backward is backprop, the stated Jacobian the
/// paper's product ∇ℓᵀ·J_L⋯J_{k+1}·J_θ,k for every k.
template <class T>
LayerAtPoint<T> network_loss_at(const NetworkCase& c);

/// J_{f∘g} = J_f·J_g for every pair of adjacent layers (g = layer k, f = layer k + 1), in the input
/// and in θ_k, each Jacobian by dual numbers. Vacuous for a network of one layer.
template <class T>
Outcome chain_rule(const NetworkCase& c);

/// J_L(J_{L−1}(⋯J_1)) = ((J_L J_{L−1})⋯)J_1, the stated layer Jacobians multiplied from either end.
template <class T>
Outcome accumulation_orders(const NetworkCase& c);

/// Closed forms, against the dual-number Jacobian: dense J_x = I_B ⊗ W and ∂y/∂vec(W) = xᵀ ⊗ I (exactly),
/// softmax J = diag(s) − s sᵀ, log_softmax J = I − 1 sᵀ, elementwise layers a diagonal J (exactly).
template <class T>
Outcome closed_form(const LayerCase& c);

#define BPCHECK_EXTERN_CASES(T)                                         \
  extern template LayerAtPoint<T> layer_case_at<T>(const LayerCase&);   \
  extern template LayerAtPoint<T> network_at<T>(const NetworkCase&);    \
  extern template LayerAtPoint<T> network_loss_at<T>(const NetworkCase&); \
  extern template Outcome chain_rule<T>(const NetworkCase&);            \
  extern template Outcome accumulation_orders<T>(const NetworkCase&);   \
  extern template Outcome closed_form<T>(const LayerCase&);
BPCHECK_EXTERN_CASES(float)
BPCHECK_EXTERN_CASES(double)
BPCHECK_EXTERN_CASES(::bpcheck::mp100)
#undef BPCHECK_EXTERN_CASES

}  // namespace bpcheck::properties
