// Products of quad matrices (lib/src/quad.hpp) in double-double: each entry of the operands as the sum
// of two doubles (106 bits of its 113), each product formed exactly by Dekker's split (no FMA needed),
// the sums carried as a high part with its rounding error (two-sum) and a low part. A sum of `depth`
// products then errs by about depth · 2^-104 · Σ|a||b|: the truth's unit roundoff in compare is taken as
// 2^-104, not quad's 2^-113. libgcc's quad multiply and add cost ~40 ns a pair; this ~20 double operations.
// Compiled with -ffp-contract=off (lib/CMakeLists.txt): the split and two-sum need every product and
// sum rounded on its own.
#include <cmath>
#include <cstddef>
#include <algorithm>
#include <vector>

namespace bpcheck::quad_kernels {

namespace {
constexpr double splitter = 134217729.0;  // 2^27 + 1
}  // namespace

/// Whether the double-double route holds for operands whose largest magnitude is `max_abs` (or that are
/// not finite): the split overflows beyond 2^996, a product beyond 2^1023; 2^500 keeps both far off.
/// Below double's normal range a product loses its low digits: an absolute error of 2^-1074 per product,
/// under every floor compare's bound carries (min_normal of float or double, times the terms).
bool double_double_fits(double max_abs) { return std::isfinite(max_abs) && max_abs <= 0x1p500; }

/// res(i, j) += alpha · Σ_k A(i, k) B(k, j), with A(i, k) = lhs[i·ls_i + k·ls_k], B(k, j) = rhs[k·rs_k + j·rs_j],
/// res(i, j) = res[i·res_i + j·res_j]. The caller checked double_double_fits on both operands.
void gemm(std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t depth, const __float128* lhs, std::ptrdiff_t ls_i,
          std::ptrdiff_t ls_k, const __float128* rhs, std::ptrdiff_t rs_k, std::ptrdiff_t rs_j, __float128* res,
          std::ptrdiff_t res_i, std::ptrdiff_t res_j, __float128 alpha) {
  if (rows <= 0 || cols <= 0) return;
  // A packed column by column: its high part, that part split in two halves of 26 bits, its low part.
  const std::size_t n = std::size_t(rows) * std::size_t(depth);
  std::vector<double> ah(n), ahh(n), ahl(n), al(n);
  for (std::ptrdiff_t k = 0; k < depth; ++k)
    for (std::ptrdiff_t i = 0; i < rows; ++i) {
      const __float128 a = lhs[i * ls_i + k * ls_k];
      const double h = double(a), t = splitter * h, hh = t - (t - h);
      const std::size_t at = std::size_t(i + k * rows);
      ah[at] = h, ahh[at] = hh, ahl[at] = h - hh, al[at] = double(a - __float128(h));
    }
  std::vector<double> sh(static_cast<std::size_t>(rows)), sl(static_cast<std::size_t>(rows));
  for (std::ptrdiff_t j = 0; j < cols; ++j) {
    std::fill(sh.begin(), sh.end(), 0.0);
    std::fill(sl.begin(), sl.end(), 0.0);
    double* __restrict s_h = sh.data();
    double* __restrict s_l = sl.data();
    for (std::ptrdiff_t k = 0; k < depth; ++k) {
      const __float128 b = rhs[k * rs_k + j * rs_j];
      const double bh = double(b), t = splitter * bh, bhh = t - (t - bh), bhl = bh - bhh;
      const double bl = double(b - __float128(bh));
      if (bh == 0) continue;
      const double* __restrict a_h = ah.data() + k * rows;
      const double* __restrict a_hh = ahh.data() + k * rows;
      const double* __restrict a_hl = ahl.data() + k * rows;
      const double* __restrict a_l = al.data() + k * rows;
      for (std::ptrdiff_t i = 0; i < rows; ++i) {
        const double p = a_h[i] * bh;
        const double e = ((a_hh[i] * bhh - p) + a_hh[i] * bhl + a_hl[i] * bhh) + a_hl[i] * bhl;  // p's error
        const double c = a_h[i] * bl + a_l[i] * bh;
        const double s = s_h[i] + p, v = s - s_h[i];
        const double err = (s_h[i] - (s - v)) + (p - v);  // two-sum: s + err = s_h + p exactly
        s_h[i] = s;
        s_l[i] += (err + e) + c;
      }
    }
    for (std::ptrdiff_t i = 0; i < rows; ++i) {
      __float128& r = res[i * res_i + j * res_j];
      r += alpha * (__float128(sh[std::size_t(i)]) + __float128(sl[std::size_t(i)]));
    }
  }
}

}  // namespace bpcheck::quad_kernels
