// multi_head_attention: verified on every rung (with and without the causal mask), by hand (uniform
// attention, PyTorch's 1/√d scaling, causality), PyTorch's parameter blocks, and refused options.
#include <cmath>
#include <string>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/layers/attention.hpp"
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

namespace {

/// θ for embed E with W_q = q·I, W_k = k·I, W_v = W_o = I and zero biases.
template <class T>
Vector<T> identity_projections(Index E, const T& q, const T& k) {
  Vector<T> theta = Vector<T>::Zero(4 * E * E + 4 * E);
  Eigen::Map<Matrix<T>> w_in(theta.data(), 3 * E, E);
  w_in.topRows(E) = q * Matrix<T>::Identity(E, E);
  w_in.middleRows(E, E) = k * Matrix<T>::Identity(E, E);
  w_in.bottomRows(E) = Matrix<T>::Identity(E, E);
  Eigen::Map<Matrix<T>>(theta.data() + 3 * E * E + 3 * E, E, E) = Matrix<T>::Identity(E, E);
  return theta;
}

}  // namespace

TEST_CASE("zoo verify: multi_head_attention passes every check on every rung",
          "[zoo][verify]") {
  using bpcheck::testing::verify_right_gradients;
  verify_right_gradients({"multi_head_attention", {{"sequence", 3}, {"heads", 2}}}, 12, 4);
  verify_right_gradients({"multi_head_attention", {{"sequence", 3}, {"heads", 2}, {"causal", true}}}, 12, 4);
  verify_right_gradients({"multi_head_attention", {{"sequence", 2}, {"heads", 1}}}, 4, 4, 3);
}

TEMPLATE_LIST_TEST_CASE("multi_head_attention: zero queries attend uniformly, causal tokens see only the past",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  Matrix<T> X(6, 1);  // 3 tokens of embed 2
  X << T(1), T(2), T(-3), T(4), T(5), T(0);
  auto a = build<T>("multi_head_attention", 6, {{"sequence", 3}, {"heads", 2}});
  a.set_parameters(identity_projections<T>(2, T(0), T(1)));
  // A = 0: every token gets the mean of the values, (1, 2).
  Matrix<T> mean(6, 1);
  mean << T(1), T(2), T(1), T(2), T(1), T(2);
  CHECK(normwise_relative_difference(a.forward(X), mean) <= eps_times<T>(4));
  auto c = build<T>("multi_head_attention", 6, {{"sequence", 3}, {"heads", 2}, {"causal", true}});
  c.set_parameters(identity_projections<T>(2, T(0), T(1)));
  // Causal: token i gets the mean of tokens 0 … i.
  Matrix<T> prefix(6, 1);
  prefix << T(1), T(2), T(-1), T(3), T(1), T(2);
  CHECK(normwise_relative_difference(c.forward(X), prefix) <= eps_times<T>(4));
  // With learned queries too, token 0's output depends on token 0 only.
  c.set_parameters(identity_projections<T>(2, ratio<T>(1, 3), ratio<T>(-2, 5)));
  const Matrix<T> J = c.jacobian_input(X);
  CHECK(J.block(0, 2, 2, 4) == Matrix<T>::Zero(2, 4));
  CHECK(J.block(2, 4, 2, 2) == Matrix<T>::Zero(2, 2));
  CHECK(J.block(2, 0, 2, 2) != Matrix<T>::Zero(2, 2));
}

TEMPLATE_LIST_TEST_CASE("multi_head_attention scales the scores by 1/√d as PyTorch (d = embed/heads)", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  using std::log;
  using std::sqrt;
  // Embed 4, one head (d = 4), W_q = W_k = W_v = W_o = I: token 0 = (a, 0, 0, 0), token 1 = 0, a² = 2 ln 3.
  // A(0, 0) = a²/√4 = ln 3 and A(0, 1) = 0, so token 0 attends with (3/4, 1/4): y₀ = (3a/4, 0, 0, 0);
  // token 1 has A = 0 and gets (a/2, 0, 0, 0).
  const T a = sqrt(T(T(2) * log(T(3))));
  Matrix<T> X = Matrix<T>::Zero(8, 1);
  X(0) = a;
  auto m = build<T>("multi_head_attention", 8, {{"sequence", 2}, {"heads", 1}});
  m.set_parameters(identity_projections<T>(4, T(1), T(1)));
  Matrix<T> expected = Matrix<T>::Zero(8, 1);
  expected(0) = T(3) * a / T(4);
  expected(4) = a / T(2);
  CHECK(normwise_relative_difference(m.forward(X), expected) <= eps_times<T>(16));
}

TEST_CASE("multi_head_attention has PyTorch's parameter blocks", "[zoo][layers]") {
  const auto a = build<double>("multi_head_attention", 12, {{"sequence", 3}, {"heads", 2}});
  const auto b = a.parameter_blocks();
  REQUIRE(b.size() == 4);
  CHECK(b[0].name == "in_proj_weight");
  CHECK((b[0].rows == 12 && b[0].cols == 4));
  CHECK(b[1].name == "in_proj_bias");
  CHECK(b[1].size() == 12);
  CHECK(b[2].name == "out_proj.weight");
  CHECK((b[2].rows == 4 && b[2].cols == 4));
  CHECK(b[3].name == "out_proj.bias");
  CHECK(a.parameter_count() == 4 * 16 + 4 * 4);
}

TEST_CASE("a transformer-style block (residual attention, layer_norm, residual MLP) passes verify_network",
          "[zoo][verify]") {
  const auto spec = nlohmann::json::parse(R"({"input_size": 6, "layers": [
      {"type": "residual", "layers": [{"type": "multi_head_attention", "sequence": 3, "heads": 1, "causal": true}]},
      {"type": "layer_norm"},
      {"type": "residual", "layers": [{"type": "dense", "units": 4}, {"type": "gelu"}, {"type": "dense", "units": 6}]},
      {"type": "dense", "units": 2}], "loss": "mse"})");
  bpcheck::VerifyOptions o;
  o.points = 1;
  bpcheck::testing::require_clean(
      bpcheck::verify_network({bpcheck::model_spec_from_json(spec, "model.json"), std::nullopt, std::nullopt}, o),
      "transformer-style block");
}

TEST_CASE("multi_head_attention refuses bad options with input_error", "[zoo][errors]") {
  const auto refuses = [](Index in, nlohmann::json options, const std::string& words) {
    INFO(options.dump());
    CHECK_THROWS_WITH(build<double>("multi_head_attention", in, options), Catch::Contains(words));
    CHECK_THROWS_AS(build<mp100>("multi_head_attention", in, options), bpcheck::input_error);
  };
  refuses(12, {{"sequence", 3}, {"heads", 3}}, "does not divide the embed size 4");
  refuses(10, {{"sequence", 3}, {"heads", 1}}, "not a sequence of 3 equal tokens");
  refuses(12, {{"sequence", 3}}, "missing option 'heads'");
  refuses(12, {{"heads", 1}}, "missing option 'sequence'");
  refuses(12, {{"sequence", 3}, {"heads", 1}, {"causal", 1}}, "true or false");
  refuses(12, {{"sequence", 3}, {"heads", 1}, {"dropout", 0.1}}, "unknown option 'dropout'");
  refuses(12, {{"sequence", 0}, {"heads", 1}}, "positive integer");
}
