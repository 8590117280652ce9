// Losses: PyTorch-reduced values on hand-computed cases, gradients against 100-digit central
// differences of value(), and logits of size 1e4.
#include <cmath>
#include <limits>
#include <string>

#include "bpcheck/losses.hpp"
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

/// A loss at saturated logits: value and gradient finite and equal to the hand values to a few ε.
template <class T>
void check_saturated_loss(const bpcheck::Loss<T>& loss, const Matrix<T>& Y, const Targets<T>& t, const T& value,
                          const Matrix<T>& gradient) {
  using std::abs;
  using std::isfinite;
  const T v = loss.value(Y, t);
  REQUIRE(isfinite(v));
  CHECK(abs(T(v - value)) <= eps_times<T>(4) * abs(value));
  const Matrix<T> g = loss.gradient(Y, t);
  for (Index i = 0; i < g.size(); ++i) REQUIRE(isfinite(T(g(i))));
  CHECK(normwise_relative_difference(g, gradient) <= eps_times<T>(4));
}


template <class To, class From>
Targets<To> targets_cast(const Targets<From>& t) {
  Targets<To> r;
  r.values = bpcheck::matrix_cast<To>(t.values);
  r.classes = t.classes;
  return r;
}

/// ∂ℓ/∂Y by central differences in mp100: (ℓ(Y + h e_i) − ℓ(Y − h e_i)) / 2h with h = ε^(1/3)
/// (≈ 2e−34), which balances the truncation error h²ℓ'''/6 against the rounding error ε ℓ/h; both
/// are near ε^(2/3) ≈ 1e−67, so the result is exact to ~65 digits for the O(1) losses used here.
Matrix<mp100> central_differences(const bpcheck::Loss<mp100>& loss, const Matrix<mp100>& Y,
                                  const Targets<mp100>& t) {
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

/// The error bound of central_differences: a generous multiple of ε^(2/3).
mp100 central_difference_tolerance() {
  using std::pow;
  return mp100(1000) * pow(bpcheck::scalar_traits<mp100>::epsilon(), mp100(2) / 3);
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("mse: mean over all entries of (ŷ − t)², gradient 2(ŷ − t)/n", "[losses]", real_rungs) {
  using T = TestType;
  const auto loss = bpcheck::make_loss<T>("mse");
  Matrix<T> Y(2, 2);
  Y << T(1), T(2),  //
      T(3), T(4);
  Targets<T> t;
  t.values.resize(2, 2);
  t.values << T(0), T(2),  //
      T(1), T(1);
  // Differences 1, 0, 2, 3: (1 + 0 + 4 + 9)/4 = 7/2 (a mean over the batch alone would give 7).
  CHECK(loss->value(Y, t) == ratio<T>(7, 2));
  Matrix<T> g(2, 2);
  g << ratio<T>(1, 2), T(0),  //
      T(1), ratio<T>(3, 2);
  CHECK(loss->gradient(Y, t) == g);
}

TEMPLATE_LIST_TEST_CASE("cross_entropy: mean over the batch of logsumexp(z) − z_c, gradient (s − e_c)/B",
                        "[losses]", real_rungs) {
  using T = TestType;
  const auto loss = bpcheck::make_loss<T>("cross_entropy");
  Matrix<T> Y(3, 2);
  Y << T(0), T(0),     //
      ln<T>(2), T(0),  //
      ln<T>(3), T(0);
  Targets<T> t;
  t.classes = {2, 0};
  // Sample 0: eˣ = (1, 2, 3), class 2: −ln(3/6) = ln 2. Sample 1: uniform, class 0: ln 3. Mean: ln(6)/2.
  using std::abs;
  CHECK(abs(T(loss->value(Y, t) - ln<T>(6) / 2)) <= eps_times<T>(8));
  // (s − e_c)/2: ((1/6, 1/3, 1/2 − 1)/2, (1/3 − 1, 1/3, 1/3)/2).
  Matrix<T> g(3, 2);
  g << ratio<T>(1, 12), ratio<T>(-1, 3),  //
      ratio<T>(1, 6), ratio<T>(1, 6),     //
      ratio<T>(-1, 4), ratio<T>(1, 6);
  CHECK(normwise_relative_difference(loss->gradient(Y, t), g) <= eps_times<T>(8));
}

TEMPLATE_LIST_TEST_CASE("bce_with_logits: mean over all entries of softplus(z) − z t, gradient (σ(z) − t)/n",
                        "[losses]", real_rungs) {
  using T = TestType;
  const auto loss = bpcheck::make_loss<T>("bce_with_logits");
  Matrix<T> Y(2, 2);
  Y << T(0), ln<T>(3),  //
      -ln<T>(3), ln<T>(3);
  Targets<T> t;
  t.values.resize(2, 2);
  t.values << T(1), T(0),  //
      ratio<T>(1, 2), T(1);
  // Terms: z = 0, t = 1: ln 2.   z = −ln 3, t = 1/2: ln(4/3) + ln(3)/2.
  //        z = ln 3, t = 0: ln 4.   z = ln 3, t = 1: ln 4 − ln 3 = ln(4/3).   Mean of the four.
  const T expected = (ln<T>(2) + ln<T>(4, 3) + ln<T>(3) / 2 + ln<T>(4) + ln<T>(4, 3)) / 4;
  using std::abs;
  CHECK(abs(T(loss->value(Y, t) - expected)) <= eps_times<T>(8));
  // σ = 1/2, 1/4, 3/4, 3/4 against t = 1, 1/2, 0, 1, each over n = 4.
  Matrix<T> g(2, 2);
  g << ratio<T>(-1, 8), ratio<T>(3, 16),  //
      ratio<T>(-1, 16), ratio<T>(-1, 16);
  CHECK(normwise_relative_difference(loss->gradient(Y, t), g) <= eps_times<T>(8));
}

TEMPLATE_LIST_TEST_CASE("every loss: gradient equals 100-digit central differences of value()", "[losses][fd]",
                        real_rungs) {
  using T = TestType;
  // Logits with no special structure: (k·5 mod 13 − 6)/4.
  Matrix<T> Y(3, 2);
  for (Index i = 0; i < Y.size(); ++i) Y(i) = ratio<T>(long(i * 5 % 13) - 6, 4) + ratio<T>(1, 7);
  Targets<T> values, classes;
  values.values.resize(3, 2);
  for (Index i = 0; i < Y.size(); ++i) values.values(i) = ratio<T>(long(i * 3 % 7), 6);  // in [0, 1]
  classes.classes = {1, 2};

  for (const std::string name : {"mse", "cross_entropy", "bce_with_logits"}) {
    INFO(name << " on " << bpcheck::scalar_name<T>());
    const auto loss = bpcheck::make_loss<T>(name);
    const Targets<T>& t = name == "cross_entropy" ? classes : values;
    const Matrix<mp100> truth = central_differences(*bpcheck::make_loss<mp100>(name), bpcheck::matrix_cast<mp100>(Y),
                                                    targets_cast<mp100>(t));
    const Matrix<mp100> g = bpcheck::matrix_cast<mp100>(loss->gradient(Y, t));
    const mp100 d = normwise_relative_difference(g, truth);
    INFO("relative difference " << bpcheck::to_string(d));
    CHECK(d <= bpcheck::scalar_cast<mp100>(eps_times<T>(16)) + central_difference_tolerance());
  }
}

TEMPLATE_LIST_TEST_CASE("cross_entropy with logits ±1e4 is finite and right", "[losses][stability]", real_rungs) {
  using T = TestType;
  using std::abs;
  using std::isfinite;
  const auto loss = bpcheck::make_loss<T>("cross_entropy");
  Matrix<T> Y(3, 2);
  Y << T(10000), T(10000),  //
      T(0), T(0),           //
      T(-10000), T(-10000);
  Targets<T> t;
  t.classes = {0, 1};
  // Sample 0 picks the dominant logit: ln(1 + e^−1e4 + e^−2e4) ≈ 0. Sample 1: 1e4 + that. Mean 5000.
  // Gradient (s − e_c)/2 with s = (1, e^−1e4, e^−2e4): (0, 0, 0) and (1/2, −1/2, 0).
  Matrix<T> expected(3, 2);
  expected << T(0), ratio<T>(1, 2),  //
      T(0), ratio<T>(-1, 2),         //
      T(0), T(0);
  check_saturated_loss(*loss, Y, t, T(5000), expected);
}

TEMPLATE_LIST_TEST_CASE("bce_with_logits with |z| = 1e4 is finite and right", "[losses][stability]", real_rungs) {
  using T = TestType;
  using std::abs;
  using std::isfinite;
  const auto loss = bpcheck::make_loss<T>("bce_with_logits");
  Matrix<T> Y(2, 2);
  Y << T(10000), T(-10000),  //
      T(10000), T(-10000);
  Targets<T> t;
  t.values.resize(2, 2);
  t.values << T(0), T(1),  //
      T(1), T(0);
  // Two confidently wrong entries cost 1e4 each, two confidently right ones ≈ e^−1e4: mean 5000.
  Matrix<T> expected(2, 2);
  expected << ratio<T>(1, 4), ratio<T>(-1, 4),  //
      T(0), T(0);
  check_saturated_loss(*loss, Y, t, T(5000), expected);
}

TEMPLATE_LIST_TEST_CASE("bce_with_logits by forward mode at z = 0 has the slope σ(0) − t, the same as its gradient",
                        "[losses][regression]", real_rungs) {
  // Found by the nightly property run: max(z, 0) + log1p(e^{−|z|}) gave dual numbers −1/2 at z = 0.
  using T = TestType;
  using D = bpcheck::dual<T>;
  const auto loss = bpcheck::make_loss<D>("bce_with_logits");
  const auto plain = bpcheck::make_loss<T>("bce_with_logits");
  for (const int target : {0, 1}) {
    Matrix<D> Y(1, 1);
    Y(0) = D(T(0));
    Y(0).d[0] = T(1);
    Targets<D> t;
    t.values = Matrix<D>::Constant(1, 1, D(T(target)));
    Targets<T> tt;
    tt.values = Matrix<T>::Constant(1, 1, T(target));
    const D value = loss->value(Y, t);
    CHECK(value.d[0] == ratio<T>(1, 2) - T(target));
    CHECK(plain->gradient(Matrix<T>::Zero(1, 1), tt)(0) == ratio<T>(1, 2) - T(target));
  }
}

TEST_CASE("mse in float is finite where the mean square is below float's largest number", "[losses][stability]") {
  // (2e19)² = 4e38 passes float's 3.4e38; the mean over four entries, 1e38, does not.
  const auto loss = bpcheck::make_loss<float>("mse");
  Matrix<float> Y = Matrix<float>::Zero(2, 2);
  Y(0) = 2e19f;
  Targets<float> t;
  t.values = Matrix<float>::Zero(2, 2);
  const float value = loss->value(Y, t);
  REQUIRE(std::isfinite(value));
  CHECK(std::abs(value - 1e38f) <= 4 * std::numeric_limits<float>::epsilon() * 1e38f);
}

TEMPLATE_LIST_TEST_CASE("losses refuse targets that do not fit the output", "[losses][errors]", real_rungs) {
  using T = TestType;
  Targets<T> wrong_shape;
  wrong_shape.values = Matrix<T>::Zero(2, 3);
  CHECK_THROWS_AS(bpcheck::make_loss<T>("mse")->check_targets(wrong_shape, 3, 2), bpcheck::input_error);
  CHECK_THROWS_AS(bpcheck::make_loss<T>("bce_with_logits")->check_targets(wrong_shape, 3, 2), bpcheck::input_error);
  Targets<T> right_shape;
  right_shape.values = Matrix<T>::Zero(3, 2);
  CHECK_NOTHROW(bpcheck::make_loss<T>("mse")->check_targets(right_shape, 3, 2));
  Targets<T> classes;
  classes.classes = {0, 3};  // class 3 of 3 outputs
  CHECK_THROWS_AS(bpcheck::make_loss<T>("cross_entropy")->check_targets(classes, 3, 2), bpcheck::input_error);
  classes.classes = {0};  // one class for two samples
  CHECK_THROWS_AS(bpcheck::make_loss<T>("cross_entropy")->check_targets(classes, 3, 2), bpcheck::input_error);
  classes.classes = {0, 2};
  CHECK_NOTHROW(bpcheck::make_loss<T>("cross_entropy")->check_targets(classes, 3, 2));
  CHECK_THROWS_AS(bpcheck::make_loss<T>("hinge"), bpcheck::input_error);
}
