#pragma once
// Test helpers shared by checks/: typed over the real rungs, comparisons that print all digits.
#include <catch2/catch.hpp>

#include <cmath>
#include <initializer_list>
#include <string>

#include "bpcheck/error.hpp"
#include "bpcheck/scalar.hpp"
#include "bpcheck/verify/result.hpp"

namespace bpcheck::testing {

/// The real rungs every example-based test runs on.
using real_rungs = std::tuple<float, double, mp100>;

/// The result of `check` on `precision` in a report, or null.
inline const CheckResult* find_check(const VerificationReport& r, const std::string& check,
                                     const std::string& precision) {
  for (const auto& c : r.checks)
    if (c.check == check && c.precision == precision) return &c;
  return nullptr;
}

/// max |a − b| / max(|b|, floor) over all entries, in T.
template <class T>
T max_relative_difference(const Matrix<T>& a, const Matrix<T>& b, const T& floor = T(1)) {
  using std::abs;
  using std::max;
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  T worst(0);
  for (Index i = 0; i < a.size(); ++i) {
    const T scale = max(T(abs(b(i))), floor);
    const T d = T(abs(T(a(i) - b(i)))) / scale;
    if (d > worst) worst = d;
  }
  return worst;
}

/// Number of correct significant digits implied by a relative difference (capped at the rung's).
template <class T>
double agreeing_digits(const T& relative_difference) {
  const double cap = scalar_traits<T>::print_digits;
  const double r = scalar_cast<double>(relative_difference);
  if (r <= 0) return cap;
  return std::min(cap, -std::log10(r));
}

/// k·ε of the rung: a tolerance that scales with the precision under test.
template <class T>
T eps_times(int k) {
  return T(k) * scalar_traits<T>::epsilon();
}

/// The exact rational p/q in T (correctly rounded: one division).
template <class T>
T ratio(long p, long q = 1) {
  return T(p) / T(q);
}

/// The message of the input_error f throws; any other exception escapes and fails the test.
template <class F>
std::string input_error_message(F&& f) {
  try {
    f();
  } catch (const bpcheck::input_error& e) {
    return e.what();
  }
  return "(no input_error thrown)";
}

/// ln(p/q) in T.
template <class T>
T ln(long p, long q = 1) {
  using std::log;
  return log(ratio<T>(p, q));
}

/// A matrix given row by row as decimal strings (exact to the rung, unlike double literals).
template <class T>
Matrix<T> matrix_from_rows(Index rows, Index cols, std::initializer_list<std::string> entries) {
  REQUIRE(Index(entries.size()) == rows * cols);
  Matrix<T> M(rows, cols);
  auto it = entries.begin();
  for (Index r = 0; r < rows; ++r)
    for (Index c = 0; c < cols; ++c) M(r, c) = from_string<T>(*it++);
  return M;
}

/// Largest |entry|, in T (0 for an empty matrix).
template <class Derived>
auto max_abs(const Eigen::MatrixBase<Derived>& a) {
  using T = typename Derived::Scalar;
  using std::abs;
  T m(0);
  for (Index i = 0; i < a.size(); ++i)
    if (T(abs(a(i))) > m) m = abs(a(i));
  return m;
}

/// Norm-wise relative difference max|a − b| / max(max|b|, floor): one scale for the whole
/// array, so entries that are tiny next to the others do not demand impossible relative accuracy.
template <class A, class B>
auto normwise_relative_difference(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b,
                                  const typename A::Scalar& floor = typename A::Scalar(0)) {
  using T = typename A::Scalar;
  using std::max;
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  const T scale = max(T(max_abs(b)), floor);
  const T diff = max_abs(Matrix<T>(a - b));
  if (scale == T(0)) return diff;  // b is zero: the absolute difference is the relative one
  return T(diff / scale);
}

/// |actual − expected| ≤ tol · max(1, |expected|): relative for large values, absolute near 0.
template <class T>
bool close(const T& actual, const T& expected, const T& tol) {
  using std::abs;
  using std::max;
  return T(abs(T(actual - expected))) <= tol * max(T(1), T(abs(expected)));
}

}  // namespace bpcheck::testing
