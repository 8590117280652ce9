// Accuracy of the whole-matrix tanh of float and double (Tanh::value_block: SLEEF's vectorised tanh;
// derivative_block from Eigen's vectorised exp) over a sweep,
// against tanh and sech² in mp100 rounded to the rung: the error in units of the rung's ε·|exact|
// stays within a few units. The measure itself is checked on a formula known to lose accuracy,
// (1 − e)/(1 + e), which cancels near 0. Last, mp100's own tanh' on both sides of its switch of form.
#include <cmath>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "bpcheck/layers/activations.hpp"

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;

namespace {

/// 0, ±tiny, ±10^k for k = −12 … 36 in steps of 1/8 (sech² underflows past 44 in float and 355 in
/// double, where it must come out 0 or subnormal, not the smallest normal number), and 40 001 evenly
/// spaced points in [−20, 20].
template <class T>
std::vector<T> sweep() {
  std::vector<T> xs{T(0), std::numeric_limits<T>::denorm_min(), std::numeric_limits<T>::min(), T(1e-30)};
  for (int i = -96; i <= 288; ++i) xs.push_back(T(std::pow(10.0, i / 8.0)));
  for (double x : {44.0, 44.5, 50.0, 102.0, 354.0, 355.0, 357.0, 1002.0}) xs.push_back(T(x));
  for (int i = -20000; i <= 20000; ++i) xs.push_back(T(i / 1000.0));
  const std::size_t n = xs.size();
  for (std::size_t i = 0; i < n; ++i) xs.push_back(-xs[i]);
  return xs;
}

/// max over the sweep of |got − exact| / (ε_T · max(|exact|, smallest normal)), exact from mp100.
template <class T, class Exact>
double max_error_in_eps(const std::vector<T>& xs, const Matrix<T>& got, Exact exact) {
  double worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const mp100 e = exact(mp100(xs[i]));
    const mp100 scale = std::max(mp100(abs(e)), mp100(std::numeric_limits<T>::min()));
    const mp100 err = abs(mp100(got(Index(i))) - e) / (scale * mp100(std::numeric_limits<T>::epsilon()));
    worst = std::max(worst, err.convert_to<double>());
  }
  return worst;
}

mp100 exact_tanh(const mp100& x) { return tanh(x); }
mp100 exact_sech2(const mp100& x) {
  const mp100 c = cosh(x);
  return 1 / (c * c);
}

template <class T>
Matrix<T> column(const std::vector<T>& xs) {
  Matrix<T> X(Index(xs.size()), 1);
  for (std::size_t i = 0; i < xs.size(); ++i) X(Index(i)) = xs[i];
  return X;
}

}  // namespace

TEMPLATE_TEST_CASE("tanh and its derivative on float and double are within 4 ε of mp100 over a sweep", "[tanh]",
                   float, double) {
  using T = TestType;
  const std::vector<T> xs = sweep<T>();
  const Matrix<T> X = column(xs);
  const bpcheck::Tanh<T> layer(X.rows());
  const Matrix<T> Y = layer.forward(X);
  Eigen::Matrix<T, Eigen::Dynamic, 1> unused(0);
  const Matrix<T> D = layer.backward(X, Y, Matrix<T>::Ones(X.rows(), 1), unused);  // sech²(x) · 1

  const double value_error = max_error_in_eps(xs, Y, exact_tanh);
  const double derivative_error = max_error_in_eps(xs, D, exact_sech2);
  INFO("tanh: " << value_error << " ε, sech²: " << derivative_error << " ε");
  CHECK(value_error <= 4);
  CHECK(derivative_error <= 4);
  // The stated Jacobian goes through derivative_block: the same sech², underflowing to 0 far out.
  const std::vector<T> far{T(1), T(40), T(50), T(102), T(357), T(1002), T(1e30)};
  const Matrix<T> J = bpcheck::Tanh<T>(Index(far.size())).jacobian_input(column(far));
  CHECK(max_error_in_eps(far, Matrix<T>(J.diagonal()), exact_sech2) <= 4);
  // The special values.
  const bpcheck::Tanh<T> one(1);
  CHECK(one.forward(Matrix<T>::Constant(1, 1, std::numeric_limits<T>::infinity()))(0) == T(1));
  CHECK(one.forward(Matrix<T>::Constant(1, 1, -std::numeric_limits<T>::infinity()))(0) == T(-1));
  CHECK(std::isnan(one.forward(Matrix<T>::Constant(1, 1, std::numeric_limits<T>::quiet_NaN()))(0)));
}

TEMPLATE_TEST_CASE("the error measure flags (1 − e)/(1 + e), which cancels near 0", "[tanh]", float, double) {
  using T = TestType;
  const std::vector<T> xs = sweep<T>();
  Matrix<T> Y(Index(xs.size()), 1);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const T e = std::exp(T(-2) * std::abs(xs[i]));
    Y(Index(i)) = std::copysign((T(1) - e) / (T(1) + e), xs[i]);
  }
  CHECK(max_error_in_eps(xs, Y, exact_tanh) > 1000);
}

// mp100's tanh' takes (1 − y)(1 + y) from the forward's y for |x| ≤ 20 and sech² = 4e/(1 + e)² beyond:
// both sides of the switch agree with sech² formed at 300 digits to 1e-80, and the product form is
// seen to fail where it is not used (|x| = 60: ε·e^{120} is far above 1e-80).
TEST_CASE("tanh' in mp100 keeps 80 digits on both sides of its switch to the exp form", "[tanh]") {
  using mp300 = boost::multiprecision::number<boost::multiprecision::mpfr_float_backend<300>,
                                              boost::multiprecision::et_off>;
  const bpcheck::Tanh<mp100> layer(1);
  const auto relative_error = [](const mp100& got, double x) {
    const mp300 e = exp(mp300(-2) * abs(mp300(x)));
    const mp300 exact = mp300(4) * e / ((1 + e) * (1 + e));
    return mp300(abs(mp300(got) - exact) / exact);
  };
  for (double x : {0.0, 1e-30, 0.5, -3.0, 12.0, 19.999, 20.0, -20.0, 20.001, 35.0, -60.0, 120.0}) {
    INFO("x = " << x);
    const mp100 y = tanh(mp100(x));
    CHECK(relative_error(layer.derivative(mp100(x), y), x) < mp300(1e-80));
  }
  const mp100 y60 = tanh(mp100(60));
  CHECK(relative_error((mp100(1) - y60) * (mp100(1) + y60), 60.0) > mp300(1e-60));
}

// Forward mode on float/double must compute the rung's own function: tanh on dual<T> carries the very
// values of T's whole-matrix tanh, and a value's tanh does not depend on where it stands in the matrix
// (the vector code's last, partial group of entries included), so a tie in the rung is a tie on its duals.
TEMPLATE_TEST_CASE("tanh on dual<T> carries float's and double's own values bit for bit, wherever they stand",
                   "[tanh]", float, double) {
  using T = TestType;
  Matrix<T> X(7, 3);  // 21 entries: not a whole number of vector groups
  for (Index i = 0; i < X.size(); ++i) X(i) = T(0.37) * T(i - 10) + T(1e-3) * T(i % 3);
  const Matrix<T> Y = bpcheck::Tanh<T>(7).forward(X);
  const Matrix<bpcheck::dual<T>> Xd = X.unaryExpr([](const T& x) { return bpcheck::dual<T>(x); });
  const Matrix<bpcheck::dual<T>> Yd = bpcheck::Tanh<bpcheck::dual<T>>(7).forward(Xd);
  for (Index i = 0; i < X.size(); ++i) {
    INFO("entry " << i << ", x = " << X(i));
    CHECK(Yd(i).v == Y(i));
  }
  for (Index s = 0; s < X.cols(); ++s) {
    const Matrix<T> alone = bpcheck::Tanh<T>(7).forward(Matrix<T>(X.col(s)));
    CHECK((alone.array() == Y.col(s).array()).all());
  }
}
