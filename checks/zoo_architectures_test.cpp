// The layers of ResNet, MobileNetV2 and transformer encoder stacks: grouped and bias-free convolution,
// batch_norm2d, adaptive_avg_pool2d, dense and layer_norm on tokens, position_embedding, token_mean and
// transformer_encoder_layer. Each is verified on every rung, its forward compared with PyTorch or hand
// values, a mutant of its backward must FAIL in mp100, and bad options are refused.
#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/layers/attention.hpp"
#include "bpcheck/layers/conv.hpp"
#include "bpcheck/layers/embedding.hpp"
#include "bpcheck/layers/norms.hpp"
#include "bpcheck/layers/pool.hpp"
#include "mutants.hpp"
#include "zoo_helpers.hpp"

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Vector;
using bpcheck::Verdict;
using bpcheck::testing::build;
using bpcheck::testing::normwise_relative_difference;
using bpcheck::testing::real_rungs;
using bpcheck::testing::verify_clean;
using bpcheck::testing::verify_right_gradients;

namespace {

/// Values computed in double by PyTorch (each test says how), compared with a tolerance that covers
/// the rung's own rounding and the reference's.
template <class T>
T reference_tolerance() {
  return std::is_same_v<T, float> ? T(1e-5) : T(1e-13);
}

template <class T>
Matrix<T> column_matrix(Index rows, Index cols, const std::vector<double>& values) {
  REQUIRE(values.size() == std::size_t(rows * cols));
  Matrix<T> M(rows, cols);
  for (Index c = 0; c < cols; ++c)
    for (Index r = 0; r < rows; ++r) M(r, c) = T(values[std::size_t(c * rows + r)]);
  return M;
}

void refuses(const std::string& type, Index in, const nlohmann::json& options, const std::string& words) {
  INFO(type << " " << options.dump());
  CHECK_THROWS_WITH(build<double>(type, in, options), Catch::Contains(words));
  CHECK_THROWS_AS(build<mp100>(type, in, options), bpcheck::input_error);
}

/// The mutant's planted bug is a wrong gradient: mp100's decisive comparison FAILs (in `block` when given).
void require_mp100_failure(bpcheck::mutants::Mutant m, const std::string& block = "") {
  const bpcheck::VerificationReport r = bpcheck::verify_layer(bpcheck::mutants::MutantFactory{m});
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  bool seen = false;
  for (const auto& c : r.checks) {
    if (c.check != "backward vs oracle" || c.precision != "mp100") continue;
    seen = true;
    CHECK(c.verdict == Verdict::fail);
    REQUIRE(!c.worst.empty());
    if (!block.empty()) CHECK(c.worst.front().block == block);
  }
  CHECK(seen);
}

}  // namespace

// ---- every check on every rung ------------------------------------------------------------------

TEST_CASE("zoo verify: grouped, depthwise and bias-free convolutions pass every check on every rung", "[zoo][verify]") {
  verify_clean({"conv2d", {{"channels", 2}, {"height", 3}, {"width", 3}, {"out_channels", 4}, {"kernel", 2},
                           {"groups", 2}}},
               18, 4);
  // MobileNetV2's depthwise 3×3 with padding 1, no bias
  verify_clean({"conv2d", {{"channels", 3}, {"height", 3}, {"width", 3}, {"out_channels", 3}, {"kernel", 3},
                           {"padding", 1}, {"groups", 3}, {"bias", false}}},
               27, 4);
  verify_clean({"conv2d", {{"channels", 2}, {"height", 2}, {"width", 3}, {"out_channels", 2}, {"kernel", 1},
                           {"bias", false}}},
               12, 4);
  verify_clean({"conv1d", {{"channels", 4}, {"length", 4}, {"out_channels", 2}, {"kernel", 2}, {"stride", 2},
                           {"groups", 2}, {"bias", false}}},
               16, 4);
}

TEST_CASE("zoo verify: batch_norm2d passes every check on every rung (train and eval, batches of 1 and 2)",
          "[zoo][verify]") {
  verify_clean({"batch_norm2d", {{"channels", 2}, {"height", 2}, {"width", 2}}}, 8, 8, 1, 2);
  verify_clean({"batch_norm2d", {{"channels", 3}, {"height", 1}, {"width", 2}, {"eps", "0.01"}}}, 6, 6, 1, 1);
  verify_clean({"batch_norm2d", {{"channels", 2}, {"height", 1}, {"width", 1}}}, 2, 6, 1, 3);
  verify_clean({"batch_norm2d", {{"channels", 2}, {"height", 2}, {"width", 1}, {"mode", "eval"},
                                 {"running_mean", {0.5, -1}}, {"running_var", {"0.25", 4}}}},
               4, 6);
}

TEST_CASE("zoo verify: adaptive_avg_pool2d passes every check on every rung", "[zoo][verify]") {
  verify_clean({"adaptive_avg_pool2d", {{"channels", 2}, {"height", 3}, {"width", 3}, {"output_size", 1}}}, 18, 4);
  verify_clean({"adaptive_avg_pool2d", {{"channels", 1}, {"height", 5}, {"width", 4}, {"output_size", 3}}}, 20, 4);
  verify_clean({"adaptive_avg_pool2d", {{"channels", 1}, {"height", 2}, {"width", 3}, {"output_size", {3, 2}}}}, 6, 4);
}

TEST_CASE("zoo verify: dense and layer_norm on tokens, position_embedding and token_mean pass every check on every rung",
          "[zoo][verify]") {
  verify_clean({"dense", {{"units", 3}, {"tokens", 3}}}, 6, 6);
  verify_clean({"layer_norm", {{"tokens", 2}}}, 6, 10);
  verify_clean({"layer_norm", {{"tokens", 3}, {"eps", "0.1"}}}, 6, 6, 30);
  verify_clean({"position_embedding", {{"tokens", 3}, {"features", 2}}}, 6, 4);
  verify_clean({"token_mean", {{"tokens", 3}}}, 6, 4);
}

TEST_CASE("zoo verify: transformer_encoder_layer passes every check on every rung (post-LN relu, pre-LN gelu)",
          "[zoo][verify]") {
  verify_right_gradients({"transformer_encoder_layer", {{"sequence", 3}, {"heads", 2}, {"dim_feedforward", 3}}}, 12, 2);
  verify_right_gradients({"transformer_encoder_layer", {{"sequence", 2}, {"heads", 1}, {"dim_feedforward", 4},
                                                        {"norm_first", true}, {"activation", "gelu"}}},
                         6, 2);
  // Small enough for full Jacobians: the stated J_x, J_θ and the absolute Jacobian compared entry by entry.
  bpcheck::VerifyOptions o;
  o.points = 2;
  o.full = true;
  bpcheck::testing::require_right_gradients(
      bpcheck::verify_layer({"transformer_encoder_layer", {{"sequence", 2}, {"heads", 3}, {"dim_feedforward", 2}}}, 6, o),
      "transformer_encoder_layer with full Jacobians");
}

// ---- mutants of each new backward fail in mp100 --------------------------------------------------

TEST_CASE("mutants of the architecture layers' backward FAIL in mp100", "[zoo][verify][mutant]") {
  using bpcheck::mutants::Mutant;
  require_mp100_failure(Mutant::conv_groups_weight_into_first, "W");
  require_mp100_failure(Mutant::batch_norm2d_missing_mean, "x");
  require_mp100_failure(Mutant::adaptive_pool_uniform_bins, "x");
  require_mp100_failure(Mutant::dense_tokens_bias_first_token, "b");
  require_mp100_failure(Mutant::layer_norm_tokens_affine_first);
  require_mp100_failure(Mutant::position_embedding_untransposed, "weight");
  require_mp100_failure(Mutant::token_mean_missing_scale, "x");
  require_mp100_failure(Mutant::transformer_wrong_activation);
}

// ---- forward values ------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("conv2d groups = 2, bias = false: PyTorch's output", "[zoo][layers]", real_rungs) {
  using T = TestType;
  auto conv = build<T>("conv2d", 18, {{"channels", 2}, {"height", 3}, {"width", 3}, {"out_channels", 4}, {"kernel", 2},
                                      {"groups", 2}, {"bias", false}});
  const auto blocks = conv.parameter_blocks();
  REQUIRE(blocks.size() == 1);  // no b
  CHECK(blocks[0].name == "W");
  CHECK((blocks[0].rows == 4 && blocks[0].cols == 4));  // out × (in/groups)·kh·kw
  // weight[o][0][kh][kw] = ((3o + 2kh + kw) mod 5 − 2)/2, x[c][i][j] = (9c + 3i + j) mod 7 − 3; expected from
  // torch.nn.Conv2d(2, 4, 2, groups=2, bias=False) in double.
  const Matrix<T> W = column_matrix<T>(4, 4, {-1, 0.5, -0.5, 1, -0.5, 1, 0, -1, 0, -1, 0.5, -0.5, 0.5, -0.5, 1, 0});
  conv.set_parameters(Eigen::Map<const Vector<T>>(W.data(), 16));
  Matrix<T> X(18, 1);
  for (Index c = 0; c < 2; ++c)
    for (Index i = 0; i < 3; ++i)
      for (Index j = 0; j < 3; ++j) X(c * 9 + i * 3 + j) = T((c * 9 + i * 3 + j) % 7 - 3);
  const Matrix<T> expected =
      column_matrix<T>(16, 1, {4.5, 3.5, -2, -3, -4, -4, -0.5, 6.5, 4.5, -1.5, -3, -2, -2, -2.5, 0, 6.5});
  CHECK(conv.forward(X) == expected);
}

TEMPLATE_LIST_TEST_CASE("batch_norm2d (train): PyTorch's output, statistics over N, H, W per channel", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  auto bn = build<T>("batch_norm2d", 8, {{"channels", 2}, {"height", 2}, {"width", 2}});
  Vector<T> theta(4);
  theta << T(2), T(0.5), T(0), T(1);  // weight, bias
  bn.set_parameters(theta);
  const Matrix<T> X = column_matrix<T>(8, 2, {1, 2, 3, 4, 0, 0, 1, -1, 5, 6, 7, 8, 2, 2, 3, -3});
  // torch.nn.BatchNorm2d(2) in training mode, weight (2, 0.5), bias (0, 1), on x of shape (2, 2, 2, 2).
  const Matrix<T> expected = column_matrix<T>(
      8, 2,
      {-3.0550475537361796, -2.1821768240972714, -1.3093060944583628, -0.4364353648194541, 0.8613251642894297,
       0.8613251642894297, 1.1386748357105703, 0.5839754928682892, 0.43643536481945444, 1.309306094458363,
       2.1821768240972714, 3.05504755373618, 1.416024507131711, 1.416024507131711, 1.6933741785528515,
       0.029276150026007974});
  CHECK(normwise_relative_difference(bn.forward(X), expected) <= reference_tolerance<T>());
  CHECK(!bn.sample_independent());
  // A batch of one is refused by batch_norm but not by batch_norm2d, whose plane gives each channel 4 values.
  CHECK_NOTHROW(bn.forward(Matrix<T>(X.leftCols(1))));
  CHECK_THROWS_WITH(build<T>("batch_norm2d", 2, {{"channels", 2}, {"height", 1}, {"width", 1}}).forward(Matrix<T>::Ones(2, 1)),
                    Catch::Contains("at least 2 samples"));
  // batch_norm2d with a 1 × 1 plane is batch_norm, bit for bit.
  auto one = build<T>("batch_norm2d", 3, {{"channels", 3}, {"height", 1}, {"width", 1}});
  auto plain = build<T>("batch_norm", 3);
  Vector<T> th(6);
  th << T(1), T(2), T(-1), T(0.5), T(0), T(3);
  one.set_parameters(th);
  plain.set_parameters(th);
  const Matrix<T> Z = column_matrix<T>(3, 3, {1, 4, -2, 0.5, 7, 3, -1, 2, 2});
  CHECK(one.forward(Z) == plain.forward(Z));
  CHECK(one.jacobian_input(Z) == plain.jacobian_input(Z));
}

TEMPLATE_LIST_TEST_CASE("batch_norm2d (eval): γ (x − running_mean)/√(running_var + eps) + β per channel",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  auto bn = build<T>("batch_norm2d", 4, {{"channels", 2}, {"height", 1}, {"width", 2}, {"mode", "eval"}, {"eps", 0.75},
                                         {"running_mean", {1, -1}}, {"running_var", {0.25, 3.25}}});
  Vector<T> theta(4);
  theta << T(2), T(4), T(0.5), T(0);
  bn.set_parameters(theta);
  // s = (1, 2): channel 0 → 2(x − 1) + 1/2, channel 1 → 2(x + 1).
  const Matrix<T> X = column_matrix<T>(4, 1, {3, 0, 1, -3});
  CHECK(bn.forward(X) == column_matrix<T>(4, 1, {4.5, -1.5, 4, -4}));
}

TEMPLATE_LIST_TEST_CASE("adaptive_avg_pool2d: PyTorch's bins, overlapping when H is not a multiple", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  const auto ap = build<T>("adaptive_avg_pool2d", 20, {{"channels", 1}, {"height", 5}, {"width", 4}, {"output_size", 3}});
  Matrix<T> X(20, 1);
  for (Index i = 0; i < 20; ++i) X(i) = T(i);
  // torch.nn.AdaptiveAvgPool2d((3, 3)) on torch.arange(20.).reshape(1, 1, 5, 4): rows [0, 2), [1, 4), [3, 5),
  // columns [0, 2), [1, 3), [2, 4).
  CHECK(ap.forward(X) == column_matrix<T>(9, 1, {2.5, 3.5, 4.5, 8.5, 9.5, 10.5, 14.5, 15.5, 16.5}));
  // Global average pooling of two channels.
  const auto gap = build<T>("adaptive_avg_pool2d", 8, {{"channels", 2}, {"height", 2}, {"width", 2}, {"output_size", 1}});
  CHECK(gap.forward(column_matrix<T>(8, 1, {1, 2, 3, 6, -1, -1, 0, 2})) == column_matrix<T>(2, 1, {3, 0}));
  // An output larger than the input repeats rows: 2 → 3 gives bins [0, 1), [0, 2), [1, 2).
  const auto up = build<T>("adaptive_avg_pool2d", 2, {{"channels", 1}, {"height", 2}, {"width", 1}, {"output_size", {3, 1}}});
  CHECK(up.forward(column_matrix<T>(2, 1, {1, 4})) == column_matrix<T>(3, 1, {1, 2.5, 4}));
}

TEMPLATE_LIST_TEST_CASE("dense and layer_norm on tokens map each token alone with the same parameters", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  auto d = build<T>("dense", 6, {{"units", 1}, {"tokens", 3}});
  REQUIRE(d.output_size() == 3);
  REQUIRE(d.parameter_count() == 3);  // W is 1 × 2, b one value
  Vector<T> w(3);
  w << T(1), T(10), T(100);  // W = [1, 10], b = 100
  d.set_parameters(w);
  const Matrix<T> X = column_matrix<T>(6, 1, {1, 2, 3, 4, 5, 6});
  CHECK(d.forward(X) == column_matrix<T>(3, 1, {121, 143, 165}));

  // layer_norm on 2 tokens of 3 equals the one-token layer on each token, bit for bit.
  auto ln = build<T>("layer_norm", 6, {{"tokens", 2}, {"eps", 0.5}});
  auto one = build<T>("layer_norm", 3, {{"eps", 0.5}});
  REQUIRE(ln.parameter_count() == 6);
  Vector<T> th(6);
  th << T(2), T(1), T(0.5), T(0), T(1), T(-1);
  ln.set_parameters(th);
  one.set_parameters(th);
  const Matrix<T> Z = column_matrix<T>(6, 2, {1, 2, 3, 5, 5, 5, -1, 0.5, 4, 2, 0, -2});
  const Matrix<T> tokens = Eigen::Map<const Matrix<T>>(Z.data(), 3, 4);
  const Matrix<T> expected = one.forward(tokens);
  CHECK(ln.forward(Z) == Eigen::Map<const Matrix<T>>(expected.data(), 6, 2));
  // token 0 of sample 0: mean 2, variance 2/3, s = √(7/6); the constant token 1 gives y = β
  using std::sqrt;
  CHECK(T(ln.forward(Z)(0, 0)) == T(T(-2) / sqrt(T(T(2) / T(3) + T(0.5)))));
  CHECK(ln.forward(Z)(4, 0) == T(1));
}

TEMPLATE_LIST_TEST_CASE("position_embedding adds the tokens × features table, token_mean averages the tokens",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  auto p = build<T>("position_embedding", 6, {{"tokens", 3}, {"features", 2}});
  const auto blocks = p.parameter_blocks();
  REQUIRE(blocks.size() == 1);
  CHECK(blocks[0].name == "weight");
  CHECK((blocks[0].rows == 3 && blocks[0].cols == 2));
  Vector<T> theta(6);
  theta << T(1), T(3), T(5), T(2), T(4), T(6);  // P = [[1, 2], [3, 4], [5, 6]], vec column-major
  p.set_parameters(theta);
  CHECK(p.forward(Matrix<T>::Zero(6, 1)) == column_matrix<T>(6, 1, {1, 2, 3, 4, 5, 6}));
  Vector<T> dtheta = Vector<T>::Zero(6);
  const Matrix<T> dY = column_matrix<T>(6, 2, {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60});
  CHECK(p.backward(Matrix<T>::Zero(6, 2), Matrix<T>::Zero(6, 2), dY, dtheta) == dY);
  Vector<T> expected(6);
  expected << T(11), T(33), T(55), T(22), T(44), T(66);
  CHECK(dtheta == expected);

  const auto m = build<T>("token_mean", 6, {{"tokens", 3}});
  REQUIRE(m.output_size() == 2);
  CHECK(m.forward(column_matrix<T>(6, 1, {1, 2, 3, 4, 5, 9})) == column_matrix<T>(2, 1, {3, 5}));
}

namespace {

/// The transformer's parameters as the PyTorch comparison below set them: block k of PyTorch's state-dict
/// order, entry (r, c), is ((7r + 3c + 5k) mod 11 − 5)/16, plus 1 for the norms' weights.
template <class T>
void set_reference_parameters(bpcheck::AnyLayer<T>& layer) {
  const std::vector<std::string> order{"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                                       "self_attn.out_proj.bias",  "linear1.weight",         "linear1.bias",
                                       "linear2.weight",           "linear2.bias",           "norm1.weight",
                                       "norm1.bias",               "norm2.weight",           "norm2.bias"};
  Vector<T> theta(layer.parameter_count());
  std::size_t seen = 0;
  for (const auto& b : layer.parameter_blocks()) {
    const auto k = Index(std::find(order.begin(), order.end(), b.name) - order.begin());
    REQUIRE(k < Index(order.size()));
    ++seen;
    const bool unit = b.name == "norm1.weight" || b.name == "norm2.weight";
    for (Index c = 0; c < b.cols; ++c)
      for (Index r = 0; r < b.rows; ++r)
        theta(b.offset + c * b.rows + r) = T(T((7 * r + 3 * c + 5 * k) % 11 - 5) / T(16) + T(unit ? 1 : 0));
  }
  CHECK(seen == order.size());
  layer.set_parameters(theta);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("transformer_encoder_layer: PyTorch's output, post-LN relu and pre-LN gelu", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  // x[s][t][e] = ((5s + 3t + 2e) mod 7 − 3)/4 for 2 samples of 3 tokens of 4; expected values from
  // torch.nn.TransformerEncoderLayer(4, 2, 5, dropout=0.0, activation=…, batch_first=True, norm_first=…) in
  // double with the parameters of set_reference_parameters (the same in training and evaluation mode).
  Matrix<T> X(12, 2);
  for (Index s = 0; s < 2; ++s)
    for (Index t = 0; t < 3; ++t)
      for (Index e = 0; e < 4; ++e) X(t * 4 + e, s) = T(T((5 * s + 3 * t + 2 * e) % 7 - 3) / T(4));
  auto post = build<T>("transformer_encoder_layer", 12, {{"sequence", 3}, {"heads", 2}, {"dim_feedforward", 5}});
  set_reference_parameters(post);
  const Matrix<T> post_expected = column_matrix<T>(
      12, 2,
      {-2.0445430903451629, 0.12392648946363434, 0.99019486602601747, 1.0518235535940521, -0.07789965328920842,
       1.2454787056472421, -1.9003511786502074, 0.13292990196136725, 1.1187029441989769, -1.0577171590904426,
       -0.27476372719716763, 0.54094833415236399, 1.0003798148696961, -1.1365618030917977, 0.16985854660206245,
       0.39365302221188953, -0.90465661896187632, 0.30900436857247154, 1.7549520656256274, -0.86060469099661918,
       -0.12882376984402222, 1.3288349642702997, -1.7223464011690128, -0.064137658042006662});
  CHECK(normwise_relative_difference(post.forward(X), post_expected) <= reference_tolerance<T>());

  auto pre = build<T>("transformer_encoder_layer", 12, {{"sequence", 3}, {"heads", 2}, {"dim_feedforward", 5},
                                                        {"norm_first", true}, {"activation", "gelu"}});
  set_reference_parameters(pre);
  const Matrix<T> pre_expected = column_matrix<T>(
      12, 2,
      {-1.0377502908375318, -0.073727425095647336, 0.38003630907593222, 0.23154847977500981, -0.43996858690591484,
       0.48943194851795047, -0.81777169768873192, -0.20658107857149027, 0.60717492492170511, -0.62206059847217232,
       0.08437391587097455, 0.20159027655490505, 0.2492820528445403, -0.95105128020206453, 0.022307085411513803,
       -0.17704302545090794, -0.62944416739917908, -0.053647631658293393, 0.55541043401132739, -1.0819989281287243,
       -0.30295496445466041, 0.58108940078841542, -0.33018285756501442, -0.0501930995868132});
  CHECK(normwise_relative_difference(pre.forward(X), pre_expected) <= reference_tolerance<T>());
  // The wrong placement of the norms gives another function: the comparison can fail.
  CHECK(normwise_relative_difference(pre.forward(X), post_expected) > T(0.1));
}

TEST_CASE("transformer_encoder_layer names its blocks as PyTorch's state dict, with PyTorch's shapes", "[zoo][layers]") {
  const auto t = build<double>("transformer_encoder_layer", 8, {{"sequence", 2}, {"heads", 2}, {"dim_feedforward", 3}});
  std::vector<std::string> names;
  for (const auto& b : t.parameter_blocks()) names.push_back(b.name);
  CHECK(names == std::vector<std::string>{"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                                          "self_attn.out_proj.bias", "norm1.weight", "norm1.bias", "linear1.weight",
                                          "linear1.bias", "linear2.weight", "linear2.bias", "norm2.weight", "norm2.bias"});
  const auto b = t.parameter_blocks();
  CHECK((b[6].rows == 3 && b[6].cols == 4));  // linear1.weight: dim_feedforward × E
  CHECK((b[8].rows == 4 && b[8].cols == 3));  // linear2.weight: E × dim_feedforward
  CHECK(t.parameter_count() == 4 * 16 + 4 * 4 + 2 * 12 + 3 + 4 + 4 * 4);
  // Inside a residual block the names gain the inner index.
  const auto r = build<double>("residual", 8, {{"layers", {{{"type", "position_embedding"}, {"tokens", 2}, {"features", 4}}}}});
  CHECK(r.parameter_blocks().front().name == "0.weight");
}

// ---- whole architectures -------------------------------------------------------------------------

TEST_CASE("a ResNet basic block and a MobileNetV2 block with global pooling pass verify_network", "[zoo][verify]") {
  const auto resnet = nlohmann::json::parse(R"({"input_size": 18, "layers": [
      {"type": "residual", "layers": [
        {"type": "conv2d", "channels": 2, "height": 3, "width": 3, "out_channels": 2, "kernel": 3, "padding": 1, "bias": false},
        {"type": "batch_norm2d", "channels": 2, "height": 3, "width": 3},
        {"type": "relu"},
        {"type": "conv2d", "channels": 2, "height": 3, "width": 3, "out_channels": 2, "kernel": 3, "padding": 1, "bias": false},
        {"type": "batch_norm2d", "channels": 2, "height": 3, "width": 3}]},
      {"type": "relu"},
      {"type": "adaptive_avg_pool2d", "channels": 2, "height": 3, "width": 3, "output_size": 1},
      {"type": "flatten"},
      {"type": "dense", "units": 3}], "loss": "cross_entropy"})");
  const auto mobilenet = nlohmann::json::parse(R"({"input_size": 8, "layers": [
      {"type": "residual", "layers": [
        {"type": "conv2d", "channels": 2, "height": 2, "width": 2, "out_channels": 4, "kernel": 1, "bias": false},
        {"type": "batch_norm2d", "channels": 4, "height": 2, "width": 2, "mode": "eval"},
        {"type": "hardtanh", "min_val": 0, "max_val": 6},
        {"type": "conv2d", "channels": 4, "height": 2, "width": 2, "out_channels": 4, "kernel": 3, "padding": 1,
         "groups": 4, "bias": false},
        {"type": "batch_norm2d", "channels": 4, "height": 2, "width": 2, "mode": "eval"},
        {"type": "hardtanh", "min_val": 0, "max_val": 6},
        {"type": "conv2d", "channels": 4, "height": 2, "width": 2, "out_channels": 2, "kernel": 1, "bias": false},
        {"type": "batch_norm2d", "channels": 2, "height": 2, "width": 2, "mode": "eval"}]},
      {"type": "adaptive_avg_pool2d", "channels": 2, "height": 2, "width": 2, "output_size": 1},
      {"type": "dense", "units": 2}], "loss": "mse"})");
  bpcheck::VerifyOptions o;
  o.points = 1;
  bpcheck::testing::require_clean(
      bpcheck::verify_network({bpcheck::model_spec_from_json(resnet, "resnet.json"), std::nullopt, std::nullopt}, o),
      "ResNet basic block");
  bpcheck::testing::require_clean(
      bpcheck::verify_network({bpcheck::model_spec_from_json(mobilenet, "mobilenet.json"), std::nullopt, std::nullopt}, o),
      "MobileNetV2 block");
}

TEST_CASE("a transformer classifier (embedding, position embedding, encoder layer, token mean) passes verify_network",
          "[zoo][verify]") {
  const auto spec = nlohmann::json::parse(R"({"input_size": 3, "layers": [
      {"type": "embedding", "num_embeddings": 5, "embedding_dim": 4},
      {"type": "position_embedding", "tokens": 3, "features": 4},
      {"type": "transformer_encoder_layer", "sequence": 3, "heads": 2, "dim_feedforward": 4, "activation": "gelu"},
      {"type": "token_mean", "tokens": 3},
      {"type": "dense", "units": 2}], "loss": "cross_entropy"})");
  const auto data = nlohmann::json::parse(R"({"inputs": [[0, 4, 2], [3, 3, 1]], "targets": [1, 0]})");
  bpcheck::VerifyOptions o;
  o.points = 1;
  bpcheck::testing::require_clean(
      bpcheck::verify_network({bpcheck::model_spec_from_json(spec, "model.json"), std::nullopt, data}, o),
      "transformer classifier");
}

// ---- refusals ------------------------------------------------------------------------------------

TEST_CASE("the architecture layers refuse bad options with input_error", "[zoo][errors]") {
  const nlohmann::json conv = {{"channels", 4}, {"height", 2}, {"width", 2}, {"out_channels", 2}, {"kernel", 1}};
  auto with = [](nlohmann::json j, const std::string& key, nlohmann::json v) {
    j[key] = std::move(v);
    return j;
  };
  refuses("conv2d", 16, with(conv, "groups", 3), "must divide channels (4) and out_channels (2)");
  refuses("conv2d", 16, with(conv, "groups", 4), "must divide");
  refuses("conv2d", 16, with(conv, "groups", 0), "positive integer");
  refuses("conv2d", 16, with(conv, "bias", 0), "true or false");
  refuses("conv1d", 4, {{"channels", 2}, {"length", 2}, {"out_channels", 3}, {"kernel", 1}, {"groups", 2}}, "must divide");

  const nlohmann::json bn = {{"channels", 2}, {"height", 2}, {"width", 2}};
  refuses("batch_norm2d", 9, bn, "channels × height × width = 8");
  refuses("batch_norm2d", 8, {{"channels", 2}, {"height", 2}}, "missing option 'width'");
  refuses("batch_norm2d", 8, with(bn, "running_mean", {0, 0}), "mode \"eval\" only");
  refuses("batch_norm2d", 8, with(with(bn, "mode", "eval"), "running_var", {1, 1, 1}), "array of 2 numbers");
  refuses("batch_norm2d", 8, with(with(bn, "mode", "eval"), "running_var", {1, -1}), "must not be negative");
  refuses("batch_norm2d", 8, with(bn, "momentum", 0.1), "unknown option 'momentum'");
  refuses("batch_norm2d", 8, with(bn, "eps", 0), "eps must be positive");

  refuses("adaptive_avg_pool2d", 8, bn, "missing option 'output_size'");
  refuses("adaptive_avg_pool2d", 8, with(bn, "output_size", 0), "positive integer");
  refuses("adaptive_avg_pool2d", 8, with(bn, "output_size", {1, 2, 3}), "[h, w]");
  refuses("adaptive_avg_pool2d", 9, with(bn, "output_size", 1), "channels × height × width = 8");

  refuses("dense", 6, {{"units", 2}, {"tokens", 4}}, "not 4 tokens of equal size");
  refuses("layer_norm", 6, {{"tokens", 0}}, "positive integer");
  refuses("layer_norm", 5, {{"tokens", 2}}, "not 2 tokens");
  refuses("position_embedding", 6, {{"tokens", 2}, {"features", 2}}, "tokens × features = 4");
  refuses("position_embedding", 6, {{"tokens", 3}}, "missing option 'features'");
  refuses("token_mean", 6, {}, "missing option 'tokens'");
  refuses("token_mean", 6, {{"tokens", 4}}, "not 4 tokens");

  const nlohmann::json tr = {{"sequence", 2}, {"heads", 2}, {"dim_feedforward", 3}};
  refuses("transformer_encoder_layer", 8, with(tr, "heads", 3), "does not divide the embed size 4");
  refuses("transformer_encoder_layer", 7, tr, "not 2 tokens");
  refuses("transformer_encoder_layer", 8, {{"heads", 2}, {"dim_feedforward", 3}}, "missing option 'sequence'");
  refuses("transformer_encoder_layer", 8, {{"sequence", 2}, {"heads", 2}}, "missing option 'dim_feedforward'");
  refuses("transformer_encoder_layer", 8, with(tr, "activation", "tanh"), "must be one of \"gelu\", \"relu\"");
  refuses("transformer_encoder_layer", 8, with(tr, "norm_first", "yes"), "true or false");
  refuses("transformer_encoder_layer", 8, with(tr, "dropout", 0.1), "unknown option 'dropout'");
  refuses("transformer_encoder_layer", 8, with(tr, "eps", -1), "eps must be positive");
}
