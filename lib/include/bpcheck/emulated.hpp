#pragma once
// Emulated: mp100 arithmetic that rounds like another rung, at random (Monte Carlo arithmetic). A layer
// factory that builds on it (`[]<class T>(bpcheck::rung<T>) { return MyLayer<T>(…); }` does when MyLayer
// is generic in its scalar) lets the verifier run the layer's own formula with float's or double's
// rounding emulated:
//
//   bpcheck::Emulated y = exp(bpcheck::Emulated(x)) + 1;   // each inexact result times (1 + δ), |δ| ≤ u
//
// Every arithmetic operation and math function computes its result in mp100 and multiplies it by
// (1 + δ), δ uniform in [−u, u] (Monte Carlo arithmetic), u the unit roundoff the verifier sets on this
// thread (lib/src/emulated_rounding.hpp; none outside such a scope: plain mp100), in one of two models:
// - the rung's (float, double): a result IEEE arithmetic leaves exact stays as it is: one mp100
//   computed exactly and the rung holds (x − x, 2x, 3/4), or an operand returned unchanged (m + 0,
//   x · 1), and a result below the rung's smallest normal number also moves by up to half its
//   subnormal spacing, which no relative δ shows;
// - a relative δ on every result (a sensitivity unit far below the rung's own, for mp100), so that the
//   spread is linear in u and can be scaled to mp100's rounding.
// Run a few times with different seeds, the same code shows how far its own rounding can move its
// result: the cancellation inside a user's formula (1 + erf(x) at negative x, log Σ eˣ next to x,
// x − mean) that no perturbation of its inputs shows. The range is mp100's: overflow is not emulated
// (it stays the rung's own), unless the scope gives the rung's overflow threshold: then a result
// beyond it becomes ±∞, as fp16's exp(12) does.
//
// Why our own type and not a Boost.Multiprecision backend: a backend's transcendental functions
// default to series built from its own (then perturbed) arithmetic, far slower and rounding like no
// libm; here each function is one correctly rounded mp100 call, perturbed once, as a libm rounds once.
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <ostream>
#include <type_traits>

#include "bpcheck/rounded_functions.hpp"
#include "bpcheck/scalar.hpp"

namespace bpcheck {

class Emulated;

namespace emulated_detail {
/// The rounding this thread emulates: u (0: none), the spacing of the rung's subnormal numbers (0:
/// none), the random stream, and the significand of the rung's numbers (0: the relative δ model).
struct State {
  mp100 u = 0;
  mp100 tiny = 0;
  std::uint64_t stream = 0;
  long bits = 0;  ///< the rung's significand, −log₂ u (24 for float's 2⁻²⁴); 0 for the relative δ model
  mp100 huge = 0;  ///< results this large round to ±∞ (the rung's overflow threshold; 0: none)
};
inline State& state() {
  thread_local State s;
  return s;
}
/// The next number of the stream, uniform in [−1, 1) (splitmix64: a fixed, portable stream per seed).
inline double next_symmetric(State& s) {
  std::uint64_t z = (s.stream += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53 * 2 - 1;
}
/// Whether the emulated rung holds x exactly: `bits` significant bits, and a multiple of `tiny` (the
/// subnormal spacing, a power of two) where that is given.
inline bool representable(const mp100& x, const State& s) {
  if (mpfr_min_prec(x.backend().data()) > mpfr_prec_t(s.bits)) return false;
  if (s.tiny == 0) return true;
  mp100 steps;
  mpfr_div(steps.backend().data(), x.backend().data(), s.tiny.backend().data(), MPFR_RNDN);  // exact
  return mpfr_integer_p(steps.backend().data()) != 0;
}
/// Whether this thread emulates a rung's rounding, in which IEEE arithmetic leaves some results exact.
inline bool keeps_exact_results() { return state().bits > 0; }
/// One result as this thread's emulation rounds it (see the file's head); `inexact`: mp100 rounded
/// the operation that made it. In the rung's model a result mp100 computed exactly and the rung holds
/// stays; one mp100 rounded onto a number of the rung (tanh(−128) is −1 in mp100 too) still moves.
inline mp100 rounded(mp100 x, bool inexact) {
  State& s = state();
  if (s.u == 0 || !boost::multiprecision::isfinite(x)) return x;
  if (s.bits > 0 && (x == 0 || (!inexact && representable(x, s)))) return x;
  x += x * (s.u * next_symmetric(s));
  if (s.tiny != 0) x += s.tiny * (next_symmetric(s) / 2);
  if (s.huge != 0 && abs(x) >= s.huge) return x > 0 ? std::numeric_limits<mp100>::infinity() : -std::numeric_limits<mp100>::infinity();
  return x;
}
/// f() in mp100, rounded as emulated; MPFR's inexact flag, cleared before f, says whether mp100 rounded.
template <class F>
mp100 computed(const F& f) {
  mpfr_clear_inexflag();
  mp100 x = f();
  const bool inexact = mpfr_inexflag_p() != 0;
  return rounded(std::move(x), inexact);
}
template <class C>
concept Arithmetic = std::is_arithmetic_v<C>;
}  // namespace emulated_detail

class Emulated {
 public:
  Emulated() = default;
  template <emulated_detail::Arithmetic A>
  Emulated(A a) : v_(a) {}  // NOLINT: literals convert, as for any scalar
  explicit Emulated(mp100 v) : v_(std::move(v)) {}

  /// The exact (mp100) value this number holds.
  const mp100& value() const { return v_; }
  template <emulated_detail::Arithmetic A>
  explicit operator A() const {
    return v_.convert_to<A>();
  }

  /// One operation's result f() (an mp100 value), rounded as emulated.
  template <class F>
  static Emulated of(const F& f) {
    return Emulated(emulated_detail::computed(f));
  }

  Emulated& operator+=(const Emulated& o);
  Emulated& operator-=(const Emulated& o);
  Emulated& operator*=(const Emulated& o);
  Emulated& operator/=(const Emulated& o);

 private:
  mp100 v_ = 0;
};

// In the rung's model, an operation that returns an operand unchanged (x + 0, x − 0, x · 1, x / 1) is
// exact in IEEE arithmetic whatever x, which earlier roundings left off the rung's numbers: the
// largest output of a max-shifted log-softmax, x − (m + log 1), is 0 exactly.
inline Emulated operator+(const Emulated& a, const Emulated& b) {
  if (emulated_detail::keeps_exact_results() && (a.value() == 0 || b.value() == 0)) return a.value() == 0 ? b : a;
  return Emulated::of([&] { return mp100(a.value() + b.value()); });
}
inline Emulated operator-(const Emulated& a) { return Emulated(mp100(-a.value())); }
inline Emulated operator-(const Emulated& a, const Emulated& b) {
  if (emulated_detail::keeps_exact_results() && b.value() == 0) return a;
  return Emulated::of([&] { return mp100(a.value() - b.value()); });
}
inline Emulated operator*(const Emulated& a, const Emulated& b) {
  if (emulated_detail::keeps_exact_results() && (a.value() == 1 || b.value() == 1)) return a.value() == 1 ? b : a;
  return Emulated::of([&] { return mp100(a.value() * b.value()); });
}
inline Emulated operator/(const Emulated& a, const Emulated& b) {
  if (emulated_detail::keeps_exact_results() && b.value() == 1) return a;
  return Emulated::of([&] { return mp100(a.value() / b.value()); });
}
inline Emulated& Emulated::operator+=(const Emulated& o) { return *this = *this + o; }
inline Emulated& Emulated::operator-=(const Emulated& o) { return *this = *this - o; }
inline Emulated& Emulated::operator*=(const Emulated& o) { return *this = *this * o; }
inline Emulated& Emulated::operator/=(const Emulated& o) { return *this = *this / o; }
inline Emulated operator+(const Emulated& a) { return a; }

#define BPCHECK_EMULATED_MIXED(op)                                   \
  template <emulated_detail::Arithmetic C>                           \
  Emulated operator op(const Emulated& a, C c) {                     \
    return a op Emulated(c);                                         \
  }                                                                  \
  template <emulated_detail::Arithmetic C>                           \
  Emulated operator op(C c, const Emulated& a) {                     \
    return Emulated(c) op a;                                         \
  }
BPCHECK_EMULATED_MIXED(+)
BPCHECK_EMULATED_MIXED(-)
BPCHECK_EMULATED_MIXED(*)
BPCHECK_EMULATED_MIXED(/)
#undef BPCHECK_EMULATED_MIXED

// Comparisons are exact: a branch follows the values the emulated rounding produced.
#define BPCHECK_EMULATED_COMPARE(op)                                         \
  inline bool operator op(const Emulated& a, const Emulated& b) {            \
    return a.value() op b.value();                                           \
  }                                                                          \
  template <emulated_detail::Arithmetic C>                                   \
  bool operator op(const Emulated& a, C c) {                                 \
    return a.value() op c;                                                   \
  }                                                                          \
  template <emulated_detail::Arithmetic C>                                   \
  bool operator op(C c, const Emulated& a) {                                 \
    return c op a.value();                                                   \
  }
BPCHECK_EMULATED_COMPARE(==)
BPCHECK_EMULATED_COMPARE(!=)
BPCHECK_EMULATED_COMPARE(<)
BPCHECK_EMULATED_COMPARE(<=)
BPCHECK_EMULATED_COMPARE(>)
BPCHECK_EMULATED_COMPARE(>=)
#undef BPCHECK_EMULATED_COMPARE

// Math functions: the correctly rounded mp100 value, rounded once as emulated (a libm call rounds once).
#define BPCHECK_EMULATED_UNARY(f)                           \
  inline Emulated f(const Emulated& a) {                    \
    using std::f;                                           \
    return Emulated::of([&] { return mp100(f(a.value())); }); \
  }
BPCHECK_ROUNDED_UNARY_FUNCTIONS(BPCHECK_EMULATED_UNARY)
#undef BPCHECK_EMULATED_UNARY

// Exact in any rung: no rounding to emulate.
inline Emulated abs(const Emulated& a) { return Emulated(mp100(abs(a.value()))); }
inline Emulated fabs(const Emulated& a) { return abs(a); }
inline Emulated floor(const Emulated& a) { return Emulated(mp100(floor(a.value()))); }
inline Emulated ceil(const Emulated& a) { return Emulated(mp100(ceil(a.value()))); }
inline Emulated round(const Emulated& a) { return Emulated(mp100(round(a.value()))); }
inline Emulated max(const Emulated& a, const Emulated& b) { return a < b ? b : a; }
inline Emulated min(const Emulated& a, const Emulated& b) { return b < a ? b : a; }
inline Emulated fmax(const Emulated& a, const Emulated& b) { return max(a, b); }
inline Emulated fmin(const Emulated& a, const Emulated& b) { return min(a, b); }

inline Emulated pow(const Emulated& a, const Emulated& p) {
  return Emulated::of([&] { return mp100(pow(a.value(), p.value())); });
}
template <emulated_detail::Arithmetic C>
Emulated pow(const Emulated& a, C p) {
  return pow(a, Emulated(p));
}
template <emulated_detail::Arithmetic C>
Emulated pow(C a, const Emulated& p) {
  return pow(Emulated(a), p);
}
inline Emulated hypot(const Emulated& a, const Emulated& b) {
  return Emulated::of([&] { return mp100(sqrt(a.value() * a.value() + b.value() * b.value())); });
}

inline bool isfinite(const Emulated& a) { return boost::multiprecision::isfinite(a.value()); }
inline bool isnan(const Emulated& a) { return boost::multiprecision::isnan(a.value()); }
inline bool isinf(const Emulated& a) { return boost::multiprecision::isinf(a.value()); }
inline bool signbit(const Emulated& a) { return boost::multiprecision::signbit(a.value()) != 0; }

/// Prints the exact value (what to_string shows for any rung).
inline std::ostream& operator<<(std::ostream& os, const Emulated& a) { return os << a.value(); }

// Eigen asks for these on every scalar type.
inline const Emulated& conj(const Emulated& a) { return a; }
inline const Emulated& real(const Emulated& a) { return a; }
inline Emulated imag(const Emulated&) { return Emulated(); }
inline Emulated abs2(const Emulated& a) { return a * a; }

template <>
struct scalar_traits<Emulated> {
  using real = Emulated;
  static constexpr bool is_dual = false;
  static constexpr const char* name = "emulated";
  static constexpr int print_digits = scalar_traits<mp100>::print_digits;
  /// 2u of the emulated rung, so that code which guards with ε behaves as it does there.
  static Emulated epsilon() {
    const mp100& u = emulated_detail::state().u;
    return u == 0 ? Emulated(scalar_traits<mp100>::epsilon()) : Emulated(mp100(2 * u));
  }
};
template <>
inline constexpr bool is_emulated_v<Emulated> = true;

}  // namespace bpcheck

template <>
class std::numeric_limits<bpcheck::Emulated> : public std::numeric_limits<bpcheck::mp100> {
  using E = bpcheck::Emulated;
  using M = std::numeric_limits<bpcheck::mp100>;

 public:
  static E epsilon() { return bpcheck::scalar_traits<E>::epsilon(); }
  static E min() { return E(M::min()); }
  static E max() { return E(M::max()); }
  static E lowest() { return E(M::lowest()); }
  static E infinity() { return E(M::infinity()); }
  static E quiet_NaN() { return E(M::quiet_NaN()); }
  static E denorm_min() { return E(M::denorm_min()); }
  static E round_error() { return E(M::round_error()); }
};

namespace Eigen {
template <>
struct NumTraits<bpcheck::Emulated> : GenericNumTraits<bpcheck::Emulated> {
  using Real = bpcheck::Emulated;
  using NonInteger = Real;
  using Nested = Real;
  using Literal = Real;
  enum {
    IsComplex = 0,
    IsInteger = 0,
    IsSigned = 1,
    RequireInitialization = 1,
    ReadCost = 2 * NumTraits<bpcheck::mp100>::ReadCost,
    AddCost = 2 * NumTraits<bpcheck::mp100>::AddCost,
    MulCost = 2 * NumTraits<bpcheck::mp100>::MulCost
  };
  static Real epsilon() { return bpcheck::scalar_traits<Real>::epsilon(); }
  static Real dummy_precision() { return Real(NumTraits<bpcheck::mp100>::dummy_precision()); }
  static Real highest() { return Real(NumTraits<bpcheck::mp100>::highest()); }
  static Real lowest() { return Real(NumTraits<bpcheck::mp100>::lowest()); }
  static int digits10() { return NumTraits<bpcheck::mp100>::digits10(); }
};
}  // namespace Eigen
