#pragma once
// The layer registry: model-spec names to layer constructors, with option checking.
#include <algorithm>
#include <set>

#include "bpcheck/io/json_scalar.hpp"
#include "bpcheck/layer.hpp"
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/dropout.hpp"
#include "bpcheck/layers/extra_activations.hpp"
#include "bpcheck/layers/norms.hpp"
#include "bpcheck/layers/conv.hpp"
#include "bpcheck/layers/pool.hpp"
#include "bpcheck/layers/branches.hpp"
#include "bpcheck/layers/residual.hpp"
#include "bpcheck/layers/attention.hpp"
#include "bpcheck/layers/embedding.hpp"
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

/// A real option (JSON number or decimal string), `fallback` when absent.
template <class T>
T scalar_option(const LayerSpec& spec, const std::string& key, const T& fallback) {
  if (!spec.options.contains(key)) return fallback;
  return scalar_from_json<T>(spec.options.at(key), spec.type + ": option '" + key + "'");
}

/// A non-negative integer option (a seed), `fallback` when absent.
inline std::uint64_t seed_option(const LayerSpec& spec, const std::string& key, std::uint64_t fallback) {
  if (!spec.options.contains(key)) return fallback;
  const auto& j = spec.options.at(key);
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<long long>() >= 0))
    throw input_error(spec.type + ": option '" + key + "' must be a non-negative integer, got " + j.dump());
  return j.get<std::uint64_t>();
}

/// A list of `n` reals (a JSON array), `fallback` in every entry when absent.
template <class T>
Vector<T> vector_option(const LayerSpec& spec, const std::string& key, Index n, const T& fallback) {
  if (!spec.options.contains(key)) return Vector<T>::Constant(n, fallback);
  const auto& j = spec.options.at(key);
  if (!j.is_array() || Index(j.size()) != n)
    throw input_error(spec.type + ": option '" + key + "' must be an array of " + std::to_string(n) +
                      " numbers, got " + j.dump());
  Vector<T> v(n);
  for (Index i = 0; i < n; ++i)
    v(i) = scalar_from_json<T>(j.at(std::size_t(i)), spec.type + ": option '" + key + "'[" + std::to_string(i) + "]");
  return v;
}

/// One of a fixed set of strings, `fallback` when absent.
inline std::string choice_option(const LayerSpec& spec, const std::string& key, const std::set<std::string>& allowed,
                                 const std::string& fallback) {
  if (!spec.options.contains(key)) return fallback;
  const auto& j = spec.options.at(key);
  if (j.is_string() && allowed.count(j.get<std::string>())) return j.get<std::string>();
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
  throw input_error(spec.type + ": option '" + key + "' must be one of " + list + ", got " + j.dump());
}

/// PyTorch's default eps of the normalisation layers, 1e-5, exact in T.
template <class T>
T default_norm_eps() {
  return T(1) / T(100000);
}

/// A window size along h and w: an integer (both) or, for 2d layers, [h, w]; `fallback` when absent.
/// `minimum` is 1 for kernel, stride and dilation and 0 for padding.
inline std::array<Index, 2> pair_option(const LayerSpec& spec, const std::string& key, bool two_d,
                                        std::array<Index, 2> fallback, long long minimum) {
  if (!spec.options.contains(key)) return fallback;
  const auto& j = spec.options.at(key);
  const auto one = [&](const nlohmann::json& v) {
    if (!v.is_number_integer() || v.get<long long>() < minimum || v.get<long long>() > (1LL << 24))
      throw input_error(spec.type + ": option '" + key + "' must be " +
                        (minimum > 0 ? "a positive integer" : "a non-negative integer") +
                        (two_d ? " or a pair [h, w] of them" : "") + ", got " + j.dump());
    return Index(v.get<long long>());
  };
  if (two_d && j.is_array()) {
    if (j.size() != 2) throw input_error(spec.type + ": option '" + key + "' must be [h, w], got " + j.dump());
    return {one(j[0]), one(j[1])};
  }
  const Index v = one(j);
  // A 1d layer is a 2d one of height 1: its kernel, stride and dilation are 1 and its padding 0 in h.
  return {two_d ? v : Index(minimum > 0 ? 1 : 0), v};
}

/// The input geometry of a 1d or 2d window layer from its options; checks it against input_size.
inline WindowGeometry window_option(const LayerSpec& spec, Index input_size, bool two_d, bool with_dilation,
                                    bool stride_defaults_to_kernel) {
  const Index channels = positive_integer_option(spec, "channels");
  const Index height = two_d ? positive_integer_option(spec, "height") : 1;
  const Index width = positive_integer_option(spec, two_d ? "width" : "length");
  if (channels * height * width != input_size)
    throw input_error(spec.type + ": the input has " + std::to_string(input_size) + " values per sample, but " +
                      (two_d ? "channels × height × width = " : "channels × length = ") +
                      std::to_string(channels * height * width));
  const auto kernel = pair_option(spec, "kernel", two_d, {0, 0}, 1);
  if (!spec.options.contains("kernel")) throw input_error(spec.type + ": missing option 'kernel'");
  const auto stride = pair_option(spec, "stride", two_d, stride_defaults_to_kernel ? kernel : std::array<Index, 2>{1, 1}, 1);
  const auto padding = pair_option(spec, "padding", two_d, {0, 0}, 0);
  const auto dilation = with_dilation ? pair_option(spec, "dilation", two_d, {1, 1}, 1) : std::array<Index, 2>{1, 1};
  return WindowGeometry::make(spec.type, {channels, height, width}, kernel, stride, padding, dilation);
}

}  // namespace registry_detail

template <class T>
AnyLayer<T> make_layer(const LayerSpec& spec, Index input_size);

/// A sequence of layer objects (residual's layers, a branch of add/concat) built from `input_size`
/// on, each reading the previous one's width; errors are prefixed with `where` and the index.
/// `independent` is cleared when a layer couples the samples of a batch.
template <class T>
std::vector<AnyLayer<T>> inner_sequence(const nlohmann::json& list, Index input_size, const std::string& where,
                                        bool& independent) {
  std::vector<AnyLayer<T>> inner;
  Index width = input_size;
  for (std::size_t k = 0; k < list.size(); ++k) {
    const auto& lj = list[k];
    const std::string at = where + std::to_string(k);
    if (!lj.is_object() || !lj.contains("type") || !lj.at("type").is_string())
      throw input_error(at + ": expected an object with a string 'type', got " + lj.dump());
    LayerSpec inner_spec{lj.at("type").get<std::string>(), nlohmann::json::object()};
    for (const auto& [key, value] : lj.items())
      if (key != "type") inner_spec.options[key] = value;
    try {
      inner.push_back(make_layer<T>(inner_spec, width));
    } catch (const input_error& e) {
      throw input_error(at + ": " + e.what());
    }
    width = inner.back().output_size();
    independent = independent && inner.back().sample_independent();
  }
  return inner;
}

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
  if (t == "elu") {
    check_option_keys(spec, {"alpha"});
    return Elu<T>(input_size, scalar_option<T>(spec, "alpha", T(1)));
  }
  if (t == "hardtanh") {
    check_option_keys(spec, {"min_val", "max_val"});
    return Hardtanh<T>(input_size, scalar_option<T>(spec, "min_val", T(-1)), scalar_option<T>(spec, "max_val", T(1)));
  }
  if (t == "swish") {
    check_option_keys(spec, {"beta"});
    return Swish<T>(input_size, scalar_option<T>(spec, "beta", T(1)));
  }
  if (t == "dropout") {
    check_option_keys(spec, {"p", "seed"});
    return Dropout<T>(input_size, scalar_option<T>(spec, "p", T(1) / T(2)), seed_option(spec, "seed", 0));
  }
  if (t == "layer_norm") {
    check_option_keys(spec, {"eps"});
    return LayerNorm<T>(input_size, scalar_option<T>(spec, "eps", default_norm_eps<T>()));
  }
  if (t == "batch_norm") {
    check_option_keys(spec, {"mode", "eps", "running_mean", "running_var"});
    const T eps = scalar_option<T>(spec, "eps", default_norm_eps<T>());
    if (choice_option(spec, "mode", {"train", "eval"}, "train") == "train") {
      if (spec.options.contains("running_mean") || spec.options.contains("running_var"))
        throw input_error("batch_norm: running_mean and running_var apply to mode \"eval\" only (training mode "
                          "normalises with the batch's own statistics)");
      return BatchNormTrain<T>(input_size, eps);
    }
    return BatchNormEval<T>(input_size, eps, vector_option<T>(spec, "running_mean", input_size, T(0)),
                            vector_option<T>(spec, "running_var", input_size, T(1)));
  }
  if (t == "conv1d" || t == "conv2d") {
    const bool two_d = t == "conv2d";
    check_option_keys(spec, two_d ? std::set<std::string>{"channels", "height", "width", "out_channels", "kernel",
                                                          "stride", "padding", "dilation"}
                                  : std::set<std::string>{"channels", "length", "out_channels", "kernel", "stride",
                                                          "padding", "dilation"});
    return Conv<T>(t, window_option(spec, input_size, two_d, true, false), positive_integer_option(spec, "out_channels"));
  }
  if (t == "max_pool1d" || t == "max_pool2d" || t == "avg_pool1d" || t == "avg_pool2d") {
    const bool two_d = t.back() == 'd' && t[t.size() - 2] == '2';
    check_option_keys(spec, two_d ? std::set<std::string>{"channels", "height", "width", "kernel", "stride", "padding"}
                                  : std::set<std::string>{"channels", "length", "kernel", "stride", "padding"});
    return Pool<T>(t, t.rfind("max", 0) == 0 ? PoolKind::max : PoolKind::average,
                   window_option(spec, input_size, two_d, false, true));
  }
  if (t == "embedding") {
    check_option_keys(spec, {"num_embeddings", "embedding_dim"});
    return Embedding<T>(positive_integer_option(spec, "num_embeddings"), positive_integer_option(spec, "embedding_dim"),
                        input_size);
  }
  if (t == "multi_head_attention") {
    check_option_keys(spec, {"heads", "sequence", "causal"});
    const Index sequence = positive_integer_option(spec, "sequence");
    const Index heads = positive_integer_option(spec, "heads");
    if (input_size % sequence != 0)
      throw input_error("multi_head_attention: the input's " + std::to_string(input_size) +
                        " values per sample are not a sequence of " + std::to_string(sequence) + " equal tokens");
    bool causal = false;
    if (spec.options.contains("causal")) {
      if (!spec.options.at("causal").is_boolean())
        throw input_error("multi_head_attention: option 'causal' must be true or false, got " +
                          spec.options.at("causal").dump());
      causal = spec.options.at("causal").get<bool>();
    }
    return MultiHeadAttention<T>(input_size / sequence, sequence, heads, causal);
  }
  if (t == "residual") {
    check_option_keys(spec, {"layers"});
    if (!spec.options.contains("layers") || !spec.options.at("layers").is_array() || spec.options.at("layers").empty())
      throw input_error("residual: option 'layers' must be a non-empty array of layer objects");
    bool independent = true;
    auto inner = inner_sequence<T>(spec.options.at("layers"), input_size, "residual: inner layer ", independent);
    if (independent) return Residual<T, true>(std::move(inner));
    return Residual<T, false>(std::move(inner));
  }
  if (t == "add" || t == "concat") {
    check_option_keys(spec, {"branches"});
    const auto* list = spec.options.contains("branches") ? &spec.options.at("branches") : nullptr;
    if (!list || !list->is_array() || list->size() < 2)
      throw input_error(t + ": option 'branches' must be an array of at least two branches, each an array of layer "
                            "objects ([] for the input itself)");
    std::vector<std::vector<AnyLayer<T>>> branches;
    bool independent = true;
    for (std::size_t b = 0; b < list->size(); ++b) {
      if (!(*list)[b].is_array())
        throw input_error(t + ": branch " + std::to_string(b) + " must be an array of layer objects, got " +
                          (*list)[b].dump());
      branches.push_back(inner_sequence<T>((*list)[b], input_size, t + ": branch " + std::to_string(b) + ", layer ",
                                           independent));
    }
    const Join join = t == "add" ? Join::add : Join::concat;
    if (independent) return Branches<T, true>(input_size, std::move(branches), join);
    return Branches<T, false>(input_size, std::move(branches), join);
  }
  check_option_keys(spec, {});
  if (t == "flatten") return Flatten<T>(input_size);
  if (t == "mish") return Mish<T>(input_size);
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
