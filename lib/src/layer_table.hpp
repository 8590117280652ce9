#pragma once
// The layer registry as one table: every built-in layer type once, with its name, its one-line
// documentation, its factory on every rung (parsing and checking its options), its shape rule (what
// the memory guard counts) and the options the property suite generates for it. The names, the
// memory estimate, the property suite's generators and the docs' list all derive from it, so a new
// layer type is its header, its entry here and its tests (docs/design.md, "Adding a layer").
#include <algorithm>
#include <array>
#include <set>
#include <span>
#include <utility>

#include "bpcheck/io/json_scalar.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/layer.hpp"
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/attention.hpp"
#include "bpcheck/layers/branches.hpp"
#include "bpcheck/layers/conv.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/dropout.hpp"
#include "bpcheck/layers/embedding.hpp"
#include "bpcheck/layers/extra_activations.hpp"
#include "bpcheck/layers/norms.hpp"
#include "bpcheck/layers/pool.hpp"
#include "bpcheck/layers/residual.hpp"
#include "bpcheck/layers/softmax.hpp"

namespace bpcheck {

/// Adds a layer's parameters and its widest intermediate (one sample) to `e` and moves `width` (its
/// input's) to its output's; false when the options do not size it, where the count stops (the
/// registry then refuses the options with its own message). Widths are doubles: a product of two
/// huge sizes must not wrap around, only its magnitude matters.
using ExtentRule = bool (*)(const LayerSpec& spec, double& width, ModelExtent& e, int depth);

/// One row of the table. Fields in order: name, summary, shape, make, options, extent.
template <class T>
struct LayerEntry {
  const char* name;
  const char* summary;  ///< one line; docs/layers.md lists it verbatim (a test compares)
  LayerShape shape;
  /// The layer on rung T with zero parameters, for `input_size` values per sample; input_error for an
  /// unknown or ill-typed option.
  AnyLayer<T> (*make)(const LayerSpec& spec, Index input_size);
  nlohmann::json (*options)(const OptionKnobs& knobs);  ///< see LayerTypeInfo::options
  ExtentRule extent = nullptr;  ///< shape from_options only; the others keep the width and add nothing
};

template <class T>
std::span<const LayerEntry<T>> layer_table();

/// The entry of `type` on rung T; input_error naming the known types when there is none.
template <class T>
const LayerEntry<T>& layer_entry(const std::string& type) {
  for (const auto& entry : layer_table<T>())
    if (type == entry.name) return entry;
  std::string known;
  for (const auto& entry : layer_table<T>()) known += (known.empty() ? "" : ", ") + std::string(entry.name);
  throw input_error("unknown layer type '" + type + "' (known: " + known + ")");
}

template <class T>
AnyLayer<T> make_layer(const LayerSpec& spec, Index input_size) {
  return layer_entry<T>(spec.type).make(spec, input_size);
}

// io.cpp and names.cpp read the double table; it is instantiated with the fast rungs.
extern template std::span<const LayerEntry<double>> layer_table<double>();
extern template const LayerEntry<double>& layer_entry<double>(const std::string&);

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

/// A true/false option, `fallback` when absent.
inline bool bool_option(const LayerSpec& spec, const std::string& key, bool fallback) {
  if (!spec.options.contains(key)) return fallback;
  const auto& j = spec.options.at(key);
  if (!j.is_boolean()) throw input_error(spec.type + ": option '" + key + "' must be true or false, got " + j.dump());
  return j.get<bool>();
}

/// PyTorch's default eps of the normalisation layers, 1e-5, the nearest value of T (fp16 holds it as a
/// subnormal number; 1/10⁵ formed in fp16 would be 0, 10⁵ being beyond its range).
template <class T>
T default_norm_eps() {
  return from_string<T>("1e-5");
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


/// An optional positive integer, `fallback` when absent.
inline Index positive_integer_or(const LayerSpec& spec, const std::string& key, Index fallback) {
  return spec.options.contains(key) ? positive_integer_option(spec, key) : fallback;
}

/// The `tokens` option of a token-wise layer: it must divide the input's values per sample.
inline Index tokens_option(const LayerSpec& spec, Index input_size, const std::string& key = "tokens") {
  const Index tokens = positive_integer_or(spec, key, 1);
  if (input_size % tokens != 0)
    throw input_error(spec.type + ": the input's " + std::to_string(input_size) + " values per sample are not " +
                      std::to_string(tokens) + " tokens of equal size (option '" + key + "')");
  return tokens;
}

/// channels, height, width of an image layer; their product must be the input size.
inline std::array<Index, 3> image_option(const LayerSpec& spec, Index input_size) {
  const Index c = positive_integer_option(spec, "channels"), h = positive_integer_option(spec, "height"),
              w = positive_integer_option(spec, "width");
  if (c * h * w != input_size)
    throw input_error(spec.type + ": the input has " + std::to_string(input_size) +
                      " values per sample, but channels × height × width = " + std::to_string(c * h * w));
  return {c, h, w};
}

// ---- building ---------------------------------------------------------------------------------

/// A layer without options, built from its width.
template <class T, template <class> class L>
AnyLayer<T> make_plain(const LayerSpec& spec, Index input_size) {
  check_option_keys(spec, {});
  return L<T>(input_size);
}

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
AnyLayer<T> make_window_layer(const LayerSpec& spec, Index input_size) {
  const std::string& t = spec.type;
  const bool two_d = t.back() == 'd' && t[t.size() - 2] == '2';
  const bool conv = t.rfind("conv", 0) == 0;
  std::set<std::string> keys{"channels", "kernel", "stride", "padding"};
  keys.merge(two_d ? std::set<std::string>{"height", "width"} : std::set<std::string>{"length"});
  if (conv) keys.merge(std::set<std::string>{"out_channels", "dilation", "groups", "bias"});
  check_option_keys(spec, keys);
  if (conv) {
    const Index groups = spec.options.contains("groups") ? positive_integer_option(spec, "groups") : 1;
    return Conv<T>(t, window_option(spec, input_size, two_d, true, false), positive_integer_option(spec, "out_channels"),
                   groups, bool_option(spec, "bias", true));
  }
  return Pool<T>(t, t.rfind("max", 0) == 0 ? PoolKind::max : PoolKind::average,
                 window_option(spec, input_size, two_d, false, true));
}

/// batch_norm and batch_norm2d: the plane is 1 for batch_norm, height × width for batch_norm2d.
template <class T>
AnyLayer<T> make_batch_norm(const LayerSpec& s, Index n) {
  const bool two_d = s.type == "batch_norm2d";
  std::set<std::string> keys{"mode", "eps", "running_mean", "running_var"};
  if (two_d) keys.merge(std::set<std::string>{"channels", "height", "width"});
  check_option_keys(s, keys);
  Index features = n, plane = 1;
  if (two_d) {
    const auto chw = image_option(s, n);
    features = chw[0], plane = chw[1] * chw[2];
  }
  const T eps = scalar_option<T>(s, "eps", default_norm_eps<T>());
  if (choice_option(s, "mode", {"train", "eval"}, "train") == "train") {
    if (s.options.contains("running_mean") || s.options.contains("running_var"))
      throw input_error(s.type + ": running_mean and running_var apply to mode \"eval\" only "
                                 "(training mode normalises with the batch's own statistics)");
    return BatchNormTrain<T>(features, eps, plane, s.type);
  }
  return BatchNormEval<T>(features, eps, vector_option<T>(s, "running_mean", features, T(0)),
                          vector_option<T>(s, "running_var", features, T(1)), plane, s.type);
}

template <class T>
AnyLayer<T> make_transformer(const LayerSpec& s, Index n) {
  check_option_keys(s, {"sequence", "heads", "dim_feedforward", "norm_first", "activation", "eps"});
  if (!s.options.contains("sequence")) throw input_error(s.type + ": missing option 'sequence'");
  const Index sequence = tokens_option(s, n, "sequence");
  const Index heads = positive_integer_option(s, "heads"), ff = positive_integer_option(s, "dim_feedforward");
  const bool gelu = choice_option(s, "activation", {"relu", "gelu"}, "relu") == "gelu";
  return TransformerEncoderLayer<T>(n / sequence, sequence, heads, ff, bool_option(s, "norm_first", false), gelu,
                                    scalar_option<T>(s, "eps", default_norm_eps<T>()));
}

template <class T>
AnyLayer<T> make_branches(const LayerSpec& spec, Index input_size) {
  const std::string& t = spec.type;
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
    branches.push_back(
        inner_sequence<T>((*list)[b], input_size, t + ": branch " + std::to_string(b) + ", layer ", independent));
  }
  const Join join = t == "add" ? Join::add : Join::concat;
  if (independent) return Branches<T, true>(input_size, std::move(branches), join);
  return Branches<T, false>(input_size, std::move(branches), join);
}

// ---- counting (model_extent) ------------------------------------------------------------------

/// An option's positive integer, or each entry of a [a, b] pair multiplied; 0 when absent or ill-formed
/// (the registry refuses those later with its own message).
inline double option_product(const nlohmann::json& options, const char* key, double absent) {
  const auto it = options.find(key);
  if (it == options.end()) return absent;
  auto positive = [](const nlohmann::json& j) {
    return j.is_number_integer() && j.get<long long>() > 0 ? double(j.get<long long>()) : 0.0;
  };
  if (!it->is_array()) return positive(*it);
  double product = 1;
  for (const auto& e : *it) product *= positive(e);
  return it->empty() ? 0.0 : product;
}

}  // namespace registry_detail

/// Counts one layer (see ExtentRule) through its entry; input_error for an unknown type.
inline bool layer_extent(const LayerSpec& spec, double& width, ModelExtent& e, int depth) {
  const auto& entry = layer_entry<double>(spec.type);
  if (entry.extent && !entry.extent(spec, width, e, depth)) return false;
  e.widest = std::max(e.widest, width);
  return true;
}

/// Counts a JSON list of layer objects (a residual's layers, a branch); false when malformed. Errors
/// are prefixed with `where` and the index, as the registry prefixes its own.
inline bool sequence_extent(const nlohmann::json& list, double& width, ModelExtent& e, int depth,
                            const std::string& where) {
  if (!list.is_array() || depth > max_json_depth) return false;
  for (std::size_t k = 0; k < list.size(); ++k) {
    const auto& j = list[k];
    if (!j.is_object() || !j.contains("type") || !j.at("type").is_string()) return false;
    LayerSpec spec{j.at("type").get<std::string>(), j};
    spec.options.erase("type");
    try {
      if (!layer_extent(spec, width, e, depth + 1)) return false;
    } catch (const input_error& error) {
      throw input_error(where + std::to_string(k) + ": " + error.what());
    }
  }
  return true;
}

namespace registry_detail {

inline bool dense_extent(const LayerSpec& spec, double& width, ModelExtent& e, int) {
  const double out = option_product(spec.options, "units", 0), tokens = option_product(spec.options, "tokens", 1);
  if (out == 0 || tokens == 0) return false;
  e.parameters += (width / tokens + 1) * out;
  width = tokens * out;
  return true;
}

/// layer_norm (per token) and batch_norm: γ and β per feature.
inline bool norm_extent(const LayerSpec& spec, double& width, ModelExtent& e, int) {
  const double tokens = option_product(spec.options, "tokens", 1);
  if (tokens == 0) return false;
  e.parameters += 2 * width / tokens;
  return true;
}

/// batch_norm2d: γ and β per channel.
inline bool norm2d_extent(const LayerSpec& spec, double&, ModelExtent& e, int) {
  const double channels = option_product(spec.options, "channels", 0);
  if (channels == 0) return false;
  e.parameters += 2 * channels;
  return true;
}

inline bool adaptive_pool_extent(const LayerSpec& spec, double& width, ModelExtent&, int) {
  const double channels = option_product(spec.options, "channels", 0);
  const auto it = spec.options.find("output_size");
  double bins = option_product(spec.options, "output_size", 0);
  if (it != spec.options.end() && !it->is_array()) bins *= bins;  // k means k × k
  if (channels == 0 || bins == 0) return false;
  width = channels * bins;
  return true;
}

inline bool position_extent(const LayerSpec&, double& width, ModelExtent& e, int) {
  e.parameters += width;
  return true;
}

inline bool token_mean_extent(const LayerSpec& spec, double& width, ModelExtent&, int) {
  const double tokens = option_product(spec.options, "tokens", 0);
  if (tokens == 0) return false;
  width /= tokens;
  return true;
}

/// in_proj, out_proj, linear1, linear2 and the two norms; the attention weights and the hidden
/// activations of one sample.
inline bool transformer_extent(const LayerSpec& spec, double& width, ModelExtent& e, int) {
  const double sequence = option_product(spec.options, "sequence", 0), heads = option_product(spec.options, "heads", 1),
               ff = option_product(spec.options, "dim_feedforward", 0);
  if (sequence == 0 || ff == 0) return false;
  const double embed = width / sequence;
  e.parameters += 4 * embed * embed + 4 * embed + 2 * embed * ff + ff + embed + 4 * embed;
  e.widest = std::max({e.widest, heads * sequence * sequence, sequence * ff});
  return true;
}

/// conv and pooling: the padded input bounds the output's positions (stride ≥ 1); the kernel sizes
/// the weights.
inline bool window_extent(const LayerSpec& spec, double& width, ModelExtent& e, int) {
  const auto& o = spec.options;
  const std::string& t = spec.type;
  const double channels = option_product(o, "channels", 0);
  const bool two_d = t.back() == 'd' && t[t.size() - 2] == '2';
  const auto padding_it = o.find("padding");
  double padding = 0;
  if (padding_it != o.end())
    for (const auto& p : padding_it->is_array() ? *padding_it : nlohmann::json::array({*padding_it}))
      if (p.is_number_integer()) padding = std::max(padding, double(p.get<long long>()));
  const double positions = two_d ? (option_product(o, "height", 0) + 2 * padding) *
                                       (option_product(o, "width", 0) + 2 * padding)
                                 : option_product(o, "length", 0) + 2 * padding;
  if (channels == 0 || positions == 0) return false;
  double out_channels = channels;
  if (t.rfind("conv", 0) == 0) {
    out_channels = option_product(o, "out_channels", 0);
    double kernel = option_product(o, "kernel", 0);
    if (two_d && !o.value("kernel", nlohmann::json()).is_array()) kernel *= kernel;  // k means k × k
    const double groups = option_product(o, "groups", 1);
    if (out_channels == 0 || kernel == 0 || groups == 0) return false;
    const bool bias = !o.contains("bias") || o.at("bias") != false;
    e.parameters += out_channels * (channels / groups * kernel + (bias ? 1 : 0));
  }
  width = std::max(width, out_channels * positions);
  return true;
}

inline bool embedding_extent(const LayerSpec& spec, double& width, ModelExtent& e, int) {
  const double rows = option_product(spec.options, "num_embeddings", 0);
  const double dim = option_product(spec.options, "embedding_dim", 0);
  if (rows == 0 || dim == 0) return false;
  e.parameters += rows * dim;
  width *= dim;
  return true;
}

inline bool attention_extent(const LayerSpec& spec, double& width, ModelExtent& e, int) {
  const double sequence = option_product(spec.options, "sequence", 0), heads = option_product(spec.options, "heads", 1);
  if (sequence == 0) return false;
  const double embed = width / sequence;
  e.parameters += 4 * embed * embed + 4 * embed;
  e.widest = std::max(e.widest, heads * sequence * sequence);  // the attention weights of one sample
  return true;
}

inline bool residual_extent(const LayerSpec& spec, double& width, ModelExtent& e, int depth) {
  const auto inner = spec.options.find("layers");
  if (inner == spec.options.end()) return false;
  double inner_width = width;
  return sequence_extent(*inner, inner_width, e, depth, "residual: inner layer ");
}

/// Every branch reads the input; add's width is the branches', concat's their sum.
inline bool branches_extent(const LayerSpec& spec, double& width, ModelExtent& e, int depth) {
  const auto branches = spec.options.find("branches");
  if (branches == spec.options.end() || !branches->is_array()) return false;
  double joined = 0;
  for (std::size_t b = 0; b < branches->size(); ++b) {
    double branch_width = width;
    if (!sequence_extent((*branches)[b], branch_width, e, depth, spec.type + ": branch " + std::to_string(b) + ", layer "))
      return false;
    joined = spec.type == "concat" ? joined + branch_width : std::max(joined, branch_width);
  }
  width = joined;
  return true;
}

// ---- generated options (the property suite) ---------------------------------------------------

using nlohmann::json;

inline json no_options(const OptionKnobs&) { return json::object(); }

/// The divisors of n, smallest first (so knob 0 picks 1).
inline std::vector<Index> divisors(Index n) {
  std::vector<Index> d;
  for (Index k = 1; k <= n; ++k)
    if (n % k == 0) d.push_back(k);
  return d;
}

template <class V>
const typename V::value_type& choose(const V& items, int knob) {
  return items[std::size_t(knob) % items.size()];
}

/// Largest kernel with dilation d that fits a length n padded by p on both sides: d(k − 1) + 1 ≤ n + 2p.
inline Index largest_kernel(Index n, Index p, Index d) { return (n + 2 * p - 1) / d + 1; }

/// conv1d/conv2d: channels × (height ×) length = input size; padding 0–1, dilation 1–2, a kernel
/// that fits, stride 1–2, groups a divisor of the channels (depthwise included) with one or two output
/// channels per group, sometimes no bias. Pairs [h, w] in 2d.
inline json conv_options(const OptionKnobs& d, bool two_d) {
  const auto& k = d.knobs;
  const Index n = d.input_size;
  const Index channels = choose(divisors(n), k[0]);
  const Index rest = n / channels;
  const Index height = two_d ? choose(divisors(rest), k[6]) : 1, width = rest / height;
  const Index padding = k[1] % 2, dilation = 1 + k[2] % 2, stride = 1 + k[4] % 2;
  const Index kw = 1 + k[3] % largest_kernel(width, padding, dilation);
  const Index kh = 1 + k[7] % largest_kernel(height, padding, dilation);
  json o{{"channels", channels}};
  if (two_d) {
    o["height"] = height;
    o["width"] = width;
    o["kernel"] = json::array({kh, kw});
  } else {
    o["length"] = width;
    o["kernel"] = kw;
  }
  const Index groups = choose(divisors(channels), k[5] / 2);
  o["out_channels"] = groups * (1 + k[5] % 2);
  if (groups != 1) o["groups"] = groups;
  if (k[5] / 4 % 3 == 2) o["bias"] = false;
  if (stride != 1) o["stride"] = stride;
  if (padding != 0) o["padding"] = padding;
  if (dilation != 1) o["dilation"] = dilation;
  return o;
}

/// Pooling: a kernel no longer than the length, padding at most half the kernel, the stride its
/// default (the kernel) or 1 (overlapping windows, where max pooling meets ties).
inline json pool_options(const OptionKnobs& d, bool two_d) {
  const auto& k = d.knobs;
  const Index n = d.input_size;
  const Index channels = choose(divisors(n), k[0]);
  const Index rest = n / channels;
  const Index height = two_d ? choose(divisors(rest), k[6]) : 1, width = rest / height;
  const Index kw = 1 + k[3] % width, kh = 1 + k[7] % height;
  const Index pw = kw >= 2 ? k[1] % 2 : 0, ph = kh >= 2 ? k[1] % 2 : 0;
  json o{{"channels", channels}};
  if (two_d) {
    o["height"] = height;
    o["width"] = width;
    o["kernel"] = json::array({kh, kw});
    if (pw || ph) o["padding"] = json::array({ph, pw});
  } else {
    o["length"] = width;
    o["kernel"] = kw;
    if (pw) o["padding"] = pw;
  }
  if (k[4] % 2) o["stride"] = 1;
  return o;
}

/// A residual branch that keeps the width n: dense, dense + tanh, tanh + dense, layer_norm + dense, or
/// a nested residual block.
inline json residual_options(const OptionKnobs& d) {
  const json dense{{"type", "dense"}, {"units", d.input_size}}, tanh{{"type", "tanh"}}, norm{{"type", "layer_norm"}};
  const std::array<json, 5> branches{
      json::array({dense}),
      json::array({dense, tanh}),
      json::array({tanh, dense}),
      json::array({norm, dense}),
      json::array({json{{"type", "residual"}, {"layers", json::array({dense})}}}),
  };
  return {{"layers", choose(branches, d.knobs[0])}};
}

/// Parallel branches on width n: add joins branches of width n (one may be the input itself), concat
/// stacks branches of any width.
inline json branches_options(const OptionKnobs& d, bool add) {
  const auto& k = d.knobs;
  const Index n = d.input_size;
  const auto dense = [](Index units) { return json{{"type", "dense"}, {"units", units}}; };
  const json tanh{{"type", "tanh"}}, sigmoid{{"type", "sigmoid"}}, skip = json::array();
  const std::array<json, 3> sums{
      json::array({json::array({dense(n)}), json::array({tanh})}),
      json::array({skip, json::array({dense(n), tanh})}),
      json::array({json::array({dense(n)}), json::array({dense(n)}), json::array({sigmoid})}),
  };
  const std::array<json, 3> stacks{
      json::array({json::array({dense(1 + k[1] % 2)}), skip}),
      json::array({json::array({tanh}), json::array({dense(1), sigmoid})}),
      json::array({json::array({dense(1)}), json::array({dense(2)}), json::array({tanh})}),
  };
  return {{"branches", add ? choose(sums, k[0]) : choose(stacks, k[0])}};
}

/// Running statistics of `n` features for evaluation mode (means in [−1/2, 1/2], variances 1, 1/2 or 2).
inline json running_statistics(const std::vector<int>& k, Index n) {
  json mean = json::array(), var = json::array();
  for (Index i = 0; i < n; ++i) {
    mean.push_back(double((k[1] + 3 * i) % 5 - 2) / 4);
    var.push_back(choose(std::array<double, 3>{1.0, 0.5, 2.0}, int((k[2] + i) % 3)));
  }
  return {{"mode", "eval"}, {"running_mean", mean}, {"running_var", var}};
}

/// channels × height × width = the input size, from knobs 0 and 6.
inline std::array<Index, 3> image_options(const OptionKnobs& d) {
  const Index channels = choose(divisors(d.input_size), d.knobs[0]);
  const Index rest = d.input_size / channels, height = choose(divisors(rest), d.knobs[6]);
  return {channels, height, rest / height};
}

/// batch_norm2d: training mode when the batch and plane hold two values per channel, else evaluation mode.
inline json batch_norm2d_options(const OptionKnobs& d) {
  const auto [c, h, w] = image_options(d);
  json o = d.batch * h * w >= 2 && d.knobs[3] % 2 == 0 ? json::object() : running_statistics(d.knobs, c);
  o["channels"] = c, o["height"] = h, o["width"] = w;
  return o;
}

/// adaptive_avg_pool2d: output sizes 1 … H + 1 and 1 … W + 1 (above the input size, bins repeat rows).
inline json adaptive_pool_options(const OptionKnobs& d) {
  const auto [c, h, w] = image_options(d);
  const Index oh = 1 + d.knobs[3] % (h + 1), ow = 1 + d.knobs[7] % (w + 1);
  return {{"channels", c}, {"height", h}, {"width", w},
          {"output_size", oh == ow ? json(oh) : json::array({oh, ow})}};
}

/// transformer_encoder_layer: a sequence length that divides the width, heads that divide E, a small
/// feed-forward width, both norm placements and activations.
inline json transformer_options(const OptionKnobs& d) {
  const auto& k = d.knobs;
  const Index sequence = choose(divisors(d.input_size), k[0]);
  const Index heads = choose(divisors(d.input_size / sequence), k[1]);
  json o{{"sequence", sequence}, {"heads", heads}, {"dim_feedforward", 1 + k[2] % 4}};
  if (k[3] % 2) o["norm_first"] = true;
  if (k[4] % 2) o["activation"] = "gelu";
  if (k[5] % 3 == 2) o["eps"] = 0.001;
  return o;
}

/// batch_norm: training mode couples the samples and needs two of them; evaluation mode with running
/// statistics drawn per feature (means in [−1/2, 1/2], variances 1, 1/2 or 2).
inline json batch_norm_options(const OptionKnobs& d) {
  const auto& k = d.knobs;
  if (d.batch >= 2 && k[0] % 2 == 0) return json::object();
  json mean = json::array(), var = json::array();
  for (Index i = 0; i < d.input_size; ++i) {
    mean.push_back(double((k[1] + 3 * i) % 5 - 2) / 4);
    var.push_back(choose(std::array<double, 3>{1.0, 0.5, 2.0}, int((k[2] + i) % 3)));
  }
  return {{"mode", "eval"}, {"running_mean", mean}, {"running_var", var}};
}

}  // namespace registry_detail

// ---- the table --------------------------------------------------------------------------------

template <class T>
std::span<const LayerEntry<T>> layer_table() {
  using namespace registry_detail;
  using S = LayerShape;
  static const std::array table{
      LayerEntry<T>{"dense", "y = Wx + b with W units × inputs, as torch.nn.Linear (options units, tokens)",
                    S::from_options,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"units", "tokens"});
                      const Index tokens = tokens_option(s, n);
                      return Dense<T>(n / tokens, positive_integer_option(s, "units"), tokens);
                    },
                    [](const OptionKnobs& k) -> json {
                      const Index tokens = choose(divisors(k.input_size), k.knobs[0] / 2);
                      return tokens == 1 ? json{{"units", k.units}} : json{{"units", k.units}, {"tokens", tokens}};
                    },
                    dense_extent},
      LayerEntry<T>{"relu", "max(x, 0); relu′(0) = 0", S::elementwise, make_plain<T, Relu>, no_options},
      LayerEntry<T>{"leaky_relu", "x for x > 0, a·x otherwise (negative_slope a, default 0.01)", S::elementwise,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"negative_slope"});
                      const T slope = s.options.contains("negative_slope")
                                          ? scalar_from_json<T>(s.options.at("negative_slope"), "leaky_relu: negative_slope")
                                          : T(1) / T(100);
                      return LeakyRelu<T>(n, slope);
                    },
                    [](const OptionKnobs& k) -> json {  // slopes exact in float, the default first
                      const double slope = choose(std::array<double, 4>{0.0, 0.25, 0.125, 0.5}, k.knobs[0]);
                      return slope == 0.0 ? json::object() : json{{"negative_slope", slope}};
                    }},
      LayerEntry<T>{"sigmoid", "σ(x) = 1/(1 + e^−x)", S::elementwise, make_plain<T, Sigmoid>, no_options},
      LayerEntry<T>{"tanh", "tanh(x)", S::elementwise, make_plain<T, Tanh>, no_options},
      LayerEntry<T>{"softplus", "log(1 + eˣ), as max(x, 0) + log1p(e^−|x|)", S::elementwise, make_plain<T, Softplus>,
                    no_options},
      LayerEntry<T>{"gelu", "x Φ(x), or its tanh approximation (approximate: \"none\" or \"tanh\")", S::elementwise,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"approximate"});
                      auto mode = GeluApproximation::none;
                      if (s.options.contains("approximate")) {
                        const auto& a = s.options.at("approximate");
                        if (a == "tanh")
                          mode = GeluApproximation::tanh;
                        else if (a != "none")
                          throw input_error("gelu: option 'approximate' must be \"none\" or \"tanh\", got " + a.dump());
                      }
                      return Gelu<T>(n, mode);
                    },
                    [](const OptionKnobs& k) -> json {
                      return {{"approximate", choose(std::array<const char*, 2>{"none", "tanh"}, k.knobs[0])}};
                    }},
      LayerEntry<T>{"silu", "x σ(x)", S::elementwise, make_plain<T, Silu>, no_options},
      LayerEntry<T>{"softmax", "e^(x_i) / Σ_j e^(x_j), per sample", S::same_width, make_plain<T, Softmax>, no_options},
      LayerEntry<T>{"log_softmax", "x_i − log Σ_j e^(x_j), per sample", S::same_width, make_plain<T, LogSoftmax>,
                    no_options},
      LayerEntry<T>{"elu", "x for x > 0, α(eˣ − 1) otherwise (alpha α, default 1)", S::elementwise,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"alpha"});
                      return Elu<T>(n, scalar_option<T>(s, "alpha", T(1)));
                    },
                    [](const OptionKnobs& k) -> json {
                      const double a = choose(std::array<double, 3>{1.0, 0.5, 2.0}, k.knobs[0]);
                      return a == 1.0 ? json::object() : json{{"alpha", a}};
                    }},
      LayerEntry<T>{"hardtanh", "x clamped to [min_val, max_val] (default [−1, 1])", S::elementwise,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"min_val", "max_val"});
                      return Hardtanh<T>(n, scalar_option<T>(s, "min_val", T(-1)), scalar_option<T>(s, "max_val", T(1)));
                    },
                    [](const OptionKnobs& k) -> json {  // the default, an asymmetric pair, and relu6
                      const auto range = choose(std::array<std::pair<double, double>, 3>{{{-1, 1}, {-0.5, 2}, {0, 6}}},
                                                k.knobs[0]);
                      return range.first == -1 ? json::object()
                                               : json{{"min_val", range.first}, {"max_val", range.second}};
                    }},
      LayerEntry<T>{"mish", "x tanh(softplus(x))", S::elementwise, make_plain<T, Mish>, no_options},
      LayerEntry<T>{"swish", "x σ(βx) with a fixed β (beta, default 1: silu)", S::elementwise,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"beta"});
                      return Swish<T>(n, scalar_option<T>(s, "beta", T(1)));
                    },
                    [](const OptionKnobs& k) -> json {
                      const double b = choose(std::array<double, 3>{1.0, 0.5, 2.0}, k.knobs[0]);
                      return b == 1.0 ? json::object() : json{{"beta", b}};
                    }},
      LayerEntry<T>{"hardswish", "x·relu6(x + 3)/6, as torch.nn.Hardswish; kinks at ±3", S::elementwise,
                    make_plain<T, Hardswish>, no_options},
      LayerEntry<T>{"dropout", "training-mode dropout with a fixed mask (p, default 1/2; seed)", S::elementwise,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"p", "seed"});
                      return Dropout<T>(n, scalar_option<T>(s, "p", T(1) / T(2)), seed_option(s, "seed", 0));
                    },
                    [](const OptionKnobs& k) -> json {
                      const double p = choose(std::array<double, 3>{0.5, 0.25, 0.75}, k.knobs[0]);
                      json o = p == 0.5 ? json::object() : json{{"p", p}};
                      if (k.knobs[1]) o["seed"] = k.knobs[1];
                      return o;
                    }},
      LayerEntry<T>{"layer_norm",
                    "each sample (or each of its tokens) normalised to mean 0 and variance 1, then scaled by γ and "
                    "shifted by β (eps, tokens)",
                    S::from_options,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"eps", "tokens"});
                      const Index tokens = tokens_option(s, n);
                      return LayerNorm<T>(n / tokens, scalar_option<T>(s, "eps", default_norm_eps<T>()), tokens);
                    },
                    [](const OptionKnobs& k) -> json {
                      json o = k.knobs[0] % 2 ? json{{"eps", 0.001}} : json::object();
                      if (const Index tokens = choose(divisors(k.input_size), k.knobs[1]); tokens != 1) o["tokens"] = tokens;
                      return o;
                    },
                    norm_extent},
      LayerEntry<T>{"batch_norm",
                    "each feature normalised over the batch (mode \"train\") or by running statistics (\"eval\"), "
                    "then scaled by γ and shifted by β",
                    S::from_options,
                    make_batch_norm<T>, batch_norm_options, norm_extent},
      LayerEntry<T>{"batch_norm2d",
                    "each channel normalised over the batch and its height × width (mode \"train\") or by running "
                    "statistics (\"eval\"), then scaled by γ and shifted by β, as torch.nn.BatchNorm2d",
                    S::from_options, make_batch_norm<T>, batch_norm2d_options, norm2d_extent},
      LayerEntry<T>{"flatten", "the identity: marks the step from images to features", S::same_width,
                    make_plain<T, Flatten>, no_options},
      LayerEntry<T>{"conv1d", "cross-correlation over a length, with zero padding, stride and dilation",
                    S::from_options, make_window_layer<T>,
                    [](const OptionKnobs& k) { return conv_options(k, false); }, window_extent},
      LayerEntry<T>{"conv2d", "cross-correlation over height × width, with zero padding, stride and dilation",
                    S::from_options, make_window_layer<T>,
                    [](const OptionKnobs& k) { return conv_options(k, true); }, window_extent},
      LayerEntry<T>{"max_pool1d", "the maximum of each window over a length", S::from_options, make_window_layer<T>,
                    [](const OptionKnobs& k) { return pool_options(k, false); }, window_extent},
      LayerEntry<T>{"max_pool2d", "the maximum of each window over height × width", S::from_options,
                    make_window_layer<T>, [](const OptionKnobs& k) { return pool_options(k, true); }, window_extent},
      LayerEntry<T>{"avg_pool1d", "the mean of each window over a length, zero padding counted", S::from_options,
                    make_window_layer<T>, [](const OptionKnobs& k) { return pool_options(k, false); }, window_extent},
      LayerEntry<T>{"avg_pool2d", "the mean of each window over height × width, zero padding counted",
                    S::from_options, make_window_layer<T>, [](const OptionKnobs& k) { return pool_options(k, true); },
                    window_extent},
      LayerEntry<T>{"adaptive_avg_pool2d",
                    "the mean of each of output_size bins over height × width, as torch.nn.AdaptiveAvgPool2d",
                    S::from_options,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"channels", "height", "width", "output_size"});
                      const auto [c, h, w] = image_option(s, n);
                      if (!s.options.contains("output_size")) throw input_error(s.type + ": missing option 'output_size'");
                      const auto out = pair_option(s, "output_size", true, {1, 1}, 1);
                      return AdaptiveAvgPool2d<T>(c, h, w, out[0], out[1]);
                    },
                    adaptive_pool_options, adaptive_pool_extent},
      LayerEntry<T>{"residual", "x + g(x), g a sequence of layers (layers)", S::from_options,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"layers"});
                      if (!s.options.contains("layers") || !s.options.at("layers").is_array() ||
                          s.options.at("layers").empty())
                        throw input_error("residual: option 'layers' must be a non-empty array of layer objects");
                      bool independent = true;
                      auto inner = inner_sequence<T>(s.options.at("layers"), n, "residual: inner layer ", independent);
                      if (independent) return Residual<T, true>(std::move(inner));
                      return Residual<T, false>(std::move(inner));
                    },
                    residual_options, residual_extent},
      LayerEntry<T>{"add", "the sum of parallel branches of the same width (branches)", S::from_options,
                    make_branches<T>, [](const OptionKnobs& k) { return branches_options(k, true); }, branches_extent},
      LayerEntry<T>{"concat", "parallel branches stacked per sample (branches)", S::from_options, make_branches<T>,
                    [](const OptionKnobs& k) { return branches_options(k, false); }, branches_extent},
      LayerEntry<T>{"multi_head_attention",
                    "self-attention as torch.nn.MultiheadAttention(x, x, x) (heads, sequence, causal)",
                    S::from_options,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"heads", "sequence", "causal"});
                      const Index sequence = positive_integer_option(s, "sequence");
                      const Index heads = positive_integer_option(s, "heads");
                      if (n % sequence != 0)
                        throw input_error("multi_head_attention: the input's " + std::to_string(n) +
                                          " values per sample are not a sequence of " + std::to_string(sequence) +
                                          " equal tokens");
                      bool causal = false;
                      if (s.options.contains("causal")) {
                        if (!s.options.at("causal").is_boolean())
                          throw input_error("multi_head_attention: option 'causal' must be true or false, got " +
                                            s.options.at("causal").dump());
                        causal = s.options.at("causal").get<bool>();
                      }
                      return MultiHeadAttention<T>(n / sequence, sequence, heads, causal);
                    },
                    [](const OptionKnobs& k) -> json {
                      const Index sequence = choose(divisors(k.input_size), k.knobs[0]);
                      const Index heads = choose(divisors(k.input_size / sequence), k.knobs[1]);
                      json o{{"sequence", sequence}, {"heads", heads}};
                      if (k.knobs[2] % 2) o["causal"] = true;
                      return o;
                    },
                    attention_extent},
      LayerEntry<T>{"transformer_encoder_layer",
                    "torch.nn.TransformerEncoderLayer, batch_first, dropout 0 (sequence, heads, dim_feedforward, "
                    "norm_first, activation, eps)",
                    S::from_options, make_transformer<T>, transformer_options, transformer_extent},
      LayerEntry<T>{"embedding", "the table's rows for integer indices, as torch.nn.Embedding "
                                 "(num_embeddings, embedding_dim)",
                    S::from_options,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"num_embeddings", "embedding_dim"});
                      return Embedding<T>(positive_integer_option(s, "num_embeddings"),
                                          positive_integer_option(s, "embedding_dim"), n);
                    },
                    [](const OptionKnobs& k) -> json {
                      return {{"num_embeddings", 1 + k.knobs[0] % 5}, {"embedding_dim", 1 + k.knobs[1] % 3}};
                    },
                    embedding_extent},
      LayerEntry<T>{"position_embedding", "y = x + P, a learned tokens × features table added to every sample (tokens, features)",
                    S::from_options,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"tokens", "features"});
                      const Index tokens = positive_integer_option(s, "tokens"), features = positive_integer_option(s, "features");
                      if (tokens * features != n)
                        throw input_error("position_embedding: the input has " + std::to_string(n) +
                                          " values per sample, but tokens × features = " + std::to_string(tokens * features));
                      return PositionEmbedding<T>(tokens, features);
                    },
                    [](const OptionKnobs& k) -> json {
                      const Index tokens = choose(divisors(k.input_size), k.knobs[0]);
                      return {{"tokens", tokens}, {"features", k.input_size / tokens}};
                    },
                    position_extent},
      LayerEntry<T>{"token_mean", "the mean over a sample's tokens, as x.mean(dim=1) (tokens)", S::from_options,
                    [](const LayerSpec& s, Index n) -> AnyLayer<T> {
                      check_option_keys(s, {"tokens"});
                      if (!s.options.contains("tokens")) throw input_error("token_mean: missing option 'tokens'");
                      const Index tokens = tokens_option(s, n);
                      return TokenMean<T>(tokens, n / tokens);
                    },
                    [](const OptionKnobs& k) -> json { return {{"tokens", choose(divisors(k.input_size), k.knobs[0])}}; },
                    token_mean_extent},
  };
  return table;
}

#define BPCHECK_INSTANTIATE_MAKE_LAYER(T)                                 \
  template std::span<const LayerEntry<T>> layer_table<T>();              \
  template const LayerEntry<T>& layer_entry<T>(const std::string&);       \
  template AnyLayer<T> make_layer<T>(const LayerSpec&, Index);

}  // namespace bpcheck
