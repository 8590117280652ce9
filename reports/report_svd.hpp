#pragma once
// Singular values of a Jacobian given exactly (mp100), computed in double when double resolves them
// and in mp100 otherwise. Double's SVD finds σ_i to an absolute error of about u·σ_max, so σ_min keeps
// ≈ −log10(u·cond) digits: past cond = 1e8 (fewer than 8 digits left) the mp100 SVD is used.
#include <string>
#include <vector>

#include "bpcheck/scalar.hpp"

namespace bpcheck::report {

struct SingularValues {
  std::vector<double> values;  ///< decreasing (entries below double's range read as 0)
  std::string precision;       ///< "double" or "mp100": where the SVD ran
  Index rank = 0;              ///< σ_i > σ_max · (n·ε of the SVD's precision)
  double sigma_max = 0, sigma_min = 0;
  /// σ_max/σ_min for a matrix of full rank; for a singular one, σ_max over the smallest nonzero σ.
  double cond = 0;
  bool singular = false;
};

/// The singular values of J (any shape; min(rows, cols) of them).
SingularValues singular_values(const Matrix<mp100>& J);

}  // namespace bpcheck::report
