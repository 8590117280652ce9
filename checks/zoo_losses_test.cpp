// huber, nll and kl_div: PyTorch-reduced values on hand-computed cases, gradients against 100-digit
// central differences of value(), refused targets, and whole networks through verify_network.
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/losses.hpp"
#include "bpcheck/verify/verify.hpp"
#include "helpers.hpp"

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Targets;
using bpcheck::testing::eps_times;
using bpcheck::testing::normwise_relative_difference;
using bpcheck::testing::ln;
using bpcheck::testing::ratio;
using bpcheck::testing::real_rungs;

namespace {

template <class T>
bool near(const T& a, const T& b, int ulps = 8) {
  using std::abs;
  using std::max;
  return T(abs(T(a - b))) <= eps_times<T>(ulps) * max(T(1), T(abs(b)));
}

/// ∂ℓ/∂Y by central differences in mp100 with h = ε^(1/3): exact to ~65 digits for these O(1) losses.
Matrix<mp100> central_differences(const bpcheck::Loss<mp100>& loss, const Matrix<mp100>& Y, const Targets<mp100>& t) {
  using std::pow;
  const mp100 h = pow(bpcheck::scalar_traits<mp100>::epsilon(), mp100(1) / 3);
  Matrix<mp100> G(Y.rows(), Y.cols());
  for (Index i = 0; i < Y.size(); ++i) {
    Matrix<mp100> up = Y, down = Y;
    up(i) += h;
    down(i) -= h;
    G(i) = (loss.value(up, t) - loss.value(down, t)) / (2 * h);
  }
  return G;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("huber: mean over all entries, d²/2 inside δ and δ(|d| − δ/2) outside, gradient clamp(d, ±δ)/n",
                        "[losses][zoo]", real_rungs) {
  using T = TestType;
  Matrix<T> Y(2, 2);
  Y << ratio<T>(1, 2), T(3),  //
      T(-2), T(1);
  Targets<T> t;
  t.values = Matrix<T>::Zero(2, 2);
  t.values(1, 1) = ratio<T>(1, 4);  // d = 3/4
  const auto loss = bpcheck::make_loss<T>("huber");  // PyTorch's default δ = 1
  // d = 1/2 → 1/8;  d = −2 → 3/2;  d = 3 → 5/2;  d = 3/4 → 9/32;  mean of 4.
  const T expected = (ratio<T>(1, 8) + ratio<T>(3, 2) + ratio<T>(5, 2) + ratio<T>(9, 32)) / T(4);
  CHECK(near(loss->value(Y, t), expected));
  Matrix<T> g_expected(2, 2);
  g_expected << ratio<T>(1, 8), ratio<T>(1, 4),  //
      ratio<T>(-1, 4), ratio<T>(3, 16);
  CHECK(normwise_relative_difference(loss->gradient(Y, t), g_expected) <= eps_times<T>(4));

  // δ = 2: d = 3 → 2(3 − 1) = 4, d = −2 sits on the threshold (d²/2 = δ(|d| − δ/2) = 2 there).
  const bpcheck::HuberLoss<T> wide(T(2));
  const T expected2 = (ratio<T>(1, 8) + T(2) + T(4) + ratio<T>(9, 32)) / T(4);
  CHECK(near(wide.value(Y, t), expected2));
  Matrix<T> g2(2, 2);
  g2 << ratio<T>(1, 8), ratio<T>(1, 2),  //
      ratio<T>(-1, 2), ratio<T>(3, 16);
  CHECK(normwise_relative_difference(wide.gradient(Y, t), g2) <= eps_times<T>(4));
  CHECK_THROWS_AS(bpcheck::HuberLoss<T>(T(0)), bpcheck::input_error);
  CHECK_THROWS_AS(bpcheck::HuberLoss<T>(T(-1)), bpcheck::input_error);
}

TEMPLATE_LIST_TEST_CASE("nll: −mean over the batch of the target's log-probability, gradient −e_c/B", "[losses][zoo]",
                        real_rungs) {
  using T = TestType;
  Matrix<T> Y(3, 2);
  Y << ln<T>(1, 2), ln<T>(1, 4),  //
      ln<T>(1, 4), ln<T>(1, 4),   //
      ln<T>(1, 4), ln<T>(1, 2);
  Targets<T> t;
  t.classes = {0, 1};
  const auto loss = bpcheck::make_loss<T>("nll");
  CHECK(loss->target_kind() == bpcheck::TargetKind::classes);
  CHECK(near(loss->value(Y, t), T((ln<T>(2) + ln<T>(4)) / T(2))));  // (ln 2 + ln 4)/2, mean over B = 2
  Matrix<T> g = Matrix<T>::Zero(3, 2);
  g(0, 0) = ratio<T>(-1, 2);
  g(1, 1) = ratio<T>(-1, 2);
  CHECK(loss->gradient(Y, t) == g);
  // nll of log_softmax is cross_entropy: the same value on the same logits.
  Matrix<T> Z(3, 2);
  Z << T(1), T(-2), ratio<T>(1, 3), T(0), T(2), ratio<T>(5, 4);
  const Matrix<T> L = bpcheck::make_layer<T>({"log_softmax", {}}, 3).forward(Z);
  CHECK(near(loss->value(L, t), bpcheck::make_loss<T>("cross_entropy")->value(Z, t), 32));
}

TEMPLATE_LIST_TEST_CASE("kl_div: mean over all entries of t(log t − x), zero where t = 0, gradient −t/n",
                        "[losses][zoo]", real_rungs) {
  using T = TestType;
  Matrix<T> X(2, 2);
  X << ln<T>(1, 2), ln<T>(1, 3),  //
      ln<T>(1, 2), ln<T>(2, 3);
  Targets<T> t;
  t.values.resize(2, 2);
  t.values << ratio<T>(1, 4), T(0),  //
      ratio<T>(3, 4), T(1);
  const auto loss = bpcheck::make_loss<T>("kl_div");
  // PyTorch's default reduction "mean" divides by all 4 entries (not by the batch of 2, "batchmean"):
  // [1/4 ln(1/2) + 3/4 ln(3/2) + 0 + ln(3/2)] / 4.
  const T expected = (ratio<T>(1, 4) * ln<T>(1, 2) + ratio<T>(3, 4) * ln<T>(3, 2) + ln<T>(3, 2)) / T(4);
  CHECK(near(loss->value(X, t), expected, 32));
  Matrix<T> g(2, 2);
  g << ratio<T>(-1, 16), T(0),  //
      ratio<T>(-3, 16), ratio<T>(-1, 4);
  CHECK(normwise_relative_difference(loss->gradient(X, t), g) <= eps_times<T>(4));
  // Equal distributions: no divergence.
  Targets<T> same;
  same.values.resize(2, 2);
  same.values << ratio<T>(1, 2), ratio<T>(1, 3), ratio<T>(1, 2), ratio<T>(2, 3);
  CHECK(near(loss->value(X, same), T(0)));
}

TEMPLATE_LIST_TEST_CASE("huber, nll, kl_div: gradient equals 100-digit central differences of value()",
                        "[losses][zoo][fd]", real_rungs) {
  using T = TestType;
  Matrix<T> Y(3, 2);
  for (Index i = 0; i < Y.size(); ++i) Y(i) = ratio<T>(long(i * 5 % 13) - 6, 4) + ratio<T>(1, 7);
  Targets<T> values, classes;
  values.values.resize(3, 2);
  for (Index i = 0; i < Y.size(); ++i) values.values(i) = ratio<T>(long(i * 3 % 7), 6);
  classes.classes = {2, 0};
  for (const std::string name : {"huber", "nll", "kl_div"}) {
    INFO(name << " on " << bpcheck::scalar_name<T>());
    const Targets<T>& t = name == "nll" ? classes : values;
    Targets<mp100> tm;
    tm.values = bpcheck::matrix_cast<mp100>(t.values);
    tm.classes = t.classes;
    const Matrix<mp100> truth = central_differences(*bpcheck::make_loss<mp100>(name), bpcheck::matrix_cast<mp100>(Y), tm);
    const Matrix<mp100> g = bpcheck::matrix_cast<mp100>(bpcheck::make_loss<T>(name)->gradient(Y, t));
    using std::pow;
    const mp100 tol = bpcheck::scalar_cast<mp100>(eps_times<T>(16)) +
                      mp100(1000) * pow(bpcheck::scalar_traits<mp100>::epsilon(), mp100(2) / 3);
    CHECK(normwise_relative_difference(g, truth) <= tol);
  }
}

TEMPLATE_LIST_TEST_CASE("huber, nll, kl_div refuse targets that do not fit", "[losses][zoo][errors]", real_rungs) {
  using T = TestType;
  Targets<T> wrong_shape;
  wrong_shape.values = Matrix<T>::Zero(2, 3);
  CHECK_THROWS_AS(bpcheck::make_loss<T>("huber")->check_targets(wrong_shape, 3, 2), bpcheck::input_error);
  CHECK_THROWS_AS(bpcheck::make_loss<T>("kl_div")->check_targets(wrong_shape, 3, 2), bpcheck::input_error);
  Targets<T> probabilities;
  probabilities.values = Matrix<T>::Constant(3, 2, ratio<T>(1, 3));
  CHECK_NOTHROW(bpcheck::make_loss<T>("kl_div")->check_targets(probabilities, 3, 2));
  probabilities.values(1, 1) = ratio<T>(-1, 3);
  CHECK_THROWS_WITH(bpcheck::make_loss<T>("kl_div")->check_targets(probabilities, 3, 2),
                    Catch::Contains("must not be negative"));
  Targets<T> classes;
  classes.classes = {0, 3};
  CHECK_THROWS_AS(bpcheck::make_loss<T>("nll")->check_targets(classes, 3, 2), bpcheck::input_error);
  classes.classes = {-1, 0};
  CHECK_THROWS_AS(bpcheck::make_loss<T>("nll")->check_targets(classes, 3, 2), bpcheck::input_error);
  classes.classes = {2, 0};
  CHECK_NOTHROW(bpcheck::make_loss<T>("nll")->check_targets(classes, 3, 2));
}

TEST_CASE("verify_network: models ending in huber, nll and kl_div pass every check on every rung",
          "[losses][zoo][verify]") {
  const std::vector<bpcheck::ModelSpec> models{
      {3, {{"dense", {{"units", 3}}}, {"tanh", {}}, {"dense", {{"units", 2}}}}, "huber"},
      {3, {{"dense", {{"units", 3}}}, {"log_softmax", {}}}, "nll"},
      {3, {{"dense", {{"units", 3}}}, {"log_softmax", {}}}, "kl_div"}};
  for (const auto& m : models)
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      bpcheck::VerifyOptions o;
      o.seed = seed;
      const bpcheck::VerificationReport r = bpcheck::verify_network({m, std::nullopt, std::nullopt}, o);
      INFO(m.loss << " seed " << seed << "\n" << bpcheck::format_table(r));
      bool oracle = false;
      for (const auto& c : r.checks) {
        INFO(c.check << " [" << c.precision << "]: " << c.message);
        CHECK((c.verdict == bpcheck::Verdict::pass || c.verdict == bpcheck::Verdict::skipped));
        oracle = oracle || (c.check == "backward vs oracle" && c.subject.rfind("network", 0) == 0);
      }
      CHECK(oracle);
      CHECK(r.passed());
    }
}

TEST_CASE("verify_network: a huber model's targets far from the output use the linear branch and still pass",
          "[losses][zoo][verify]") {
  // Outputs near 0 and targets given as 5: every |d| > δ = 1, so the gradient is the clamped ±δ/n.
  const bpcheck::ModelSpec m{2, {{"dense", {{"units", 2}}}}, "huber"};
  nlohmann::json data = {{"inputs", {{0.5, -0.25}, {0.125, 1}}}, {"targets", {{5, -5}, {5, 5}}}};
  const bpcheck::VerificationReport r = bpcheck::verify_network({m, std::nullopt, data});
  INFO(bpcheck::format_table(r));
  CHECK(r.passed());
}

TEMPLATE_LIST_TEST_CASE("huber with delta 1/2: d²/2 inside δ, δ(|d| − δ/2) outside, gradient clamp(d, ±δ)/n",
                        "[losses][zoo]", real_rungs) {
  using T = TestType;
  const auto loss = bpcheck::make_loss<T>("huber", {{"delta", 0.5}});
  Matrix<T> Y(2, 1);
  Y << T(1), T(0.25);  // d = 1 (outside δ = 1/2) and 1/4 (inside)
  Targets<T> t;
  t.values = Matrix<T>::Zero(2, 1);
  // (1/2 (1 − 1/4) + (1/4)²/2) / 2 = (3/8 + 1/32) / 2 = 13/64
  CHECK(loss->value(Y, t) == T(13) / T(64));
  const Matrix<T> g = loss->gradient(Y, t);
  CHECK(g(0) == T(0.25));   // clamp(1, ±1/2)/2
  CHECK(g(1) == T(0.125));  // (1/4)/2
}

TEST_CASE("huber's delta in the model spec: read, written back, verified, and bad values refused",
          "[losses][zoo][io]") {
  const nlohmann::json j = nlohmann::json::parse(
      R"({"input_size": 2, "layers": [{"type": "dense", "units": 2}], "loss": {"type": "huber", "delta": "0.25"}})");
  const bpcheck::ModelSpec m = bpcheck::model_spec_from_json(j, "model.json");
  CHECK(m.loss == "huber");
  CHECK(m.loss_options == nlohmann::json{{"delta", "0.25"}});
  const auto written = bpcheck::model_spec_to_json(m);
  CHECK(written.at("loss") == nlohmann::ordered_json{{"type", "huber"}, {"delta", "0.25"}});
  CHECK(bpcheck::model_spec_from_json(nlohmann::json::parse(written.dump()), "again").loss_options == m.loss_options);
  // a loss without options keeps the plain string form
  const bpcheck::ModelSpec plain{2, {{"dense", {{"units", 2}}}}, "mse"};
  CHECK(bpcheck::model_spec_to_json(plain).at("loss") == "mse");

  // targets beyond δ = 1/4 from the output: the clamped branch, verified on every rung
  nlohmann::json data = {{"inputs", {{0.5, -0.25}, {0.125, 1}}}, {"targets", {{2, -2}, {0.125, 0.0625}}}};
  const bpcheck::VerificationReport r = bpcheck::verify_network({m, std::nullopt, data});
  INFO(bpcheck::format_table(r));
  CHECK(r.passed());
  bpcheck::Network<double> net(m);
  CHECK(dynamic_cast<const bpcheck::HuberLoss<double>&>(net.loss()).delta() == 0.25);

  using Catch::Contains;
  const auto refused = [](const std::string& loss) {
    return bpcheck::model_spec_from_json(
        nlohmann::json::parse(R"({"input_size": 2, "layers": [{"type": "tanh"}], "loss": )" + loss + "}"), "m.json");
  };
  CHECK_THROWS_WITH(refused(R"({"type": "huber", "delta": 0})"), Contains("delta must be positive"));
  CHECK_THROWS_WITH(refused(R"({"type": "huber", "delta": -1})"), Contains("delta must be positive"));
  CHECK_THROWS_WITH(refused(R"({"type": "huber", "delta": "x"})"), Contains("'x' is not a number"));
  CHECK_THROWS_WITH(refused(R"({"type": "huber", "alpha": 1})"), Contains("unknown option 'alpha'"));
  CHECK_THROWS_WITH(refused(R"({"type": "mse", "delta": 1})"), Contains("takes no options"));
  CHECK_THROWS_WITH(refused(R"({"delta": 1})"), Contains("'loss' must be a name"));
  CHECK_THROWS_WITH(refused("3"), Contains("'loss' must be a name"));
  CHECK_THROWS_WITH(refused(R"({"type": "nope"})"), Contains("unknown loss 'nope'"));
}
