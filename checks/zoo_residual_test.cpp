// residual: y = x + g(x) for an inner sequence g: verified on every rung, by hand, through the model
// format and parameters JSON, inside networks, with a batch-coupled inner layer, and refused specs.
#include <string>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/layers/residual.hpp"
#include "zoo_helpers.hpp"

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Vector;
using bpcheck::testing::build;
using bpcheck::testing::ratio;
using bpcheck::testing::real_rungs;
using bpcheck::testing::verify_clean;

namespace {
nlohmann::json inner(const std::string& text) { return nlohmann::json::parse(text); }
}  // namespace

TEST_CASE("zoo verify: residual blocks pass every check on every rung",
          "[zoo][verify]") {
  using bpcheck::testing::verify_right_gradients;
  verify_right_gradients({"residual", inner(R"({"layers": [{"type": "dense", "units": 4}, {"type": "tanh"},
                                                 {"type": "dense", "units": 3}]})")},
               3, 10);
  verify_right_gradients({"residual", inner(R"({"layers": [{"type": "layer_norm"}, {"type": "mish"}]})")}, 3, 6);
  // A nested residual and a batch-coupled inner layer (batch_norm in training mode).
  // (tanh between them: a bias right before batch_norm has an exactly zero gradient, see the README.)
  verify_right_gradients({"residual", inner(R"({"layers": [{"type": "residual", "layers": [{"type": "dense", "units": 2}]},
                                                 {"type": "tanh"}, {"type": "batch_norm"}]})")},
               2, 6, 1, 3);
}

TEMPLATE_LIST_TEST_CASE("residual: x + W₂ relu(W₁x + b₁) + b₂ by hand, blocks named by inner index", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  auto r = build<T>("residual", 2,
                    inner(R"({"layers": [{"type": "dense", "units": 2}, {"type": "relu"}, {"type": "dense", "units": 2}]})"));
  const auto blocks = r.parameter_blocks();
  REQUIRE(blocks.size() == 4);
  CHECK(blocks[0].name == "0.W");
  CHECK(blocks[1].name == "0.b");
  CHECK(blocks[2].name == "2.W");
  CHECK(blocks[3].name == "2.b");
  CHECK(blocks[2].offset == 6);
  // W₁ = I, b₁ = (0, −1); W₂ = [[1, 1], [0, 2]], b₂ = (1/2, 0) (vec column-major).
  Vector<T> theta(12);
  theta << T(1), T(0), T(0), T(1), T(0), T(-1), T(1), T(0), T(1), T(2), ratio<T>(1, 2), T(0);
  r.set_parameters(theta);
  CHECK(r.parameters() == theta);
  Matrix<T> X(2, 2);
  X << T(3), T(-1),  //
      T(2), T(4);
  // Sample 0: h = relu(3, 1) = (3, 1), g = (3 + 1 + 1/2, 2) → y = (3 + 9/2, 2 + 2) = (15/2, 4).
  // Sample 1: h = relu(−1, 3) = (0, 3), g = (3 + 1/2, 6) → y = (−1 + 7/2, 4 + 6) = (5/2, 10).
  Matrix<T> expected(2, 2);
  expected << ratio<T>(15, 2), ratio<T>(5, 2),  //
      T(4), T(10);
  CHECK(r.forward(X) == expected);
  // J_x of sample 0 = I + W₂ diag(1, 1) W₁ = [[2, 1], [0, 3]]; of sample 1 = I + W₂ diag(0, 1) = [[1, 1], [0, 3]].
  Matrix<T> J = Matrix<T>::Zero(4, 4);
  J.block(0, 0, 2, 2) << T(2), T(1), T(0), T(3);
  J.block(2, 2, 2, 2) << T(1), T(1), T(0), T(3);
  CHECK(r.jacobian_input(X) == J);
  CHECK(r.sample_independent());
}

TEST_CASE("residual with a batch-coupled inner layer is not sample independent", "[zoo][layers]") {
  const auto r = build<double>("residual", 2, inner(R"({"layers": [{"type": "batch_norm"}]})"));
  CHECK(!r.sample_independent());
}

TEST_CASE("residual in a model file: parameters JSON by block name, and verify_network passes", "[zoo][verify]") {
  const auto spec = bpcheck::model_spec_from_json(inner(R"({"input_size": 3, "layers": [
      {"type": "dense", "units": 4},
      {"type": "residual", "layers": [{"type": "dense", "units": 4}, {"type": "silu"}, {"type": "dense", "units": 4}]},
      {"type": "dense", "units": 2}], "loss": "cross_entropy"})"),
                                                  "model.json");
  bpcheck::Network<mp100> net(spec);
  net.initialize(3);
  const auto params = bpcheck::parameters_to_json(net);
  REQUIRE(params["layers"][1].contains("0.W"));
  REQUIRE(params["layers"][1].contains("2.b"));
  bpcheck::VerifyOptions o;
  o.points = 1;
  bpcheck::testing::require_clean(
      bpcheck::verify_network({spec, nlohmann::json(params), std::nullopt}, o), "network with a residual block");
}

TEST_CASE("residual refuses bad specs with input_error", "[zoo][errors]") {
  const auto refuses = [](nlohmann::json options, const std::string& words) {
    INFO(options.dump());
    CHECK_THROWS_WITH(build<double>("residual", 3, options), Catch::Contains(words));
    CHECK_THROWS_AS(build<mp100>("residual", 3, options), bpcheck::input_error);
  };
  refuses(nlohmann::json::object(), "non-empty array");
  refuses(inner(R"({"layers": []})"), "non-empty array");
  refuses(inner(R"({"layers": [{"type": "dense", "units": 2}]})"), "needs the same width");
  refuses(inner(R"({"layers": [{"type": "dense"}]})"), "inner layer 0: dense: missing option 'units'");
  refuses(inner(R"({"layers": [{"type": "tanh"}, {"type": "spline"}]})"), "inner layer 1: unknown layer type");
  refuses(inner(R"({"layers": ["tanh"]})"), "expected an object");
  refuses(inner(R"({"layers": [{"type": "tanh"}], "skip": true})"), "unknown option 'skip'");
}
