#pragma once
// quad: IEEE binary128 (113-bit significand, u = 2^-113 ≈ 9.6e-35, exponents to 1e±4932), Boost.Multiprecision's
// float128 on libquadmath. compare's truth and rounding moves for a float or double gradient run on it
// (lib/src/compare.cpp): they need a relative accuracy far below u_double, not mp100's 100 digits, and
// a product of two quads costs about half of one of two mp100s (docs/performance.md). Only compare uses
// it: the rung is outside BPCHECK_ALL_RUNGS, its families are instantiated by instantiate_quad.cpp and
// declared extern below, and libquadmath's header stays out of the public headers.
#include <boost/multiprecision/float128.hpp>

#include "bpcheck/layer.hpp"
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/attention.hpp"
#include "bpcheck/layers/conv.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/dropout.hpp"
#include "bpcheck/layers/embedding.hpp"
#include "bpcheck/layers/extra_activations.hpp"
#include "bpcheck/layers/norms.hpp"
#include "bpcheck/layers/pool.hpp"
#include "bpcheck/layers/residual.hpp"
#include "bpcheck/layers/softmax.hpp"
#include "bpcheck/layers/branches.hpp"
#include "bpcheck/losses.hpp"
#include "bpcheck/network.hpp"
#include "bpcheck/products.hpp"
#include "bpcheck/scalar.hpp"

// MPFR declares its binary128 conversions only under MPFR_WANT_FLOAT128, as _Float128, which C++ before
// GCC 13 does not know; the library exports them (Debian's MPFR is built with them).
extern "C" {
int mpfr_set_float128(mpfr_ptr, __float128, mpfr_rnd_t);
__float128 mpfr_get_float128(mpfr_srcptr, mpfr_rnd_t);
}

namespace boost::multiprecision {
// Boost 1.81's erf, erfc, expm1, log1p, cbrt, asinh, acosh and atanh of float128 return libquadmath's
// __float128 where a number is expected and do not compile; these plain overloads win over them.
#define BPCHECK_QUAD_FUNCTION(f) \
  inline float128 f(const float128& x) { return float128(f##q(x.backend().value())); }
BPCHECK_QUAD_FUNCTION(erf)
BPCHECK_QUAD_FUNCTION(erfc)
BPCHECK_QUAD_FUNCTION(expm1)
BPCHECK_QUAD_FUNCTION(log1p)
BPCHECK_QUAD_FUNCTION(cbrt)
BPCHECK_QUAD_FUNCTION(asinh)
BPCHECK_QUAD_FUNCTION(acosh)
BPCHECK_QUAD_FUNCTION(atanh)
#undef BPCHECK_QUAD_FUNCTION
}  // namespace boost::multiprecision

namespace bpcheck {

using quad = boost::multiprecision::float128;

template <>
struct scalar_traits<quad> {
  using real = quad;
  static constexpr bool is_dual = false;
  static constexpr const char* name = "quad";
  static constexpr int print_digits = 36;
  static quad epsilon() { return std::numeric_limits<quad>::epsilon(); }
};

/// Options and numbers read from JSON (a norm's eps) to quad's precision, not through strtod's double.
template <>
inline quad from_string<quad>(const std::string& s) {
  try {
    return quad(s);
  } catch (const std::exception&) {
    throw input_error("'" + s + "' is not a number");
  }
}

/// mp100 → quad, correctly rounded; quad → mp100, exact.
inline quad to_quad(const mp100& x) { return quad(mpfr_get_float128(x.backend().data(), MPFR_RNDN)); }
inline mp100 from_quad(const quad& x) {
  mp100 r;
  mpfr_set_float128(r.backend().data(), x.backend().value(), MPFR_RNDN);
  return r;
}
template <class T>
Matrix<quad> quad_matrix(const Matrix<T>& m) {
  if constexpr (std::is_same_v<T, mp100>)
    return m.unaryExpr([](const mp100& x) { return to_quad(x); });
  else
    return m.unaryExpr([](const T& x) { return quad(x); });
}
inline Vector<quad> quad_vector(const Vector<mp100>& v) { return v.unaryExpr([](const mp100& x) { return to_quad(x); }); }
inline Vector<mp100> mp100_vector(const Vector<quad>& v) { return v.unaryExpr([](const quad& x) { return from_quad(x); }); }
inline Matrix<mp100> mp100_matrix(const Matrix<quad>& m) { return m.unaryExpr([](const quad& x) { return from_quad(x); }); }

namespace quad_kernels {
bool double_double_fits(double max_abs);
void gemm(std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t depth, const __float128* lhs, std::ptrdiff_t ls_i,
          std::ptrdiff_t ls_k, const __float128* rhs, std::ptrdiff_t rs_k, std::ptrdiff_t rs_j, __float128* res,
          std::ptrdiff_t res_i, std::ptrdiff_t res_j, __float128 alpha);
}  // namespace quad_kernels

// The families compare runs on quad, instantiated once in instantiate_quad.cpp.
#define BPCHECK_EXTERN_QUAD(T)                                        \
  BPCHECK_DENSE_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)             \
  BPCHECK_ACTIVATIONS_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)       \
  BPCHECK_SOFTMAX_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)           \
  BPCHECK_EXTRA_ACTIVATIONS_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T) \
  BPCHECK_DROPOUT_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)           \
  BPCHECK_NORMS_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)             \
  BPCHECK_CONV_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)              \
  BPCHECK_POOL_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)              \
  BPCHECK_RESIDUAL_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)          \
  BPCHECK_BRANCHES_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)          \
  BPCHECK_ATTENTION_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)         \
  BPCHECK_EMBEDDING_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)         \
  BPCHECK_EXTERN_LOSSES(T)                                             \
  extern template AnyLayer<T> make_layer<T>(const LayerSpec&, Index); \
  BPCHECK_EXTERN_PRODUCTS(T)                                           \
  extern template Matrix<T> softmax_columns<T>(const Matrix<T>&);     \
  extern template Matrix<T> log_softmax_columns<T>(const Matrix<T>&); \
  extern template class Network<T>;
BPCHECK_EXTERN_QUAD(::bpcheck::quad)
#undef BPCHECK_EXTERN_QUAD

}  // namespace bpcheck

namespace Eigen::internal {
/// Products of quad matrices in double-double (quad_products.cpp), about six times as fast as libgcc's
/// quad arithmetic in Eigen's kernel; operands beyond 2^500 (or not finite) take that kernel's order in
/// quad, one product and one sum at a time.
template <typename Index, int LhsStorageOrder, bool ConjugateLhs, int RhsStorageOrder, bool ConjugateRhs,
          int ResInnerStride>
struct general_matrix_matrix_product<Index, ::bpcheck::quad, LhsStorageOrder, ConjugateLhs, ::bpcheck::quad,
                                     RhsStorageOrder, ConjugateRhs, ColMajor, ResInnerStride> {
  using T = ::bpcheck::quad;
  using ResScalar = T;
  using Traits = gebp_traits<T, T>;
  // The kernel reads the numbers as the one __float128 each holds.
  static_assert(sizeof(T) == sizeof(__float128) && alignof(T) == alignof(__float128));

  static void run(Index rows, Index cols, Index depth, const T* lhs, Index lhsStride, const T* rhs, Index rhsStride,
                  T* res, Index resIncr, Index resStride, const T& alpha, level3_blocking<T, T>& /*blocking*/,
                  GemmParallelInfo<Index>* /*info*/ = nullptr) {
    const Index ls_i = LhsStorageOrder == RowMajor ? lhsStride : 1, ls_k = LhsStorageOrder == RowMajor ? 1 : lhsStride;
    const Index rs_k = RhsStorageOrder == RowMajor ? rhsStride : 1, rs_j = RhsStorageOrder == RowMajor ? 1 : rhsStride;
    const auto* a = reinterpret_cast<const __float128*>(lhs);
    const auto* b = reinterpret_cast<const __float128*>(rhs);
    auto* c = reinterpret_cast<__float128*>(res);
    const Index incr = ResInnerStride == Dynamic ? resIncr : ResInnerStride;  // as blas_data_mapper reads it
    double max_abs = 0;
    for (Index k = 0; k < depth; ++k) {
      for (Index i = 0; i < rows; ++i) max_abs = std::max(max_abs, std::abs(double(a[i * ls_i + k * ls_k])));
      for (Index j = 0; j < cols; ++j) max_abs = std::max(max_abs, std::abs(double(b[k * rs_k + j * rs_j])));
    }
    // NaN compares false with everything: a NaN operand leaves max_abs finite, so look again.
    bool finite = true;
    for (Index k = 0; k < depth && finite; ++k) {
      for (Index i = 0; i < rows; ++i) finite = finite && a[i * ls_i + k * ls_k] == a[i * ls_i + k * ls_k];
      for (Index j = 0; j < cols; ++j) finite = finite && b[k * rs_k + j * rs_j] == b[k * rs_k + j * rs_j];
    }
    if (finite && ::bpcheck::quad_kernels::double_double_fits(max_abs)) {
      ::bpcheck::quad_kernels::gemm(rows, cols, depth, a, ls_i, ls_k, b, rs_k, rs_j, c, incr,
                                    resStride, alpha.backend().value());
      return;
    }
    for (Index j = 0; j < cols; ++j)
      for (Index k = 0; k < depth; ++k) {
        const __float128 bk = alpha.backend().value() * b[k * rs_k + j * rs_j];
        for (Index i = 0; i < rows; ++i) c[i * incr + j * resStride] += a[i * ls_i + k * ls_k] * bk;
      }
  }
};
}  // namespace Eigen::internal
