// Random options for every built-in layer; see layer_options.hpp.
#include "layer_options.hpp"

#include <array>
#include <utility>

#include "bpcheck/error.hpp"

namespace bpcheck::properties::detail {

namespace {

using nlohmann::json;

/// The divisors of n, smallest first (so knob 0 picks 1).
std::vector<Index> divisors(Index n) {
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
Index largest_kernel(Index n, Index p, Index d) { return (n + 2 * p - 1) / d + 1; }

/// conv1d/conv2d: channels × (height ×) length = input size; padding 0–1, dilation 1–2, a kernel
/// that fits, stride 1–2, one or two output channels. Pairs [h, w] in 2d.
LayerSpec fit_conv(const std::string& type, const std::vector<int>& k, Index n) {
  const bool two_d = type == "conv2d";
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
  o["out_channels"] = 1 + k[5] % 2;
  if (stride != 1) o["stride"] = stride;
  if (padding != 0) o["padding"] = padding;
  if (dilation != 1) o["dilation"] = dilation;
  return {type, o};
}

/// Pooling: a kernel no longer than the length, padding at most half the kernel, the stride its
/// default (the kernel) or 1 (overlapping windows, where max pooling meets ties).
LayerSpec fit_pool(const std::string& type, const std::vector<int>& k, Index n) {
  const bool two_d = type.back() == 'd' && type[type.size() - 2] == '2';
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
  return {type, o};
}

/// A residual branch that keeps the width n: dense, dense + tanh, tanh + dense, layer_norm + dense, or
/// a nested residual block.
LayerSpec fit_residual(const std::vector<int>& k, Index n) {
  const json dense{{"type", "dense"}, {"units", n}}, tanh{{"type", "tanh"}}, norm{{"type", "layer_norm"}};
  const std::array<json, 5> branches{
      json::array({dense}),
      json::array({dense, tanh}),
      json::array({tanh, dense}),
      json::array({norm, dense}),
      json::array({json{{"type", "residual"}, {"layers", json::array({dense})}}}),
  };
  return {"residual", {{"layers", choose(branches, k[0])}}};
}

/// Parallel branches on width n: add joins branches of width n (one may be the input itself), concat
/// stacks branches of any width.
LayerSpec fit_branches(const std::string& type, const std::vector<int>& k, Index n) {
  const auto dense = [](Index units) { return json{{"type", "dense"}, {"units", units}}; };
  const json tanh{{"type", "tanh"}}, sigmoid{{"type", "sigmoid"}}, skip = json::array();
  const std::array<json, 3> add{
      json::array({json::array({dense(n)}), json::array({tanh})}),
      json::array({skip, json::array({dense(n), tanh})}),
      json::array({json::array({dense(n)}), json::array({dense(n)}), json::array({sigmoid})}),
  };
  const std::array<json, 3> concat{
      json::array({json::array({dense(1 + k[1] % 2)}), skip}),
      json::array({json::array({tanh}), json::array({dense(1), sigmoid})}),
      json::array({json::array({dense(1)}), json::array({dense(2)}), json::array({tanh})}),
  };
  return {type, {{"branches", type == "add" ? choose(add, k[0]) : choose(concat, k[0])}}};
}

}  // namespace

rc::Gen<LayerDraw> layer_draw(std::vector<std::string> types) {
  if (types.empty()) throw input_error("generator options: no layer type to choose from");
  const int n = int(types.size());
  // at full size: RapidCheck narrows inRange at small sizes, which would hide the later types and knobs
  return rc::gen::resize(
      100, rc::gen::apply(
               [types = std::move(types)](int t, std::vector<int> knobs) {
                 return LayerDraw{types[std::size_t(t)], std::move(knobs)};
               },
               rc::gen::inRange(0, n), rc::gen::container<std::vector<int>>(std::size_t(kKnobs), rc::gen::inRange(0, 64))));
}

LayerSpec fit_layer(const LayerDraw& d, Index n, Index units, Index batch) {
  const std::string& t = d.type;
  const std::vector<int>& k = d.knobs;
  if (k.size() < std::size_t(kKnobs)) throw error("layer draw: too few knobs");
  const json none = json::object();
  if (t == "dense") return {t, {{"units", units}}};
  if (t == "relu" || t == "sigmoid" || t == "tanh" || t == "softplus" || t == "silu" || t == "softmax" ||
      t == "log_softmax" || t == "mish" || t == "flatten")
    return {t, none};
  if (t == "leaky_relu") {  // slopes exact in float, the default first
    const double slope = choose(std::array<double, 4>{0.0, 0.25, 0.125, 0.5}, k[0]);
    return slope == 0.0 ? LayerSpec{t, none} : LayerSpec{t, {{"negative_slope", slope}}};
  }
  if (t == "gelu") return {t, {{"approximate", choose(std::array<const char*, 2>{"none", "tanh"}, k[0])}}};
  if (t == "elu" || t == "swish") {
    const double a = choose(std::array<double, 3>{1.0, 0.5, 2.0}, k[0]);
    return a == 1.0 ? LayerSpec{t, none} : LayerSpec{t, {{t == "elu" ? "alpha" : "beta", a}}};
  }
  if (t == "hardtanh") {  // the default, an asymmetric pair, and relu6
    const auto range = choose(std::array<std::pair<double, double>, 3>{{{-1, 1}, {-0.5, 2}, {0, 6}}}, k[0]);
    return range.first == -1 ? LayerSpec{t, none} : LayerSpec{t, {{"min_val", range.first}, {"max_val", range.second}}};
  }
  if (t == "dropout") {
    const double p = choose(std::array<double, 3>{0.5, 0.25, 0.75}, k[0]);
    json o = p == 0.5 ? json::object() : json{{"p", p}};
    if (k[1]) o["seed"] = k[1];
    return {t, o};
  }
  if (t == "layer_norm") return k[0] % 2 ? LayerSpec{t, {{"eps", 0.001}}} : LayerSpec{t, none};
  if (t == "batch_norm") {
    // training mode couples the samples and needs two of them; evaluation mode with running
    // statistics drawn per feature (means in [−1/2, 1/2], variances 1, 1/2 or 2)
    if (batch >= 2 && k[0] % 2 == 0) return {t, none};
    json mean = json::array(), var = json::array();
    for (Index i = 0; i < n; ++i) {
      mean.push_back(double((k[1] + 3 * i) % 5 - 2) / 4);
      var.push_back(choose(std::array<double, 3>{1.0, 0.5, 2.0}, int((k[2] + i) % 3)));
    }
    return {t, {{"mode", "eval"}, {"running_mean", mean}, {"running_var", var}}};
  }
  if (t == "conv1d" || t == "conv2d") return fit_conv(t, k, n);
  if (t == "max_pool1d" || t == "max_pool2d" || t == "avg_pool1d" || t == "avg_pool2d") return fit_pool(t, k, n);
  if (t == "residual") return fit_residual(k, n);
  if (t == "add" || t == "concat") return fit_branches(t, k, n);
  if (t == "multi_head_attention") {
    const Index sequence = choose(divisors(n), k[0]);
    const Index heads = choose(divisors(n / sequence), k[1]);
    json o{{"sequence", sequence}, {"heads", heads}};
    if (k[2] % 2) o["causal"] = true;
    return {t, o};
  }
  if (t == "embedding") return {t, {{"num_embeddings", 1 + k[0] % 5}, {"embedding_dim", 1 + k[1] % 3}}};
  throw input_error("generators: no option generator for layer type '" + t +
                    "'; add one to fit_layer (properties/src/layer_options.cpp)");
}

}  // namespace bpcheck::properties::detail
