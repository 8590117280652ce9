#pragma once
// Forward-mode dual numbers with N tangents carried at once.
//
//   Dual<double, 2> x{3.0, {1.0, 0.0}};     // value 3, seeded along the first direction
//   auto y = tanh(x) * x;                   // y.v = tanh(3)·3, y.d[0] = dy/dx
//
// A dual number a + Σ_k d_k ε_k (ε_j ε_k = 0) carries a value and N directional derivatives, so
// one pass of a layer's `forward` gives N columns of its Jacobian (a JVP per lane).
//
// Why our own type and not Boost.Math's autodiff_fvar: fvar's operators are unconstrained
// templates, which makes every Eigen matrix product between fvar matrices ambiguous, it has no
// log1p/expm1, and it carries one tangent per pass. This type is a plain struct whose math is
// free functions, each headed by the identity it implements.
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

namespace bpcheck {

template <class T, int N>
struct Dual {
  static_assert(N >= 1, "a Dual needs at least one tangent lane");
  T v{};                 ///< value
  std::array<T, N> d{};  ///< tangents, one per direction

  // The tangents start at zero by their member initialiser (value-initialised T).
  Dual() = default;
  Dual(const T& value) : v(value) {}  // NOLINT: a constant is a dual with zero tangent
  template <class A>
    requires(std::is_arithmetic_v<A> && !std::is_same_v<A, T>)
  Dual(A value) : v(value) {}  // NOLINT: literals in generic layer code
  Dual(const T& value, const std::array<T, N>& tangents) : v(value), d(tangents) {}

  Dual& operator+=(const Dual& o) { return *this = *this + o; }
  Dual& operator-=(const Dual& o) { return *this = *this - o; }
  Dual& operator*=(const Dual& o) { return *this = *this * o; }
  Dual& operator/=(const Dual& o) { return *this = *this / o; }
};

namespace dual_detail {
/// How many leading lanes the current pass seeds (a JVP of 5 directions seeds 5 of 8): lanes beyond
/// it hold zeros and stay zero, so operations on multiprecision duals skip them, where each lane
/// costs a multiplication of 100 digits. Lanes are independent (lane k of a result reads lane k of
/// the operands only), so skipping can never change a seeded lane. Per thread, as a pass runs on
/// one; set by ActiveLanes. float and double duals always run every lane (cheaper than asking).
inline thread_local int active_lanes = 1 << 30;

template <class T, int N>
int lanes() {
  if constexpr (std::is_floating_point_v<T>)
    return N;
  else
    return active_lanes < N ? active_lanes : N;
}
}  // namespace dual_detail

/// Declares that dual numbers on this thread carry at most `lanes` seeded tangents until the scope ends.
class ActiveLanes {
 public:
  explicit ActiveLanes(int lanes) : saved_(dual_detail::active_lanes) { dual_detail::active_lanes = lanes; }
  ~ActiveLanes() { dual_detail::active_lanes = saved_; }
  ActiveLanes(const ActiveLanes&) = delete;
  ActiveLanes& operator=(const ActiveLanes&) = delete;

 private:
  int saved_;
};

namespace dual_detail {
// result.d = scale · a.d
template <class T, int N>
Dual<T, N> chain(const T& value, const T& scale, const Dual<T, N>& a) {
  Dual<T, N> r;
  r.v = value;
  for (int k = 0, n = dual_detail::lanes<T, N>(); k < n; ++k) r.d[k] = scale * a.d[k];
  return r;
}
}  // namespace dual_detail

// (a + a'ε) + (b + b'ε) = (a + b) + (a' + b')ε
template <class T, int N>
Dual<T, N> operator+(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r;
  r.v = a.v + b.v;
  for (int k = 0, n = dual_detail::lanes<T, N>(); k < n; ++k) r.d[k] = a.d[k] + b.d[k];
  return r;
}
template <class T, int N>
Dual<T, N> operator-(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r;
  r.v = a.v - b.v;
  for (int k = 0, n = dual_detail::lanes<T, N>(); k < n; ++k) r.d[k] = a.d[k] - b.d[k];
  return r;
}
template <class T, int N>
Dual<T, N> operator-(const Dual<T, N>& a) {
  return dual_detail::chain(T(-a.v), T(-1), a);
}
template <class T, int N>
Dual<T, N> operator+(const Dual<T, N>& a) {
  return a;
}
// (a + a'ε)(b + b'ε) = ab + (a'b + ab')ε
template <class T, int N>
Dual<T, N> operator*(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r;
  r.v = a.v * b.v;
  for (int k = 0, n = dual_detail::lanes<T, N>(); k < n; ++k) r.d[k] = a.d[k] * b.v + a.v * b.d[k];
  return r;
}
// (a + a'ε)/(b + b'ε) = a/b + (a' − (a/b) b')/b ε
template <class T, int N>
Dual<T, N> operator/(const Dual<T, N>& a, const Dual<T, N>& b) {
  Dual<T, N> r;
  r.v = a.v / b.v;
  for (int k = 0, n = dual_detail::lanes<T, N>(); k < n; ++k) r.d[k] = (a.d[k] - r.v * b.d[k]) / b.v;
  return r;
}

// Mixed operations with a constant c (of T or an arithmetic type) go through Dual(c).
#define BPCHECK_DUAL_MIXED_OP(op)                                                \
  template <class T, int N, class C>                                             \
    requires(std::is_arithmetic_v<C> || std::is_same_v<C, T>)                    \
  Dual<T, N> operator op(const Dual<T, N>& a, const C& c) {                      \
    return a op Dual<T, N>(c);                                                   \
  }                                                                              \
  template <class T, int N, class C>                                             \
    requires(std::is_arithmetic_v<C> || std::is_same_v<C, T>)                    \
  Dual<T, N> operator op(const C& c, const Dual<T, N>& a) {                      \
    return Dual<T, N>(c) op a;                                                   \
  }
BPCHECK_DUAL_MIXED_OP(+)
BPCHECK_DUAL_MIXED_OP(-)
BPCHECK_DUAL_MIXED_OP(*)
BPCHECK_DUAL_MIXED_OP(/)
#undef BPCHECK_DUAL_MIXED_OP

// Comparisons look at the value only: a branch in `forward` picks one smooth piece.
#define BPCHECK_DUAL_COMPARE(op)                                                        \
  template <class T, int N>                                                             \
  bool operator op(const Dual<T, N>& a, const Dual<T, N>& b) {                          \
    return a.v op b.v;                                                                  \
  }                                                                                     \
  template <class T, int N, class C>                                                    \
    requires(std::is_arithmetic_v<C> || std::is_same_v<C, T>)                           \
  bool operator op(const Dual<T, N>& a, const C& c) {                                   \
    return a.v op T(c);                                                                 \
  }                                                                                     \
  template <class T, int N, class C>                                                    \
    requires(std::is_arithmetic_v<C> || std::is_same_v<C, T>)                           \
  bool operator op(const C& c, const Dual<T, N>& a) {                                   \
    return T(c) op a.v;                                                                 \
  }
BPCHECK_DUAL_COMPARE(<)
BPCHECK_DUAL_COMPARE(>)
BPCHECK_DUAL_COMPARE(<=)
BPCHECK_DUAL_COMPARE(>=)
BPCHECK_DUAL_COMPARE(==)
BPCHECK_DUAL_COMPARE(!=)
#undef BPCHECK_DUAL_COMPARE

// exp(a + hε) = exp(a) + exp(a)·h ε
template <class T, int N>
Dual<T, N> exp(const Dual<T, N>& a) {
  using std::exp;
  const T e = exp(a.v);
  return dual_detail::chain(e, e, a);
}
// expm1(a + hε) = expm1(a) + exp(a)·h ε
template <class T, int N>
Dual<T, N> expm1(const Dual<T, N>& a) {
  using std::exp;
  using std::expm1;
  return dual_detail::chain(T(expm1(a.v)), T(exp(a.v)), a);
}
// log(a + hε) = log(a) + h/a ε
template <class T, int N>
Dual<T, N> log(const Dual<T, N>& a) {
  using std::log;
  return dual_detail::chain(T(log(a.v)), T(T(1) / a.v), a);
}
// log1p(a + hε) = log1p(a) + h/(1 + a) ε
template <class T, int N>
Dual<T, N> log1p(const Dual<T, N>& a) {
  using std::log1p;
  return dual_detail::chain(T(log1p(a.v)), T(T(1) / (T(1) + a.v)), a);
}
// sqrt(a + hε) = sqrt(a) + h/(2 sqrt(a)) ε
template <class T, int N>
Dual<T, N> sqrt(const Dual<T, N>& a) {
  using std::sqrt;
  const T s = sqrt(a.v);
  return dual_detail::chain(s, T(T(1) / (T(2) * s)), a);
}
// tanh(a + hε) = tanh(a) + sech²(a)·h ε, sech²(a) = 4e^{−2|a|}/(1 + e^{−2|a|})²: 1 − tanh²(a) cancels
// to 0 in saturation (|a| > 9 in float), which made the JVP oracle lose all digits there.
template <class T, int N>
Dual<T, N> tanh(const Dual<T, N>& a) {
  using std::abs;
  using std::exp;
  using std::tanh;
  const T e = exp(T(-2) * T(abs(a.v)));
  const T d = T(1) + e;
  return dual_detail::chain(T(tanh(a.v)), T(T(4) * e / (d * d)), a);
}
// erf(a + hε) = erf(a) + (2/√π) exp(−a²)·h ε
template <class T, int N>
Dual<T, N> erf(const Dual<T, N>& a) {
  using std::erf;
  using std::exp;
  using std::sqrt;
  using std::acos;
  const T two_over_sqrt_pi = T(2) / sqrt(acos(T(-1)));
  return dual_detail::chain(T(erf(a.v)), T(two_over_sqrt_pi * exp(-a.v * a.v)), a);
}
// erfc(a + hε) = erfc(a) − (2/√π) exp(−a²)·h ε
template <class T, int N>
Dual<T, N> erfc(const Dual<T, N>& a) {
  using std::erfc;
  using std::exp;
  using std::sqrt;
  using std::acos;
  const T two_over_sqrt_pi = T(2) / sqrt(acos(T(-1)));
  return dual_detail::chain(T(erfc(a.v)), T(-two_over_sqrt_pi * exp(-a.v * a.v)), a);
}
// sin(a + hε) = sin(a) + cos(a)·h ε
template <class T, int N>
Dual<T, N> sin(const Dual<T, N>& a) {
  using std::cos;
  using std::sin;
  return dual_detail::chain(T(sin(a.v)), T(cos(a.v)), a);
}
// cos(a + hε) = cos(a) − sin(a)·h ε
template <class T, int N>
Dual<T, N> cos(const Dual<T, N>& a) {
  using std::cos;
  using std::sin;
  return dual_detail::chain(T(cos(a.v)), T(-sin(a.v)), a);
}
// |a + hε| = |a| + sign(a)·h ε (the derivative at 0 is taken as 0's sign: +)
template <class T, int N>
Dual<T, N> abs(const Dual<T, N>& a) {
  return a.v < T(0) ? -a : a;
}
template <class T, int N>
Dual<T, N> fabs(const Dual<T, N>& a) {
  return abs(a);
}
// pow(a + hε, p) = aᵖ + p·aᵖ⁻¹·h ε for a constant exponent p
template <class T, int N>
Dual<T, N> pow(const Dual<T, N>& a, const T& p) {
  using std::pow;
  return dual_detail::chain(T(pow(a.v, p)), T(p * pow(a.v, T(p - T(1)))), a);
}
template <class T, int N>
Dual<T, N> max(const Dual<T, N>& a, const Dual<T, N>& b) {
  return a.v < b.v ? b : a;
}
template <class T, int N>
Dual<T, N> min(const Dual<T, N>& a, const Dual<T, N>& b) {
  return b.v < a.v ? b : a;
}
template <class T, int N>
bool isfinite(const Dual<T, N>& a) {
  using std::isfinite;
  if (!isfinite(a.v)) return false;
  for (const T& t : a.d)
    if (!isfinite(t)) return false;
  return true;
}
template <class T, int N>
bool isnan(const Dual<T, N>& a) {
  using std::isnan;
  if (isnan(a.v)) return true;
  for (const T& t : a.d)
    if (isnan(t)) return true;
  return false;
}
template <class T, int N>
bool isinf(const Dual<T, N>& a) {
  return !isfinite(a) && !isnan(a);
}
// Eigen asks for these on every scalar type.
template <class T, int N>
const Dual<T, N>& conj(const Dual<T, N>& a) {
  return a;
}
template <class T, int N>
const Dual<T, N>& real(const Dual<T, N>& a) {
  return a;
}
template <class T, int N>
Dual<T, N> imag(const Dual<T, N>&) {
  return Dual<T, N>();
}
template <class T, int N>
Dual<T, N> abs2(const Dual<T, N>& a) {
  return a * a;
}

}  // namespace bpcheck

namespace Eigen {
template <class T, int N>
struct NumTraits<bpcheck::Dual<T, N>> : NumTraits<T> {
  using Real = bpcheck::Dual<T, N>;
  using NonInteger = Real;
  using Nested = Real;
  using Literal = Real;
  enum {
    IsComplex = 0,
    IsInteger = 0,
    IsSigned = 1,
    RequireInitialization = 1,
    ReadCost = (N + 1) * NumTraits<T>::ReadCost,
    AddCost = (N + 1) * NumTraits<T>::AddCost,
    MulCost = (2 * N + 1) * NumTraits<T>::MulCost
  };
  static Real epsilon() { return Real(NumTraits<T>::epsilon()); }
  static Real dummy_precision() { return Real(NumTraits<T>::dummy_precision()); }
  static Real highest() { return Real(NumTraits<T>::highest()); }
  static Real lowest() { return Real(NumTraits<T>::lowest()); }
  static int digits10() { return NumTraits<T>::digits10(); }
};
}  // namespace Eigen

namespace Eigen::internal {
/// Matrix products of multiprecision duals, lane by lane: (A + A'ε)(B + B'ε) = AB + (A'B + AB')ε as
/// 1 + 2·lanes products of plain matrices, where Eigen's kernel would build and copy a temporary
/// dual (nine 100-digit numbers) for every multiply-add: about twice as fast for the dense layers of
/// the JVP oracle, and the same sums. Row-major results reach this through Eigen's transposition.
template <typename Index, class T, int N, int LhsStorageOrder, bool ConjugateLhs, int RhsStorageOrder,
          bool ConjugateRhs, int ResInnerStride>
  requires(!std::is_floating_point_v<T>)
struct general_matrix_matrix_product<Index, bpcheck::Dual<T, N>, LhsStorageOrder, ConjugateLhs, bpcheck::Dual<T, N>,
                                     RhsStorageOrder, ConjugateRhs, ColMajor, ResInnerStride> {
  using D = bpcheck::Dual<T, N>;
  using ResScalar = D;
  using Traits = gebp_traits<D, D>;
  using Plain = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;

  /// res += alpha · lhs · rhs (rows × depth times depth × cols), as Eigen's kernel does.
  static void run(Index rows, Index cols, Index depth, const D* lhs, Index lhsStride, const D* rhs, Index rhsStride,
                  D* res, Index resIncr, Index resStride, D alpha, level3_blocking<D, D>& /*blocking*/,
                  GemmParallelInfo<Index>* /*info*/ = nullptr) {
    const const_blas_data_mapper<D, Index, LhsStorageOrder> A(lhs, lhsStride);
    const const_blas_data_mapper<D, Index, RhsStorageOrder> B(rhs, rhsStride);
    blas_data_mapper<D, Index, ColMajor, Unaligned, ResInnerStride> C(res, resStride, resIncr);
    const int lanes = bpcheck::dual_detail::lanes<T, N>();
    Plain Av, Bv;
    split(A, rows, depth, -1, Av);
    split(B, depth, cols, -1, Bv);
    Plain product = Av * Bv;
    std::vector<Plain> tangents(std::size_t(lanes > 0 ? lanes : 0));
    for (int l = 0; l < lanes; ++l) {
      Plain Ad, Bd;
      const bool a_seeded = split(A, rows, depth, l, Ad), b_seeded = split(B, depth, cols, l, Bd);
      Plain& t = tangents[std::size_t(l)];
      t = Plain::Zero(rows, cols);
      if (a_seeded) t.noalias() += Ad * Bv;  // a lane of zeros adds nothing: skip its product
      if (b_seeded) t.noalias() += Av * Bd;
    }
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < rows; ++i) {
        D c(product(i, j));
        for (int l = 0; l < lanes; ++l) c.d[std::size_t(l)] = tangents[std::size_t(l)](i, j);
        C(i, j) += alpha * c;
      }
  }

 private:
  /// The values (lane −1) or one tangent lane of a mapped r × c block into `out`; whether any is nonzero.
  template <class Mapper>
  static bool split(const Mapper& M, Index r, Index c, int lane, Plain& out) {
    out.resize(r, c);
    bool nonzero = false;
    for (Index j = 0; j < c; ++j)
      for (Index i = 0; i < r; ++i) {
        out(i, j) = lane < 0 ? M(i, j).v : M(i, j).d[std::size_t(lane)];
        nonzero = nonzero || out(i, j) != 0;
      }
    return nonzero;
  }
};
}  // namespace Eigen::internal
