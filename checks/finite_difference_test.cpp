// The finite-difference oracle: accuracy against closed forms, honest error estimates, steps in T,
// layer Jacobians in the layers' own layout, and one-sided differences at kinks.
#include <array>

#include "bpcheck/layers/dense.hpp"
#include "bpcheck/verify/finite_difference.hpp"
#include "helpers.hpp"

namespace {

using bpcheck::FdScheme;
using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Vector;

/// f(x) = (exp(x₀), tanh(x₁)): its Jacobian is diag(exp(x₀), 1 − tanh²(x₁)).
template <class T>
Vector<T> exp_tanh(const Vector<T>& x) {
  using std::exp;
  using std::tanh;
  Vector<T> y(2);
  y << exp(x(0)), tanh(x(1));
  return y;
}

/// The exact Jacobian of exp_tanh at x (x converted exactly to mp100).
template <class T>
Matrix<mp100> exp_tanh_jacobian(const Vector<T>& x) {
  const Vector<mp100> m = bpcheck::vector_cast<mp100>(x);
  Matrix<mp100> J = Matrix<mp100>::Zero(2, 2);
  J(0, 0) = exp(m(0));
  const mp100 t = tanh(m(1));
  J(1, 1) = 1 - t * t;
  return J;
}

template <class T>
Vector<T> test_point() {
  Vector<T> x(2);
  x << T(1) / 2, T(-3) / 4;
  return x;
}

constexpr std::array all_schemes{FdScheme::forward,  FdScheme::backward, FdScheme::central,
                                 FdScheme::central4, FdScheme::central6, FdScheme::richardson};

}  // namespace

TEMPLATE_LIST_TEST_CASE("every scheme's error estimate bounds its true error", "[fd]",
                        bpcheck::testing::real_rungs) {
  using T = TestType;
  const Vector<T> x = test_point<T>();
  const Matrix<mp100> truth = exp_tanh_jacobian(x);
  for (const FdScheme s : all_schemes) {
    CAPTURE(bpcheck::fd_scheme_name(s));
    const auto J = bpcheck::jacobian_fd(exp_tanh<T>, x, s);
    REQUIRE(J.value.rows() == 2);
    REQUIRE(J.value.cols() == 2);
    for (Index i = 0; i < 4; ++i) {
      const mp100 err = abs(mp100(bpcheck::scalar_cast<mp100>(J.value(i)) - truth(i)));
      CAPTURE(i, bpcheck::to_string(err), bpcheck::to_string(J.error_estimate(i)));
      CHECK(err <= bpcheck::scalar_cast<mp100>(J.error_estimate(i)));
    }
    // The estimate is not vacuous: it stays within a small multiple of ε^(p/(p+1)) (Richardson:
    // at least as good as central6).
    const int p = s == FdScheme::richardson ? 6 : bpcheck::fd_order(s);
    using std::pow;
    const T ceiling = T(16) * T(pow(bpcheck::scalar_traits<T>::epsilon(), T(p) / T(p + 1)));
    CHECK(J.error_estimate.maxCoeff() <= ceiling);
  }
}

TEST_CASE("in double, central differences stay within the error bound h²/6·|f'''| + ε(|f₊| + |f₋|)/2h",
          "[fd]") {
  const Vector<double> x = test_point<double>();
  const Matrix<mp100> truth = exp_tanh_jacobian(x);
  const double eps = std::numeric_limits<double>::epsilon();
  const auto J = bpcheck::jacobian_fd(exp_tanh<double>, x, FdScheme::central);
  for (Index j = 0; j < 2; ++j) {
    const double h = J.step(j);
    CHECK(x(j) + h - x(j) == h);  // the step is exactly representable against x
    // max |f'''| on [x − h, x + h]: exp''' = exp ≤ exp(x + h); |tanh'''| ≤ 2 everywhere.
    const double m3 = j == 0 ? std::exp(x(0) + h) : 2.0;
    Vector<double> xp = x, xm = x;
    xp(j) += h;
    xm(j) -= h;
    const double fp = exp_tanh<double>(xp)(j), fm = exp_tanh<double>(xm)(j);
    const double bound = h * h / 6 * m3 + eps * (std::abs(fp) + std::abs(fm)) / (2 * h) +
                         2 * eps * std::abs(J.value(j, j));
    const double err = std::abs(bpcheck::scalar_cast<double>(mp100(J.value(j, j) - truth(j, j))));
    CAPTURE(j, h, err, bound);
    CHECK(err <= bound);
    CHECK(err <= J.error_estimate(j, j));
    CHECK(err < 1e-10);
  }
}

TEST_CASE("in mp100, central differences agree with the closed form to better than 1e-40", "[fd][mp100]") {
  const Vector<mp100> x = test_point<mp100>();
  const Matrix<mp100> truth = exp_tanh_jacobian(x);
  SECTION("with the default step ε^(1/3) ≈ 5e-34 the error is near 1e-66") {
    const auto J = bpcheck::jacobian_fd(exp_tanh<mp100>, x, FdScheme::central);
    CHECK(J.step(0) < bpcheck::from_string<mp100>("1e-33"));
    CHECK(J.step(0) > bpcheck::from_string<mp100>("1e-34"));
    const mp100 d = bpcheck::testing::max_relative_difference<mp100>(J.value, truth);
    CAPTURE(bpcheck::to_string(d));
    CHECK(d < bpcheck::from_string<mp100>("1e-60"));
  }
  SECTION("a step of 1e-25 leaves truncation error h²/6·|f'''| ≈ 1e-51, far below 1e-40") {
    const mp100 h = bpcheck::from_string<mp100>("1e-25");
    const auto J = bpcheck::jacobian_fd(exp_tanh<mp100>, x, {FdScheme::central, h});
    for (Index j = 0; j < 2; ++j) {
      const mp100 err = abs(mp100(J.value(j, j) - truth(j, j)));
      CAPTURE(j, bpcheck::to_string(err));
      CHECK(err < bpcheck::from_string<mp100>("1e-40"));
      // The error is the predicted truncation term, not luck: within a factor 2 of h²/6·|f'''(x)|.
      const mp100 t = tanh(x(1));
      const mp100 f3 = j == 0 ? mp100(exp(x(0))) : mp100(abs(mp100(-2 * (1 - t * t) * (1 - 3 * t * t))));
      const mp100 predicted = h * h / 6 * f3;
      CHECK(err < 2 * predicted);
      CHECK(err > predicted / 2);
      CHECK(err <= J.error_estimate(j, j));
    }
  }
  SECTION("higher orders and Richardson do better still") {
    for (const FdScheme s : {FdScheme::central4, FdScheme::central6, FdScheme::richardson}) {
      CAPTURE(bpcheck::fd_scheme_name(s));
      const auto J = bpcheck::jacobian_fd(exp_tanh<mp100>, x, s);
      CHECK(bpcheck::testing::max_relative_difference<mp100>(J.value, truth) <
            bpcheck::from_string<mp100>("1e-75"));
    }
  }
}

TEMPLATE_TEST_CASE("a derivative wrong by 1e-8 relative is told apart from the right one", "[fd][must-fail]",
                   double, mp100) {
  using T = TestType;
  const Vector<T> x = test_point<T>();
  const Matrix<mp100> truth = exp_tanh_jacobian(x);
  for (const FdScheme s : {FdScheme::central, FdScheme::richardson}) {
    CAPTURE(bpcheck::fd_scheme_name(s));
    const auto J = bpcheck::jacobian_fd(exp_tanh<T>, x, s);
    for (Index j = 0; j < 2; ++j) {
      const T right = bpcheck::scalar_cast<T>(truth(j, j));
      const T wrong = right * (1 + T(1) / T(100000000));
      using std::abs;
      CHECK(abs(T(J.value(j, j) - right)) <= J.error_estimate(j, j));  // must pass
      CHECK(abs(T(J.value(j, j) - wrong)) > J.error_estimate(j, j));   // must fail
    }
  }
}

TEMPLATE_LIST_TEST_CASE("default steps are ε^(1/(p+1))·max(1, |x|), powers of two, exact against x", "[fd]",
                        bpcheck::testing::real_rungs) {
  using T = TestType;
  using std::pow;
  const T eps = bpcheck::scalar_traits<T>::epsilon();
  for (const T x : {T(1) / 3, T(1000) / 3, T(-7)}) {
    for (const FdScheme s : {FdScheme::forward, FdScheme::central, FdScheme::central4, FdScheme::central6}) {
      const int p = bpcheck::fd_order(s);
      const T h = bpcheck::fd_default_step(s, x);
      using std::abs;
      const T ideal = T(pow(eps, T(1) / T(p + 1))) * (abs(x) > T(1) ? T(abs(x)) : T(1));
      CHECK(h <= ideal);
      CHECK(h > ideal / 2);
      CHECK(T(x + h) - x == h);
      CHECK(T(3) * h / 3 == h);  // a power of two: k·h is exact for every stencil offset k
    }
  }
}

TEST_CASE("finite differences refuse bad input with a message", "[fd][errors]") {
  const Vector<double> x = test_point<double>();
  CHECK_THROWS_AS(bpcheck::directional_derivative_fd(exp_tanh<double>, x, Vector<double>(Vector<double>::Zero(2))),
                  bpcheck::input_error);
  CHECK_THROWS_AS(bpcheck::jacobian_fd(exp_tanh<double>, x, {FdScheme::central, -1.0}), bpcheck::input_error);
  CHECK_THROWS_AS(bpcheck::fd_nudge_step(1e10, 1e-20), bpcheck::input_error);
  CHECK_THROWS_AS(bpcheck::directional_derivative_fd(exp_tanh<double>, Vector<double>(0), Vector<double>(0)),
                  bpcheck::input_error);
  const auto log_first = [](const Vector<double>& y) -> Vector<double> { return y.array().log().matrix(); };
  Vector<double> at_zero(1);
  at_zero << 0.0;
  CHECK_THROWS_AS(bpcheck::jacobian_fd(log_first, at_zero), bpcheck::error);  // log(−h) is NaN: no number
}

TEMPLATE_TEST_CASE("layer Jacobians by differences match the explicit ones in the same layout", "[fd][layer]",
                   double, mp100) {
  using T = TestType;
  bpcheck::Dense<T> dense(3, 2);
  Vector<T> theta(dense.parameters().size());
  for (Index i = 0; i < theta.size(); ++i) theta(i) = T(int(i % 5) - 2) / T(3 + int(i));
  dense.set_parameters(theta);
  const bpcheck::AnyLayer<T> tanh_layer = bpcheck::make_layer<T>({"tanh", {}}, 2);
  Matrix<T> X(3, 2);
  X << T(1) / 3, T(-1) / 2, T(2) / 7, T(1) / 5, T(-3) / 4, T(1) / 9;
  const T tol = bpcheck::from_string<T>(std::is_same_v<T, mp100> ? "1e-40" : "1e-9");

  const auto Jx = bpcheck::jacobian_input_fd(dense, X, FdScheme::central);
  const auto Jt = bpcheck::jacobian_parameters_fd(dense, X, FdScheme::central4);
  CHECK(Jx.value.rows() == 4);
  CHECK(Jx.value.cols() == 6);
  CHECK(Jt.value.cols() == dense.parameters().size());
  CHECK(bpcheck::testing::max_relative_difference<T>(Jx.value, dense.jacobian_input(X)) < tol);
  CHECK(bpcheck::testing::max_relative_difference<T>(Jt.value, dense.jacobian_parameters(X)) < tol);
  CHECK(dense.parameters() == theta);  // the layer under test is left as it was

  const Matrix<T> Xt = X.topRows(2);
  const auto Jtanh = bpcheck::jacobian_input_fd(tanh_layer, Xt, FdScheme::richardson);
  CHECK(bpcheck::testing::max_relative_difference<T>(Jtanh.value, tanh_layer.jacobian_input(Xt)) < tol);
  CHECK(bpcheck::jacobian_parameters_fd(tanh_layer, Xt).value.cols() == 0);
}

TEMPLATE_LIST_TEST_CASE("one-sided differences show relu's jump at exactly 0 and none for tanh", "[fd][kink]",
                        bpcheck::testing::real_rungs) {
  using T = TestType;
  Matrix<T> X(3, 1);
  X << T(0), T(1) / 2, T(-1) / 4;
  const auto relu = bpcheck::make_layer<T>({"relu", {}}, 3);
  const auto r = bpcheck::one_sided_disagreement_input(relu, X);
  CHECK(r.jump_count() == 1);
  CHECK(r.jump(0, 0));
  CHECK(r.left(0, 0) == T(0));
  CHECK(r.right(0, 0) == T(1));
  CHECK(r.left(1, 1) == T(1));
  CHECK(r.right(1, 1) == T(1));

  const auto tanh_layer = bpcheck::make_layer<T>({"tanh", {}}, 3);
  const auto t = bpcheck::one_sided_disagreement_input(tanh_layer, X);
  CHECK_FALSE(t.any_jump());
  // Left and right do differ, only by less than the threshold. (In float the two one-sided estimates
  // can agree to the last bit, as they do here with SLEEF's tanh: their difference is rounding there.)
  if constexpr (!std::is_same_v<T, float>) CHECK(t.left(1, 1) != t.right(1, 1));
}
