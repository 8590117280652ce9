// elu, hardtanh, mish, swish (β), hardswish and dropout with a fixed mask: verified on every rung, hand values
// of forward and derivative, PyTorch's kink conventions, kinks reported as non-differentiable, and the
// options refused.
#include <cmath>
#include <string>
#include <vector>

#include "bpcheck/layers/dropout.hpp"
#include "bpcheck/layers/extra_activations.hpp"
#include "zoo_helpers.hpp"

using bpcheck::AnyLayer;
using bpcheck::Index;
using bpcheck::LayerSpec;
using bpcheck::Matrix;
using bpcheck::Vector;
using bpcheck::mp100;
using bpcheck::testing::build;
using bpcheck::testing::close;
using bpcheck::testing::eps_times;
using bpcheck::testing::ln;
using bpcheck::testing::ratio;
using bpcheck::testing::real_rungs;
using bpcheck::testing::verify_clean;

namespace {

/// An activation at the given inputs: values and the diagonal of J_x equal the hand values, J_x is
/// diagonal, and backward(dY = 1) returns that diagonal.
template <class T>
void check_values(const AnyLayer<T>& layer, const std::vector<T>& x, const std::vector<T>& y,
                  const std::vector<T>& dy, int ulps = 16) {
  const Index n = Index(x.size());
  const Matrix<T> X = Eigen::Map<const Matrix<T>>(x.data(), n, 1);
  const Matrix<T> Y = layer.forward(X);
  const Matrix<T> J = layer.jacobian_input(X);
  Eigen::Matrix<T, Eigen::Dynamic, 1> none(0);
  const Matrix<T> ones = Matrix<T>::Ones(n, 1);
  const Matrix<T> g = layer.backward(X, Y, ones, none);
  for (Index i = 0; i < n; ++i) {
    INFO(layer.type_name() << " at x = " << bpcheck::to_string(x[i]) << ": y = " << bpcheck::to_string(Y(i))
                           << " (expected " << bpcheck::to_string(y[i]) << "), y' = " << bpcheck::to_string(J(i, i))
                           << " (expected " << bpcheck::to_string(dy[i]) << ")");
    CHECK(close(T(Y(i)), y[i], eps_times<T>(ulps)));
    CHECK(close(T(J(i, i)), dy[i], eps_times<T>(ulps)));
    CHECK(close(T(g(i)), dy[i], eps_times<T>(ulps)));
    for (Index j = 0; j < n; ++j)
      if (j != i) CHECK(J(i, j) == T(0));
  }
}

}  // namespace

// ---- every check on every rung ------------------------------------------------------------------

TEST_CASE("zoo verify: elu passes every check on every rung", "[zoo][verify]") {
  verify_clean({"elu", {}}, 3, 30);
  verify_clean({"elu", {{"alpha", "0.5"}}}, 3, 15, 30);
  verify_clean({"elu", {{"alpha", 2}}}, 3, 15, 1e-6);
}
TEST_CASE("zoo verify: hardtanh passes every check on every rung", "[zoo][verify]") {
  verify_clean({"hardtanh", {}}, 3, 30, 2);
  verify_clean({"hardtanh", {{"min_val", -2}, {"max_val", "0.5"}}}, 3, 15, 3);
}
TEST_CASE("zoo verify: mish passes every check on every rung", "[zoo][verify]") {
  verify_clean({"mish", {}}, 3, 30);
  verify_clean({"mish", {}}, 3, 15, 30);
}
TEST_CASE("zoo verify: swish with β passes every check on every rung", "[zoo][verify]") {
  verify_clean({"swish", {}}, 3, 20);
  verify_clean({"swish", {{"beta", "1.5"}}}, 3, 20);
  verify_clean({"swish", {{"beta", 0.25}}}, 3, 15, 30);
}
TEST_CASE("zoo verify: hardswish passes every check on every rung", "[zoo][verify]") {
  verify_clean({"hardswish", {}}, 3, 30);
  verify_clean({"hardswish", {}}, 3, 15, 4);  // inputs across both kinks and beyond
}
TEST_CASE("zoo verify: dropout passes every check on every rung", "[zoo][verify]") {
  verify_clean({"dropout", {{"p", 0.5}, {"seed", 3}}}, 4, 10, 1, 3);
  verify_clean({"dropout", {{"p", 0}}}, 3, 5);
}

// ---- hand values ---------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("elu: x for x > 0, α(eˣ − 1) below, elu'(0) = α as PyTorch", "[zoo][layers]", real_rungs) {
  using T = TestType;
  const auto elu = build<T>("elu", 4, {{"alpha", "0.5"}});
  // x = ln(1/2): α(1/2 − 1) = −1/4, derivative α/2 = 1/4.  x = ln(1/4): −3/8, 1/8.
  check_values<T>(elu, {ln<T>(1, 2), T(0), ratio<T>(3, 2), ln<T>(1, 4)},
                  {ratio<T>(-1, 4), T(0), ratio<T>(3, 2), ratio<T>(-3, 8)},
                  {ratio<T>(1, 4), ratio<T>(1, 2), T(1), ratio<T>(1, 8)});
}

TEMPLATE_LIST_TEST_CASE("hardtanh: clamp to [min_val, max_val], derivative 1 strictly inside, 0 at and beyond the kinks",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  const auto h = build<T>("hardtanh", 5);
  check_values<T>(h, {T(-3), T(-1), ratio<T>(1, 3), T(1), T(2)}, {T(-1), T(-1), ratio<T>(1, 3), T(1), T(1)},
                  {T(0), T(0), T(1), T(0), T(0)});
  const auto h2 = build<T>("hardtanh", 2, {{"min_val", "-0.5"}, {"max_val", 2}});
  check_values<T>(h2, {T(-1), T(3)}, {ratio<T>(-1, 2), T(2)}, {T(0), T(0)});
}

TEMPLATE_LIST_TEST_CASE("hardtanh by forward mode at its ends has the slope backward states there, 0",
                        "[zoo][layers][regression]", real_rungs) {
  // Found by the nightly property run: the clamp returned x at x = max_val, so dual numbers carried
  // slope 1 where backward (and PyTorch) state 0, and the JVP and VJP routes disagreed at the kink.
  using T = TestType;
  using D = bpcheck::dual<T>;
  const auto h = build<D>("hardtanh", 2);
  Matrix<D> X(2, 1);
  X(0) = D(T(1));
  X(1) = D(T(-1));
  X(0).d[0] = T(1);
  X(1).d[0] = T(1);
  const Matrix<D> Y = h.forward(X);
  CHECK(Y(0).v == T(1));
  CHECK(Y(1).v == T(-1));
  CHECK(Y(0).d[0] == T(0));
  CHECK(Y(1).d[0] == T(0));
}

TEMPLATE_LIST_TEST_CASE("hardswish: 0 below −3, x above 3, x(x + 3)/6 between, PyTorch's derivative at the kinks",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  const auto h = build<T>("hardswish", 8);
  // torch.nn.functional.hardswish and its backward: hardswish'(x) = (2x + 3)/6 on [−3, 3], so −1/2 at −3
  // and 3/2 at 3; 0 below, 1 above.
  check_values<T>(h, {T(-4), T(-3), ratio<T>(-3, 2), T(0), ratio<T>(3, 2), T(3), T(4), ratio<T>(-1, 3)},
                  {T(0), T(0), ratio<T>(-3, 8), T(0), ratio<T>(9, 8), T(3), T(4), ratio<T>(-4, 27)},
                  {T(0), ratio<T>(-1, 2), T(0), ratio<T>(1, 2), T(1), ratio<T>(3, 2), T(1), ratio<T>(7, 18)}, 4);
}

TEMPLATE_LIST_TEST_CASE("hardswish by forward mode at its kinks has the slope backward states there",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  using D = bpcheck::dual<T>;
  const auto h = build<D>("hardswish", 2);
  Matrix<D> X(2, 1);
  X(0) = D(T(-3));
  X(1) = D(T(3));
  X(0).d[0] = T(1);
  X(1).d[0] = T(1);
  const Matrix<D> Y = h.forward(X);
  CHECK(Y(0).v == T(0));
  CHECK(Y(1).v == T(3));
  CHECK(Y(0).d[0] == ratio<T>(-1, 2));
  CHECK(Y(1).d[0] == ratio<T>(3, 2));
}

TEMPLATE_LIST_TEST_CASE("mish: x tanh(softplus x), at x = ln 3 softplus = ln 4 and tanh(ln 4) = 15/17",
                        "[zoo][layers]", real_rungs) {
  using T = TestType;
  const auto m = build<T>("mish", 3);
  // mish'(x) = tanh(s) + x sech²(s) σ(x): at ln 3, 15/17 + ln 3 · (64/289)(3/4) = 15/17 + ln 3 · 48/289.
  // At ln(1/3): s = ln(4/3), tanh = (16/9 − 1)/(16/9 + 1) = 7/25, sech² = 576/625, σ = 1/4.
  check_values<T>(m, {ln<T>(3), T(0), ln<T>(1, 3)},
                  {T(ln<T>(3) * ratio<T>(15, 17)), T(0), T(ln<T>(1, 3) * ratio<T>(7, 25))},
                  {T(ratio<T>(15, 17) + ln<T>(3) * ratio<T>(48, 289)), ratio<T>(3, 5),
                   T(ratio<T>(7, 25) + ln<T>(1, 3) * ratio<T>(144, 625))});
}

TEMPLATE_LIST_TEST_CASE("swish: x σ(βx), β = 2 at x = ln(3)/2 gives σ = 3/4, β = 1 equals silu", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  const auto s = build<T>("swish", 2, {{"beta", 2}});
  const T x = ln<T>(3) / T(2);
  // swish' = σ(βx)(1 + βx σ(−βx)) = 3/4 (1 + ln 3 / 4)
  check_values<T>(s, {x, T(-x)}, {T(x * ratio<T>(3, 4)), T(-x * ratio<T>(1, 4))},
                  {T(ratio<T>(3, 4) * (T(1) + ln<T>(3) / T(4))), T(ratio<T>(1, 4) * (T(1) - ln<T>(3) * ratio<T>(3, 4)))});
  Matrix<T> X(3, 1);
  X << ratio<T>(-7, 3), ratio<T>(1, 5), T(4);
  const auto one = build<T>("swish", 3);
  const auto silu = build<T>("silu", 3);
  CHECK(one.forward(X) == silu.forward(X));
  CHECK(one.jacobian_input(X) == silu.jacobian_input(X));
}

TEMPLATE_LIST_TEST_CASE("extra activations keep their relative accuracy in saturation (x = −40)",
                        "[zoo][layers][stability]", real_rungs) {
  using T = TestType;
  using std::exp;
  using std::max;
  Matrix<T> X(1, 1);
  X << T(-40);
  // mish(−40) = −40 tanh(log1p(e^−40)) = −40 e^−40 (1 + O(e^−40)) and mish'(−40) = −39 e^−40 (1 + O(e^−40)):
  // tiny values that a cancelling formula would lose. The O(e^−40) ≈ 4e−18 terms bound mp100's tolerance.
  const T tol = max(eps_times<T>(64), T(1e-16));
  const auto m = build<T>("mish", 1);
  CHECK(close(T(m.forward(X)(0) / T(T(-40) * exp(T(-40)))), T(1), tol));
  CHECK(close(T(m.jacobian_input(X)(0, 0) / T(T(-39) * exp(T(-40)))), T(1), tol));
  const auto e = build<T>("elu", 1);
  CHECK(close(T(e.forward(X)(0)), T(exp(T(-40)) - T(1)), eps_times<T>(4)));
  const auto s = build<T>("swish", 1, {{"beta", 2}});
  // swish(−40) with β = 2: −40 σ(−80) = −40 e^−80/(1 + e^−80).
  CHECK(close(T(s.forward(X)(0) / T(T(-40) * exp(T(-80)) / (T(1) + exp(T(-80))))), T(1), eps_times<T>(16)));
}

// ---- kinks ---------------------------------------------------------------------------------------

TEST_CASE("hardtanh exactly on both kinks is non-differentiable, never a wrong gradient", "[zoo][verify][kinks]") {
  Matrix<mp100> X(2, 2);
  X << mp100(1), mp100(-1),  //
      mp100("0.25"), mp100(1);
  const auto r = bpcheck::testing::require_non_differentiable({"hardtanh", {}}, 2, X);
  // Resampling moves the point off the kinks and every check then passes.
  bpcheck::VerifyOptions o;
  o.inputs = X;
  bpcheck::testing::require_clean(bpcheck::verify_layer({"hardtanh", {}}, 2, o), "hardtanh resampled off its kinks");
}

TEST_CASE("hardswish exactly on both kinks is non-differentiable, never a wrong gradient", "[zoo][verify][kinks]") {
  Matrix<mp100> X(2, 2);
  X << mp100(-3), mp100(1),  //
      mp100("0.5"), mp100(3);
  bpcheck::testing::require_non_differentiable({"hardswish", {}}, 2, X);
  // Resampling moves the point off the kinks and every check then passes.
  bpcheck::VerifyOptions o;
  o.inputs = X;
  bpcheck::testing::require_clean(bpcheck::verify_layer({"hardswish", {}}, 2, o), "hardswish resampled off its kinks");
}

TEST_CASE("elu with α ≠ 1 at 0 is non-differentiable, with α = 1 it is differentiable there", "[zoo][verify][kinks]") {
  const Matrix<mp100> X = Matrix<mp100>::Zero(2, 1);
  bpcheck::testing::require_non_differentiable({"elu", {{"alpha", 2}}}, 2, X);
  bpcheck::VerifyOptions o;
  o.inputs = X;
  o.resample_kinks = false;
  o.points = 1;
  const auto r = bpcheck::verify_layer({"elu", {}}, 2, o);
  for (const auto& c : r.checks) CHECK(c.check != "differentiability");
}

// ---- dropout -------------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("dropout: a fixed mask from the seed, kept entries scaled by 1/(1 − p)", "[zoo][layers]",
                        real_rungs) {
  using T = TestType;
  const Index n = 50, B = 40;
  const Matrix<T> X = Matrix<T>::Constant(n, B, ratio<T>(3, 7));
  const auto d = build<T>("dropout", n, {{"p", 0.25}, {"seed", 11}});
  const Matrix<T> Y = d.forward(X);
  Index kept = 0;
  for (Index i = 0; i < Y.size(); ++i) {
    if (Y(i) == T(0)) continue;
    ++kept;
    CHECK(close(T(Y(i)), T(ratio<T>(3, 7) * ratio<T>(4, 3)), eps_times<T>(2)));
  }
  // 2000 entries kept with probability 3/4: 1500 ± 19 (one standard deviation); 5 deviations allowed.
  CHECK(kept > 1400);
  CHECK(kept < 1600);
  // The same seed gives the same mask on every call and every rung; another seed another mask.
  CHECK(d.forward(X) == Y);
  const auto same_mp = build<mp100>("dropout", n, {{"p", 0.25}, {"seed", 11}});
  const Matrix<mp100> Ymp = same_mp.forward(Matrix<mp100>::Ones(n, B));
  for (Index i = 0; i < Y.size(); ++i) CHECK((Y(i) == T(0)) == (Ymp(i) == mp100(0)));
  const auto other = build<T>("dropout", n, {{"p", 0.25}, {"seed", 12}});
  CHECK(other.forward(X) != Y);
  // backward applies the same mask; J_x is that diagonal; p = 0 is the identity.
  Vector<T> none(0);
  const Matrix<T> dX = d.backward(X, Y, Matrix<T>::Ones(n, B), none);
  CHECK(dX == Matrix<T>(Y / ratio<T>(3, 7)));
  const auto identity = build<T>("dropout", 3, {{"p", 0}});
  const Matrix<T> Z = Matrix<T>::Constant(3, 2, ratio<T>(-5, 3));
  CHECK(identity.forward(Z) == Z);
  // A column of the batch meets its own mask: the layer is not sample independent.
  CHECK(!d.sample_independent());
}

// ---- refused options -----------------------------------------------------------------------------

TEST_CASE("extra activations and dropout refuse bad options with input_error", "[zoo][errors]") {
  using bpcheck::input_error;
  const auto refuses = [](const std::string& type, nlohmann::json options, const std::string& words) {
    INFO(type << " " << options.dump());
    CHECK_THROWS_WITH(build<double>(type, 3, options), Catch::Contains(words));
    CHECK_THROWS_AS(build<mp100>(type, 3, options), input_error);
  };
  refuses("dropout", {{"p", 1}}, "[0, 1)");
  refuses("dropout", {{"p", -0.1}}, "[0, 1)");
  refuses("dropout", {{"p", "1.5"}}, "[0, 1)");
  refuses("dropout", {{"seed", -1}}, "non-negative integer");
  refuses("dropout", {{"seed", 1.5}}, "non-negative integer");
  refuses("dropout", {{"rate", 0.1}}, "unknown option 'rate'");
  refuses("elu", {{"alpha", "x"}}, "not a number");
  refuses("elu", {{"beta", 1}}, "unknown option 'beta'");
  refuses("hardtanh", {{"min_val", 1}, {"max_val", 1}}, "min_val must be below max_val");
  refuses("hardtanh", {{"min", 0}}, "unknown option 'min'");
  refuses("swish", {{"beta", nullptr}}, "expected a number");
  refuses("mish", {{"beta", 1}}, "unknown option 'beta'");
  refuses("hardswish", {{"inplace", true}}, "unknown option 'inplace'");
  CHECK_NOTHROW(build<double>("dropout", 3, {{"p", 0.999}}));
}

TEST_CASE("a network of dense layers through elu, hardtanh, mish, swish, hardswish and dropout passes verify_network",
          "[zoo][verify]") {
  const bpcheck::ModelSpec m{3,
                             {{"dense", {{"units", 4}}},
                              {"elu", {{"alpha", "0.5"}}},
                              {"dense", {{"units", 4}}},
                              {"hardtanh", {{"min_val", -2}, {"max_val", 2}}},
                              {"dense", {{"units", 4}}},
                              {"mish", {}},
                              {"dropout", {{"p", 0.25}, {"seed", 5}}},
                              {"dense", {{"units", 3}}},
                              {"swish", {{"beta", 2}}},
                              {"dense", {{"units", 3}}},
                              {"hardswish", {}}},
                             "mse"};
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    bpcheck::VerifyOptions o;
    o.seed = seed;
    bpcheck::testing::require_clean(bpcheck::verify_network({m, std::nullopt, std::nullopt}, o),
                                    "activation network, seed " + std::to_string(seed));
  }
}
