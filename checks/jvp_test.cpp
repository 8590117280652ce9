// The dual-number JVP oracle: Jacobians from forward passes on dual<T> equal the layers' explicit
// Jacobians and central differences.
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/verify/finite_difference.hpp"
#include "bpcheck/verify/jvp.hpp"
#include "helpers.hpp"

namespace {

using bpcheck::dual;
using bpcheck::Index;
using bpcheck::LayerSpec;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Vector;

/// A 4 × 3 batch with entries of both signs and different sizes (softmax columns not uniform).
template <class T>
Matrix<T> batch() {
  Matrix<T> X(4, 3);
  X << T(1) / 3, T(-1) / 2, T(2) / 7,   //
      T(1) / 5, T(-3) / 4, T(1) / 9,    //
      T(-6) / 5, T(5) / 4, T(-2) / 9,   //
      T(3) / 2, T(1) / 8, T(-7) / 11;
  return X;
}

/// Deterministic parameters with digits beyond double (i/7-type fractions).
template <class T>
Vector<T> some_parameters(Index n) {
  Vector<T> theta(n);
  for (Index i = 0; i < n; ++i) theta(i) = T(int(i % 7) - 3) / T(7 + int(i % 4));
  return theta;
}

const std::vector<LayerSpec>& jvp_specs() {
  static const std::vector<LayerSpec> s{{"dense", {{"units", 3}}},
                                        {"tanh", {}},
                                        {"gelu", {}},
                                        {"gelu", {{"approximate", "tanh"}}},
                                        {"softmax", {}},
                                        {"log_softmax", {}}};
  return s;
}

/// How close the two routes must be: 1e-90 in mp100 (both exact to ~1e-99 of the entries' scale);
/// in float/double a few ulps, since both routes evaluate the same derivative formulas in a
/// different order (e.g. tanh' as 1 − t² on duals and 4e/(1 + e)² in the layer).
template <class T>
T route_tolerance() {
  if constexpr (std::is_same_v<T, mp100>)
    return bpcheck::from_string<T>("1e-90");
  else
    return T(8) * bpcheck::scalar_traits<T>::epsilon();
}

}  // namespace

TEMPLATE_TEST_CASE("JVP Jacobians equal the explicit jacobian_input and jacobian_parameters", "[jvp]", double,
                   mp100) {
  using T = TestType;
  const Matrix<T> X = batch<T>();
  for (const LayerSpec& spec : jvp_specs()) {
    CAPTURE(spec.type, spec.options.dump());
    auto layer = bpcheck::make_layer<T>(spec, X.rows());
    const Vector<T> theta = some_parameters<T>(layer.parameter_count());
    layer.set_parameters(theta);

    const Matrix<T> Jx = bpcheck::jacobian_input_jvp(spec, X, theta);  // 12 columns: 2 passes
    const Matrix<T> Jt = bpcheck::jacobian_parameters_jvp(spec, X, theta);
    const T dx = bpcheck::testing::max_relative_difference<T>(Jx, layer.jacobian_input(X));
    const T dt = bpcheck::testing::max_relative_difference<T>(Jt, layer.jacobian_parameters(X));
    CAPTURE(bpcheck::to_string(dx), bpcheck::to_string(dt));
    CHECK(dx <= route_tolerance<T>());
    CHECK(dt <= route_tolerance<T>());
  }
}

TEST_CASE("in mp100, JVP Jacobians equal central differences to 1e-40", "[jvp][fd][mp100]") {
  using T = mp100;
  const Matrix<T> X = batch<T>();
  const T tol = bpcheck::from_string<T>("1e-40");
  for (const LayerSpec& spec : jvp_specs()) {
    CAPTURE(spec.type, spec.options.dump());
    auto layer = bpcheck::make_layer<T>(spec, X.rows());
    const Vector<T> theta = some_parameters<T>(layer.parameter_count());
    layer.set_parameters(theta);
    const auto fdx = bpcheck::jacobian_input_fd(layer, X, bpcheck::FdScheme::central);
    CHECK(bpcheck::testing::max_relative_difference<T>(bpcheck::jacobian_input_jvp(spec, X, theta), fdx.value) <
          tol);
    if (layer.parameter_count() > 0) {
      const auto fdt = bpcheck::jacobian_parameters_fd(layer, X, bpcheck::FdScheme::central);
      CHECK(bpcheck::testing::max_relative_difference<T>(bpcheck::jacobian_parameters_jvp(spec, X, theta),
                                                         fdt.value) < tol);
    }
  }
}

TEMPLATE_TEST_CASE("a Jacobian wrong in one entry is told apart from the JVP", "[jvp][must-fail]", double,
                   mp100) {
  using T = TestType;
  const Matrix<T> X = batch<T>();
  const LayerSpec spec{"gelu", {}};
  const auto layer = bpcheck::make_layer<T>(spec, X.rows());
  const Matrix<T> Jx = bpcheck::jacobian_input_jvp(spec, X, Vector<T>(0));
  Matrix<T> wrong = layer.jacobian_input(X);
  CHECK(bpcheck::testing::max_relative_difference<T>(Jx, wrong) <= route_tolerance<T>());  // must pass
  // Off by 1e-30 relative in mp100, by 1e-13 relative in double: far above each tolerance.
  const T off = bpcheck::from_string<T>(std::is_same_v<T, mp100> ? "1e-30" : "1e-13");
  wrong(0, 0) *= T(1) + off;  // gelu'(1/3) ≈ 0.76: the entry is not small
  CHECK(bpcheck::testing::max_relative_difference<T>(Jx, wrong) > route_tolerance<T>());  // must fail
}

TEMPLATE_TEST_CASE("JVPs work for user layers and user directions", "[jvp]", double, mp100) {
  using T = TestType;
  const Matrix<T> X = batch<T>();
  bpcheck::Dense<T> dense(4, 2);
  const Vector<T> theta = some_parameters<T>(dense.parameters().size());
  dense.set_parameters(theta);

  SECTION("a layer built directly on dual<T>") {
    const auto f = bpcheck::dual_forward(bpcheck::Dense<dual<T>>(4, 2));
    const Matrix<T> Jt = bpcheck::jacobian_parameters_jvp(f, X, theta);  // 10 parameters: 2 passes
    CHECK(bpcheck::testing::max_relative_difference<T>(Jt, dense.jacobian_parameters(X)) <=
          route_tolerance<T>());
  }
  SECTION("a plain callable: y = x ⊙ x + θ₀, so J_x = diag(2 vec X) and J_θ = 1") {
    const auto f = [](const Matrix<dual<T>>& Xd, const Vector<dual<T>>& td) -> Matrix<dual<T>> {
      return Xd.cwiseProduct(Xd).unaryExpr([&td](const dual<T>& y) { return dual<T>(y + td(0)); });
    };
    Vector<T> one(1);
    one << T(1) / 3;
    const Matrix<T> Jx = bpcheck::jacobian_input_jvp(f, X, one);
    const Vector<T> v = Eigen::Map<const Vector<T>>(X.data(), X.size());
    CHECK(Jx == Matrix<T>((T(2) * v).asDiagonal()));
    CHECK(bpcheck::jacobian_parameters_jvp(f, X, one) == Matrix<T>::Ones(X.size(), 1));
  }
  SECTION("J·V for 3 and for 10 directions (one and two passes)") {
    const Matrix<T> J = dense.jacobian_input(X);
    for (const Index k : {Index(3), Index(10)}) {
      Matrix<T> V(X.size(), k);
      for (Index i = 0; i < V.size(); ++i) V(i) = T(int(i % 5) - 2) / T(3);
      const auto r = bpcheck::jvp_input(bpcheck::dual_forward<T>({"dense", {{"units", 2}}}, 4), X, theta, V);
      CHECK(r.passes == (k + 7) / 8);
      CHECK(bpcheck::testing::max_relative_difference<T>(r.output, dense.forward(X)) <= route_tolerance<T>());
      CHECK(bpcheck::testing::max_relative_difference<T>(r.tangents, Matrix<T>(J * V)) <= route_tolerance<T>());
      Matrix<T> W(theta.size(), k);
      for (Index i = 0; i < W.size(); ++i) W(i) = T(int(i % 3) - 1) / T(2);
      const auto s = bpcheck::jvp_parameters(bpcheck::dual_forward<T>({"dense", {{"units", 2}}}, 4), X, theta, W);
      CHECK(bpcheck::testing::max_relative_difference<T>(s.tangents, Matrix<T>(dense.jacobian_parameters(X) * W)) <=
            route_tolerance<T>());
    }
  }
  SECTION("directions of the wrong size are refused") {
    const auto f = bpcheck::dual_forward<T>({"dense", {{"units", 2}}}, 4);
    CHECK_THROWS_AS(bpcheck::jvp_input(f, X, theta, Matrix<T>(Matrix<T>::Ones(5, 1))), bpcheck::input_error);
    CHECK_THROWS_AS(bpcheck::jvp_parameters(f, X, theta, Matrix<T>(Matrix<T>::Ones(3, 1))), bpcheck::input_error);
  }
}
