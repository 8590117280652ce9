#pragma once
// The JSON file formats: model spec, parameters, data, and computed gradients. A public interface.
//
//   bpcheck::ModelSpec spec = bpcheck::read_model_spec("model.json");
//   bpcheck::Network<bpcheck::mp100> net(spec);
//   bpcheck::read_parameters(net, "params.json");        // decimal strings keep all their digits
//   auto batch = bpcheck::read_batch(net, "data.json");   // one column per sample
//   auto g = net.gradient(batch.inputs, batch.targets);
//   std::cout << bpcheck::gradient_to_json(net, g).dump(2);
//
// model.json   {"input_size": 4,
//               "layers": [{"type": "dense", "units": 8}, {"type": "tanh"}, {"type": "dense", "units": 3}],
//               "loss": "cross_entropy"}
//              A layer's options are its keys other than "type" (e.g. "negative_slope", "approximate").
// params.json  {"layers": [{"W": [[...], ...], "b": [...]}, {}, {"W": ..., "b": ...}]}
//              One object per layer ({} for a layer without parameters). A matrix block is a list of
//              rows (row i = unit i), a vector block a flat list.
// data.json    {"inputs": [[...], ...], "targets": [[...], ...] or [c0, c1, ...]}
//              One row per sample. Targets are rows of the output's width (mse, bce_with_logits) or one
//              integer class index per sample (cross_entropy).
// gradient     {"precision": "double", "loss": "…",
//               "gradients": [{"layer": 0, "name": "W", "shape": [8, 4], "values": [[...], ...]},
//                             {"layer": 0, "name": "b", "shape": [8], "values": [...]}, ...]}
//              Every value a decimal string with all the rung's digits.
//
// Numbers may be JSON numbers or decimal strings; NaN and Inf are refused. Every reader takes a
// `where` (the file name) and throws input_error("<where>: <problem>").
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "bpcheck/network.hpp"

namespace bpcheck {

/// Reads and parses a JSON file; throws input_error for a missing or unreadable file and for
/// malformed JSON (with the byte position).
nlohmann::json read_json_file(const std::string& path);

/// A model spec from its JSON; checks the structure, then builds the network once so that unknown
/// layers, options and losses are reported here, prefixed with `where`.
ModelSpec model_spec_from_json(const nlohmann::json& j, const std::string& where);
ModelSpec read_model_spec(const std::string& path);
/// The spec as JSON, in the model format (round-trips through model_spec_from_json).
nlohmann::ordered_json model_spec_to_json(const ModelSpec& spec);

/// Sets the network's parameters from the parameter format, driven by each layer's parameter_blocks().
/// Every value is read directly in T, so a decimal string carries all its digits into mp100.
template <class T>
void parameters_from_json(Network<T>& net, const nlohmann::json& j, const std::string& where);
template <class T>
void read_parameters(Network<T>& net, const std::string& path);
/// The network's parameters in the parameter format, all digits.
template <class T>
nlohmann::ordered_json parameters_to_json(const Network<T>& net);

/// A batch: one column per sample, and the targets the network's loss takes.
template <class T>
struct Batch {
  Matrix<T> inputs;
  Targets<T> targets;
};

/// A batch from the data format, checked against the network's input width, output width and loss.
template <class T>
Batch<T> batch_from_json(const Network<T>& net, const nlohmann::json& j, const std::string& where);
template <class T>
Batch<T> read_batch(const Network<T>& net, const std::string& path);
/// A batch in the data format, all digits.
template <class T>
nlohmann::ordered_json batch_to_json(const Network<T>& net, const Batch<T>& batch);

/// A deterministic batch of `samples` samples for the network, the same numbers on every rung (up to
/// the rung's rounding). A 64-bit Mersenne twister seeded with seed ^ 0x9e3779b97f4a7c15 (so it does
/// not repeat the parameter stream of Network::initialize) gives u = (r >> 11)·2⁻⁵³ ∈ [0, 1), drawn in
/// double: first the inputs, sample by sample, as 2u − 1 ∈ [−1, 1); then per sample either a class
/// index ⌊u·C⌋ (class-index losses) or the output's width of values u ∈ [0, 1).
template <class T>
Batch<T> generate_batch(const Network<T>& net, std::uint64_t seed, Index samples = 4);

/// A computed gradient in the gradient format: one entry per parameter block, in layer order.
template <class T>
nlohmann::ordered_json gradient_to_json(const Network<T>& net, const Gradient<T>& g);

#define BPCHECK_EXTERN_FORMATS(T)                                                                     \
  extern template void parameters_from_json<T>(Network<T>&, const nlohmann::json&, const std::string&); \
  extern template void read_parameters<T>(Network<T>&, const std::string&);                          \
  extern template nlohmann::ordered_json parameters_to_json<T>(const Network<T>&);                   \
  extern template Batch<T> batch_from_json<T>(const Network<T>&, const nlohmann::json&,              \
                                              const std::string&);                                   \
  extern template Batch<T> read_batch<T>(const Network<T>&, const std::string&);                     \
  extern template nlohmann::ordered_json batch_to_json<T>(const Network<T>&, const Batch<T>&);       \
  extern template Batch<T> generate_batch<T>(const Network<T>&, std::uint64_t, Index);               \
  extern template nlohmann::ordered_json gradient_to_json<T>(const Network<T>&, const Gradient<T>&);
BPCHECK_EXTERN_FORMATS(float)
BPCHECK_EXTERN_FORMATS(double)
BPCHECK_EXTERN_FORMATS(::bpcheck::mp100)
BPCHECK_HALF_RUNGS(BPCHECK_EXTERN_FORMATS)
#undef BPCHECK_EXTERN_FORMATS

}  // namespace bpcheck
