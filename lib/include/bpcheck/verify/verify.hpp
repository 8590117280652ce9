#pragma once
// Is this backward pass right? One call runs every check on every rung and returns one report.
//
//   auto report = bpcheck::verify_layer([]<class T>(bpcheck::rung<T>) { return MyLayer<T>(4, 3); });
//   std::cout << bpcheck::format_table(report);
//   return report.exit_code();                          // 0: every gradient right
//
// The factory builds the layer on any scalar T: float, double, mp100 and dual<T> over each. The
// checks, at a few random points (X, θ) and a random cotangent U (the seed dY of the VJP):
//
//   oracles agree        mp100   JVP Jacobian (dual<mp100>) = central differences (h ≈ 1e-34, error ≈ 1e-66)
//   backward vs oracle   mp100   backward(U) = Jᵀu, u = vec U, to 1e-40 relative: THE verdict for a bug
//   jacobians vs oracle  all     the layer's explicit [J_x J_θ] = J
//   backward vs mp100    f, d    |g_T − g| ≤ K (n u_T (|J|ᵀ|u|) + cond) + floor, the rounding bound
//   forward vs mp100     f, d    the same bound on forward; throws/NaN in one rung only is a failure
//   dot-product identity all     uᵀ(J v) by JVP = (Jᵀu)ᵀv by backward, no differences at all
//   taylor order         all     |φ(z + h v) − φ(z) − h gᵀv| = O(h²) for φ = uᵀf: order ≥ 1.5
//   batch                all     each sample's output and dθ equal those of a batch of one
//   non-differentiable   mp100   one-sided differences disagree: reported with the location, never
//                                as a wrong gradient; by default the point is resampled
//
// u_T is the rung's unit roundoff, n the length of the sums in Jᵀu, and cond the measured change of
// the exact gradient when the point is perturbed by a relative u_T and when the output Y that backward
// receives moves by u_T|Y| or is T's own rounded forward output (the error any backward-stable
// algorithm, and any backward written in terms of y, may make). Beyond the bound in float/double while
// right in mp100 is `unstable` when the error is small beside its block's values, `fail` when it is
// gross (a tenth of the block's largest value: a code path of that precision is wrong). `unstable` is
// advice (digits lost, digits a stable form keeps) and fails the report only with
// VerifyOptions::unstable_fails (`bpcheck verify --strict`).
//
// Points: `points` in all, drawn in turn from `distributions`: uniform in ±input_scale, saturation
// (20 ≤ |x| < 60), a wide range (±m·10^e, e in [−8, 8]) and near ties (one value plus offsets of up to
// 2⁻¹⁴ in units of 2⁻²⁴), so that saturation shortcuts, overflow guards and large-logit branches are exercised.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "bpcheck/layer.hpp"
#include "bpcheck/network.hpp"
#include "bpcheck/random.hpp"
#include "bpcheck/scalar.hpp"
#include "bpcheck/verify/finite_difference.hpp"
#include "bpcheck/verify/jvp.hpp"
#include "bpcheck/verify/result.hpp"
#include "bpcheck/verify/rounding.hpp"

namespace bpcheck {

/// Names a rung for a factory: `[]<class T>(bpcheck::rung<T>) { return MyLayer<T>(4, 3); }`.
template <class T>
struct rung {
  using type = T;
};

struct VerifyOptions {
  std::uint64_t seed = 20261127;
  int points = 4;                 ///< random points (X, θ, U) per layer, drawn from `distributions` in turn
  Index batch = 2;                ///< samples per point
  double input_scale = 1;         ///< inputs of the "uniform" distribution lie in ±input_scale
  /// Where inputs are drawn, point by point in turn (see point_distributions()): "uniform",
  /// "saturation", "wide_range", "near_ties". Ignored when `inputs` are given.
  std::vector<std::string> distributions{"uniform", "saturation", "wide_range", "near_ties"};
  bool random_parameters = true;  ///< false keeps the factory's parameters
  std::vector<std::string> precisions{"float", "double", "mp100"};
  bool resample_kinks = true;     ///< move a point that sits on a non-differentiable point
  int max_resamples = 8;
  /// Compare every Jacobian entry by entry, whatever its size, up to `full_jacobian_limit` entries
  /// (beyond it verify refuses with input_error). Without it, Jacobians are formed only for small
  /// subjects (at most `full_jacobian_columns` inputs and parameters and `full_jacobian_limit` entries,
  /// a bounded cost) and everything else is judged through `projections`: no O(Jacobian) work.
  bool full = false;
  Index full_jacobian_limit = 20000;  ///< entries of [J_x J_θ] (out·B × n): the largest full comparison
  Index full_jacobian_columns = 64;   ///< n = in·B + P up to which Jacobians are full without `full`
  int projections = 4;                ///< random directions V (n × k) in projection mode
  /// Called as each check starts, with where the verifier is ("layer 2 dense: taylor order [mp100]").
  std::function<void(const std::string&)> progress;
  double mp100_tolerance = 1e-40;     ///< relative tolerance of the decisive mp100 comparisons
  double rounding_factor = default_rounding_factor;  ///< K in the rounding bound (rounding.hpp)
  bool unstable_fails = false;        ///< `unstable` (a right gradient that loses digits) fails the report too
  std::optional<Matrix<mp100>> inputs;   ///< a fixed X (one column per sample) instead of random ones
};

/// The input distributions verify_layer knows, by name, in their default order.
const std::vector<std::string>& point_distributions();

namespace verify_detail {

using Clock = std::chrono::steady_clock;

/// One point, exact in every rung (drawn in double, rounded to float).
struct Point {
  Matrix<mp100> X;
  Vector<mp100> theta;
  Matrix<mp100> U;      ///< cotangent, the shape of the output
  Vector<mp100> v;      ///< direction in z = [vec X; θ] for the Taylor and dot-product checks
};

/// The exact quantities at a point, from the oracles in mp100.
struct Truth {
  Matrix<mp100> Y;
  bool full = true;      ///< J formed; otherwise projections only
  Matrix<mp100> J;       ///< [J_x J_θ], out·B × (in·B + P)
  Vector<mp100> g;       ///< Jᵀu
  Vector<mp100> g_scale; ///< |J|ᵀ|u|
  Matrix<mp100> V;       ///< projection directions (n × k)
  Matrix<mp100> JV;      ///< J V
  Matrix<mp100> JVv;     ///< J [V v], from the same pass
  Index evaluations = 0;
};

inline double to_double(const mp100& x) { return x.convert_to<double>(); }

template <class T>
Vector<T> vec(const Matrix<T>& M) {
  return Eigen::Map<const Vector<T>>(M.data(), M.size());
}

inline double float_round(double x) { return double(float(x)); }

template <class T>
constexpr double min_normal() {
  if constexpr (std::is_same_v<T, mp100>)
    return 1e-300;  // mp100 reaches far lower, but values under 1e-300 count as zero: below double's range
  else
    return double(std::numeric_limits<T>::min());
}

/// Where entry i of z = [vec X; θ] (or of the gradient) lives, for people.
struct Layout {
  Index in_rows = 0, batch = 0;
  std::vector<ParameterBlock> blocks;
  std::string where(Index i) const {
    const Index nx = in_rows * batch;
    if (i < nx) return fmt::format("dX[{},{}] (input {}, sample {})", i % in_rows, i / in_rows, i % in_rows, i / in_rows);
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

/// Compares `actual` with `expected` entry by entry against per-entry bounds; fills the result's
/// value (max error/bound ratio scaled to the threshold 1), digits and worst entries. Returns whether
/// an error is gross: at least a tenth of the largest value in its block and above its entry of
/// `gross_floor`, when given (a wrong result, as opposed to digits lost in small entries or in a block
/// that cancels to nearly 0).
template <class A>
bool compare(CheckResult& r, const Vector<mp100>& expected, const Vector<A>& actual, const Vector<mp100>& bound,
             const Vector<mp100>& scale, const std::function<std::string(Index)>& where,
             const std::function<std::string(Index)>& block, const Vector<mp100>* gross_floor = nullptr) {
  using std::abs;
  struct Row {
    double ratio;
    Index i;
  };
  std::vector<Row> rows;
  double worst_ratio = 0;
  double min_digits = scalar_traits<real_t<A>>::print_digits;
  for (Index i = 0; i < expected.size(); ++i) {
    const mp100 a = scalar_cast<mp100>(actual(i));
    using boost::multiprecision::isfinite;
    double ratio;
    if (!isfinite(a)) {
      ratio = std::numeric_limits<double>::infinity();
    } else {
      const mp100 err = abs(a - expected(i));
      ratio = err == 0 ? 0.0 : (bound(i) == 0 ? std::numeric_limits<double>::infinity() : to_double(err / bound(i)));
      const mp100 denom = std::max(mp100(abs(expected(i))), mp100(scale(i)));
      if (err > 0 && denom > 0) min_digits = std::min(min_digits, std::max(0.0, -std::log10(to_double(err / denom))));
      if (err > 0 && denom == 0) min_digits = 0;
    }
    worst_ratio = std::max(worst_ratio, ratio);
    rows.push_back({ratio, i});
  }
  std::map<std::string, mp100> block_max;
  for (Index i = 0; i < expected.size(); ++i) {
    mp100& m = block_max[block(i)];
    m = std::max({m, mp100(abs(expected(i))), scale(i)});
  }
  bool gross = false;
  for (Index i = 0; i < expected.size() && !gross; ++i) {
    const mp100 a = scalar_cast<mp100>(actual(i));
    using boost::multiprecision::isfinite;
    const mp100 err = abs(a - expected(i));
    gross = isfinite(a) && block_max[block(i)] > 0 && err * 10 > block_max[block(i)] &&
            (!gross_floor || err > (*gross_floor)(i));
  }
  std::sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) { return x.ratio > y.ratio; });
  r.value = worst_ratio;
  r.threshold = 1;
  r.digits = min_digits;
  // An exact value beyond the rung's largest number cannot be represented: say so in the message.
  if constexpr (!std::is_same_v<real_t<A>, mp100>) {
    const mp100 largest = scalar_cast<mp100>(std::numeric_limits<real_t<A>>::max());
    for (Index i = 0; i < expected.size(); ++i)
      if (abs(expected(i)) > largest) {
        r.message = fmt::format(" (the exact value {:.3g} exceeds {}'s largest number: out of its range here)",
                                       to_double(expected(i)), scalar_name<real_t<A>>());
        break;
      }
  }
  for (std::size_t k = 0; k < rows.size() && k < 5; ++k) {
    if (rows[k].ratio <= 1 && r.verdict == Verdict::pass && k > 0) break;
    const Index i = rows[k].i;
    WorstEntry w;
    w.block = block(i);
    w.row = i;
    w.col = 0;
    w.where = where(i);
    w.expected = bpcheck::to_string(expected(i));
    w.actual = bpcheck::to_string(actual(i));
    const mp100 a = scalar_cast<mp100>(actual(i));
    const mp100 err = abs(a - expected(i));
    using boost::multiprecision::isfinite;
    const double inf = std::numeric_limits<double>::infinity();
    w.abs_error = isfinite(err) ? to_double(err) : inf;
    w.rel_error = !isfinite(err) ? inf
                  : expected(i) == 0 ? (err == 0 ? 0.0 : inf)
                                     : to_double(err / abs(expected(i)));
    r.worst.push_back(std::move(w));
  }
  return gross;
}

/// Severity order for keeping the worst result of a check over several points.
inline int severity(Verdict v) {
  switch (v) {
    case Verdict::fail: return 4;
    case Verdict::unstable: return 3;
    case Verdict::non_differentiable: return 2;
    case Verdict::pass: return 1;
    case Verdict::skipped: return 0;
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

/// Everything a check needs to know about one rung.
template <class T>
struct RungInfo {
  static double u() { return scalar_cast<double>(unit_roundoff<T>()); }
};

}  // namespace verify_detail

namespace verify_detail {
/// Whether Make builds a checkable layer on rung T; each failure explains itself in a sentence.
template <class Make, class T>
constexpr bool factory_builds_on() {
  static_assert(std::is_invocable_v<Make&, rung<T>>,
                "the factory must take any rung: []<class T>(bpcheck::rung<T>) { return MyLayer<T>(...); }");
  using L = std::remove_cvref_t<std::invoke_result_t<Make&, rung<T>>>;
  static_assert(Layer<L>,
                "the factory must return a bpcheck Layer (type_name, input_size, output_size, parameter_blocks, "
                "parameters, set_parameters, forward, backward: see bpcheck/layer.hpp)");
  static_assert(std::is_same_v<typename L::scalar_type, T>,
                "the factory must build its layer on the scalar of the rung it is given: rung<T> → Layer<T>");
  static_assert(std::copy_constructible<L>, "the layer must be copyable: the checker perturbs copies");
  return true;
}
}  // namespace verify_detail

/// A layer factory on every rung behind type erasure (AnyLayer<T> per rung). verify_layer(make) wraps
/// the factory in one and runs the checks compiled once in the library: a file that calls
/// verify_layer compiles its own layer on the six rungs, not the checker.
class AnyLayerFactory {
 public:
  template <class Make>
    requires(!std::same_as<std::remove_cvref_t<Make>, AnyLayerFactory>)
  explicit AnyLayerFactory(Make make) {
    static_assert((verify_detail::factory_builds_on<Make, float>() && verify_detail::factory_builds_on<Make, double>() &&
                   verify_detail::factory_builds_on<Make, mp100>() &&
                   verify_detail::factory_builds_on<Make, dual<float>>() &&
                   verify_detail::factory_builds_on<Make, dual<double>>() &&
                   verify_detail::factory_builds_on<Make, dual<mp100>>()));
    // One shared factory: std::function needs copyable targets, the user's factory need not be.
    const auto shared = std::make_shared<Make>(std::move(make));
    makers_ = {[shared] { return AnyLayer<float>((*shared)(rung<float>{})); },
               [shared] { return AnyLayer<double>((*shared)(rung<double>{})); },
               [shared] { return AnyLayer<mp100>((*shared)(rung<mp100>{})); },
               [shared] { return AnyLayer<dual<float>>((*shared)(rung<dual<float>>{})); },
               [shared] { return AnyLayer<dual<double>>((*shared)(rung<dual<double>>{})); },
               [shared] { return AnyLayer<dual<mp100>>((*shared)(rung<dual<mp100>>{})); }};
  }

  /// The layer on rung T.
  template <class T>
  AnyLayer<T> operator()(rung<T>) const {
    return std::get<std::function<AnyLayer<T>()>>(makers_)();
  }

 private:
  std::tuple<std::function<AnyLayer<float>()>, std::function<AnyLayer<double>()>, std::function<AnyLayer<mp100>()>,
             std::function<AnyLayer<dual<float>>()>, std::function<AnyLayer<dual<double>>()>,
             std::function<AnyLayer<dual<mp100>>()>>
      makers_;
};

/// The checks of one layer factory (see the file comment), compiled once in the library.
VerificationReport verify_layer(const AnyLayerFactory& make, const VerifyOptions& options = {});

/// The checks of one layer factory: `[]<class T>(bpcheck::rung<T>) { return MyLayer<T>(4, 3); }`.
template <class Make>
  requires(!std::same_as<std::remove_cvref_t<Make>, AnyLayerFactory>)
VerificationReport verify_layer(Make&& make, const VerifyOptions& options = {}) {
  return verify_layer(AnyLayerFactory(std::forward<Make>(make)), options);
}

/// A registered layer (model-spec name and options) on input_size features.
VerificationReport verify_layer(const LayerSpec& spec, Index input_size, const VerifyOptions& options = {});

/// What verify_network checks: a model, and optionally its parameters and data in the JSON formats
/// (absent: parameters from Network::initialize(seed), a batch from generate_batch(seed)).
struct NetworkSubject {
  ModelSpec spec;
  std::optional<nlohmann::json> parameters;
  std::optional<nlohmann::json> data;
  std::string parameters_file = "parameters", data_file = "data";  ///< names for messages
};

/// The network's loss ℓ(f(X), t) as one layer (LossLayer): backprop and the explicit Jacobian product
/// checked against the oracles on every rung, plus every layer of the model on its own.
VerificationReport verify_network(const NetworkSubject& subject, const VerifyOptions& options = {});

/// What full Jacobians (VerifyOptions::full) would cost on a network: the largest [J_x J_θ] among the
/// network's loss and its layers, and the dual-number passes (8 columns each) over all of them per point.
struct FullJacobianCost {
  Index largest_entries = 0;
  std::string largest_subject;
  Index passes = 0;
};
FullJacobianCost full_jacobian_cost(const NetworkSubject& subject, const VerifyOptions& options = {});

}  // namespace bpcheck
