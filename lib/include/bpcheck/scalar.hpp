#pragma once
// The scalar ladder and its traits: the only place that knows about precisions.
//
//   using T = bpcheck::mp100;
//   T u = bpcheck::scalar_traits<T>::unit_roundoff();        // 2^-333 ≈ 5.7e-101
//   std::string s = bpcheck::to_string(T(1) / 3);            // all 100+ digits
//   double d = bpcheck::scalar_cast<double>(T(1) / 3);       // moves between rungs
//
// Rungs: float, double, mp100 (100 decimal digits), and dual<T> = Dual<T, dual_width> over each; the
// 16-bit rungs bf16 and fp16 (float16.hpp) on their own, without duals.
//
// mp100 is MPFR with 100 decimal digits, limbs on the stack, expression templates off (Eigen needs
// plain value types). Layer code is dominated by transcendental functions (tanh, erf, exp), where
// MPFR is several times faster than cpp_bin_float_100, and limbs on the stack make products faster
// than on the heap (the measurements are in docs/history.md, "Choices of the design").
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

#include <boost/multiprecision/eigen.hpp>
#include <boost/multiprecision/mpfr.hpp>
#include <Eigen/Core>

#include "bpcheck/dual.hpp"
#include "bpcheck/error.hpp"
#include "bpcheck/float16.hpp"

namespace bpcheck {

using mp100 = boost::multiprecision::number<
    boost::multiprecision::mpfr_float_backend<100, boost::multiprecision::allocate_stack>,
    boost::multiprecision::et_off>;

/// How many directions one dual pass carries: a full Jacobian of n columns takes ⌈n/8⌉ passes.
inline constexpr int dual_width = 8;
template <class T>
using dual = Dual<T, dual_width>;

using Index = Eigen::Index;
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// n zeros. The library's class scalars (mp100, dual, Emulated) are 0 when default-constructed, which
/// Eigen does for every entry of a new vector: Zero(n) would then set each a second time, a pass over
/// 72 MB for a 100k-parameter dense layer on dual<mp100>.
template <class T>
Vector<T> zeros(Index n) {
  if constexpr (std::is_arithmetic_v<T>)
    return Vector<T>::Zero(n);
  else
    return Vector<T>(n);
}

template <class T>
struct scalar_traits;

/// Whether T is Emulated (emulated.hpp): mp100 arithmetic that rounds like another rung.
template <class T>
inline constexpr bool is_emulated_v = false;

template <>
struct scalar_traits<float> {
  using real = float;
  static constexpr bool is_dual = false;
  static constexpr const char* name = "float";
  static constexpr int print_digits = 9;  // max_digits10: round-trips exactly
  static float epsilon() { return std::numeric_limits<float>::epsilon(); }
};
template <>
struct scalar_traits<double> {
  using real = double;
  static constexpr bool is_dual = false;
  static constexpr const char* name = "double";
  static constexpr int print_digits = 17;
  static double epsilon() { return std::numeric_limits<double>::epsilon(); }
};
template <>
struct scalar_traits<mp100> {
  using real = mp100;
  static constexpr bool is_dual = false;
  static constexpr const char* name = "mp100";
  static constexpr int print_digits = std::numeric_limits<mp100>::max_digits10;
  static mp100 epsilon() { return std::numeric_limits<mp100>::epsilon(); }
};
/// bf16 (u = 2⁻⁸, float's range) and fp16 (u = 2⁻¹¹, largest 65504, subnormal spacing 2⁻²⁴): the
/// verifier reads their u, significand and range from here (numeric_limits) like any rung's.
template <class F>
struct scalar_traits<Float16<F>> {
  using real = Float16<F>;
  static constexpr bool is_dual = false;
  static constexpr const char* name = std::is_same_v<F, Eigen::bfloat16> ? "bf16" : "fp16";
  static constexpr int print_digits = std::is_same_v<F, Eigen::bfloat16> ? 4 : 5;  // max_digits10
  static Float16<F> epsilon() { return std::numeric_limits<Float16<F>>::epsilon(); }
  /// Forward mode (the verifier's dual-number references on the rung) runs in float, on the rung's
  /// rounded values: a dual<bf16> would double the build for a reference that only needs the format's
  /// inputs, not its arithmetic.
  using forward_mode = float;
};
template <class T, int N>
struct scalar_traits<Dual<T, N>> {
  using real = T;  // the rung a dual number rides on
  static constexpr bool is_dual = true;
  static constexpr int print_digits = scalar_traits<T>::print_digits;
  static T epsilon() { return scalar_traits<T>::epsilon(); }
};

/// The real rung under a scalar: T for float/double/mp100, T for Dual<T, N>.
template <class T>
using real_t = typename scalar_traits<T>::real;

/// The rung the verifier's forward-mode references (dual numbers) run on for T: T itself, or what
/// scalar_traits<T>::forward_mode names (float for the 16-bit rungs).
template <class T>
struct forward_rung_of {
  using type = T;
};
template <class T>
  requires requires { typename scalar_traits<T>::forward_mode; }
struct forward_rung_of<T> {
  using type = typename scalar_traits<T>::forward_mode;
};
template <class T>
using forward_rung_t = typename forward_rung_of<T>::type;

/// Names the rungs in messages and JSON: "float", "double", "mp100", "dual<double>".
template <class T>
std::string scalar_name() {
  if constexpr (scalar_traits<T>::is_dual)
    return "dual<" + std::string(scalar_traits<real_t<T>>::name) + ">";
  else
    return scalar_traits<T>::name;
}

/// Unit roundoff u = ε/2: the relative error bound of one correctly rounded operation.
template <class T>
real_t<T> unit_roundoff() {
  return scalar_traits<T>::epsilon() / 2;
}

/// The value part of a scalar (itself for real rungs).
template <class T>
const real_t<T>& value_of(const T& x) {
  if constexpr (scalar_traits<T>::is_dual)
    return x.v;
  else
    return x;
}

/// x rounded once to the 16-bit format F (to nearest, ties to even; fp16's subnormals and overflow to ∞).
template <class F>
Float16<F> round_to_float16(const mp100& x) {
  if (!boost::multiprecision::isfinite(x)) return Float16<F>(x.convert_to<float>());
  mp100 r = x;
  if (abs(x) < mp100(float(std::numeric_limits<F>::min()))) {
    // below the normal range the format's numbers are the multiples of its smallest subnormal
    const mp100 tiny{float(std::numeric_limits<F>::denorm_min())};
    r /= tiny;
    mpfr_rint(r.backend().data(), r.backend().data(), MPFR_RNDN);
    r *= tiny;
    return Float16<F>(F(r.convert_to<float>()));
  }
  mpfr_t t;
  mpfr_init2(t, std::numeric_limits<F>::digits);
  mpfr_set(t, r.backend().data(), MPFR_RNDN);
  const float f = mpfr_get_flt(t, MPFR_RNDN);  // exact, or ∞ beyond float
  mpfr_clear(t);
  return Float16<F>(F(f));  // exact, or ∞ beyond the format's largest number
}

/// Converts between real rungs (float ↔ double ↔ mp100, and to and from bf16/fp16, rounding once);
/// lifts a real into a dual with zero tangent.
template <class To, class From>
To scalar_cast(const From& x) {
  if constexpr (std::is_same_v<To, From>)
    return x;
  else if constexpr (scalar_traits<From>::is_dual)
    return scalar_cast<To>(x.v);
  else if constexpr (is_float16_v<From>)
    return scalar_cast<To>(x.value());
  else if constexpr (is_float16_v<To> && (std::is_same_v<From, double> || std::is_same_v<From, mp100>))
    return round_to_float16<typename To::storage>(mp100(x));
  else if constexpr (is_float16_v<To>)
    return To(scalar_cast<float>(x));
  else if constexpr (is_emulated_v<From>)
    return scalar_cast<To>(x.value());
  else if constexpr (is_emulated_v<To>)
    return To(scalar_cast<mp100>(x));
  else if constexpr (scalar_traits<To>::is_dual)
    return To(scalar_cast<real_t<To>>(x));
  else if constexpr (std::is_same_v<From, mp100>)
    return x.template convert_to<To>();
  else
    return static_cast<To>(x);
}

template <class To, class From>
Matrix<To> matrix_cast(const Matrix<From>& m) {
  return m.unaryExpr([](const From& x) { return scalar_cast<To>(x); });
}
template <class To, class From>
Vector<To> vector_cast(const Vector<From>& m) {
  return m.unaryExpr([](const From& x) { return scalar_cast<To>(x); });
}

/// All of a real scalar's digits, in a form that reads back to the same value. Call it qualified:
/// Boost.Multiprecision has a to_string of its own (6 digits) that ADL would prefer for mp100.
template <class T>
std::string to_string(const T& x) {
  const auto& r = value_of(x);
  using R = real_t<T>;
  if constexpr (std::is_same_v<R, mp100>) {
    return r.str(scalar_traits<R>::print_digits, std::ios_base::scientific);
  } else if constexpr (is_float16_v<R>) {
    std::ostringstream os;
    os.imbue(std::locale::classic());
    os.precision(scalar_traits<R>::print_digits);
    os << r.value();
    return os.str();
  } else {
    std::ostringstream os;
    os.imbue(std::locale::classic());
    os.precision(scalar_traits<R>::print_digits);
    os << r;
    return os.str();
  }
}

/// Parses a decimal string exactly into the rung (the nearest value of T); throws input_error.
template <class T>
T from_string(const std::string& s) {
  using R = real_t<T>;
  if constexpr (std::is_same_v<R, mp100>) {
    try {
      return T(R(s));
    } catch (const std::exception&) {
      throw input_error("'" + s + "' is not a number");
    }
  } else if constexpr (is_float16_v<R>) {
    // the decimal rounded once to the format (through float it would round twice)
    return T(scalar_cast<R>(from_string<mp100>(s)));
  } else {
    char* end = nullptr;
    const R v = std::is_same_v<R, float> ? R(std::strtof(s.c_str(), &end)) : R(std::strtod(s.c_str(), &end));
    if (s.empty() || end != s.c_str() + s.size()) throw input_error("'" + s + "' is not a number");
    return T(v);
  }
}

/// π in T (dual-aware), computed in the rung's own precision.
template <class T>
T pi() {
  using std::acos;
  return T(acos(real_t<T>(-1)));
}

// Apply X to every rung. Explicit instantiations in lib/src/ use these; mp100 rungs go to their own
// translation units because they dominate build time.
#define BPCHECK_FAST_RUNGS(X) \
  X(float)                    \
  X(double)                   \
  X(::bpcheck::dual<float>)   \
  X(::bpcheck::dual<double>)
#define BPCHECK_MP_RUNGS(X) \
  X(::bpcheck::mp100)       \
  X(::bpcheck::dual<::bpcheck::mp100>)
#define BPCHECK_ALL_RUNGS(X) BPCHECK_FAST_RUNGS(X) BPCHECK_MP_RUNGS(X) BPCHECK_HALF_RUNGS(X)
/// The 16-bit rungs: instantiated in their own unit (instantiate_half.cpp), without dual numbers.
#define BPCHECK_HALF_RUNGS(X) \
  X(::bpcheck::bf16)          \
  X(::bpcheck::fp16)
/// One entry of a family's class list (BPCHECK_<FAMILY>_CLASSES(X, T) in its header), declared extern
/// or instantiated; variadic, since template arguments hold commas.
#define BPCHECK_EXTERN_TEMPLATE_CLASS(...) extern template class __VA_ARGS__;
#define BPCHECK_TEMPLATE_CLASS(...) template class __VA_ARGS__;

}  // namespace bpcheck

namespace Eigen::internal {
/// Products of mp100 matrices as C(:, j) += A(:, k) B(k, j), or as dot products when A is row-major,
/// summed over k in order, each product formed in one reused number and added in place (MPFR directly). Eigen's blocked kernel is tuned
/// for registers of doubles: on a type whose every copy moves 100 digits it packs both operands into
/// panels and passes each multiply-add through two temporaries, and runs at about half this speed on
/// a dense layer's shapes. Every mp100 rung's layer, and the dual products above, go through here.
template <typename Index, int LhsStorageOrder, bool ConjugateLhs, int RhsStorageOrder, bool ConjugateRhs,
          int ResInnerStride>
struct general_matrix_matrix_product<Index, ::bpcheck::mp100, LhsStorageOrder, ConjugateLhs, ::bpcheck::mp100,
                                     RhsStorageOrder, ConjugateRhs, ColMajor, ResInnerStride> {
  using T = ::bpcheck::mp100;
  using ResScalar = T;
  using Traits = gebp_traits<T, T>;

  /// res += alpha · lhs · rhs (rows × depth times depth × cols), as Eigen's kernel does.
  static void run(Index rows, Index cols, Index depth, const T* lhs, Index lhsStride, const T* rhs, Index rhsStride,
                  T* res, Index resIncr, Index resStride, const T& alpha, level3_blocking<T, T>& /*blocking*/,
                  GemmParallelInfo<Index>* /*info*/ = nullptr) {
    const const_blas_data_mapper<T, Index, LhsStorageOrder> A(lhs, lhsStride);
    const const_blas_data_mapper<T, Index, RhsStorageOrder> B(rhs, rhsStride);
    blas_data_mapper<T, Index, ColMajor, Unaligned, ResInnerStride> C(res, resStride, resIncr);
    T b, product, sum;
    if constexpr (LhsStorageOrder == RowMajor) {
      // A's rows are contiguous (a transposed operand, as in dX = Wᵀ dY): one dot product per entry.
      for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) {
          mpfr_set_zero(sum.backend().data(), 1);
          for (Index k = 0; k < depth; ++k) {
            mpfr_mul(product.backend().data(), A(i, k).backend().data(), B(k, j).backend().data(), MPFR_RNDN);
            mpfr_add(sum.backend().data(), sum.backend().data(), product.backend().data(), MPFR_RNDN);
          }
          T& c = C(i, j);
          mpfr_mul(sum.backend().data(), sum.backend().data(), alpha.backend().data(), MPFR_RNDN);
          mpfr_add(c.backend().data(), c.backend().data(), sum.backend().data(), MPFR_RNDN);
        }
    } else {
      // A's columns are contiguous: C(:, j) += A(:, k) (alpha B(k, j)), k in order.
      for (Index j = 0; j < cols; ++j)
        for (Index k = 0; k < depth; ++k) {
          mpfr_mul(b.backend().data(), alpha.backend().data(), B(k, j).backend().data(), MPFR_RNDN);
          for (Index i = 0; i < rows; ++i) {
            mpfr_mul(product.backend().data(), A(i, k).backend().data(), b.backend().data(), MPFR_RNDN);
            T& c = C(i, j);
            mpfr_add(c.backend().data(), c.backend().data(), product.backend().data(), MPFR_RNDN);
          }
        }
    }
  }
};
}  // namespace Eigen::internal
