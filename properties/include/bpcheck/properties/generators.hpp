#pragma once
// RapidCheck generators for layers, networks, shapes and values, with shrinking toward the smallest
// failing case: fewest layers, smallest widths, batch 1, simple values.
//
//   #include <bpcheck/properties/generators.hpp>
//   namespace gen = bpcheck::properties::gen;
//   rc::check("softmax rows sum to one", [] {
//     const auto c = *gen::layer_case(bpcheck::LayerSpec{"softmax"}, {});
//     ...                                   // c.inputs, c.parameters, c.cotangent, c.direction
//   });
//   const auto net = *gen::network_case({});   // depth 1–8, random widths, activations and loss
//   const bpcheck::mp100 x = *rc::gen::arbitrary<bpcheck::mp100>();   // digits beyond double
//
// Every value a case holds is exact in float (drawn as a float, stored in mp100), so float, double
// and mp100 all see the very same point; only the mp100-only generators (`beyond_double`) add digits
// that double cannot hold. A failing case prints itself as a model spec, parameters and data in the
// JSON formats that `bpcheck verify --model … --params … --data …` reads back.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <rapidcheck.h>

#include "bpcheck/network.hpp"
#include "bpcheck/scalar.hpp"

namespace bpcheck::properties {

/// Where values are drawn from. Each shrinks toward simple values of its kind.
enum class Distribution {
  standard,     ///< odd multiples of 1/128 in (−4, 4): never exactly on a kink
  wide_range,   ///< ±m·10^e, e in [−8, 8]: a wide dynamic range
  near_kinks,   ///< 0 < |x| < 1e-6: next to the switch point of relu and leaky_relu
  saturation,   ///< 20 ≤ |x| < 60: where sigmoid, tanh and softplus saturate
  near_ties,    ///< one value plus offsets of a few 2⁻²⁴: near ties for softmax
};

/// "standard", "wide_range", "near_kinks", "saturation", "near_ties".
std::string distribution_name(Distribution d);
/// Every distribution, in the order above.
const std::vector<Distribution>& all_distributions();

/// What the generators may produce. The defaults keep cases small enough for 100-digit arithmetic.
struct GeneratorOptions {
  Index max_input_size = 6;
  Index max_units = 6;
  Index max_batch = 4;
  int max_depth = 8;
  std::vector<Distribution> distributions = all_distributions();
  /// Layer types a random layer or network may use (the registry's names); empty: every registered
  /// type (for networks, all but embedding).
  std::vector<std::string> layer_types;
  /// Losses a random network may use; empty: every registered loss (loss_names()).
  std::vector<std::string> losses;
  /// Cases per property on float and double; mp100 runs a tenth (at least 2). 0: the default of
  /// each property, raised by the environment variable BPCHECK_PROPERTY_CASES (see runner.hpp).
  int cases = 0;
};

/// Input size, units (output width of a layer that chooses it) and batch size.
struct Shape {
  Index input_size = 1;
  Index units = 1;
  Index batch = 1;
};

/// One layer at one point: everything a property needs, exact in every rung.
struct LayerCase {
  LayerSpec spec;
  Index input_size = 1;
  Index output_size = 1;
  Index batch = 1;
  Distribution distribution = Distribution::standard;
  std::vector<mp100> inputs;      ///< input_size × batch, column-major (one sample after another)
  std::vector<mp100> parameters;  ///< the layer's flat θ
  std::vector<mp100> cotangent;   ///< output_size × batch: the seed U of the VJP
  std::vector<mp100> direction;   ///< input_size·batch + |θ|: the direction v in z = [vec X; θ]
};

/// One network at one point.
struct NetworkCase {
  ModelSpec spec;
  Index batch = 1;
  Distribution distribution = Distribution::standard;
  std::vector<mp100> inputs;      ///< input_size × batch, column-major
  std::vector<mp100> parameters;  ///< all layers' θ, concatenated
  std::vector<mp100> targets;     ///< output × batch values (mse, bce_with_logits)
  std::vector<Index> classes;     ///< one class per sample (cross_entropy)
  std::vector<mp100> cotangent;   ///< output × batch: a seed for network VJPs
};

/// Prints the case as reproducible input for `bpcheck verify`: the model (a layer case becomes a
/// one-layer model with an mse loss), parameters and data JSON, all digits. RapidCheck calls these
/// to print counterexamples.
void showValue(const LayerCase& c, std::ostream& os);
void showValue(const NetworkCase& c, std::ostream& os);
void showValue(Distribution d, std::ostream& os);
void showValue(const Shape& s, std::ostream& os);

/// The three JSON documents of a network case (for files, and for `bpcheck verify`).
nlohmann::ordered_json model_json(const NetworkCase& c);
nlohmann::ordered_json parameters_json(const NetworkCase& c);
nlohmann::ordered_json data_json(const NetworkCase& c);
/// A layer case as a one-layer network with an mse loss (targets zero).
NetworkCase as_network_case(const LayerCase& c);

namespace gen {

/// Shapes: 1×1, tall (1 input, many units), wide (many inputs, 1 unit) and general ones; batch 1
/// among them. Shrinks toward 1 × 1, batch 1.
rc::Gen<Shape> shape(const GeneratorOptions& o);

/// One distribution among o.distributions; shrinks toward the first.
rc::Gen<Distribution> distribution(const GeneratorOptions& o);

/// One float-exact value of a distribution (for near_ties: of its offset pattern around 1/2).
rc::Gen<double> value(Distribution d);

/// n values of a distribution, float-exact; near_ties share one base value.
rc::Gen<std::vector<mp100>> values(Distribution d, std::size_t n);

/// A value with digits beyond double: x = d (1 + t₁ 2⁻⁷⁰ + t₂ 2⁻¹⁴⁰), t₁ ≥ 1, so x is never a double
/// (for d ≠ 0). Shrinks toward t₁ = 1, t₂ = 0 and a simple d.
rc::Gen<mp100> beyond_double(rc::Gen<double> d);

/// A built-in layer with random options fitted to an input of `input_size` features and a batch of
/// `batch` (dense units, slopes, conv/pool shapes that divide the input, attention heads, residual
/// branches, batch_norm in training mode only for batch ≥ 2 …), among o.layer_types when given.
/// Shrinks toward the first type with its simplest options.
rc::Gen<LayerSpec> layer_spec(const GeneratorOptions& o, Index input_size, Index batch = 1);
/// A layer case of a random built-in layer (every registered type); or of the given layer (its options
/// kept). A layer that reads indices (embedding) gets valid indices as inputs and a direction that
/// leaves them fixed.
rc::Gen<LayerCase> layer_case(const GeneratorOptions& o);
rc::Gen<LayerCase> layer_case(const LayerSpec& spec, const GeneratorOptions& o);

/// A random network: depth 1–o.max_depth, random layers (every registered type but embedding, each
/// with options fitted to the width it receives), widths and loss; parameters from the case's
/// distribution (scaled like PyTorch's default initialisation), inputs from it, and targets. With
/// "embedding" among o.layer_types, an embedding may start the network (its inputs are then indices).
rc::Gen<NetworkCase> network_case(const GeneratorOptions& o);

/// A point for a layer outside the registry (a user's layer), named `name` in messages: a batch,
/// inputs from a distribution, parameters (standard values, or wide_range ones with that
/// distribution), a cotangent and a direction. Shrinks toward batch 1 and simple values.
rc::Gen<LayerCase> point_case(const std::string& name, Index input_size, Index output_size, Index parameters,
                              const GeneratorOptions& o);

/// The case with its inputs given digits beyond double (for mp100-only properties).
rc::Gen<LayerCase> with_digits_beyond_double(rc::Gen<LayerCase> g);

}  // namespace gen

/// The case's inputs, parameters, cotangent and direction on rung T (exact: the values are floats).
template <class T>
Matrix<T> inputs_on(const LayerCase& c);
template <class T>
Vector<T> parameters_on(const LayerCase& c);
template <class T>
Matrix<T> cotangent_on(const LayerCase& c);
template <class T>
Vector<T> direction_on(const LayerCase& c);

}  // namespace bpcheck::properties

namespace rc {
/// Arbitrary mp100: a standard value with digits beyond double (RapidCheck's own reals pass
/// through double and would never exercise mp100's extra digits).
template <>
struct Arbitrary<bpcheck::mp100> {
  static Gen<bpcheck::mp100> arbitrary();
};
}  // namespace rc

// ---- templates ---------------------------------------------------------------------------------
namespace bpcheck::properties {

namespace detail {
template <class T>
Vector<T> to_vector(const std::vector<mp100>& v) {
  Vector<T> out(Index(v.size()));
  for (Index i = 0; i < out.size(); ++i) out(i) = scalar_cast<T>(v[std::size_t(i)]);
  return out;
}
template <class T>
Matrix<T> to_matrix(const std::vector<mp100>& v, Index rows, Index cols) {
  Vector<T> flat = to_vector<T>(v);
  return Eigen::Map<Matrix<T>>(flat.data(), rows, cols);
}
}  // namespace detail

template <class T>
Matrix<T> inputs_on(const LayerCase& c) {
  return detail::to_matrix<T>(c.inputs, c.input_size, c.batch);
}
template <class T>
Vector<T> parameters_on(const LayerCase& c) {
  return detail::to_vector<T>(c.parameters);
}
template <class T>
Matrix<T> cotangent_on(const LayerCase& c) {
  return detail::to_matrix<T>(c.cotangent, c.output_size, c.batch);
}
template <class T>
Vector<T> direction_on(const LayerCase& c) {
  return detail::to_vector<T>(c.direction);
}

}  // namespace bpcheck::properties
