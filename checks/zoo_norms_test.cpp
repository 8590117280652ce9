// layer_norm and batch_norm (training and evaluation modes): verified on every rung, hand values,
// PyTorch's biased variance, the batch coupling of training mode, and the options refused.
#include <cmath>
#include <string>

#include "bpcheck/layers/norms.hpp"
#include "zoo_helpers.hpp"

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Vector;
using bpcheck::testing::build;
using bpcheck::testing::eps_times;
using bpcheck::testing::normwise_relative_difference;
using bpcheck::testing::ratio;
using bpcheck::testing::real_rungs;
using bpcheck::testing::verify_clean;

TEST_CASE("zoo verify: layer_norm passes every check on every rung", "[zoo][verify]") {
  verify_clean({"layer_norm", {}}, 4, 20);
  verify_clean({"layer_norm", {{"eps", "0.1"}}}, 3, 10, 30);
}
TEST_CASE("zoo verify: batch_norm in training mode passes every check on every rung (batches of 2 and 3)",
          "[zoo][verify]") {
  verify_clean({"batch_norm", {}}, 3, 15, 1, 2);
  verify_clean({"batch_norm", {{"mode", "train"}, {"eps", "0.01"}}}, 2, 10, 1, 3);
}
TEST_CASE("zoo verify: batch_norm in evaluation mode passes every check on every rung", "[zoo][verify]") {
  verify_clean({"batch_norm", {{"mode", "eval"}}}, 3, 10);
  verify_clean({"batch_norm", {{"mode", "eval"}, {"running_mean", {0.5, -1}}, {"running_var", {"0.25", 4}}}}, 2, 10);
}

TEMPLATE_LIST_TEST_CASE("layer_norm: (x − mean)/√(biased var + eps) per sample, then γ x̂ + β", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  using std::abs;
  using std::sqrt;
  auto ln = build<T>("layer_norm", 3, {{"eps", "0.5"}});
  Vector<T> theta(6);
  theta << T(2), T(1), ratio<T>(1, 2), T(0), T(1), T(-1);  // γ, β
  ln.set_parameters(theta);
  Matrix<T> X(3, 2);
  X << T(1), T(5),  //
      T(2), T(5),   //
      T(3), T(5);
  // Sample 0: mean 2, biased variance 2/3, s = √(2/3 + 1/2) = √(7/6). Sample 1: constant, x̂ = 0, y = β.
  const T s = sqrt(ratio<T>(7, 6));
  Matrix<T> expected(3, 2);
  expected << T(-2) / s, T(0),  //
      T(1), T(1),               //
      T(ratio<T>(1, 2) / s - T(1)), T(-1);
  CHECK(normwise_relative_difference(ln.forward(X), expected) <= eps_times<T>(8));
  // J_x of a sample is diag(γ)(I − 11ᵀ/n − x̂x̂ᵀ/n)/s: every column of (I − 11ᵀ/n − x̂x̂ᵀ/n) sums to 0.
  const Matrix<T> J = ln.jacobian_input(X);
  const Matrix<T> unscaled = Vector<T>(Vector<T>(theta.head(3).cwiseInverse()).replicate(2, 1)).asDiagonal() * J;
  for (Index c = 0; c < 6; ++c) CHECK(T(abs(unscaled.col(c).sum())) <= eps_times<T>(16));
  CHECK(J.block(0, 3, 3, 3) == Matrix<T>::Zero(3, 3));  // samples are independent
  CHECK(ln.sample_independent());
}

TEMPLATE_LIST_TEST_CASE("batch_norm (train): statistics over the batch per feature, J_x couples the samples",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  using std::sqrt;
  auto bn = build<T>("batch_norm", 2, {{"eps", "0.25"}});
  Vector<T> theta(4);
  theta << T(1), T(3), T(0), ratio<T>(1, 2);
  bn.set_parameters(theta);
  Matrix<T> X(2, 3);
  X << T(0), T(1), T(2),  //
      T(4), T(4), T(-2);
  // Feature 0: mean 1, biased variance 2/3, s = √(2/3 + 1/4) = √(11/12).
  // Feature 1: mean 2, biased variance 8, s = √(33/4).
  const T s0 = sqrt(ratio<T>(11, 12)), s1 = sqrt(ratio<T>(33, 4));
  Matrix<T> expected(2, 3);
  expected << T(-1) / s0, T(0), T(1) / s0,  //
      T(T(6) / s1 + ratio<T>(1, 2)), T(T(6) / s1 + ratio<T>(1, 2)), T(T(-12) / s1 + ratio<T>(1, 2));
  CHECK(normwise_relative_difference(bn.forward(X), expected) <= eps_times<T>(8));
  CHECK(!bn.sample_independent());
  const Matrix<T> J = bn.jacobian_input(X);
  REQUIRE(J.rows() == 6);
  REQUIRE(J.cols() == 6);
  // ∂y(0, sample 0)/∂x(0, sample 1) = γ₀(0 − 1/3 − x̂₀₀x̂₀₁/3)/s₀ = −1/(3 s₀): not block diagonal.
  CHECK(bpcheck::testing::close(T(J(0, 2)), T(T(-1) / (T(3) * s0)), eps_times<T>(8)));
  // Features never mix.
  CHECK(J(0, 1) == T(0));
  CHECK(J(1, 2) == T(0));
  // A batch of one has no variance: refused, as PyTorch does in training mode.
  CHECK_THROWS_WITH(bn.forward(Matrix<T>(X.col(0))), Catch::Contains("at least 2 samples"));
}

TEMPLATE_LIST_TEST_CASE("batch_norm (eval): fixed running statistics, affine and sample independent", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  auto bn = build<T>("batch_norm", 2,
                     {{"mode", "eval"}, {"eps", "0.75"}, {"running_mean", {1, -1}}, {"running_var", {"3.25", "0.25"}}});
  Vector<T> theta(4);
  theta << T(1), T(3), T(0), ratio<T>(1, 2);
  bn.set_parameters(theta);
  // s = √(v + eps) = (2, 1): x = (3, 0) → x̂ = (1, 1) → y = (1, 7/2); a batch of one is fine here.
  Matrix<T> X(2, 1);
  X << T(3), T(0);
  Matrix<T> expected(2, 1);
  expected << T(1), ratio<T>(7, 2);
  CHECK(bn.forward(X) == expected);
  Matrix<T> J(2, 2);
  J << ratio<T>(1, 2), T(0), T(0), T(3);
  CHECK(bn.jacobian_input(X) == J);
  CHECK(bn.sample_independent());
  // Defaults are PyTorch's initial buffers, mean 0 and variance 1: y = γ x/√(1 + eps) + β.
  auto plain = build<T>("batch_norm", 1, {{"mode", "eval"}, {"eps", 3}});
  Vector<T> unit_gain(2);
  unit_gain << T(1), T(0);
  plain.set_parameters(unit_gain);
  Matrix<T> x1(1, 1);
  x1 << T(4);
  CHECK(plain.forward(x1)(0) == T(2));
}

TEMPLATE_LIST_TEST_CASE("layer_norm and batch_norm state absolute Jacobians that bound |J| and see x̂'s terms at near ties",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  using std::abs;
  Vector<T> theta(4);
  theta << T(-2), ratio<T>(1, 128), T(1), ratio<T>(1, 128);  // γ, β
  // Feature rows × samples; the second feature of the layer_norm sample and the batch_norm row are
  // near-tied: 0.50781232… and 0.5078125 differ in three units of float's last place.
  const T near(0.50781232118606567382812500);
  Matrix<T> X(2, 3);
  X << near, T(1), T(-3),  //
      T(0.5078125), T(near), T(0.5078125);
  const std::vector<std::pair<std::string, nlohmann::json>> layers = {
      {"layer_norm", nlohmann::json::object()},
      {"batch_norm", nlohmann::json::object()},
      {"batch_norm", {{"mode", "eval"}, {"running_mean", {"0.5078125", "0.5"}}, {"running_var", {"0", "0.25"}}}}};
  for (const auto& [type, options] : layers) {
    INFO(type << " " << options.dump());
    auto l = build<T>(type, 2, options);
    l.set_parameters(theta);
    REQUIRE(l.has_absolute_jacobian());
    const Matrix<T> A = l.absolute_jacobian(X);
    const Matrix<T> Jx = l.jacobian_input(X), Jt = l.jacobian_parameters(X);
    REQUIRE(A.rows() == Jx.rows());
    REQUIRE(A.cols() == Jx.cols() + Jt.cols());
    Matrix<T> J(Jx.rows(), Jx.cols() + Jt.cols());
    J << Jx, Jt;
    for (Index i = 0; i < J.rows(); ++i)
      for (Index j = 0; j < J.cols(); ++j) {
        INFO("entry " << i << ", " << j);
        CHECK(A(i, j) >= T(abs(J(i, j))) * (T(1) - eps_times<T>(16)));
      }
    // ∂y/∂γ = x̂ is the small difference of terms of size (|x| + |mean|)/s where x is near-tied: the
    // absolute Jacobian states those terms, hundreds of times |x̂| (layer_norm: sample 0; batch_norm:
    // feature 1, whose samples are all near 0.5078125).
    const Index row = type == "layer_norm" ? 0 : 1;  // y of (feature 0, sample 0) or (feature 1, sample 0)
    const Index gamma_col = Jx.cols() + row;
    if (!(type == "batch_norm" && options.contains("mode"))) CHECK(A(row, gamma_col) > T(100) * T(abs(J(row, gamma_col))));
  }
}

TEST_CASE("layer_norm and batch_norm refuse bad options with input_error", "[zoo][errors]") {
  const auto refuses = [](const std::string& type, nlohmann::json options, const std::string& words) {
    INFO(type << " " << options.dump());
    CHECK_THROWS_WITH(build<double>(type, 2, options), Catch::Contains(words));
    CHECK_THROWS_AS(build<mp100>(type, 2, options), bpcheck::input_error);
  };
  refuses("layer_norm", {{"eps", 0}}, "eps must be positive");
  refuses("layer_norm", {{"elementwise_affine", false}}, "unknown option 'elementwise_affine'");
  refuses("batch_norm", {{"eps", "-1e-5"}}, "eps must be positive");
  refuses("batch_norm", {{"mode", "inference"}}, "must be one of");
  refuses("batch_norm", {{"running_mean", {0, 0}}}, "apply to mode \"eval\" only");
  refuses("batch_norm", {{"mode", "eval"}, {"running_mean", {0, 0, 0}}}, "array of 2 numbers");
  refuses("batch_norm", {{"mode", "eval"}, {"running_var", {1, -1}}}, "must not be negative");
  refuses("batch_norm", {{"momentum", 0.1}}, "unknown option 'momentum'");
}

TEST_CASE("networks with layer_norm and batch_norm (both modes) pass verify_network", "[zoo][verify]") {
  const bpcheck::ModelSpec m{3,
                             {{"dense", {{"units", 4}}},
                              {"layer_norm", {}},
                              {"tanh", {}},
                              {"dense", {{"units", 3}}},
                              {"sigmoid", {}},  // not dense → batch_norm: that bias would have a zero gradient
                              {"batch_norm", {}},
                              {"dense", {{"units", 3}}},
                              {"batch_norm", {{"mode", "eval"}, {"running_mean", {"0.1", 0, -1}}, {"running_var", {1, 2, 3}}}}},
                             "cross_entropy"};
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    bpcheck::VerifyOptions o;
    o.seed = seed;
    o.batch = 3;
    bpcheck::testing::require_clean(bpcheck::verify_network({m, std::nullopt, std::nullopt}, o),
                                    "normalisation network, seed " + std::to_string(seed));
  }
}
