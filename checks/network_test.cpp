// Network gradients: two small networks worked by hand, the explicit Jacobian product against
// backprop on random networks, and backprop against 100-digit finite differences of the loss.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bpcheck/network.hpp"
#include "helpers.hpp"

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::ModelSpec;
using bpcheck::Network;
using bpcheck::Targets;
using bpcheck::Vector;
using bpcheck::testing::agreeing_digits;
using bpcheck::testing::eps_times;
using bpcheck::testing::max_abs;
using bpcheck::testing::normwise_relative_difference;
using bpcheck::testing::ratio;
using bpcheck::testing::real_rungs;

namespace {

template <class T>
Vector<T> fractions(std::initializer_list<std::pair<long, long>> pq) {
  Vector<T> v(Index(pq.size()));
  Index i = 0;
  for (const auto& [p, q] : pq) v(i++) = ratio<T>(p, q);
  return v;
}

/// All layers' gradients in one vector, in parameter order.
template <class T>
Vector<T> concatenate(const std::vector<Vector<T>>& parts) {
  Index n = 0;
  for (const auto& p : parts) n += p.size();
  Vector<T> v(n);
  Index at = 0;
  for (const auto& p : parts) {
    v.segment(at, p.size()) = p;
    at += p.size();
  }
  return v;
}

}  // namespace

// ---- worked by hand ----------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("a dense–relu–dense network with mse: backprop equals the gradient worked by hand",
                        "[network][hand]", real_rungs) {
  using T = TestType;
  const ModelSpec spec{2, {{"dense", {{"units", 2}}}, {"relu", {}}, {"dense", {{"units", 1}}}}, "mse"};
  Network<T> net(spec);
  // W1 = [1 1; 2 −1], b1 = (1/2, 1), W2 = [2 −1], b2 = 1/4; θ = [vec(W1); b1; vec(W2); b2].
  net.set_parameters(fractions<T>({{1, 1}, {2, 1}, {1, 1}, {-1, 1}, {1, 2}, {1, 1}, {2, 1}, {-1, 1}, {1, 4}}));
  Matrix<T> X(2, 2);  // samples a = (1, 2), b = (−1, 1)
  X << T(1), T(-1),   //
      T(2), T(1);
  Targets<T> t;
  t.values.resize(1, 2);
  t.values << T(6), ratio<T>(3, 2);
  // Forward.  a: z1 = (1 + 2 + 1/2, 2 − 2 + 1) = (7/2, 1), h = (7/2, 1), y = 7 − 1 + 1/4 = 25/4.
  //           b: z1 = (−1 + 1 + 1/2, −2 − 1 + 1) = (1/2, −2), h = (1/2, 0), y = 1 + 1/4 = 5/4.
  // Loss: errors y − t = 1/4 and −1/4; mse = (1/16 + 1/16)/2 = 1/16.
  // ∂ℓ/∂y = 2(y − t)/2 = (1/4, −1/4).
  // dW2 = Σ δ hᵀ = 1/4 (7/2, 1) − 1/4 (1/2, 0) = (3/4, 1/4);  db2 = 1/4 − 1/4 = 0.
  // δh = W2ᵀ δ: a: (1/2, −1/4), b: (−1/2, 1/4).  relu mask: a (1, 1), b (1, 0) → δz: a (1/2, −1/4), b (−1/2, 0).
  // dW1 = Σ δz xᵀ = [1/2 1; −1/4 −1/2] + [1/2 −1/2; 0 0] = [1 1/2; −1/4 −1/2];  db1 = (0, −1/4).
  // Every number is dyadic and small, so every rung computes them exactly.
  const auto g = net.gradient(X, t);
  CHECK(g.loss == ratio<T>(1, 16));
  CHECK((net.forward(X) == Matrix<T>((Matrix<T>(1, 2) << ratio<T>(25, 4), ratio<T>(5, 4)).finished())));
  REQUIRE(g.layers.size() == 3);
  CHECK((g.layers[0] == fractions<T>({{1, 1}, {-1, 4}, {1, 2}, {-1, 2}, {0, 1}, {-1, 4}})));
  CHECK(g.layers[1].size() == 0);
  CHECK((g.layers[2] == fractions<T>({{3, 4}, {1, 4}, {0, 1}})));
}

TEMPLATE_LIST_TEST_CASE("a dense–tanh–dense network with mse: backprop equals the gradient worked by hand",
                        "[network][hand]", real_rungs) {
  using T = TestType;
  using std::log;
  const ModelSpec spec{2, {{"dense", {{"units", 2}}}, {"tanh", {}}, {"dense", {{"units", 1}}}}, "mse"};
  Network<T> net(spec);
  // L = ln(3)/2 makes tanh(±L) = ±1/2 and tanh'(±L) = 3/4.
  // W1 = [L 0; 0 −L], b1 = 0, W2 = [2 4], b2 = 1; x = (1, 1), target 1.
  const T L = log(T(3)) / 2;
  Vector<T> theta(9);
  theta << L, T(0), T(0), -L, T(0), T(0), T(2), T(4), T(1);
  net.set_parameters(theta);
  Matrix<T> X(2, 1);
  X << T(1), T(1);
  Targets<T> t;
  t.values = Matrix<T>::Constant(1, 1, T(1));
  // z1 = (L, −L), h = (1/2, −1/2), y = 1 − 2 + 1 = 0; ℓ = (0 − 1)² = 1; ∂ℓ/∂y = 2(0 − 1) = −2.
  // dW2 = −2 (1/2, −1/2) = (−1, 1); db2 = −2.
  // δh = W2ᵀ(−2) = (−4, −8); δz = δh ⊙ (3/4, 3/4) = (−3, −6).
  // dW1 = δz xᵀ = [−3 −3; −6 −6] → vec = (−3, −6, −3, −6); db1 = (−3, −6).
  const auto g = net.gradient(X, t);
  const T tol = eps_times<T>(16);  // only L's rounding and tanh's ulps separate us from the exact values
  using std::abs;
  CHECK(abs(T(g.loss - T(1))) <= tol);
  REQUIRE(g.layers.size() == 3);
  CHECK(normwise_relative_difference(g.layers[0], fractions<T>({{-3, 1}, {-6, 1}, {-3, 1}, {-6, 1}, {-3, 1}, {-6, 1}})) <=
        tol);
  CHECK(normwise_relative_difference(g.layers[2], fractions<T>({{-1, 1}, {1, 1}, {-2, 1}})) <= tol);
}

// ---- random small networks ---------------------------------------------------------------------

namespace {

/// A random small network and a batch for it, the same numbers on every rung: the network is drawn
/// in float (so rebinding to double and mp100 is exact) and data are multiples of 1/8.
struct RandomCase {
  ModelSpec spec;
  Matrix<float> X;
  Targets<float> targets;
  std::uint64_t seed = 0;
};

RandomCase random_case(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&rng](int n) { return int(rng() % std::uint64_t(n)); };
  static const std::vector<bpcheck::LayerSpec> activations{
      {"relu", {}},     {"leaky_relu", {}}, {"leaky_relu", {{"negative_slope", "0.2"}}},
      {"sigmoid", {}},  {"tanh", {}},       {"softplus", {}},
      {"gelu", {}},     {"gelu", {{"approximate", "tanh"}}},
      {"silu", {}},     {"softmax", {}},    {"log_softmax", {}}};
  RandomCase c;
  c.seed = seed;
  c.spec.input_size = 2 + pick(2);
  const int depth = 2 + pick(4);  // 2 … 5 layers
  Index width = c.spec.input_size;
  for (int k = 0; k < depth; ++k) {
    if (k % 2 == 0) {
      width = 2 + pick(2);
      c.spec.layers.push_back({"dense", {{"units", width}}});
    } else {
      c.spec.layers.push_back(activations[std::size_t(pick(int(activations.size())))]);
    }
  }
  const std::vector<std::string> losses{"mse", "cross_entropy", "bce_with_logits"};
  c.spec.loss = losses[std::size_t(pick(3))];
  const Index batch = 1 + pick(3);
  c.X.resize(c.spec.input_size, batch);
  for (Index i = 0; i < c.X.size(); ++i) c.X(i) = float(pick(17) - 8) / 8;
  if (c.spec.loss == "cross_entropy") {
    for (Index b = 0; b < batch; ++b) c.targets.classes.push_back(Index(pick(int(width))));
  } else {
    c.targets.values.resize(width, batch);
    for (Index i = 0; i < c.targets.values.size(); ++i)
      c.targets.values(i) = c.spec.loss == "mse" ? float(pick(17) - 8) / 8 : float(pick(9)) / 8;
  }
  return c;
}

std::vector<std::uint64_t> random_seeds() {
  std::vector<std::uint64_t> s;
  for (std::uint64_t k = 1; k <= 16; ++k) s.push_back(k);
  return s;
}

std::string describe(const RandomCase& c) {
  std::string s = "seed " + std::to_string(c.seed) + ", input " + std::to_string(c.spec.input_size) + ", batch " +
                  std::to_string(c.X.cols()) + ":";
  for (const auto& l : c.spec.layers) s += " " + l.type + (l.options.empty() ? "" : l.options.dump());
  return s + ", loss " + c.spec.loss;
}

template <class T>
Targets<T> targets_on(const RandomCase& c) {
  Targets<T> t;
  t.values = bpcheck::matrix_cast<T>(c.targets.values);
  t.classes = c.targets.classes;
  return t;
}

template <class T>
Network<T> network_on(const RandomCase& c) {
  Network<float> net(c.spec);
  net.initialize(c.seed);
  return net.rebind<T>();
}

}  // namespace

TEST_CASE("the random networks draw registered activations, softmax, log_softmax, every loss, depth 2–5, batch 1–3",
          "[network][random]") {
  std::set<std::string> layers, losses;
  std::set<std::size_t> depths;
  std::set<Index> batches;
  for (auto seed : random_seeds()) {
    const auto c = random_case(seed);
    for (const auto& l : c.spec.layers) layers.insert(l.type);
    losses.insert(c.spec.loss);
    depths.insert(c.spec.layers.size());
    batches.insert(c.X.cols());
  }
  // These chains hold the activations whose finite differences need no special care; every
  // registered layer type meets random networks in the property suite, which draws from the registry
  // (properties/network_properties_test.cpp), and its own networks in checks/zoo_*_test.cpp.
  for (const auto& name : layers) CHECK_NOTHROW(bpcheck::layer_type(name));
  CHECK(layers.size() == 10);  // dense and the 9 activation types random_case draws from
  // Losses that need targets these chains do not make are verified in networks of their own.
  const std::set<std::string> own_loss_networks{"huber", "nll", "kl_div"};
  for (const auto& name : bpcheck::loss_names()) {
    INFO("loss " << name);
    CHECK(losses.count(name) + own_loss_networks.count(name) == 1);
  }
  CHECK(depths == std::set<std::size_t>{2, 3, 4, 5});
  CHECK(batches == std::set<Index>{1, 2, 3});
}

TEMPLATE_LIST_TEST_CASE("the theorem: ∇ℓᵀ·J_L⋯J_{k+1}·J_θ,k equals backprop on random networks",
                        "[network][random][theorem]", real_rungs) {
  using T = TestType;
  // Both routes sum the same products in different orders: a few hundred ε apart at most on these
  // sizes (mp100: ~1e−97, well inside the 90 digits asked). The floor keeps a layer whose gradient is
  // nearly zero next to the others from demanding relative accuracy of rounding noise.
  const T tol = eps_times<T>(256);
  for (auto seed : random_seeds()) {
    const auto c = random_case(seed);
    INFO(describe(c));
    const auto net = network_on<T>(c);
    const Matrix<T> X = bpcheck::matrix_cast<T>(c.X);
    const auto t = targets_on<T>(c);
    const auto g = net.gradient(X, t);
    const auto e = net.explicit_gradient(X, t);
    CHECK(g.loss == e.loss);
    REQUIRE(g.layers.size() == e.layers.size());
    const T floor = max_abs(concatenate(g.layers)) / T(1000);
    REQUIRE(floor > T(0));
    for (std::size_t k = 0; k < g.layers.size(); ++k) {
      INFO("layer " << k << " (" << net.layer(k).type_name() << ")");
      const T d = normwise_relative_difference(e.layers[k], g.layers[k], floor);
      INFO("relative difference " << bpcheck::to_string(d) << " = " << agreeing_digits(d) << " digits");
      CHECK(d <= tol);
    }
  }
}

TEMPLATE_LIST_TEST_CASE("network jacobian equals the product of layer J_x and the dual-number JVP columns",
                        "[network][random][jacobian]", real_rungs) {
  using T = TestType;
  using D = bpcheck::dual<T>;
  const T tol = eps_times<T>(256);
  for (auto seed : random_seeds()) {
    const auto c = random_case(seed);
    INFO(describe(c));
    const auto net = network_on<T>(c);
    const Matrix<T> X = bpcheck::matrix_cast<T>(c.X);
    const Matrix<T> J = net.jacobian(X);

    // J_L ⋯ J_1 accumulated from the left (the library accumulates from the right).
    const auto xs = net.activations(X);
    Matrix<T> P = net.layer(net.depth() - 1).jacobian_input(xs[net.depth() - 1]);
    for (std::size_t k = net.depth() - 1; k-- > 0;) P = (P * net.layer(k).jacobian_input(xs[k])).eval();
    REQUIRE(J.rows() == net.output_size() * X.cols());
    REQUIRE(J.cols() == X.size());
    CHECK(normwise_relative_difference(J, P) <= tol);

    // Forward mode on dual numbers: lane k seeded with e_j gives column j of J, never reading J_x.
    const auto dnet = net.template rebind<D>();
    Matrix<T> Jd(J.rows(), J.cols());
    for (Index start = 0; start < X.size(); start += bpcheck::dual_width) {
      Matrix<D> Xd = bpcheck::matrix_cast<D>(X);
      for (Index lane = 0; lane < bpcheck::dual_width && start + lane < X.size(); ++lane)
        Xd(start + lane).d[std::size_t(lane)] = T(1);
      const Matrix<D> Yd = dnet.forward(Xd);
      for (Index lane = 0; lane < bpcheck::dual_width && start + lane < X.size(); ++lane)
        for (Index r = 0; r < Yd.size(); ++r) Jd(r, start + lane) = Yd(r).d[std::size_t(lane)];
    }
    CHECK(normwise_relative_difference(J, Jd) <= tol);
  }
}

// ---- backprop against 100-digit finite differences ---------------------------------------------

namespace {

/// dℓ/dθ for every parameter by Richardson extrapolation of central differences in mp100:
/// D(h) = (ℓ(θ + h e_i) − ℓ(θ − h e_i))/2h = ℓ' + a₁h² + a₂h⁴ + …; with h_j = h₀/2^j the tableau
/// R_{j,k} = R_{j,k−1} + (R_{j,k−1} − R_{j−1,k−1})/(4^k − 1) removes one power of h² per column, so m
/// levels leave an error of order h₀^{2m}. Rounding contributes about ε·|ℓ|/h_{m−1} times a small
/// amplification; h₀ = ε^{1/(2m+1)}·2^{m/2} balances the two (see the measured digits in the test).
Vector<mp100> richardson_gradient(Network<mp100> net, const Matrix<mp100>& X, const Targets<mp100>& t) {
  using std::pow;
  constexpr int m = 8;
  const mp100 eps = bpcheck::scalar_traits<mp100>::epsilon();
  const mp100 h0 = pow(eps, mp100(1) / (2 * m + 1)) * pow(mp100(2), mp100(m) / 2);
  const Vector<mp100> theta = net.parameters();
  Vector<mp100> g(theta.size());
  for (Index i = 0; i < theta.size(); ++i) {
    std::vector<std::vector<mp100>> R(m, std::vector<mp100>(m));
    mp100 h = h0;
    for (int j = 0; j < m; ++j, h /= 2) {
      Vector<mp100> up = theta, down = theta;
      up(i) += h;
      down(i) -= h;
      net.set_parameters(up);
      const mp100 lu = net.loss_value(X, t);
      net.set_parameters(down);
      const mp100 ld = net.loss_value(X, t);
      R[j][0] = (lu - ld) / (2 * h);
      mp100 four_k(1);
      for (int k = 1; k <= j; ++k) {
        four_k *= 4;
        R[j][k] = R[j][k - 1] + (R[j][k - 1] - R[j - 1][k - 1]) / (four_k - 1);
      }
    }
    g(i) = R[m - 1][m - 1];
  }
  return g;
}

}  // namespace

TEST_CASE("backprop equals 100-digit finite differences of the loss: mp100 to 90 digits, double 13, float 5",
          "[network][random][fd]") {
  // One network per seed, drawn in float so that the same parameters live exactly on all three rungs
  // and one 100-digit finite-difference truth serves them all.
  double worst_mp100 = 1000, worst_double = 1000, worst_float = 1000;
  for (auto seed : random_seeds()) {
    const auto c = random_case(seed);
    INFO(describe(c));
    const auto net_m = network_on<mp100>(c);
    const Vector<mp100> truth =
        richardson_gradient(net_m, bpcheck::matrix_cast<mp100>(c.X), targets_on<mp100>(c));
    REQUIRE(max_abs(truth) > mp100(0));

    const auto digits = [&truth](const Vector<mp100>& g) {
      return agreeing_digits(normwise_relative_difference(g, truth));
    };
    const double dm = digits(concatenate(net_m.gradient(bpcheck::matrix_cast<mp100>(c.X), targets_on<mp100>(c)).layers));
    const auto net_d = network_on<double>(c);
    const double dd = digits(bpcheck::vector_cast<mp100>(
        concatenate(net_d.gradient(bpcheck::matrix_cast<double>(c.X), targets_on<double>(c)).layers)));
    const auto net_f = network_on<float>(c);
    const double df = digits(bpcheck::vector_cast<mp100>(concatenate(net_f.gradient(c.X, c.targets).layers)));
    INFO("agreeing digits: mp100 " << dm << ", double " << dd << ", float " << df);
    CHECK(dm >= 90);
    CHECK(dd >= 13);
    CHECK(df >= 5);
    worst_mp100 = std::min(worst_mp100, dm);
    worst_double = std::min(worst_double, dd);
    worst_float = std::min(worst_float, df);
  }
  WARN("fewest agreeing digits over the seeds: mp100 " << worst_mp100 << ", double " << worst_double << ", float "
                                                        << worst_float);
}

TEST_CASE("the finite-difference oracle sees a gradient that is wrong in the 60th digit", "[network][fd]") {
  // Must-fail companion: the 90-digit comparison above is only meaningful if a tiny error shows.
  const auto c = random_case(3);
  const auto net = network_on<mp100>(c);
  const Matrix<mp100> X = bpcheck::matrix_cast<mp100>(c.X);
  const auto t = targets_on<mp100>(c);
  const Vector<mp100> truth = richardson_gradient(net, X, t);
  Vector<mp100> g = concatenate(net.gradient(X, t).layers);
  g(0) += max_abs(truth) * bpcheck::from_string<mp100>("1e-60");
  const double d = agreeing_digits(normwise_relative_difference(g, truth));
  CHECK(d < 61);
  CHECK(d > 59);
}
