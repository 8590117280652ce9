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

namespace {
// Two values normalised with a gain of 1000 as a user may write it: the textbook forward
// g (x − mean)/√(var + ε), whose dual-number derivative cancels O(1) terms down to ε, and a backward
// in a cancellation-free closed form: with c = (x₁ − x₂)/2, y₁ = −y₂ = g c/√(c² + ε), so
// dy₁/dc = g ε/(c² + ε)^{3/2}. ε = 2⁻¹⁰ and g = 1000 are exact on every rung, so the mp100 twin sits at the
// same point. (bpcheck's own layer_norm now computes two values in the cancellation-free form forward too.)
template <class T>
class TextbookTwoValueNorm {
 public:
  using scalar_type = T;
  std::string type_name() const { return "textbook_two_value_norm"; }
  bpcheck::Index input_size() const { return 2; }
  bpcheck::Index output_size() const { return 2; }
  std::vector<bpcheck::ParameterBlock> parameter_blocks() const { return {}; }
  bpcheck::Vector<T> parameters() const { return {}; }
  void set_parameters(const bpcheck::Vector<T>&) {}

  bpcheck::Matrix<T> forward(const bpcheck::Matrix<T>& X) const {
    using std::sqrt;
    bpcheck::Matrix<T> Y(2, X.cols());
    for (bpcheck::Index s = 0; s < X.cols(); ++s) {
      const T mean = (X(0, s) + X(1, s)) / T(2), d0 = X(0, s) - mean, d1 = X(1, s) - mean;
      const T r = sqrt((d0 * d0 + d1 * d1) / T(2) + eps());
      Y(0, s) = T(1000) * d0 / r;
      Y(1, s) = T(1000) * d1 / r;
    }
    return Y;
  }
  bpcheck::Matrix<T> backward(const bpcheck::Matrix<T>& X, const bpcheck::Matrix<T>&, const bpcheck::Matrix<T>& dY,
                              Eigen::Ref<bpcheck::Vector<T>>) const {
    using std::sqrt;
    bpcheck::Matrix<T> dX(2, X.cols());
    for (bpcheck::Index s = 0; s < X.cols(); ++s) {
      const T c = (X(0, s) - X(1, s)) / T(2), q = c * c + eps();
      const T dc = (dY(0, s) - dY(1, s)) * (T(1000) * eps() / (q * sqrt(q)));
      dX(0, s) = dc / T(2);
      dX(1, s) = -dc / T(2);
    }
    return dX;
  }

 private:
  static T eps() { return T(1) / T(1024); }
};

template <class T>
LayerAtPoint<T> textbook_two_value_norm_at() {
  bpcheck::Matrix<T> X(2, 1), U(2, 1);
  X << T(1), T(-1);
  U << T(1) / T(128), T(1) / T(128);
  bpcheck::Vector<T> v(2);
  v << T(1) / T(128), T(-21) / T(128);
  return layer_at_point(TextbookTwoValueNorm<T>{}, TextbookTwoValueNorm<bpcheck::dual<T>>{}, X, bpcheck::Vector<T>(),
                        U, v);
}
}  // namespace

TEST_CASE("a disagreement that is the dual-number route's own rounding is no counterexample, a wrong backward still is",
          "[property][layer]") {
  // Without the mp100 twin's J, the rounding bound alone calls the float dual-number route's cancellation
  // a disagreement with the (accurate) backward; with it, that route's measured error explains it.
  LayerAtPoint<float> without = textbook_two_value_norm_at<float>();
  {
    const Outcome o = jacobian_routes(without);
    INFO(o.message);
    CHECK_FALSE(o.holds);
  }
  LayerAtPoint<float> p = without;
  p.reference_jacobian = [] {
    return bpcheck::matrix_cast<float>(jacobian_by_jvp(textbook_two_value_norm_at<mp100>()));
  };
  {
    const Outcome o = jacobian_routes(p);
    INFO(o.message);
    CHECK(o.holds);
    CHECK(dot_product(p).holds);
  }

  // A backward off by 10% stays a counterexample with the twin's J.
  LayerAtPoint<float> wrong = p;
  wrong.backward = [b = p.backward](const bpcheck::Matrix<float>& X, const bpcheck::Vector<float>& theta,
                                    const bpcheck::Matrix<float>& U, bpcheck::Vector<float>& dtheta) {
    return bpcheck::Matrix<float>(b(X, theta, U, dtheta) * 1.1f);
  };
  const Outcome o = jacobian_routes(wrong);
  INFO(o.message);
  CHECK_FALSE(o.holds);
}

TEST_CASE("layer_norm over two values with a gain of 1000: every route agrees in float", "[property][layer]") {
  // The built-in layer computes two values in the cancellation-free form, forward and backward alike.
  LayerCase c;
  c.spec = {"layer_norm", {{"eps", 0.001}}};
  c.input_size = 2;
  c.output_size = 2;
  c.batch = 1;
  c.inputs = {mp100(1), mp100(-1)};
  c.parameters = {mp100(1), mp100(1000), mp100(1), mp100(1)};
  c.cotangent = {mp100(1) / 128, mp100(1) / 128};
  c.direction = {mp100(1) / 128, mp100(-21) / 128, mp100(1) / 128, mp100(1) / 128, mp100(1) / 128, mp100(1) / 128};
  LayerAtPoint<float> p = layer_case_at<float>(c);
  CHECK(jacobian_routes(p).holds);
  CHECK(dot_product(p).holds);
  p.magnitude = nullptr;
  p.reference_jacobian = nullptr;
  CHECK(jacobian_routes(p).holds);
}
