// Properties of every built-in layer, on float, double and mp100: the routes to the Jacobian agree,
// forward and reverse mode agree, both are linear, the Taylor remainder is second order, and the
// Jacobians have their closed forms.
#include "helpers.hpp"

namespace {
using namespace bpcheck::properties;
using bpcheck::mp100;
using testing::require_for_every_layer;
}  // namespace

TEMPLATE_TEST_CASE("explicit J, the JVP's columns, the VJP's rows and finite differences agree for every built-in layer",
                   "[property][layer]", float, double, mp100) {
  require_for_every_layer<TestType>(
      "explicit J = JVP columns = VJP rows = finite differences",
      [](const LayerCase& c) { return jacobian_routes(layer_case_at<TestType>(c)); }, 200, 20);
}

TEMPLATE_TEST_CASE("uᵀ(Jv) by forward mode equals (Jᵀu)ᵀv by reverse mode for every built-in layer",
                   "[property][layer]", float, double, mp100) {
  require_for_every_layer<TestType>(
      "uᵀ(Jv) = (Jᵀu)ᵀv", [](const LayerCase& c) { return dot_product(layer_case_at<TestType>(c)); }, 200, 20);
}

TEMPLATE_TEST_CASE("the JVP and the VJP of every built-in layer are linear in the direction", "[property][layer]",
                   float, double, mp100) {
  require_for_every_layer<TestType>(
      "J(a v₁ + b v₂) = a J v₁ + b J v₂ and Jᵀ(a u₁ + b u₂) = a Jᵀu₁ + b Jᵀu₂",
      [](const LayerCase& c) { return linearity(layer_case_at<TestType>(c)); }, 200, 20);
}

TEMPLATE_TEST_CASE("the Taylor remainder of every built-in layer falls like h² away from kinks", "[property][layer]",
                   float, double, mp100) {
  require_for_every_layer<TestType>(
      "|φ(z + hv) − φ(z) − h gᵀv| = O(h²)", [](const LayerCase& c) { return taylor(layer_case_at<TestType>(c)); }, 200,
      20,
      {Distribution::standard, Distribution::wide_range, Distribution::saturation, Distribution::near_ties});
}

TEMPLATE_TEST_CASE("dense, softmax, log_softmax and elementwise layers have their closed-form Jacobians",
                   "[property][layer]", float, double, mp100) {
  require_for_every_layer<TestType>(
      "∂(Wx)/∂vec(W) = xᵀ ⊗ I, softmax J = diag(s) − ssᵀ, elementwise J diagonal",
      [](const LayerCase& c) { return closed_form<TestType>(c); }, 200, 20);
}
