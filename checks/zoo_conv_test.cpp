// conv1d, conv2d, max/avg pooling (1d, 2d) and flatten: verified on every rung, PyTorch's output sizes,
// layout and weight order, hand-computed outputs, max-pool ties reported as non-differentiable, and the
// options refused.
#include <string>

#include "bpcheck/layers/conv.hpp"
#include "bpcheck/layers/pool.hpp"
#include "zoo_helpers.hpp"

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Vector;
using bpcheck::testing::build;
using bpcheck::testing::ratio;
using bpcheck::testing::real_rungs;
using bpcheck::testing::verify_clean;

// ---- every check on every rung ------------------------------------------------------------------

TEST_CASE("zoo verify: conv1d passes every check on every rung", "[zoo][verify]") {
  verify_clean({"conv1d", {{"channels", 2}, {"length", 5}, {"out_channels", 2}, {"kernel", 3}, {"padding", 1},
                           {"stride", 2}}},
               10, 6);
  verify_clean({"conv1d", {{"channels", 1}, {"length", 6}, {"out_channels", 1}, {"kernel", 2}, {"dilation", 2}}}, 6, 6);
}
TEST_CASE("zoo verify: conv2d passes every check on every rung", "[zoo][verify]") {
  verify_clean({"conv2d", {{"channels", 2}, {"height", 3}, {"width", 3}, {"out_channels", 2}, {"kernel", 2},
                           {"padding", 1}, {"stride", 2}}},
               18, 4);
  verify_clean({"conv2d", {{"channels", 1}, {"height", 4}, {"width", 3}, {"out_channels", 2}, {"kernel", {2, 1}},
                           {"dilation", {2, 1}}, {"stride", {1, 2}}}},
               12, 4);
}
TEST_CASE("zoo verify: max and avg pooling pass every check on every rung", "[zoo][verify]") {
  verify_clean({"max_pool1d", {{"channels", 2}, {"length", 4}, {"kernel", 2}}}, 8, 10);
  verify_clean({"max_pool2d", {{"channels", 1}, {"height", 4}, {"width", 4}, {"kernel", 3}, {"stride", 1},
                               {"padding", 1}}},
               16, 6);
  verify_clean({"avg_pool1d", {{"channels", 1}, {"length", 5}, {"kernel", 3}, {"stride", 2}, {"padding", 1}}}, 5, 6);
  verify_clean({"avg_pool2d", {{"channels", 2}, {"height", 2}, {"width", 3}, {"kernel", 2}, {"stride", 1}}}, 12, 6);
}
TEST_CASE("zoo verify: flatten passes every check on every rung", "[zoo][verify]") { verify_clean({"flatten", {}}, 5, 4); }

// ---- PyTorch's conventions -----------------------------------------------------------------------

TEST_CASE("conv and pooling output sizes follow PyTorch: ⌊(L + 2p − d(k − 1) − 1)/s⌋ + 1", "[zoo][layers]") {
  // Values computed by hand from the formula in torch.nn.Conv2d's documentation.
  CHECK(build<double>("conv2d", 25, {{"channels", 1}, {"height", 5}, {"width", 5}, {"out_channels", 3}, {"kernel", 3},
                                     {"stride", 2}, {"padding", 1}})
            .output_size() == 3 * 3 * 3);
  CHECK(build<double>("conv2d", 2 * 49, {{"channels", 2}, {"height", 7}, {"width", 7}, {"out_channels", 1},
                                         {"kernel", 3}, {"dilation", 2}})
            .output_size() == 3 * 3);
  CHECK(build<double>("conv2d", 6 * 8, {{"channels", 1}, {"height", 6}, {"width", 8}, {"out_channels", 1},
                                        {"kernel", {3, 2}}, {"stride", {1, 3}}, {"padding", {0, 1}}})
            .output_size() == 4 * 3);  // h: (6 − 3)/1 + 1; w: ⌊(8 + 2 − 2)/3⌋ + 1
  CHECK(build<double>("conv1d", 10, {{"channels", 1}, {"length", 10}, {"out_channels", 2}, {"kernel", 3}, {"stride", 3},
                                     {"padding", 1}})
            .output_size() == 2 * 4);
  // Pooling's stride defaults to the kernel, as in PyTorch: 2 × 7 → ⌊(7 − 2)/2⌋ + 1 = 3.
  CHECK(build<double>("max_pool1d", 14, {{"channels", 2}, {"length", 7}, {"kernel", 2}}).output_size() == 2 * 3);
  CHECK(build<double>("avg_pool2d", 5 * 5, {{"channels", 1}, {"height", 5}, {"width", 5}, {"kernel", 2}}).output_size() ==
        2 * 2);
}

TEMPLATE_LIST_TEST_CASE("conv2d: cross-correlation by hand, with and without zero padding", "[zoo][layers]", real_rungs) {
  using T = TestType;
  // A 3×3 image 1…9 (row-major), one 2×2 kernel [[1, 2], [3, 4]], bias 1/2.
  Matrix<T> X(9, 1);
  for (Index i = 0; i < 9; ++i) X(i) = T(i + 1);
  Vector<T> theta(5);
  theta << T(1), T(2), T(3), T(4), ratio<T>(1, 2);  // W is 1 × 4: weight[0][0] flattened (kh, kw)
  auto conv = build<T>("conv2d", 9, {{"channels", 1}, {"height", 3}, {"width", 3}, {"out_channels", 1}, {"kernel", 2}});
  conv.set_parameters(theta);
  Matrix<T> expected(4, 1);
  // (0,0): 1·1 + 2·2 + 3·4 + 4·5 = 37;  (0,1): 47;  (1,0): 67;  (1,1): 77.
  expected << ratio<T>(75, 2), ratio<T>(95, 2), ratio<T>(135, 2), ratio<T>(155, 2);
  CHECK(conv.forward(X) == expected);

  // Padding 1 gives 4×4; the corner sees only the image's (0,0) through the kernel's (1,1): 4·1.
  auto padded = build<T>("conv2d", 9, {{"channels", 1}, {"height", 3}, {"width", 3}, {"out_channels", 1},
                                       {"kernel", 2}, {"padding", 1}});
  padded.set_parameters(theta);
  const Matrix<T> Y = padded.forward(X);
  REQUIRE(Y.rows() == 16);
  CHECK(Y(0) == ratio<T>(9, 2));                       // 4·1 + 1/2
  CHECK(Y(3) == T(T(3) * T(3) + ratio<T>(1, 2)));       // top right: kernel (1,0) on pixel (0,2) = 3
  CHECK(Y(5) == ratio<T>(75, 2));                      // (1,1) of the padded output is (0,0) of the plain one
  CHECK(Y(15) == T(T(9) + ratio<T>(1, 2)));             // bottom right: kernel (0,0) on pixel (2,2) = 9
}

TEMPLATE_LIST_TEST_CASE("conv: weights in PyTorch's (out, in, kh, kw) order, input and output C, H, W row-major",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  // 2 input channels of 1×2, 2 output channels, 1×1 kernels: y[o] = Σ_c weight[o][c] x[c] + b[o].
  auto conv = build<T>("conv2d", 4, {{"channels", 2}, {"height", 1}, {"width", 2}, {"out_channels", 2}, {"kernel", 1}});
  const auto blocks = conv.parameter_blocks();
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[0].name == "W");
  CHECK(blocks[0].rows == 2);  // out
  CHECK(blocks[0].cols == 2);  // in · kh · kw
  // θ = [vec(W) column-major; b]: W = [[1, 10], [100, 1000]] (row o = weight[o] flattened).
  Vector<T> theta(6);
  theta << T(1), T(100), T(10), T(1000), T(0), T(0);
  conv.set_parameters(theta);
  Matrix<T> X(4, 1);
  X << T(1), T(2), T(3), T(4);  // channel 0 = (1, 2), channel 1 = (3, 4)
  Matrix<T> expected(4, 1);
  expected << T(31), T(42), T(3100), T(4200);  // out channel 0 = (1 + 30, 2 + 40), channel 1 = (100 + 3000, 200 + 4000)
  CHECK(conv.forward(X) == expected);
  // conv1d is conv2d with height 1.
  auto conv1 = build<T>("conv1d", 4, {{"channels", 2}, {"length", 2}, {"out_channels", 2}, {"kernel", 1}});
  conv1.set_parameters(theta);
  CHECK(conv1.forward(X) == expected);
}

TEMPLATE_LIST_TEST_CASE("max and avg pooling by hand, avg counts the zero padding as PyTorch does", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  Matrix<T> X(8, 1);  // 2 channels of length 4
  X << T(1), T(-3), T(5), T(2), T(0), T(7), T(-1), T(-2);
  const auto mp = build<T>("max_pool1d", 8, {{"channels", 2}, {"length", 4}, {"kernel", 2}});
  Matrix<T> m(4, 1);
  m << T(1), T(5), T(7), T(-1);
  CHECK(mp.forward(X) == m);
  // The gradient goes to the maximum of each window.
  Vector<T> none(0);
  Matrix<T> dy(4, 1);
  dy << T(1), T(2), T(3), T(4);
  Matrix<T> dx(8, 1);
  dx << T(1), T(0), T(2), T(0), T(0), T(3), T(4), T(0);
  CHECK(mp.backward(X, m, dy, none) == dx);

  // Length 4, kernel 3, stride 1, padding 1: windows [pad, 1, −3], [1, −3, 5], [−3, 5, 2], [5, 2, pad], each / 3.
  const auto ap = build<T>("avg_pool1d", 4, {{"channels", 1}, {"length", 4}, {"kernel", 3}, {"stride", 1}, {"padding", 1}});
  Matrix<T> a(4, 1);
  a << ratio<T>(-2, 3), T(1), T(4) / T(3), T(7) / T(3);
  CHECK(bpcheck::testing::normwise_relative_difference(ap.forward(Matrix<T>(X.topRows(4))), a) <=
        bpcheck::testing::eps_times<T>(2));

  const auto mp2 = build<T>("max_pool2d", 8, {{"channels", 2}, {"height", 2}, {"width", 2}, {"kernel", 2}});
  Matrix<T> m2(2, 1);
  m2 << T(5), T(7);
  CHECK(mp2.forward(X) == m2);
}

TEST_CASE("max pooling at a tie is non-differentiable, never a wrong gradient, off the tie it passes",
          "[zoo][verify][kinks]") {
  Matrix<mp100> X(4, 2);
  X << mp100(1), mp100("0.5"),  //
      mp100(1), mp100(-2),      //
      mp100(-1), mp100(3),      //
      mp100("0.25"), mp100(3);
  const bpcheck::LayerSpec spec{"max_pool1d", {{"channels", 1}, {"length", 4}, {"kernel", 2}}};
  bpcheck::testing::require_non_differentiable(spec, 4, X);
  bpcheck::VerifyOptions o;
  o.inputs = X;
  bpcheck::testing::require_clean(bpcheck::verify_layer(spec, 4, o), "max_pool1d resampled off its ties");
}

TEMPLATE_LIST_TEST_CASE("flatten is the identity on the C, H, W column", "[zoo][layers]", real_rungs) {
  using T = TestType;
  const auto f = build<T>("flatten", 3);
  Matrix<T> X(3, 2);
  X << T(1), T(2), T(3), T(4), T(5), T(6);
  CHECK(f.forward(X) == X);
  CHECK(f.jacobian_input(X) == Matrix<T>::Identity(6, 6));
}

TEST_CASE("a small CNN (conv2d → relu → max_pool2d → flatten → dense) passes verify_network", "[zoo][verify]") {
  const bpcheck::ModelSpec m{
      16,
      {{"conv2d", {{"channels", 1}, {"height", 4}, {"width", 4}, {"out_channels", 2}, {"kernel", 3}, {"padding", 1}}},
       {"relu", {}},
       {"max_pool2d", {{"channels", 2}, {"height", 4}, {"width", 4}, {"kernel", 2}}},
       {"flatten", {}},
       {"dense", {{"units", 3}}}},
      "cross_entropy"};
  bpcheck::VerifyOptions o;
  o.points = 1;
  bpcheck::testing::require_clean(bpcheck::verify_network({m, std::nullopt, std::nullopt}, o), "small CNN");
}

TEST_CASE("conv and pooling refuse bad options with input_error", "[zoo][errors]") {
  const auto refuses = [](const std::string& type, Index in, nlohmann::json options, const std::string& words) {
    INFO(type << " " << options.dump());
    CHECK_THROWS_WITH(build<double>(type, in, options), Catch::Contains(words));
    CHECK_THROWS_AS(build<mp100>(type, in, options), bpcheck::input_error);
  };
  const nlohmann::json conv = {{"channels", 1}, {"height", 3}, {"width", 3}, {"out_channels", 1}, {"kernel", 2}};
  auto with = [](nlohmann::json j, const std::string& key, nlohmann::json v) {
    j[key] = std::move(v);
    return j;
  };
  refuses("conv2d", 9, with(conv, "kernel", 4), "larger than the padded input");
  refuses("conv2d", 9, with(with(conv, "kernel", 3), "dilation", 2), "larger than the padded input");
  refuses("conv2d", 10, conv, "channels × height × width = 9");
  refuses("conv2d", 9, with(conv, "padding_mode", "zeros"), "unknown option 'padding_mode'");
  refuses("conv2d", 9, with(conv, "stride", 0), "positive integer");
  refuses("conv2d", 9, with(conv, "padding", -1), "non-negative integer");
  refuses("conv2d", 9, with(conv, "kernel", {2, 2, 2}), "[h, w]");
  refuses("conv1d", 3, {{"channels", 1}, {"length", 3}, {"out_channels", 1}, {"kernel", {1, 2}}}, "positive integer");
  refuses("conv1d", 3, {{"channels", 1}, {"length", 3}, {"kernel", 2}}, "missing option 'out_channels'");
  refuses("conv1d", 3, {{"channels", 1}, {"length", 3}, {"out_channels", 1}}, "missing option 'kernel'");
  refuses("max_pool1d", 4, {{"channels", 1}, {"length", 4}, {"kernel", 2}, {"padding", 2}}, "at most half the kernel");
  refuses("avg_pool2d", 4, {{"channels", 1}, {"height", 2}, {"width", 2}, {"kernel", 3}}, "larger than the padded input");
  refuses("max_pool2d", 4, {{"channels", 1}, {"height", 2}, {"width", 2}, {"kernel", 2}, {"dilation", 1}},
          "unknown option 'dilation'");
  refuses("flatten", 4, {{"start_dim", 1}}, "unknown option 'start_dim'");
}
