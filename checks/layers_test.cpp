// Closed-form Jacobians of every built-in layer on small hand-computed cases, backward = Jᵀ·dY, and
// the numerically stable formulas at extreme inputs.
//
// Hand values use points where the function is a rational number: σ(ln a) = a/(1 + a),
// tanh(ln(a)/2) = (a − 1)/(a + 1), softplus(ln a) = ln(1 + a), softmax(ln a_i) = a_i / Σ a.
#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/softmax.hpp"
#include "helpers.hpp"

using bpcheck::AnyLayer;
using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::scalar_traits;
using bpcheck::Vector;
using bpcheck::testing::close;
using bpcheck::testing::eps_times;
using bpcheck::testing::normwise_relative_difference;
using bpcheck::testing::ln;
using bpcheck::testing::ratio;
using bpcheck::testing::real_rungs;

namespace {

template <class T>
AnyLayer<T> build(const std::string& type, Index width, nlohmann::json options = nlohmann::json::object()) {
  return bpcheck::make_layer<T>(bpcheck::LayerSpec{type, std::move(options)}, width);
}

/// An activation on a 3 × 2 batch: the values and the diagonal of J_x must be the hand values, every
/// off-diagonal entry of the 6 × 6 batch Jacobian exactly zero, and J_θ empty.
template <class T>
void check_elementwise(const AnyLayer<T>& layer, const std::vector<T>& x, const std::vector<T>& y,
                       const std::vector<T>& dy, const T& tol) {
  REQUIRE(x.size() == 6);
  const Matrix<T> X = Eigen::Map<const Matrix<T>>(x.data(), 3, 2);
  const Matrix<T> Y = layer.forward(X);
  const Matrix<T> J = layer.jacobian_input(X);
  REQUIRE(J.rows() == 6);
  REQUIRE(J.cols() == 6);
  for (Index i = 0; i < 6; ++i) {
    INFO(layer.type_name() << " at x = " << bpcheck::to_string(x[i]) << ": y = " << bpcheck::to_string(Y(i))
                           << " (expected " << bpcheck::to_string(y[i]) << "), y' = " << bpcheck::to_string(J(i, i))
                           << " (expected " << bpcheck::to_string(dy[i]) << ")");
    CHECK(close(T(Y(i)), y[i], tol));
    CHECK(close(T(J(i, i)), dy[i], tol));
    for (Index j = 0; j < 6; ++j)
      if (j != i) CHECK(J(i, j) == T(0));
  }
  const Matrix<T> Jt = layer.jacobian_parameters(X);
  CHECK(Jt.rows() == 6);
  CHECK(Jt.cols() == 0);
}

/// ln of a rational, in T.
}  // namespace

// ---- dense -------------------------------------------------------------------------------------

TEST_CASE("dense: float and double products are right when two threads run them at once", "[layers][dense][threads]") {
  // verify runs points on several threads, each with its own BLAS products: a BLAS built without
  // locking (Debian's serial OpenBLAS) returns wrong products then, about one call in four here.
  const auto check = [](auto zero) {
    using T = decltype(zero);
    bpcheck::Dense<T> d(64, 64);
    Vector<T> theta(d.parameters().size());
    for (Index i = 0; i < theta.size(); ++i) theta(i) = T(std::sin(double(i)));
    d.set_parameters(theta);
    Matrix<T> X(64, 2), U(64, 2);
    for (Index i = 0; i < X.size(); ++i) X(i) = T(std::cos(3.0 * double(i))), U(i) = T(std::sin(5.0 * double(i)));
    const Matrix<T> Y = d.forward(X);
    Vector<T> dtheta = Vector<T>::Zero(theta.size());
    const Matrix<T> dX = d.backward(X, Y, U, dtheta);
    std::atomic<int> wrong{0};
    const auto run = [&] {
      for (int k = 0; k < 3000; ++k) {
        Vector<T> dt = Vector<T>::Zero(theta.size());
        const Matrix<T> y = d.forward(X);
        const Matrix<T> dx = d.backward(X, y, U, dt);
        if (y != Y || dx != dX || dt != dtheta) ++wrong;
      }
    };
    std::thread other(run);
    run();
    other.join();
    CHECK(wrong == 0);
  };
  check(float{});
  check(double{});
}

TEST_CASE("zeros<T>(n) is n zeros on every rung, and a new dense layer's parameters are zeros", "[layers][dense]") {
  const auto check = [](auto zero) {
    using T = decltype(zero);
    const Vector<T> z = bpcheck::zeros<T>(5);
    REQUIRE(z.size() == 5);
    for (Index i = 0; i < z.size(); ++i) {
      CHECK(bpcheck::value_of(z(i)) == 0);
      if constexpr (scalar_traits<T>::is_dual)
        for (const auto& tangent : z(i).d) CHECK(tangent == 0);
    }
    const bpcheck::Dense<T> d(3, 2);
    const Vector<T> theta = d.parameters();
    REQUIRE(theta.size() == 8);
    for (Index i = 0; i < theta.size(); ++i) CHECK(bpcheck::value_of(theta(i)) == 0);
  };
  check(float{});
  check(double{});
  check(bpcheck::mp100{});
  check(bpcheck::dual<bpcheck::mp100>{});
  check(bpcheck::dual<double>{});
}

TEMPLATE_LIST_TEST_CASE("dense: y = Wx + b, J_x = I_B ⊗ W, J_θ = [xᵀ ⊗ I, I] entry by entry", "[layers][dense]",
                        real_rungs) {
  using T = TestType;
  bpcheck::Dense<T> d(3, 2);
  d.W() << T(1), T(-2), ratio<T>(1, 2),  //
      T(3), ratio<T>(1, 4), T(-1);
  d.b() << ratio<T>(1, 8), T(-3);
  Matrix<T> X(3, 2);
  X << T(1), ratio<T>(1, 2),  //
      T(2), T(0),             //
      T(-1), T(4);

  // By hand: sample 0: 1 − 4 − 1/2 + 1/8 = −27/8 and 3 + 1/2 + 1 − 3 = 3/2;
  //          sample 1: 1/2 + 0 + 2 + 1/8 = 21/8 and 3/2 + 0 − 4 − 3 = −11/2. All dyadic: exact.
  Matrix<T> expected(2, 2);
  expected << ratio<T>(-27, 8), ratio<T>(21, 8),  //
      ratio<T>(3, 2), ratio<T>(-11, 2);
  CHECK((d.forward(X) == expected));

  // J_x is 4 × 6: block (s, s') is W when s = s', zero otherwise.
  const Matrix<T> Jx = d.jacobian_input(X);
  REQUIRE(Jx.rows() == 4);
  REQUIRE(Jx.cols() == 6);
  for (Index s = 0; s < 2; ++s)
    for (Index s2 = 0; s2 < 2; ++s2)
      for (Index i = 0; i < 2; ++i)
        for (Index j = 0; j < 3; ++j) {
          INFO("J_x(" << 2 * s + i << ", " << 3 * s2 + j << ")");
          CHECK(Jx(2 * s + i, 3 * s2 + j) == (s == s2 ? T(d.W()(i, j)) : T(0)));
        }

  // J_θ is 4 × 8; θ = [vec(W); b] puts W(i, j) at column i + 2j and b_i at column 6 + i.
  // ∂y_s[r]/∂W(i, j) = [r = i] x_s[j] and ∂y_s[r]/∂b_i = [r = i].
  const Matrix<T> Jp = d.jacobian_parameters(X);
  REQUIRE(Jp.rows() == 4);
  REQUIRE(Jp.cols() == 8);
  for (Index s = 0; s < 2; ++s)
    for (Index r = 0; r < 2; ++r) {
      for (Index i = 0; i < 2; ++i) {
        for (Index j = 0; j < 3; ++j) {
          INFO("∂y_" << s << "[" << r << "]/∂W(" << i << ", " << j << ")");
          CHECK(Jp(2 * s + r, i + 2 * j) == (r == i ? T(X(j, s)) : T(0)));
        }
        INFO("∂y_" << s << "[" << r << "]/∂b_" << i);
        CHECK(Jp(2 * s + r, 6 + i) == (r == i ? T(1) : T(0)));
      }
    }
  // A few entries spelled out: ∂y_0[1]/∂W(1,0) = x_0[0] = 1, ∂y_1[1]/∂W(1,2) = x_1[2] = 4,
  // ∂y_1[0]/∂W(0,0) = x_1[0] = 1/2, ∂y_0[0]/∂W(1,0) = 0.
  CHECK(Jp(1, 1) == T(1));
  CHECK(Jp(3, 5) == T(4));
  CHECK(Jp(2, 0) == ratio<T>(1, 2));
  CHECK(Jp(0, 1) == T(0));
}

// ---- activations -------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("relu: values, relu'(0) = 0, diagonal batch Jacobian", "[layers][activations]", real_rungs) {
  using T = TestType;
  const auto l = build<T>("relu", 3);
  check_elementwise<T>(l, {ratio<T>(-3, 2), T(0), ratio<T>(5, 2), ratio<T>(1, 4), ratio<T>(-1, 4), T(7)},
                       {T(0), T(0), ratio<T>(5, 2), ratio<T>(1, 4), T(0), T(7)},
                       {T(0), T(0), T(1), T(1), T(0), T(1)}, T(0));
}

TEMPLATE_LIST_TEST_CASE("leaky_relu: default slope 0.01 and a custom slope 0.2", "[layers][activations]", real_rungs) {
  using T = TestType;
  const T tol = eps_times<T>(4);
  const T a = ratio<T>(1, 100);
  check_elementwise<T>(build<T>("leaky_relu", 3),
                       {T(-2), T(0), T(3), ratio<T>(-1, 2), T(1), T(-100)},
                       {ratio<T>(-2, 100), T(0), T(3), ratio<T>(-1, 200), T(1), T(-1)}, {a, a, T(1), a, T(1), a}, tol);
  // "0.2" is read as the decimal 0.2 rounded once to the rung, as 1/5 is.
  const T s = ratio<T>(1, 5);
  check_elementwise<T>(build<T>("leaky_relu", 3, {{"negative_slope", "0.2"}}),
                       {T(-5), T(0), T(2), ratio<T>(-1, 2), ratio<T>(3, 2), T(-10)},
                       {T(-1), T(0), T(2), ratio<T>(-1, 10), ratio<T>(3, 2), T(-2)}, {s, s, T(1), s, T(1), s}, tol);
}

TEMPLATE_LIST_TEST_CASE("sigmoid: σ(ln a) = a/(1 + a), σ' = a/(1 + a)²", "[layers][activations]", real_rungs) {
  using T = TestType;
  check_elementwise<T>(build<T>("sigmoid", 3), {T(0), ln<T>(3), -ln<T>(3), ln<T>(7), -ln<T>(7), ln<T>(9)},
                       {ratio<T>(1, 2), ratio<T>(3, 4), ratio<T>(1, 4), ratio<T>(7, 8), ratio<T>(1, 8), ratio<T>(9, 10)},
                       {ratio<T>(1, 4), ratio<T>(3, 16), ratio<T>(3, 16), ratio<T>(7, 64), ratio<T>(7, 64),
                        ratio<T>(9, 100)},
                       eps_times<T>(8));
}

TEMPLATE_LIST_TEST_CASE("tanh: tanh(ln(a)/2) = (a − 1)/(a + 1), tanh' = 4a/(a + 1)²", "[layers][activations]",
                        real_rungs) {
  using T = TestType;
  // ln 9 / 2 = ln 3: a = 9 gives 4/5 and 36/100.
  check_elementwise<T>(build<T>("tanh", 3),
                       {T(0), ln<T>(3) / 2, -ln<T>(3) / 2, ln<T>(3), -ln<T>(3), ln<T>(7) / 2},
                       {T(0), ratio<T>(1, 2), ratio<T>(-1, 2), ratio<T>(4, 5), ratio<T>(-4, 5), ratio<T>(3, 4)},
                       {T(1), ratio<T>(3, 4), ratio<T>(3, 4), ratio<T>(9, 25), ratio<T>(9, 25), ratio<T>(7, 16)},
                       eps_times<T>(8));
}

TEMPLATE_LIST_TEST_CASE("softplus: softplus(ln a) = ln(1 + a), softplus' = a/(1 + a)", "[layers][activations]",
                        real_rungs) {
  using T = TestType;
  check_elementwise<T>(build<T>("softplus", 3), {T(0), ln<T>(3), -ln<T>(3), ln<T>(7), -ln<T>(7), ln<T>(9)},
                       {ln<T>(2), ln<T>(4), ln<T>(4, 3), ln<T>(8), ln<T>(8, 7), ln<T>(10)},
                       {ratio<T>(1, 2), ratio<T>(3, 4), ratio<T>(1, 4), ratio<T>(7, 8), ratio<T>(1, 8), ratio<T>(9, 10)},
                       eps_times<T>(8));
}

TEMPLATE_LIST_TEST_CASE("gelu (none): at x = a√2, Φ = (1 + erf a)/2, gelu' = Φ + a e^{−a²}/√π",
                        "[layers][activations]", real_rungs) {
  using T = TestType;
  using std::erf;
  using std::exp;
  using std::sqrt;
  const T r2 = sqrt(T(2));
  const T rpi = sqrt(bpcheck::pi<T>());
  std::vector<T> x, y, dy;
  for (const T a : {T(0), T(1), T(-1), T(2), T(-2), ratio<T>(1, 2)}) {
    const T Phi = (T(1) + erf(a)) / 2;
    x.push_back(a * r2);
    y.push_back(a * r2 * Phi);
    dy.push_back(Phi + a * exp(-a * a) / rpi);
  }
  CHECK(dy[0] == ratio<T>(1, 2));
  check_elementwise<T>(build<T>("gelu", 3), x, y, dy, eps_times<T>(16));
  check_elementwise<T>(build<T>("gelu", 3, {{"approximate", "none"}}), x, y, dy, eps_times<T>(16));
}

TEMPLATE_LIST_TEST_CASE("gelu (tanh): gelu = x σ(2u), u = √(2/π)(x + 0.044715x³), in the sigmoid form",
                        "[layers][activations]", real_rungs) {
  using T = TestType;
  using std::exp;
  using std::sqrt;
  // (1 + tanh u)/2 = σ(2u), so gelu' = σ(2u) + x·2σ(2u)(1 − σ(2u))·u'(x), u' = k(1 + 3c x²): a
  // different route from the layer's tanh formula.
  const T k = sqrt(T(2) / bpcheck::pi<T>());
  const T c = ratio<T>(44715, 1000000);
  std::vector<T> x, y, dy;
  for (const T v : {T(0), T(1), T(-1), T(2), T(-3), ratio<T>(1, 2)}) {
    const T u = k * (v + c * v * v * v);
    const T s = T(1) / (T(1) + exp(T(-2) * u));
    x.push_back(v);
    y.push_back(v * s);
    dy.push_back(s + v * T(2) * s * (T(1) - s) * k * (T(1) + T(3) * c * v * v));
  }
  check_elementwise<T>(build<T>("gelu", 3, {{"approximate", "tanh"}}), x, y, dy, eps_times<T>(16));
}

TEMPLATE_LIST_TEST_CASE("silu: silu(ln a) = ln a · a/(1 + a), silu' = σ + x σ(1 − σ)", "[layers][activations]",
                        real_rungs) {
  using T = TestType;
  const std::vector<T> x{T(0), ln<T>(3), -ln<T>(3), ln<T>(7), -ln<T>(7), ln<T>(9)};
  const std::vector<T> s{ratio<T>(1, 2), ratio<T>(3, 4), ratio<T>(1, 4), ratio<T>(7, 8), ratio<T>(1, 8), ratio<T>(9, 10)};
  const std::vector<T> ds{ratio<T>(1, 4),  ratio<T>(3, 16), ratio<T>(3, 16),
                          ratio<T>(7, 64), ratio<T>(7, 64), ratio<T>(9, 100)};
  std::vector<T> y, dy;
  for (std::size_t i = 0; i < x.size(); ++i) {
    y.push_back(x[i] * s[i]);
    dy.push_back(s[i] + x[i] * ds[i]);
  }
  check_elementwise<T>(build<T>("silu", 3), x, y, dy, eps_times<T>(8));
}

// ---- softmax and log_softmax -------------------------------------------------------------------

namespace {
/// Two samples whose exponentials are (1, 2, 3) and (4, 1, 3): s = (1/6, 1/3, 1/2) and (1/2, 1/8, 3/8).
template <class T>
Matrix<T> softmax_points() {
  Matrix<T> X(3, 2);
  X << T(0), ln<T>(4),  //
      ln<T>(2), T(0),   //
      ln<T>(3), ln<T>(3);
  return X;
}

/// The 6 × 6 batch Jacobian must be blockdiag(A, B) with the hand blocks, off-diagonal blocks zero.
template <class T>
void check_block_diagonal(const Matrix<T>& J, const Matrix<T>& A, const Matrix<T>& B, const T& tol) {
  REQUIRE(J.rows() == 6);
  REQUIRE(J.cols() == 6);
  for (Index r = 0; r < 6; ++r)
    for (Index c = 0; c < 6; ++c) {
      INFO("J(" << r << ", " << c << ") = " << bpcheck::to_string(J(r, c)));
      if (r < 3 && c < 3)
        CHECK(close(T(J(r, c)), T(A(r, c)), tol));
      else if (r >= 3 && c >= 3)
        CHECK(close(T(J(r, c)), T(B(r - 3, c - 3)), tol));
      else
        CHECK(J(r, c) == T(0));
    }
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("softmax: J = diag(s) − s sᵀ per sample, block diagonal on the batch", "[layers][softmax]",
                        real_rungs) {
  using T = TestType;
  const auto l = build<T>("softmax", 3);
  const Matrix<T> X = softmax_points<T>();
  Matrix<T> S(3, 2);
  S << ratio<T>(1, 6), ratio<T>(1, 2),  //
      ratio<T>(1, 3), ratio<T>(1, 8),   //
      ratio<T>(1, 2), ratio<T>(3, 8);
  CHECK(normwise_relative_difference(l.forward(X), S) <= eps_times<T>(8));
  // diag(s) − s sᵀ by hand, e.g. 1/6 − 1/36 = 5/36 and 1/8 − 1/64 = 7/64; every row sums to 0.
  Matrix<T> A(3, 3), B(3, 3);
  A << ratio<T>(5, 36), ratio<T>(-1, 18), ratio<T>(-1, 12),  //
      ratio<T>(-1, 18), ratio<T>(2, 9), ratio<T>(-1, 6),     //
      ratio<T>(-1, 12), ratio<T>(-1, 6), ratio<T>(1, 4);
  B << ratio<T>(1, 4), ratio<T>(-1, 16), ratio<T>(-3, 16),  //
      ratio<T>(-1, 16), ratio<T>(7, 64), ratio<T>(-3, 64),  //
      ratio<T>(-3, 16), ratio<T>(-3, 64), ratio<T>(15, 64);
  check_block_diagonal<T>(l.jacobian_input(X), A, B, eps_times<T>(8));
  CHECK(l.jacobian_parameters(X).cols() == 0);
}

TEMPLATE_LIST_TEST_CASE("log_softmax: y = x − ln Σ eˣ, J = I − 1 sᵀ per sample, block diagonal",
                        "[layers][softmax]", real_rungs) {
  using T = TestType;
  const auto l = build<T>("log_softmax", 3);
  const Matrix<T> X = softmax_points<T>();
  Matrix<T> L(3, 2);
  L << -ln<T>(6), -ln<T>(2),  //
      -ln<T>(3), -ln<T>(8),   //
      -ln<T>(2), ln<T>(3, 8);
  CHECK(normwise_relative_difference(l.forward(X), L) <= eps_times<T>(8));
  // Row i of each block is e_iᵀ − sᵀ.
  Matrix<T> A(3, 3), B(3, 3);
  A << ratio<T>(5, 6), ratio<T>(-1, 3), ratio<T>(-1, 2),  //
      ratio<T>(-1, 6), ratio<T>(2, 3), ratio<T>(-1, 2),   //
      ratio<T>(-1, 6), ratio<T>(-1, 3), ratio<T>(1, 2);
  B << ratio<T>(1, 2), ratio<T>(-1, 8), ratio<T>(-3, 8),  //
      ratio<T>(-1, 2), ratio<T>(7, 8), ratio<T>(-3, 8),   //
      ratio<T>(-1, 2), ratio<T>(-1, 8), ratio<T>(5, 8);
  check_block_diagonal<T>(l.jacobian_input(X), A, B, eps_times<T>(8));
  CHECK(l.jacobian_parameters(X).cols() == 0);
}

// ---- backward = Jᵀ·dY for every layer ----------------------------------------------------------

namespace {
struct Variant {
  std::string type;
  nlohmann::json options;
};
/// Every registered layer type, plus the options that change its formula.
std::vector<Variant> every_layer() {
  std::vector<Variant> v;
  // Options that fit a width of 3 where a layer needs them (a 1d signal of length 3, or a 1 × 3 image).
  const std::map<std::string, nlohmann::json> needs{
      {"dense", {{"units", 2}}},
      {"conv1d", {{"channels", 1}, {"length", 3}, {"out_channels", 2}, {"kernel", 2}}},
      {"conv2d", {{"channels", 1}, {"height", 1}, {"width", 3}, {"out_channels", 2}, {"kernel", {1, 2}}}},
      {"max_pool1d", {{"channels", 1}, {"length", 3}, {"kernel", 2}, {"stride", 1}}},
      {"avg_pool1d", {{"channels", 1}, {"length", 3}, {"kernel", 2}, {"stride", 1}}},
      {"max_pool2d", {{"channels", 1}, {"height", 1}, {"width", 3}, {"kernel", {1, 2}}, {"stride", 1}}},
      {"avg_pool2d", {{"channels", 1}, {"height", 1}, {"width", 3}, {"kernel", {1, 2}}, {"stride", 1}}},
      {"residual", nlohmann::json::parse(R"({"layers": [{"type": "dense", "units": 2}, {"type": "tanh"},
                                                        {"type": "dense", "units": 3}]})")},
      {"add", nlohmann::json::parse(R"({"branches": [[{"type": "dense", "units": 3}], [], [{"type": "tanh"}]]})")},
      {"concat", nlohmann::json::parse(R"({"branches": [[{"type": "dense", "units": 2}], [{"type": "sigmoid"}]]})")},
      {"multi_head_attention", {{"sequence", 3}, {"heads", 1}, {"causal", true}}},
      {"embedding", {{"num_embeddings", 4}, {"embedding_dim", 2}}},
      {"batch_norm2d", {{"channels", 1}, {"height", 1}, {"width", 3}}},
      {"adaptive_avg_pool2d", {{"channels", 1}, {"height", 1}, {"width", 3}, {"output_size", {1, 2}}}},
      {"transformer_encoder_layer", {{"sequence", 3}, {"heads", 1}, {"dim_feedforward", 2}}},
      {"position_embedding", {{"tokens", 3}, {"features", 1}}},
      {"token_mean", {{"tokens", 3}}}};
  for (const auto& name : bpcheck::layer_type_names())
    v.push_back({name, needs.count(name) ? needs.at(name) : nlohmann::json::object()});
  v.push_back({"leaky_relu", {{"negative_slope", "0.2"}}});
  v.push_back({"gelu", {{"approximate", "tanh"}}});
  v.push_back({"elu", {{"alpha", "0.5"}}});
  v.push_back({"swish", {{"beta", "1.5"}}});
  v.push_back({"batch_norm", {{"mode", "eval"}, {"running_mean", {1, 0, -1}}, {"running_var", {2, "0.5", 1}}}});
  return v;
}
/// Deterministic non-dyadic entries away from every kink: (k·7 mod 11 − 5)/3, never 0.
template <class T>
Matrix<T> sample_matrix(Index rows, Index cols, int salt) {
  Matrix<T> M(rows, cols);
  for (Index i = 0; i < M.size(); ++i) {
    int k = int((i + salt) * 7 % 11) - 5;
    if (k == 0) k = 6;
    M(i) = ratio<T>(k, 3);
  }
  return M;
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("every layer: backward equals Jᵀ·dY from its explicit Jacobians, and dθ accumulates",
                        "[layers][backward]", real_rungs) {
  using T = TestType;
  const T tol = eps_times<T>(16);  // mp100: ~1e-98, far below the 1e-90 asked of it
  for (const auto& v : every_layer()) {
    INFO("layer " << v.type << " " << v.options.dump());
    auto l = build<T>(v.type, 3, v.options);
    const Index P = l.parameter_count();
    if (P > 0) {
      Vector<T> theta(P);
      for (Index i = 0; i < P; ++i) theta(i) = ratio<T>(int(i % 5) - 2, 7) + ratio<T>(1, 13);
      l.set_parameters(theta);
    }
    Matrix<T> X = sample_matrix<T>(3, 2, 1);
    if (l.input_is_index()) X << T(0), T(3), T(1), T(1), T(2), T(0);  // valid indices, one repeated
    const Matrix<T> Y = l.forward(X);
    const Matrix<T> dY = sample_matrix<T>(Y.rows(), Y.cols(), 4);
    const Eigen::Map<const Vector<T>> dy(dY.data(), dY.size());

    Vector<T> dtheta = Vector<T>::Zero(P);
    const Matrix<T> dX = l.backward(X, Y, dY, dtheta);
    const Vector<T> dx_expected = l.jacobian_input(X).transpose() * dy;
    const Vector<T> dtheta_expected = l.jacobian_parameters(X).transpose() * dy;
    REQUIRE(dX.rows() == X.rows());
    REQUIRE(dX.cols() == X.cols());
    const Eigen::Map<const Vector<T>> dx(dX.data(), dX.size());
    CHECK(normwise_relative_difference(dx, dx_expected) <= tol);
    CHECK(normwise_relative_difference(dtheta, dtheta_expected) <= tol);
    if (P == 0) continue;
    CHECK(bpcheck::testing::max_abs(dtheta) > T(0));  // the comparison above is not 0 = 0

    // A second call adds the same J_θᵀ dY again: dθ doubles.
    const Vector<T> once = dtheta;
    l.backward(X, Y, dY, dtheta);
    CHECK(normwise_relative_difference(dtheta, Vector<T>(T(2) * once)) <= tol);
    // Adding onto prior content c gives c + J_θᵀ dY.
    Vector<T> onto = Vector<T>::Constant(P, T(5));
    l.backward(X, Y, dY, onto);
    CHECK(normwise_relative_difference(onto, Vector<T>(once.array() + T(5))) <= tol);
  }
}

// ---- numerically stable formulas ---------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("softplus(±1000) and sigmoid(±1000) are finite and right", "[layers][stability]",
                        real_rungs) {
  using T = TestType;
  using std::abs;
  using std::exp;
  using std::isfinite;
  Matrix<T> X(2, 1);
  X << T(1000), T(-1000);

  const auto sp = build<T>("softplus", 2);
  const Matrix<T> Y = sp.forward(X);
  const Matrix<T> J = sp.jacobian_input(X);
  // softplus(1000) = 1000 + log1p(e^−1000): the correction is below every rung's half ulp of 1000.
  CHECK(Y(0) == T(1000));
  CHECK(J(0, 0) == T(1));
  // softplus(−1000) = log1p(e^−1000) ≈ e^−1000: underflows to 0 in float and double; mp100's
  // exponent range holds it, and it must be right to the last digits there.
  for (const T& v : {T(Y(1)), T(J(1, 1))}) {
    REQUIRE(isfinite(v));
    CHECK(v >= T(0));
  }
  if constexpr (std::is_same_v<T, bpcheck::mp100>) {
    const T tiny = exp(T(-1000));
    CHECK(Y(1) > T(0));
    CHECK(abs(T(Y(1) - tiny)) <= eps_times<T>(4) * tiny);
    CHECK(abs(T(J(1, 1) - tiny)) <= eps_times<T>(4) * tiny);
  }

  const auto sg = build<T>("sigmoid", 2);
  const Matrix<T> S = sg.forward(X);
  const Matrix<T> D = sg.jacobian_input(X);
  CHECK(S(0) == T(1));
  for (Index i = 0; i < 2; ++i) {
    REQUIRE(isfinite(T(S(i))));
    REQUIRE(isfinite(T(D(i, i))));
    CHECK(S(i) >= T(0));
    CHECK(D(i, i) >= T(0));
  }
  CHECK(S(1) <= eps_times<T>(1));
  if constexpr (std::is_same_v<T, bpcheck::mp100>) {
    const T tiny = exp(T(-1000));  // σ(−1000) = e^−1000/(1 + e^−1000)
    CHECK(abs(T(S(1) - tiny)) <= eps_times<T>(4) * tiny);
  }
}

TEMPLATE_LIST_TEST_CASE("tanh'(40) = sech²(40) keeps its relative accuracy (1 − tanh² would give 0)",
                        "[layers][stability]", real_rungs) {
  using T = TestType;
  using M = bpcheck::mp100;
  Matrix<T> X(1, 1);
  X << T(40);
  Matrix<M> Xm(1, 1);
  Xm << M(40);
  const T d = build<T>("tanh", 1).jacobian_input(X)(0, 0);
  using std::abs;
  const M truth = build<M>("tanh", 1).jacobian_input(Xm)(0, 0);  // ≈ 7.2e−35
  // Independent closed form: sech²(40) = 4/(e^40 + e^−40)².
  using std::exp;
  const M sech2 = M(4) / ((exp(M(40)) + exp(M(-40))) * (exp(M(40)) + exp(M(-40))));
  CHECK(abs(M(truth - sech2)) <= eps_times<M>(8) * sech2);
  REQUIRE(d > T(0));
  const M rel = abs(M(bpcheck::scalar_cast<M>(d) - truth)) / truth;
  INFO(bpcheck::scalar_name<T>() << " tanh'(40) = " << bpcheck::to_string(d) << ", relative error "
                                 << bpcheck::to_string(rel));
  CHECK(rel <= bpcheck::scalar_cast<M>(eps_times<T>(8)));
}

TEMPLATE_LIST_TEST_CASE("softmax and log_softmax of inputs near 1e4 are finite and equal the shifted ones",
                        "[layers][stability]", real_rungs) {
  using T = TestType;
  using std::isfinite;
  Matrix<T> X(3, 1), shifted(3, 1);
  X << T(10000), T(10001), T(9999);  // e^10000 overflows every rung but mp100
  shifted << T(0), T(1), T(-1);
  for (const std::string type : {"softmax", "log_softmax"}) {
    INFO(type);
    const auto l = build<T>(type, 3);
    const Matrix<T> Y = l.forward(X);
    const Matrix<T> J = l.jacobian_input(X);
    for (Index i = 0; i < Y.size(); ++i) REQUIRE(isfinite(T(Y(i))));
    for (Index i = 0; i < J.size(); ++i) REQUIRE(isfinite(T(J(i))));
    // Softmax is shift invariant; log_softmax shifts by the same constant as its input.
    CHECK(normwise_relative_difference(Y, l.forward(shifted)) <= eps_times<T>(8));
    CHECK(normwise_relative_difference(J, l.jacobian_input(shifted)) <= eps_times<T>(8));
  }
  // Hand value: softmax(0, 1, −1) = (1, e, 1/e)/(1 + e + 1/e).
  using std::exp;
  const T e = exp(T(1));
  const T z = T(1) + e + T(1) / e;
  Matrix<T> S(3, 1);
  S << T(1) / z, e / z, T(1) / e / z;
  CHECK(normwise_relative_difference(build<T>("softmax", 3).forward(X), S) <= eps_times<T>(8));
}
