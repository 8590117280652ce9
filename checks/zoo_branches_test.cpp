// add/concat: parallel branches reading the same input, joined by a sum or stacked: verified on every
// rung, by hand, against residual (add of the input and a branch), through the model format and
// parameters JSON, with a batch-coupled branch, and refused specs.
#include <string>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/layers/branches.hpp"
#include "zoo_helpers.hpp"

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Vector;
using bpcheck::testing::build;
using bpcheck::testing::real_rungs;

namespace {
nlohmann::json branches(const std::string& text) { return nlohmann::json::parse(R"({"branches": )" + text + "}"); }
}  // namespace

TEST_CASE("zoo verify: add and concat branches have right gradients on every rung", "[zoo][verify]") {
  using bpcheck::testing::verify_right_gradients;
  verify_right_gradients({"add", branches(R"([[{"type": "dense", "units": 3}, {"type": "tanh"}], [], [{"type": "sigmoid"}]])")},
                         3, 6);
  verify_right_gradients({"concat", branches(R"([[{"type": "dense", "units": 2}], [{"type": "tanh"}], []])")}, 3, 6);
  // a batch-coupled branch (batch_norm in training mode) makes the join couple the samples
  verify_right_gradients({"concat", branches(R"([[{"type": "batch_norm"}], [{"type": "dense", "units": 1}]])")}, 2, 4,
                         1, 3);
}

TEMPLATE_LIST_TEST_CASE("concat stacks (W x + b, tanh-free x) per sample, add sums, blocks named branch.layer.block",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  auto c = build<T>("concat", 2, branches(R"([[{"type": "dense", "units": 1}], []])"));
  REQUIRE(c.output_size() == 3);
  const auto blocks = c.parameter_blocks();
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[0].name == "0.0.W");
  CHECK(blocks[1].name == "0.0.b");
  Vector<T> theta(3);
  theta << T(2), T(-1), T(1);  // W = [2, −1], b = 1
  c.set_parameters(theta);
  Matrix<T> X(2, 2);
  X << T(3), T(0),  //
      T(1), T(5);
  // sample 0: [2·3 − 1 + 1; 3; 1] = [6; 3; 1];  sample 1: [−5 + 1; 0; 5] = [−4; 0; 5]
  Matrix<T> expected(3, 2);
  expected << T(6), T(-4),  //
      T(3), T(0),           //
      T(1), T(5);
  CHECK(c.forward(X) == expected);
  // J_x per sample: [[2, −1], [1, 0], [0, 1]], block diagonal over the batch
  Matrix<T> J = Matrix<T>::Zero(6, 4);
  J.block(0, 0, 3, 2) << T(2), T(-1), T(1), T(0), T(0), T(1);
  J.block(3, 2, 3, 2) = J.block(0, 0, 3, 2);
  CHECK(c.jacobian_input(X) == J);
  // backward of dY: dX = Wᵀ dY₀ + dY₁…₂; dθ = [dY₀ xᵀ, dY₀] summed over samples
  Matrix<T> dY(3, 2);
  dY << T(1), T(2),  //
      T(-1), T(0),   //
      T(0), T(3);
  Vector<T> dtheta = Vector<T>::Zero(3);
  const Matrix<T> dX = c.backward(X, c.forward(X), dY, dtheta);
  Matrix<T> expected_dX(2, 2);
  expected_dX << T(2 - 1), T(4 + 0),  //
      T(-1 + 0), T(-2 + 3);
  CHECK(dX == expected_dX);
  Vector<T> expected_dtheta(3);
  expected_dtheta << T(1 * 3 + 2 * 0), T(1 * 1 + 2 * 5), T(1 + 2);
  CHECK(dtheta == expected_dtheta);
  CHECK(c.sample_independent());

  auto a = build<T>("add", 2, branches(R"([[{"type": "dense", "units": 2}], [{"type": "relu"}]])"));
  Vector<T> w(6);
  w << T(1), T(0), T(0), T(1), T(0), T(0);  // W = I, b = 0: y = x + relu(x)
  a.set_parameters(w);
  Matrix<T> expected_sum(2, 2);
  expected_sum << T(6), T(0),  //
      T(2), T(10);
  CHECK(a.forward(X) == expected_sum);
}

TEMPLATE_LIST_TEST_CASE("add of the input and a branch is residual: forward, backward and Jacobians agree exactly",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  const auto g = R"([{"type": "dense", "units": 3}, {"type": "tanh"}])";
  auto a = build<T>("add", 3, branches(std::string("[[], ") + g + "]"));
  auto r = build<T>("residual", 3, nlohmann::json::parse(std::string(R"({"layers": )") + g + "}"));
  Vector<T> theta(12);
  for (Index i = 0; i < theta.size(); ++i) theta(i) = T(int(i % 5) - 2) / T(4);
  a.set_parameters(theta);
  r.set_parameters(theta);
  Matrix<T> X(3, 2);
  X << T(1), T(-2), T(0.5), T(3), T(-1), T(0.25);
  CHECK(a.forward(X) == r.forward(X));
  CHECK(a.jacobian_input(X) == r.jacobian_input(X));
  CHECK(a.jacobian_parameters(X) == r.jacobian_parameters(X));
  Matrix<T> U(3, 2);
  U << T(1), T(0), T(-1), T(2), T(0.5), T(1);
  Vector<T> da = Vector<T>::Zero(12), dr = Vector<T>::Zero(12);
  CHECK(a.backward(X, a.forward(X), U, da) == r.backward(X, r.forward(X), U, dr));
  CHECK(da == dr);
}

TEST_CASE("a branch with batch_norm in training mode makes add/concat not sample independent", "[zoo][layers]") {
  CHECK(!build<double>("concat", 2, branches(R"([[{"type": "batch_norm"}], []])")).sample_independent());
  CHECK(build<double>("concat", 2, branches(R"([[{"type": "tanh"}], []])")).sample_independent());
}

TEST_CASE("concat in a model file: parameters JSON by block name, memory counted, verify_network passes",
          "[zoo][verify]") {
  const auto spec = bpcheck::model_spec_from_json(nlohmann::json::parse(R"({"input_size": 3, "layers": [
      {"type": "concat", "branches": [[{"type": "dense", "units": 4}, {"type": "tanh"}], [], [{"type": "sigmoid"}]]},
      {"type": "dense", "units": 2}], "loss": "cross_entropy"})"),
                                                  "model.json");
  bpcheck::Network<mp100> net(spec);
  REQUIRE(net.layer(0).output_size() == 4 + 3 + 3);
  net.initialize(3);
  const auto params = bpcheck::parameters_to_json(net);
  REQUIRE(params["layers"][0].contains("0.0.W"));
  REQUIRE(params["layers"][0].contains("0.0.b"));
  CHECK(bpcheck::model_extent(spec).widest >= 10);
  CHECK(bpcheck::model_extent(spec).parameters == double(net.parameter_count()));
  bpcheck::VerifyOptions o;
  o.points = 1;
  bpcheck::testing::require_clean(bpcheck::verify_network({spec, nlohmann::json(params), std::nullopt}, o),
                                  "network with concat branches");
}

TEST_CASE("add and concat refuse bad specs with input_error", "[zoo][errors]") {
  const auto refuses = [](const std::string& type, nlohmann::json options, const std::string& words) {
    INFO(type << " " << options.dump());
    CHECK_THROWS_WITH(build<double>(type, 3, options), Catch::Contains(words));
    CHECK_THROWS_AS(build<mp100>(type, 3, options), bpcheck::input_error);
  };
  refuses("add", nlohmann::json::object(), "at least two branches");
  refuses("add", branches("[[]]"), "at least two branches");
  refuses("concat", branches(R"({"a": 1})"), "at least two branches");
  refuses("add", branches(R"([[{"type": "dense", "units": 2}], []])"), "a sum needs the same width");
  refuses("concat", branches(R"([[{"type": "tanh"}], "tanh"])"), "branch 1 must be an array");
  refuses("concat", branches(R"([[], [{"type": "dense"}]])"), "branch 1, layer 0: dense: missing option 'units'");
  refuses("add", branches(R"([[], [{"type": "tanh"}, {"type": "spline"}]])"), "branch 1, layer 1: unknown layer type");
  refuses("concat", nlohmann::json::parse(R"({"branches": [[], []], "axis": 0})"), "unknown option 'axis'");
}
