#pragma once
// The 16-bit rungs: bf16 (bfloat16, 8 significant bits, float's exponent range) and fp16 (IEEE half,
// 11 bits, largest finite 65504, subnormals down to 2⁻²⁴).
//
//   bpcheck::bf16 y = tanh(bpcheck::bf16(0.3)) * 2;   // tanh in float, rounded to bf16; × 2, rounded
//
// Storage is Eigen's own Eigen::bfloat16 / Eigen::half (and their round-to-nearest-even conversions,
// overflow to ∞ and fp16's subnormals); every operation and math function is computed in float and
// rounded to the format once: the "pure 16-bit" policy. For +, −, ×, ÷ and √ that is the correctly
// rounded 16-bit result (float's 24 bits are at least 2p + 2 for p = 8 and 11, so rounding twice is
// harmless); a transcendental function is float's libm, rounded, as Eigen and PyTorch do.
//
// Why a scalar of our own around Eigen's types and not those types as they are: they convert
// implicitly to float and construct explicitly, so in generic layer code `x * 2`, `1 - y` or `erf(x)`
// silently become float (or double) expressions that round to 16 bits only at the next assignment, and
// `T s = 0;` does not compile. Here every operation with a literal rounds like any other.
//
// Matrix products (Eigen's `*` between matrices of these rungs) go through one place at the end of this
// file, which follows Accumulation: each multiply and add rounded to the format (pure, the default), or
// the sum of products kept in float and rounded once (PyTorch's CPU matrix products and autocast in
// bf16: 16-bit storage, float accumulation).
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <ostream>
#include <type_traits>

#include <Eigen/Core>

#include "bpcheck/rounded_functions.hpp"

namespace bpcheck {

/// How the matrix products of the 16-bit rungs add up, on this thread (see AccumulationScope).
enum class Accumulation {
  same,  ///< every product and partial sum rounded to the 16-bit format
  float_ ///< products and sums in float, the result rounded once (mixed precision)
};

namespace float16_detail {
inline Accumulation& accumulation() {
  thread_local Accumulation a = Accumulation::same;
  return a;
}
template <class C>
concept Arithmetic = std::is_arithmetic_v<C>;
}  // namespace float16_detail

/// Sets the accumulation of 16-bit matrix products on this thread while it lives.
class AccumulationScope {
 public:
  explicit AccumulationScope(Accumulation a) : saved_(float16_detail::accumulation()) {
    float16_detail::accumulation() = a;
  }
  ~AccumulationScope() { float16_detail::accumulation() = saved_; }
  AccumulationScope(const AccumulationScope&) = delete;
  AccumulationScope& operator=(const AccumulationScope&) = delete;

 private:
  Accumulation saved_;
};

/// A number stored in format F (Eigen::bfloat16 or Eigen::half) whose every operation rounds to F.
template <class F>
class Float16 {
 public:
  using storage = F;
  Float16() = default;
  template <float16_detail::Arithmetic A>
  Float16(A a) : v_(static_cast<float>(a)) {}  // NOLINT: literals convert, as for any scalar
  explicit Float16(F f) : v_(f) {}

  /// The value as a float (exact: every 16-bit number is a float).
  float value() const { return static_cast<float>(v_); }
  F storage_value() const { return v_; }
  template <float16_detail::Arithmetic A>
  explicit operator A() const {
    return static_cast<A>(value());
  }

  Float16& operator+=(const Float16& o) { return *this = Float16(value() + o.value()); }
  Float16& operator-=(const Float16& o) { return *this = Float16(value() - o.value()); }
  Float16& operator*=(const Float16& o) { return *this = Float16(value() * o.value()); }
  Float16& operator/=(const Float16& o) { return *this = Float16(value() / o.value()); }

 private:
  F v_ = F(0.0f);
};

template <class F>
Float16<F> operator+(const Float16<F>& a, const Float16<F>& b) {
  return Float16<F>(a.value() + b.value());
}
template <class F>
Float16<F> operator-(const Float16<F>& a, const Float16<F>& b) {
  return Float16<F>(a.value() - b.value());
}
template <class F>
Float16<F> operator*(const Float16<F>& a, const Float16<F>& b) {
  return Float16<F>(a.value() * b.value());
}
template <class F>
Float16<F> operator/(const Float16<F>& a, const Float16<F>& b) {
  return Float16<F>(a.value() / b.value());
}
template <class F>
Float16<F> operator-(const Float16<F>& a) {
  return Float16<F>(-a.value());
}
template <class F>
Float16<F> operator+(const Float16<F>& a) {
  return a;
}

// A literal meets a 16-bit number as that number's type (rounded to it, as a constant of the rung).
#define BPCHECK_FLOAT16_MIXED(op)                                          \
  template <class F, float16_detail::Arithmetic C>                         \
  Float16<F> operator op(const Float16<F>& a, C c) {                       \
    return a op Float16<F>(c);                                             \
  }                                                                        \
  template <class F, float16_detail::Arithmetic C>                         \
  Float16<F> operator op(C c, const Float16<F>& a) {                       \
    return Float16<F>(c) op a;                                             \
  }
BPCHECK_FLOAT16_MIXED(+)
BPCHECK_FLOAT16_MIXED(-)
BPCHECK_FLOAT16_MIXED(*)
BPCHECK_FLOAT16_MIXED(/)
#undef BPCHECK_FLOAT16_MIXED

#define BPCHECK_FLOAT16_COMPARE(op)                                 \
  template <class F>                                                \
  bool operator op(const Float16<F>& a, const Float16<F>& b) {      \
    return a.value() op b.value();                                  \
  }                                                                 \
  template <class F, float16_detail::Arithmetic C>                  \
  bool operator op(const Float16<F>& a, C c) {                      \
    return a.value() op c;                                          \
  }                                                                 \
  template <class F, float16_detail::Arithmetic C>                  \
  bool operator op(C c, const Float16<F>& a) {                      \
    return c op a.value();                                          \
  }
BPCHECK_FLOAT16_COMPARE(==)
BPCHECK_FLOAT16_COMPARE(!=)
BPCHECK_FLOAT16_COMPARE(<)
BPCHECK_FLOAT16_COMPARE(<=)
BPCHECK_FLOAT16_COMPARE(>)
BPCHECK_FLOAT16_COMPARE(>=)
#undef BPCHECK_FLOAT16_COMPARE

// Math functions: float's, rounded once to the format.
#define BPCHECK_FLOAT16_UNARY(f)                 \
  template <class F>                             \
  Float16<F> f(const Float16<F>& a) {            \
    return Float16<F>(std::f(a.value()));        \
  }
BPCHECK_ROUNDED_UNARY_FUNCTIONS(BPCHECK_FLOAT16_UNARY)
BPCHECK_FLOAT16_UNARY(abs)
BPCHECK_FLOAT16_UNARY(fabs)
BPCHECK_FLOAT16_UNARY(floor)
BPCHECK_FLOAT16_UNARY(ceil)
BPCHECK_FLOAT16_UNARY(round)
#undef BPCHECK_FLOAT16_UNARY

// frexp is exact (every 16-bit number is a float); ldexp rounds once, exact unless it leaves the format.
template <class F>
Float16<F> frexp(const Float16<F>& x, int* exponent) {
  return Float16<F>(std::frexp(x.value(), exponent));
}
template <class F>
Float16<F> ldexp(const Float16<F>& x, int exponent) {
  return Float16<F>(std::ldexp(x.value(), exponent));
}

template <class F>
Float16<F> max(const Float16<F>& a, const Float16<F>& b) {
  return a < b ? b : a;
}
template <class F>
Float16<F> min(const Float16<F>& a, const Float16<F>& b) {
  return b < a ? b : a;
}
template <class F>
Float16<F> fmax(const Float16<F>& a, const Float16<F>& b) {
  return max(a, b);
}
template <class F>
Float16<F> fmin(const Float16<F>& a, const Float16<F>& b) {
  return min(a, b);
}
template <class F>
Float16<F> pow(const Float16<F>& a, const Float16<F>& p) {
  return Float16<F>(std::pow(a.value(), p.value()));
}
template <class F, float16_detail::Arithmetic C>
Float16<F> pow(const Float16<F>& a, C p) {
  return pow(a, Float16<F>(p));
}
template <class F>
Float16<F> hypot(const Float16<F>& a, const Float16<F>& b) {
  return Float16<F>(std::hypot(a.value(), b.value()));
}
template <class F>
bool isfinite(const Float16<F>& a) {
  return std::isfinite(a.value());
}
template <class F>
bool isnan(const Float16<F>& a) {
  return std::isnan(a.value());
}
template <class F>
bool isinf(const Float16<F>& a) {
  return std::isinf(a.value());
}
template <class F>
bool signbit(const Float16<F>& a) {
  return std::signbit(a.value());
}
template <class F>
std::ostream& operator<<(std::ostream& os, const Float16<F>& a) {
  return os << a.value();
}

// Eigen asks for these on every scalar type.
template <class F>
const Float16<F>& conj(const Float16<F>& a) {
  return a;
}
template <class F>
const Float16<F>& real(const Float16<F>& a) {
  return a;
}
template <class F>
Float16<F> imag(const Float16<F>&) {
  return Float16<F>();
}
template <class F>
Float16<F> abs2(const Float16<F>& a) {
  return a * a;
}

using bf16 = Float16<Eigen::bfloat16>;
using fp16 = Float16<Eigen::half>;

template <class T>
inline constexpr bool is_float16_v = false;
template <class F>
inline constexpr bool is_float16_v<Float16<F>> = true;

}  // namespace bpcheck

/// The format's limits (fp16: max 65504, min 2⁻¹⁴, denorm_min 2⁻²⁴, ε = 2⁻¹⁰; bf16: float's range, ε = 2⁻⁷).
/// ε from the significand: Eigen 3.4's numeric_limits<Eigen::half>::epsilon() is 2⁻¹³, not 2⁻¹⁰.
template <class F>
class std::numeric_limits<bpcheck::Float16<F>> : public std::numeric_limits<F> {
  using T = bpcheck::Float16<F>;
  using L = std::numeric_limits<F>;

 public:
  static T epsilon() { return T(std::ldexp(1.0f, 1 - L::digits)); }
  static T round_error() { return T(0.5f); }
  static T min() { return T(L::min()); }
  static T max() { return T(L::max()); }
  static T lowest() { return T(L::lowest()); }
  static T infinity() { return T(L::infinity()); }
  static T quiet_NaN() { return T(L::quiet_NaN()); }
  static T signaling_NaN() { return T(L::signaling_NaN()); }
  static T denorm_min() { return T(L::denorm_min()); }
};

namespace Eigen {
template <class F>
struct NumTraits<bpcheck::Float16<F>> : GenericNumTraits<bpcheck::Float16<F>> {
  using Real = bpcheck::Float16<F>;
  using NonInteger = Real;
  using Nested = Real;
  using Literal = Real;
  enum {
    IsComplex = 0,
    IsInteger = 0,
    IsSigned = 1,
    RequireInitialization = 1,  // constructed: a new vector's entries are 0 (zeros<T>() relies on it)
    ReadCost = 1,
    AddCost = 2,
    MulCost = 2
  };
  static Real epsilon() { return std::numeric_limits<Real>::epsilon(); }
  static Real dummy_precision() { return Real(NumTraits<F>::dummy_precision()); }
  static Real highest() { return std::numeric_limits<Real>::max(); }
  static Real lowest() { return std::numeric_limits<Real>::lowest(); }
  static Real infinity() { return std::numeric_limits<Real>::infinity(); }
  static Real quiet_NaN() { return std::numeric_limits<Real>::quiet_NaN(); }
  static int digits10() { return NumTraits<F>::digits10(); }
};

namespace internal {
/// The one place 16-bit matrix products are formed: dst (+)= alpha · lhs · rhs, entry by entry as a sum
/// over k in order, every multiply and add rounded to the format, or (Accumulation::float_) in float
/// with one rounding at the end. It replaces Eigen's blocked kernel and its small-size coefficient path
/// alike, so a layer's `W * X` follows the policy whatever its shape.
template <class F, class Dst, class Lhs, class Rhs>
void float16_product(Dst& dst, const Lhs& lhs0, const Rhs& rhs0, const bpcheck::Float16<F>& alpha, bool add) {
  using T = bpcheck::Float16<F>;
  const Matrix<T, Dynamic, Dynamic> lhs = lhs0, rhs = rhs0;
  const Index rows = lhs.rows(), cols = rhs.cols(), depth = lhs.cols();
  const bool in_float = bpcheck::float16_detail::accumulation() == bpcheck::Accumulation::float_;
  Matrix<T, Dynamic, Dynamic> result(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) {
      if (in_float) {
        float sum = 0;
        for (Index k = 0; k < depth; ++k) sum += lhs(i, k).value() * rhs(k, j).value();
        result(i, j) = T(alpha.value() * sum);
      } else {
        T sum(0);
        for (Index k = 0; k < depth; ++k) sum += lhs(i, k) * rhs(k, j);
        result(i, j) = alpha == T(1) ? sum : alpha * sum;
      }
    }
  if (add)
    dst += result;
  else
    dst = result;
}

template <class Scalar>
struct float16_product_impl {
  template <class Dst, class Lhs, class Rhs>
  static void evalTo(Dst& dst, const Lhs& lhs, const Rhs& rhs) {
    float16_product(dst, lhs, rhs, Scalar(1), false);
  }
  template <class Dst, class Lhs, class Rhs>
  static void addTo(Dst& dst, const Lhs& lhs, const Rhs& rhs) {
    float16_product(dst, lhs, rhs, Scalar(1), true);
  }
  template <class Dst, class Lhs, class Rhs>
  static void subTo(Dst& dst, const Lhs& lhs, const Rhs& rhs) {
    float16_product(dst, lhs, rhs, Scalar(-1), true);
  }
  template <class Dst, class Lhs, class Rhs>
  static void scaleAndAddTo(Dst& dst, const Lhs& lhs, const Rhs& rhs, const Scalar& alpha) {
    float16_product(dst, lhs, rhs, alpha, true);
  }
};
// Eigen's own partial specialisations, taken over (by their constraint) for the 16-bit scalars: the
// blocked kernel (matrix × matrix), matrix × vector, and the coefficient path small products take.
#define BPCHECK_FLOAT16_PRODUCT(Kind)                                                                       \
  template <class Lhs, class Rhs>                                                                           \
    requires(bpcheck::is_float16_v<typename Lhs::Scalar> && std::is_same_v<typename Lhs::Scalar, typename Rhs::Scalar>) \
  struct generic_product_impl<Lhs, Rhs, DenseShape, DenseShape, Kind>                                       \
      : float16_product_impl<typename Lhs::Scalar> {};
BPCHECK_FLOAT16_PRODUCT(GemmProduct)
BPCHECK_FLOAT16_PRODUCT(GemvProduct)
BPCHECK_FLOAT16_PRODUCT(CoeffBasedProductMode)
#undef BPCHECK_FLOAT16_PRODUCT
}  // namespace internal
}  // namespace Eigen
