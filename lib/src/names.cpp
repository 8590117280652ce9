// The names the registries know, in documentation order.
#include "bpcheck/layer.hpp"
#include "bpcheck/losses.hpp"

namespace bpcheck {

const std::vector<std::string>& layer_type_names() {
  static const std::vector<std::string> names{
      "dense", "relu",    "leaky_relu", "sigmoid", "tanh",     "softplus", "gelu", "silu", "softmax", "log_softmax",
      "elu",   "hardtanh", "mish",      "swish",   "dropout",
      "layer_norm", "batch_norm", "flatten", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d",
      "avg_pool2d", "residual", "add", "concat", "multi_head_attention", "embedding"};
  return names;
}

const std::vector<std::string>& loss_names() {
  static const std::vector<std::string> names{"mse", "cross_entropy", "bce_with_logits", "huber", "nll", "kl_div"};
  return names;
}

}  // namespace bpcheck
