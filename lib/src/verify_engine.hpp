#pragma once
// The verification engine's shared parts (private to the library): a point and its exact quantities,
// the comparison against per-entry bounds, the verdict rules, the collector of results, and the
// oracle passes the checks share. verify_checks.hpp holds one function per check; verify_points.hpp
// draws the points and runs the checks on every rung.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "bpcheck/layer.hpp"
#include "bpcheck/random.hpp"
#include "bpcheck/scalar.hpp"
#include "bpcheck/verify/finite_difference.hpp"
#include "bpcheck/verify/jvp.hpp"
#include "bpcheck/verify/result.hpp"
#include "bpcheck/verify/rounding.hpp"
#include "bpcheck/verify/verify.hpp"
#include "emulated_rounding.hpp"
#include "jvp_impl.hpp"
#include "rounding_bound.hpp"
#include "verdict.hpp"

namespace bpcheck {
namespace verify_detail {

using Clock = std::chrono::steady_clock;

/// Thrown when a verification's time limit has passed, wherever the point then is: the point is
/// abandoned and reported as not evaluated. Not a std::exception, so that no check takes it for a
/// throw of the layer's own.
struct time_exceeded {};

/// The deadline of the verification running on this thread, if any.
inline std::optional<Clock::time_point>& thread_deadline() {
  thread_local std::optional<Clock::time_point> deadline;
  return deadline;
}
/// Throws time_exceeded once the deadline has passed; called at every check, every layer built and
/// every step of the Taylor ladder, so that a point is abandoned within one pass of the layer.
inline void check_deadline() {
  const auto& deadline = thread_deadline();
  if (deadline && Clock::now() > *deadline) throw time_exceeded{};
}
/// Sets this thread's deadline while it lives.
class DeadlineScope {
 public:
  explicit DeadlineScope(std::optional<Clock::time_point> deadline) : saved_(thread_deadline()) {
    thread_deadline() = deadline;
  }
  ~DeadlineScope() { thread_deadline() = saved_; }
  DeadlineScope(const DeadlineScope&) = delete;
  DeadlineScope& operator=(const DeadlineScope&) = delete;

 private:
  std::optional<Clock::time_point> saved_;
};

/// MPFR's largest exponent on this thread (thread-local in MPFR) while it lives. mp100's own range
/// is vast: exp(1e8) is finite there, and cos of it makes MPFR compute π to tens of millions of bits.
/// Within a point the range stays at 2^65536 (argument reductions take at most that many bits of π);
/// the probe of a drawn point (evaluable_here) narrows it to double's.
class ExponentRange {
 public:
  explicit ExponentRange(mpfr_exp_t emax) : saved_(mpfr_get_emax()) { mpfr_set_emax(emax); }
  ~ExponentRange() { mpfr_set_emax(saved_); }
  ExponentRange(const ExponentRange&) = delete;
  ExponentRange& operator=(const ExponentRange&) = delete;
  static constexpr mpfr_exp_t within_point = mpfr_exp_t(1) << 16;
  static constexpr mpfr_exp_t of_double = 1024;

 private:
  mpfr_exp_t saved_;
};

/// One point, exact in every rung (drawn in double, rounded to float).
struct Point {
  Matrix<mp100> X;
  Vector<mp100> theta;
  Matrix<mp100> U;  ///< cotangent, the shape of the output
  Vector<mp100> v;  ///< direction in z = [vec X; θ] for the Taylor and dot-product checks
};

/// The exact quantities at a point, from the oracles in mp100.
struct Truth {
  Matrix<mp100> Y;
  bool full = true;       ///< J formed; otherwise projections only
  Matrix<mp100> J;        ///< [J_x J_θ], out·B × (in·B + P)
  Vector<mp100> g;        ///< Jᵀu
  Vector<mp100> g_scale;  ///< |J|ᵀ|u|
  Matrix<float> V;        ///< projection directions (n × k), float-exact: kept as floats (an eighth of the memory)
  Matrix<mp100> JV;       ///< J V
  Matrix<mp100> JVv;      ///< J [V v], from the same pass
  Index evaluations = 0;          ///< dual-number passes that formed it
  Clock::duration time{};         ///< how long that took (charged to mp100's backward check)
};

inline double to_double(const mp100& x) { return x.convert_to<double>(); }

template <class T>
Vector<T> vec(const Matrix<T>& M) {
  return Eigen::Map<const Vector<T>>(M.data(), M.size());
}

inline double float_round(double x) { return double(float(x)); }


/// Where entry i of z = [vec X; θ] (or of the gradient) lives, for people.
struct Layout {
  Index in_rows = 0, batch = 0;
  std::vector<ParameterBlock> blocks;
  std::string where(Index i) const {
    const Index nx = in_rows * batch;
    if (i < nx)
      return fmt::format("dX[{},{}] (input {}, sample {})", i % in_rows, i / in_rows, i % in_rows, i / in_rows);
    const Index t = i - nx;
    for (const auto& b : blocks) {
      if (t >= b.offset && t < b.offset + b.size()) {
        const Index k = t - b.offset;
        if (b.is_vector || b.cols == 1) return fmt::format("d{}[{}]", b.name, k);
        return fmt::format("d{}[{},{}]", b.name, k % b.rows, k / b.rows);
      }
    }
    return fmt::format("dθ[{}]", t);
  }
  std::string block(Index i) const {
    const Index nx = in_rows * batch;
    if (i < nx) return "x";
    for (const auto& b : blocks)
      if (i - nx >= b.offset && i - nx < b.offset + b.size()) return b.name;
    return "θ";
  }
};

/// What compare() found beside the ratio: whether an error is gross (at least `gross_fraction` of the
/// largest value in its block and above its entry of `gross_floor`, when given: a wrong result, as
/// opposed to digits lost in small entries or in a block that cancels to nearly 0), and whether every
/// compared value is finite.
struct Compared {
  bool gross = false;
  bool finite = true;
};

/// Compares `actual` with `expected` entry by entry against per-entry bounds; fills the result's
/// value (max error/bound ratio scaled to the threshold 1), digits and worst entries.
template <class A>
Compared compare(CheckResult& r, const Vector<mp100>& expected, const Vector<A>& actual, const Vector<mp100>& bound,
             const Vector<mp100>& scale, const std::function<std::string(Index)>& where,
             const std::function<std::string(Index)>& block, const Vector<mp100>* gross_floor = nullptr,
             double gross_fraction = Tolerances{}.gross_fraction) {
  // Entry by entry on vectors of up to a layer's parameter count: the arithmetic runs in place on
  // MPFR (boost's operators make a temporary, with a thread-local lookup, per operation), and the
  // entries' blocks are looked up once.
  using std::abs;
  struct Row {
    double ratio;
    Index i;
  };
  const Index n = expected.size();
  // The largest |expected| or scale per block, and each entry's block.
  std::vector<std::string> block_names;
  std::vector<mp100> block_max;
  std::vector<int> block_of(std::size_t(n), 0);
  {
    std::map<std::string, int> ids;
    std::string last;
    int last_id = -1;
    for (Index i = 0; i < n; ++i) {
      std::string name = block(i);
      if (last_id < 0 || name != last) {
        auto [it, inserted] = ids.try_emplace(name, int(block_names.size()));
        if (inserted) {
          block_names.push_back(name);
          block_max.emplace_back(0);
        }
        last_id = it->second;
        last = std::move(name);
      }
      block_of[std::size_t(i)] = last_id;
      mpfr_ptr m = block_max[std::size_t(last_id)].backend().data();
      if (mpfr_cmpabs(expected(i).backend().data(), m) > 0) mpfr_abs(m, expected(i).backend().data(), MPFR_RNDN);
      if (mpfr_cmp(scale(i).backend().data(), m) > 0) mpfr_set(m, scale(i).backend().data(), MPFR_RNDN);
    }
  }
  std::vector<Row> rows;
  rows.reserve(std::size_t(n));
  double worst_ratio = 0;
  double worst_relative = 0;  // max err / max(|expected|, scale): the fewest digits
  bool digits_lost = false;   // an error where |expected| and scale are 0
  bool gross = false, finite = true;
  mp100 a, err, q;
  mpfr_ptr pa = a.backend().data(), perr = err.backend().data(), pq = q.backend().data();
  const double inf = std::numeric_limits<double>::infinity();
  for (Index i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<A, double>)
      mpfr_set_d(pa, actual(i), MPFR_RNDN);
    else if constexpr (std::is_same_v<A, float>)
      mpfr_set_flt(pa, actual(i), MPFR_RNDN);
    else
      a = scalar_cast<mp100>(actual(i));
    double ratio;
    if (!mpfr_number_p(pa)) {
      ratio = inf;
      finite = false;
    } else {
      mpfr_srcptr e = expected(i).backend().data();
      mpfr_sub(perr, pa, e, MPFR_RNDN);
      mpfr_abs(perr, perr, MPFR_RNDN);
      const bool zero = mpfr_zero_p(perr);
      if (zero) {
        ratio = 0.0;
      } else if (mpfr_zero_p(bound(i).backend().data())) {
        ratio = inf;
      } else {
        mpfr_div(pq, perr, bound(i).backend().data(), MPFR_RNDN);
        ratio = mpfr_get_d(pq, MPFR_RNDN);
      }
      if (!zero) {
        mpfr_srcptr s = scale(i).backend().data();
        mpfr_srcptr denom = mpfr_cmpabs(e, s) >= 0 ? e : s;
        if (mpfr_zero_p(denom)) {
          digits_lost = true;
        } else {
          mpfr_div(pq, perr, denom, MPFR_RNDN);
          worst_relative = std::max(worst_relative, std::abs(mpfr_get_d(pq, MPFR_RNDN)));
        }
        // gross: at least gross_fraction of the largest value in its block, and above the gross floor
        if (!gross)
          gross = gross_error(err, block_max[std::size_t(block_of[std::size_t(i)])],
                              gross_floor ? &(*gross_floor)(i) : nullptr, gross_fraction);
      }
    }
    worst_ratio = std::max(worst_ratio, ratio);
    rows.push_back({ratio, i});
  }
  double min_digits = scalar_traits<real_t<A>>::print_digits;
  if (worst_relative > 0) min_digits = std::min(min_digits, std::max(0.0, -std::log10(worst_relative)));
  if (digits_lost) min_digits = 0;
  // The five worst, ties by position.
  const auto worse = [](const Row& x, const Row& y) { return x.ratio > y.ratio || (x.ratio == y.ratio && x.i < y.i); };
  const std::size_t shown = std::min<std::size_t>(rows.size(), 5);
  std::partial_sort(rows.begin(), rows.begin() + std::ptrdiff_t(shown), rows.end(), worse);
  r.value = worst_ratio;
  r.threshold = 1;
  r.digits = min_digits;
  // An exact value beyond the rung's largest number cannot be represented: say so in the message.
  if constexpr (!std::is_same_v<real_t<A>, mp100>) {
    const mp100 largest = scalar_cast<mp100>(std::numeric_limits<real_t<A>>::max());
    for (Index i = 0; i < n; ++i)
      if (mpfr_cmpabs(expected(i).backend().data(), largest.backend().data()) > 0) {
        r.message = fmt::format(" (the exact value {:.3g} exceeds {}'s largest number: out of its range here)",
                                to_double(expected(i)), scalar_name<real_t<A>>());
        break;
      }
  }
  for (std::size_t k = 0; k < shown; ++k) {
    if (rows[k].ratio <= 1 && k > 0) break;  // the entries beyond the bound, or the worst one
    const Index i = rows[k].i;
    WorstEntry w;
    w.block = block(i);
    w.row = i;
    w.col = 0;
    w.where = where(i);
    w.expected = bpcheck::to_string(expected(i));
    w.actual = bpcheck::to_string(actual(i));
    const mp100 ai = scalar_cast<mp100>(actual(i));
    const mp100 e = abs(ai - expected(i));
    using boost::multiprecision::isfinite;
    w.abs_error = isfinite(e) ? to_double(e) : inf;
    w.rel_error = !isfinite(e) ? inf : expected(i) == 0 ? (e == 0 ? 0.0 : inf) : to_double(e / abs(expected(i)));
    r.worst.push_back(std::move(w));
  }
  return {gross, finite};
}

/// Severity order for keeping the worst result of a check over several points.
inline int severity(Verdict v) {
  switch (v) {
    case Verdict::fail:
      return 4;
    case Verdict::unstable:
      return 3;
    case Verdict::non_differentiable:
      return 2;
    case Verdict::pass:
      return 1;
    case Verdict::skipped:
      return 0;
  }
  return 0;
}

/// Keeps, per (check, precision), the worst result over all points.
class Collector {
 public:
  void add(CheckResult r) {
    const auto key = r.check + "\x1f" + r.precision;
    auto it = index_.find(key);
    if (it == index_.end()) {
      index_[key] = results_.size();
      results_.push_back(std::move(r));
      return;
    }
    CheckResult& old = results_[it->second];
    const std::size_t evaluations = old.evaluations + r.evaluations;
    const double seconds = old.seconds + r.seconds;
    const bool worse = severity(r.verdict) > severity(old.verdict) ||
                       (severity(r.verdict) == severity(old.verdict) && r.value > old.value);
    if (worse) old = std::move(r);
    old.evaluations = evaluations;
    old.seconds = seconds;
  }
  std::vector<CheckResult> take() { return std::move(results_); }

 private:
  std::map<std::string, std::size_t> index_;
  std::vector<CheckResult> results_;
};

template <class T, class Make>
auto build_on(Make& make, const Vector<mp100>& theta) {
  // A user factory's layer type was checked where it entered (AnyLayerFactory); LossLayer is the
  // library's own.
  check_deadline();
  auto layer = make(rung<T>{});
  if (theta.size() != parameter_count(layer.parameter_blocks()))
    throw input_error("the layer has " + std::to_string(parameter_count(layer.parameter_blocks())) + " parameters on " +
                      scalar_name<T>() + " but " + std::to_string(theta.size()) + " elsewhere");
  layer.set_parameters(vector_cast<T>(theta));
  return layer;
}

/// z = [vec X; θ] ↦ [J_x J_θ] by dual numbers, or J V for the columns of V.
template <class T>
Matrix<T> joint_jacobian(const DualForward<T>& f, const Matrix<T>& X, const Vector<T>& theta) {
  const Matrix<T> Jx = jacobian_input_jvp<T>(f, X, theta);
  const Matrix<T> Jt = jacobian_parameters_jvp<T>(f, X, theta);
  Matrix<T> J(Jx.rows(), Jx.cols() + Jt.cols());
  J << Jx, Jt;
  return J;
}
template <class T>
Matrix<T> joint_jvp(const DualForward<T>& f, const Matrix<T>& X, const Vector<T>& theta, const Matrix<T>& V) {
  return jvp<T>(f, X, theta, V).tangents;
}

/// backward(X, Y, U) at a given output Y as one vector [vec dX; dθ]; checks the shapes the layer returns.
template <class L, class T = typename L::scalar_type>
Vector<T> backward_z_at(const L& layer, const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& U) {
  Vector<T> dtheta = zeros<T>(parameter_count(layer.parameter_blocks()));
  const Matrix<T> dX = layer.backward(X, Y, U, dtheta);
  if (dX.rows() != X.rows() || dX.cols() != X.cols())
    throw error(fmt::format("backward returned dX of shape {}×{} for X of shape {}×{}", dX.rows(), dX.cols(), X.rows(),
                            X.cols()));
  Vector<T> z(X.size() + dtheta.size());
  z << vec(dX), dtheta;
  return z;
}

/// backward(U) at Y = forward(X), as one vector [vec dX; dθ].
template <class L, class T = typename L::scalar_type>
Vector<T> backward_z(const L& layer, const Matrix<T>& X, const Matrix<T>& U) {
  return backward_z_at(layer, X, Matrix<T>(layer.forward(X)), U);
}

/// forward at z = [vec X; θ] on a copy of the layer.
template <class L, class T = typename L::scalar_type>
Matrix<T> forward_at(const L& layer, const Vector<T>& z, Index rows, Index cols) {
  L copy = layer;
  const Index nx = rows * cols;
  copy.set_parameters(z.tail(z.size() - nx));
  return copy.forward(Eigen::Map<const Matrix<T>>(z.data(), rows, cols));
}

inline Vector<mp100> abs_vec(const Vector<mp100>& v) {
  return v.unaryExpr([](const mp100& x) { return mp100(abs(x)); });
}
inline Matrix<mp100> abs_mat(const Matrix<mp100>& m) {
  return m.unaryExpr([](const mp100& x) { return mp100(abs(x)); });
}

// Sums over a layer's parameters in mp100, in place on MPFR: boost's operators form a temporary (with a
// thread-local lookup) per operation, which on vectors of 10⁵ entries costs more than the layer's own
// forward pass.

/// Σ aᵢbᵢ, or Σ |aᵢbᵢ|, over n entries
inline mp100 dot_mp(const mp100* a, const mp100* b, Index n, bool absolute = false) {
  mp100 sum(0), product;
  for (Index i = 0; i < n; ++i) {
    mpfr_mul(product.backend().data(), a[i].backend().data(), b[i].backend().data(), MPFR_RNDN);
    if (absolute) mpfr_abs(product.backend().data(), product.backend().data(), MPFR_RNDN);
    mpfr_add(sum.backend().data(), sum.backend().data(), product.backend().data(), MPFR_RNDN);
  }
  return sum;
}
/// aᵀb
inline mp100 dot_mp(const Vector<mp100>& a, const Vector<mp100>& b) { return dot_mp(a.data(), b.data(), a.size()); }
/// |a|ᵀ|b|
inline mp100 abs_dot_mp(const Vector<mp100>& a, const Vector<mp100>& b) {
  return dot_mp(a.data(), b.data(), a.size(), true);
}
/// Vᵀx (or |V|ᵀ|x|) for float directions V, one dot product per column, summed in order: each term
/// is the exact product rounded to mp100, as with V in mp100, and a one-limb factor costs a sixth of
/// a full one.
inline Vector<mp100> transposed_product(const Matrix<float>& V, const Vector<mp100>& x, bool absolute = false) {
  Vector<mp100> out(V.cols());
  mp100 product;
  for (Index j = 0; j < V.cols(); ++j) {
    mpfr_ptr sum = out(j).backend().data();
    mpfr_set_zero(sum, 1);
    for (Index i = 0; i < V.rows(); ++i) {
      if (V(i, j) == 0) continue;  // a direction that leaves X or θ alone (exact_truth)
      mpfr_mul_d(product.backend().data(), x(i).backend().data(), double(V(i, j)), MPFR_RNDN);
      if (absolute) mpfr_abs(product.backend().data(), product.backend().data(), MPFR_RNDN);
      mpfr_add(sum, sum, product.backend().data(), MPFR_RNDN);
    }
  }
  return out;
}
/// |V|ᵀ|x|
inline Vector<mp100> abs_transposed_product(const Matrix<float>& V, const Vector<mp100>& x) {
  return transposed_product(V, x, true);
}

/// Entry by entry: max |a − b| over two perturbed evaluations (the measured conditioning).
inline Vector<mp100> max_abs_change(const std::vector<Vector<mp100>>& perturbed, const Vector<mp100>& base) {
  Vector<mp100> c = Vector<mp100>::Zero(base.size());
  for (const auto& p : perturbed)
    for (Index i = 0; i < base.size(); ++i) c(i) = std::max(c(i), mp100(abs(p(i) - base(i))));
  return c;
}

/// Nonzeros per row (or column) of J: how many terms a sum over that row adds up.
inline Vector<mp100> terms(const Matrix<mp100>& J, bool by_column) {
  const Index n = by_column ? J.cols() : J.rows();
  Vector<mp100> t(n);
  for (Index i = 0; i < n; ++i) {
    Index k = 0;
    if (by_column)
      for (Index r = 0; r < J.rows(); ++r) k += J(r, i) != 0;
    else
      for (Index c = 0; c < J.cols(); ++c) k += J(i, c) != 0;
    t(i) = mp100(std::max<Index>(k, 1));
  }
  return t;
}

/// Per-check bookkeeping: timing, names, verdicts from compare().
struct CheckScope {
  CheckResult r;
  Clock::time_point start = Clock::now();
  CheckScope(std::string check, std::string subject, std::string precision, std::uint64_t seed) {
    r.check = std::move(check);
    r.subject = std::move(subject);
    r.precision = std::move(precision);
    r.seed = seed;
    check_deadline();
    if (progress()) (*progress())(r.subject + ": " + r.check + " [" + r.precision + "]");
  }
  /// The progress callback of the verification running on this thread, if any.
  static const std::function<void(const std::string&)>*& progress() {
    thread_local const std::function<void(const std::string&)>* callback = nullptr;
    return callback;
  }
  CheckResult done() {
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return std::move(r);
  }
};

/// One input drawn from a named distribution (verify.hpp), float-exact so that every rung starts from
/// the same point; `base` is the value near ties gather around. A redraw (`redraw` > 0: the point
/// before could not be evaluated) takes magnitudes 10^redraw times smaller (wide_range: exponents up
/// to 8 − redraw), so that it soon lands where the exact forward stays within double's range.
inline double draw_input(const std::string& distribution, Random& rng, double scale, double base, int redraw = 0) {
  const double sign = rng.symmetric() < 0 ? -1 : 1;
  const double shrink = std::pow(10.0, -double(redraw));
  if (distribution == "uniform") return float_round(scale * shrink * rng.symmetric());
  if (distribution == "saturation")  // 20 ≤ |x| < 60
    return float_round(sign * (20 + double(rng.below(320)) / 8) * shrink);
  if (distribution == "wide_range") {
    const int top = std::max(-8, 8 - redraw);
    return float_round(sign * (1 + double(rng.below(1024)) / 1024) *
                       std::pow(10.0, double(rng.below(std::uint64_t(top + 9))) - 8));
  }
  if (distribution == "near_ties")  // up to 2⁻¹⁴ apart, in units of 2⁻²⁴, relative to the shared value
    return float_round(base * shrink + std::ldexp(double(rng.below(2049)) - 1024, -24) * std::max(1.0, std::abs(base * shrink)));
  throw input_error("verify: unknown input distribution '" + distribution + "'");
}

/// gᵀ(zz − z), the slope along the Taylor step actually taken. In mp100 exactly enough; for float and
/// double in long double, where the difference of two T values is exact (or off by 2⁻⁶⁴ of itself) and
/// the sum's rounding, n·2⁻⁶⁴ of Σ|g||zz − z|, stays far below the test's floor of a hundred ulps of T:
/// converting the whole step to mp100 at each rung of the ladder cost more than the rest of the test.
template <class T>
mp100 step_slope(const Vector<T>& g, const Vector<T>& zz, const Vector<T>& z) {
  if constexpr (std::is_same_v<T, mp100>) {
    mp100 sum(0), step;  // in place (see dot_mp)
    for (Index i = 0; i < g.size(); ++i) {
      mpfr_sub(step.backend().data(), zz(i).backend().data(), z(i).backend().data(), MPFR_RNDN);
      mpfr_mul(step.backend().data(), step.backend().data(), g(i).backend().data(), MPFR_RNDN);
      mpfr_add(sum.backend().data(), sum.backend().data(), step.backend().data(), MPFR_RNDN);
    }
    return sum;
  } else {
    long double sum = 0;
    for (Index i = 0; i < g.size(); ++i)
      sum += static_cast<long double>(g(i)) * (static_cast<long double>(zz(i)) - static_cast<long double>(z(i)));
    return mp100(sum);
  }
}

/// Least-squares slope of log r against log h.
inline double slope(const std::vector<double>& h, const std::vector<double>& r) {
  const std::size_t n = h.size();
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = std::log(h[i]), y = std::log(r[i]);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

/// The state shared by the checks of one point.
struct PointState {
  Point p;
  Layout layout;
  Truth truth;
  std::string subject;
  std::uint64_t seed = 0;
  Index in_rows = 0, batch = 0, out_rows = 0, n = 0, P = 0;
  bool sample_independent = true;
  mp100 slope_true;  ///< uᵀ(J v) exact, by JVP
  /// For composite layers that state it (LossLayer): the backward sweep in absolute values for the
  /// cotangent U and for a unit cotangent, and the roundings a value accumulates; empty otherwise.
  std::optional<Vector<mp100>> sweep, sweep_unit;
  mp100 sweep_terms{0};
  /// For a layer that states it (LossLayer::absolute_value): the size of the terms its 1 × 1 value is
  /// formed from, what the value rounds relative to.
  std::optional<mp100> value_terms;
  /// For a network's loss (LossLayer::activation_sweeps): per activation, what its rounding is relative to.
  std::optional<std::vector<Vector<mp100>>> activation_sweeps;
  /// The layer's stated absolute Jacobian (LayerWithAbsoluteJacobian), when it states one.
  std::optional<Matrix<mp100>> absolute_J;
  /// The layer's own backward in mp100 at the point, [vec dX; dθ], once formed (RungContext::own_gradient).
  std::optional<Vector<mp100>> own_gradient;
  /// The gross floor of the checks against mp100 over √u_T (gross_floor_of), once formed.
  std::optional<Vector<mp100>> gross_floor_unit;
  /// ‖V e_k‖ per projection direction, once formed (projection mode).
  std::optional<Vector<mp100>> V_norms;

  /// The magnitude every route to g = Jᵀu rounds relative to, entry by entry: |J|ᵀ|u|, or the stated
  /// absolute Jacobian's Mᵀ|u|, or the absolute sweep, whichever is largest.
  Vector<mp100> gradient_magnitude(const Vector<mp100>& u) const {
    Vector<mp100> a = truth.g_scale;
    if (absolute_J) a = a.cwiseMax(Vector<mp100>(absolute_J->transpose() * abs_vec(u)));
    if (sweep) a = a.cwiseMax(*sweep);
    return a;
  }
  /// How many terms a value of g sums (per entry): the nonzeros of its column of J (or of M), or the
  /// widths along a network.
  Vector<mp100> gradient_terms() const {
    Vector<mp100> t = terms(absolute_J ? *absolute_J : truth.J, true);
    for (Index i = 0; i < t.size(); ++i) t(i) = std::max(t(i), sweep_terms);
    return t;
  }
};

/// What the rounding of the output Y that backward receives does to the gradient: the layer's own
/// backward in mp100 at Y moved by ±u|Y| (two draws) and, when given and finite, at a lower rung's
/// rounded output Y_T, each minus the same backward at the exact Y. A backward written in terms of y
/// (1 − y², y(1 − y), s ⊙ (g − sᵀg)) inherits the rounding of y, which no move of the point shows.
/// Returns the changes ([vec dX; dθ]): differences of the code's own backward, which a wrong backward
/// cannot fold into the bound. `at_Y` is that backward at the exact Y. A backward whose result does not
/// move at all with Y (dense reads X only) is not evaluated again, and changes of exactly 0 are left
/// out (they widen no bound). `evaluations` counts the backward passes.
template <class Make, class T>
std::vector<Vector<mp100>> output_rounding(Make& make, const PointState& s, const mp100& u, const Matrix<T>* Y_T,
                                           const Vector<mp100>& at_Y, std::size_t& evaluations) {
  std::vector<Vector<mp100>> out;
  const auto exact = build_on<mp100>(make, s.p.theta);
  bool moves = false;
  const auto add = [&](const Matrix<mp100>& Yp) {
    Vector<mp100> change = backward_z_at(exact, s.p.X, Yp, s.p.U) - at_Y;
    ++evaluations;
    const bool zero =
        std::all_of(change.data(), change.data() + change.size(), [](const mp100& x) { return mpfr_zero_p(x.backend().data()) != 0; });
    moves = moves || !zero;
    if (!zero) out.push_back(std::move(change));
  };
  Random rng(s.seed ^ 0x5851f42d4c957f2dULL);
  for (int k = 0; k < 2; ++k) {
    Matrix<mp100> Yp = s.truth.Y;
    for (Index i = 0; i < Yp.size(); ++i) Yp(i) += (rng.symmetric() < 0 ? -u : u) * abs(Yp(i));
    add(Yp);
    if (!moves) return out;
  }
  if (Y_T && Y_T->rows() == s.truth.Y.rows() && Y_T->cols() == s.truth.Y.cols()) {
    using std::isfinite;
    if (std::all_of(Y_T->data(), Y_T->data() + Y_T->size(), [](const T& y) { return isfinite(value_of(y)); }))
      add(matrix_cast<mp100>(*Y_T));
  }
  return out;
}


/// Runs every check on rung T at one point. `reference_wrong`: mp100 already found this code wrong

}  // namespace verify_detail
}  // namespace bpcheck
