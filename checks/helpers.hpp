#pragma once
// Test helpers shared by checks/: typed over the real rungs, comparisons that print all digits.
#include <catch2/catch.hpp>

#include "bpcheck/scalar.hpp"

namespace bpcheck::testing {

/// The real rungs every example-based test runs on.
using real_rungs = std::tuple<float, double, mp100>;

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

}  // namespace bpcheck::testing
