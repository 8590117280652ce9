// Singular values in double, or in mp100 where double cannot resolve the small ones (Eigen's Jacobi
// SVD on Boost.Multiprecision, its own translation unit: the mp100 instantiation is slow to compile).
#include <limits>

#include <Eigen/SVD>

#include "report_svd.hpp"

namespace bpcheck::report {

namespace {

template <class T>
SingularValues summarise(const Vector<T>& s, const T& relative_floor, const char* precision) {
  SingularValues r;
  r.precision = precision;
  const T largest = s.size() ? s(0) : T(0);
  for (Index i = 0; i < s.size(); ++i) {
    r.values.push_back(scalar_cast<double>(s(i)));
    if (s(i) > largest * relative_floor) ++r.rank;
  }
  if (s.size() == 0 || largest == T(0)) {  // the zero matrix: no condition number
    r.singular = true;
    r.cond = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  r.sigma_max = scalar_cast<double>(largest);
  r.sigma_min = scalar_cast<double>(s(s.size() - 1));
  r.singular = r.rank < s.size();
  r.cond = scalar_cast<double>(T(largest / s(r.rank - 1)));
  return r;
}

}  // namespace

SingularValues singular_values(const Matrix<mp100>& J) {
  const Index n = std::max(J.rows(), J.cols());
  const Matrix<double> Jd = matrix_cast<double>(J);
  const Vector<double> sd = Eigen::JacobiSVD<Matrix<double>>(Jd).singularValues();
  const bool resolved = Jd.allFinite() && sd.size() > 0 && sd(0) > 0 && sd(sd.size() - 1) > 1e-8 * sd(0);
  if (resolved) return summarise<double>(sd, double(n) * std::numeric_limits<double>::epsilon(), "double");
  const Vector<mp100> sm = Eigen::JacobiSVD<Matrix<mp100>>(J).singularValues();
  // J is exact to ~1e-100 relative; singular values below 1e-80 σ_max are rounding, not rank.
  return summarise<mp100>(sm, mp100("1e-80"), "mp100");
}

}  // namespace bpcheck::report
