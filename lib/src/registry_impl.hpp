#pragma once
// The layer registry: model-spec names to layer constructors, with option checking.
#include <algorithm>
#include <set>

#include "bpcheck/io/json_scalar.hpp"
#include "bpcheck/layer.hpp"
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/softmax.hpp"

namespace bpcheck {

namespace registry_detail {

inline void check_option_keys(const LayerSpec& spec, const std::set<std::string>& known) {
  for (const auto& [key, value] : spec.options.items()) {
    if (known.count(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw input_error(spec.type + ": unknown option '" + key + "'" +
                      (list.empty() ? " (it takes none)" : " (known: " + list + ")"));
  }
}

inline Index positive_integer_option(const LayerSpec& spec, const std::string& key) {
  if (!spec.options.contains(key)) throw input_error(spec.type + ": missing option '" + key + "'");
  const auto& j = spec.options.at(key);
  if (!j.is_number_integer() || j.get<long long>() <= 0)
    throw input_error(spec.type + ": option '" + key + "' must be a positive integer, got " + j.dump());
  if (j.get<long long>() > (1LL << 24))
    throw input_error(spec.type + ": option '" + key + "' = " + j.dump() + " is larger than 16777216");
  return Index(j.get<long long>());
}

}  // namespace registry_detail

template <class T>
AnyLayer<T> make_layer(const LayerSpec& spec, Index input_size) {
  using namespace registry_detail;
  const std::string& t = spec.type;
  const auto& names = layer_type_names();
  if (std::find(names.begin(), names.end(), t) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw input_error("unknown layer type '" + t + "' (known: " + known + ")");
  }
  if (t == "dense") {
    check_option_keys(spec, {"units"});
    return Dense<T>(input_size, positive_integer_option(spec, "units"));
  }
  if (t == "leaky_relu") {
    check_option_keys(spec, {"negative_slope"});
    const T slope = spec.options.contains("negative_slope")
                        ? scalar_from_json<T>(spec.options.at("negative_slope"), "leaky_relu: negative_slope")
                        : T(1) / T(100);
    return LeakyRelu<T>(input_size, slope);
  }
  if (t == "gelu") {
    check_option_keys(spec, {"approximate"});
    auto mode = GeluApproximation::none;
    if (spec.options.contains("approximate")) {
      const auto& a = spec.options.at("approximate");
      if (a == "tanh")
        mode = GeluApproximation::tanh;
      else if (a != "none")
        throw input_error("gelu: option 'approximate' must be \"none\" or \"tanh\", got " + a.dump());
    }
    return Gelu<T>(input_size, mode);
  }
  check_option_keys(spec, {});
  if (t == "relu") return Relu<T>(input_size);
  if (t == "sigmoid") return Sigmoid<T>(input_size);
  if (t == "tanh") return Tanh<T>(input_size);
  if (t == "softplus") return Softplus<T>(input_size);
  if (t == "silu") return Silu<T>(input_size);
  if (t == "softmax") return Softmax<T>(input_size);
  if (t == "log_softmax") return LogSoftmax<T>(input_size);
  throw error("layer type '" + t + "' is listed but has no constructor");
}

#define BPCHECK_INSTANTIATE_MAKE_LAYER(T) template AnyLayer<T> make_layer<T>(const LayerSpec&, Index);

}  // namespace bpcheck
