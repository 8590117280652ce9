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
// algorithm, and any backward written in terms of y, may make). Beyond the bound, a factory's layer is
// run again on Emulated (emulated.hpp) with T's rounding emulated: an error within K times that spread
// is the formula's own rounding and passes, naming the digits lost. Still beyond the bound in
// float/double while right in mp100 is `unstable` when the error is small beside its block's values, `fail` when it is
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

#include "bpcheck/emulated.hpp"
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
  /// Rungs to judge: "float", "double", "mp100", and the 16-bit "bf16" and "fp16" (float16.hpp; a
  /// factory must be wrapped AnyLayerFactory::with_float16 for them). mp100 judges in any case.
  std::vector<std::string> precisions{"float", "double", "mp100"};
  /// How bf16/fp16 matrix products add up: in the 16-bit format (same) or in float (mixed precision).
  Accumulation accumulation = Accumulation::same;
  bool resample_kinks = true;     ///< move a point that sits on a non-differentiable point
  int max_resamples = 8;
  /// Compare every Jacobian entry by entry, whatever its size, up to `full_jacobian_limit` entries
  /// (beyond it verify refuses with input_error). Without it, Jacobians are formed only for small
  /// subjects (at most `full_jacobian_columns` inputs and parameters and `full_jacobian_limit` entries,
  /// a bounded cost) and everything else is judged through `projections`: no O(Jacobian) work.
  bool full = false;
  Index full_jacobian_limit = 20000;  ///< entries of [J_x J_θ] (out·B × n): the largest full comparison
  Index full_jacobian_columns = 64;   ///< n = in·B + P up to which Jacobians are full without `full`
  int projections = 2;                ///< random directions V (n × k) in projection mode: X only, θ only
  /// Called as each check starts, with where the verifier is ("layer 2 dense: taylor order [mp100]").
  std::function<void(const std::string&)> progress;
  /// Threads the points (and a network's layers) run on: 1 runs them in turn on the calling thread, 0
  /// takes one per core. Beyond 1 the factory is called from several threads at once (the registry's
  /// layers and networks allow it); the report is the same whatever the number.
  int threads = 1;
  double mp100_tolerance = default_mp100_tolerance;  ///< relative tolerance of the decisive mp100 comparisons
  double rounding_factor = default_rounding_factor;  ///< K in the rounding bound (rounding.hpp)
  bool unstable_fails = false;        ///< `unstable` (a right gradient that loses digits) fails the report too
  /// Seconds the whole verification may take (0: no limit). A point still running then is abandoned
  /// and reported as not evaluated (VerificationReport::not_evaluated); the rest keeps its verdicts.
  double time_limit = 300;
  std::optional<Matrix<mp100>> inputs;   ///< a fixed X (one column per sample) instead of random ones
  /// 1: first-order checks; 2: also the second-order checks of a layer (backward differentiated along v
  /// on dual numbers against an mp100 oracle, and the symmetry of its Hessian); verify_network also
  /// checks its loss in θ so (H v from the network's backward on dual numbers, docs/verdicts.md).
  int order = 1;
};

/// The input distributions verify_layer knows, by name, in their default order.
const std::vector<std::string>& point_distributions();


/// A layer factory on every rung behind type erasure (AnyLayer<T> per rung). verify_layer(make) wraps
/// the factory in one and runs the checks compiled once in the library: a file that calls
/// verify_layer compiles its own layer on the six rungs and on Emulated (emulated.hpp: mp100 that
/// rounds like float or double, which the checks use to see the rounding inside the layer's own
/// formulas), not the checker.
class AnyLayerFactory {
 public:
  template <class Make>
    requires(!std::same_as<std::remove_cvref_t<Make>, AnyLayerFactory>)
  explicit AnyLayerFactory(Make make) : AnyLayerFactory(std::move(make), without_emulation) {
    static_assert(builds_on<Make, Emulated>());
    emulated_ = [shared = shared_of<Make>()] {
      return AnyLayer<Emulated>((*shared)(rung<Emulated>{}));
    };
  }

  /// Leaves Emulated out: the layer is checked against the rounding bound alone (the registry's
  /// layers, instantiated on the six rungs only, are written in stable forms).
  struct without_emulation_t {};
  static constexpr without_emulation_t without_emulation{};
  template <class Make>
    requires(!std::same_as<std::remove_cvref_t<Make>, AnyLayerFactory>)
  AnyLayerFactory(Make make, without_emulation_t) {
    static_assert((builds_on<Make, float>() && builds_on<Make, double>() && builds_on<Make, mp100>() &&
                   builds_on<Make, dual<float>>() && builds_on<Make, dual<double>>() && builds_on<Make, dual<mp100>>()));
    // One shared factory: std::function needs copyable targets, the user's factory need not be.
    const auto shared = std::make_shared<Make>(std::move(make));
    shared_ = shared;
    makers_ = {[shared] { return AnyLayer<float>((*shared)(rung<float>{})); },
               [shared] { return AnyLayer<double>((*shared)(rung<double>{})); },
               [shared] { return AnyLayer<mp100>((*shared)(rung<mp100>{})); },
               [shared] { return AnyLayer<dual<float>>((*shared)(rung<dual<float>>{})); },
               [shared] { return AnyLayer<dual<double>>((*shared)(rung<dual<double>>{})); },
               [shared] { return AnyLayer<dual<mp100>>((*shared)(rung<dual<mp100>>{})); }};
  }

  /// Also builds the layer on the 16-bit rungs bf16 and fp16 (float16.hpp), so that
  /// VerifyOptions::precisions may name them; a factory without it refuses them (input_error).
  struct with_float16_t {};
  static constexpr with_float16_t with_float16{};
  template <class Make>
    requires(!std::same_as<std::remove_cvref_t<Make>, AnyLayerFactory>)
  AnyLayerFactory(Make make, with_float16_t) : AnyLayerFactory(std::move(make)) {
    add_float16<Make>();
  }
  template <class Make>
    requires(!std::same_as<std::remove_cvref_t<Make>, AnyLayerFactory>)
  AnyLayerFactory(Make make, without_emulation_t, with_float16_t) : AnyLayerFactory(std::move(make), without_emulation) {
    add_float16<Make>();
  }

  /// The layer on rung T.
  template <class T>
  AnyLayer<T> operator()(rung<T>) const {
    return std::get<std::function<AnyLayer<T>()>>(makers_)();
  }
  /// The layer on Emulated; throws bpcheck::error when the factory was wrapped without it.
  AnyLayer<Emulated> operator()(rung<Emulated>) const {
    if (!emulated_) throw error("this layer factory does not build on the emulated rung");
    return emulated_();
  }
  /// Whether the layer builds on Emulated.
  bool emulates() const { return static_cast<bool>(emulated_); }
  /// The layer on bf16 or fp16; throws input_error when the factory was wrapped without them.
  AnyLayer<bf16> operator()(rung<bf16>) const { return half_maker(bf16_)(); }
  AnyLayer<fp16> operator()(rung<fp16>) const { return half_maker(fp16_)(); }
  /// Whether the layer builds on bf16 and fp16.
  bool builds_float16() const { return static_cast<bool>(bf16_); }

 private:
  /// Whether Make builds a checkable layer on rung T; each failure explains itself in a sentence.
  template <class Make, class T>
  static constexpr bool builds_on() {
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
  template <class Make>
  std::shared_ptr<Make> shared_of() const {
    return std::static_pointer_cast<Make>(shared_);
  }
  template <class Make>
  void add_float16() {
    static_assert(builds_on<Make, bf16>() && builds_on<Make, fp16>());
    bf16_ = [shared = shared_of<Make>()] { return AnyLayer<bf16>((*shared)(rung<bf16>{})); };
    fp16_ = [shared = shared_of<Make>()] { return AnyLayer<fp16>((*shared)(rung<fp16>{})); };
  }
  template <class T>
  static const std::function<AnyLayer<T>()>& half_maker(const std::function<AnyLayer<T>()>& maker) {
    if (!maker)
      throw input_error("this layer factory does not build on " + scalar_name<T>() +
                        ": wrap it as AnyLayerFactory(factory, AnyLayerFactory::with_float16) to verify it there");
    return maker;
  }

  std::shared_ptr<void> shared_;  ///< the user's factory, shared by the makers
  std::tuple<std::function<AnyLayer<float>()>, std::function<AnyLayer<double>()>, std::function<AnyLayer<mp100>()>,
             std::function<AnyLayer<dual<float>>()>, std::function<AnyLayer<dual<double>>()>,
             std::function<AnyLayer<dual<mp100>>()>>
      makers_;
  std::function<AnyLayer<Emulated>()> emulated_;
  std::function<AnyLayer<bf16>()> bf16_;
  std::function<AnyLayer<fp16>()> fp16_;
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
