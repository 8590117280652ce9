// The names the registries know, in documentation order.
#include "bpcheck/layer.hpp"
#include "bpcheck/losses.hpp"

namespace bpcheck {

const std::vector<std::string>& layer_type_names() {
  static const std::vector<std::string> names{"dense",    "relu", "leaky_relu", "sigmoid", "tanh",
                                              "softplus", "gelu", "silu",       "softmax", "log_softmax"};
  return names;
}

const std::vector<std::string>& loss_names() {
  static const std::vector<std::string> names{"mse", "cross_entropy", "bce_with_logits"};
  return names;
}

}  // namespace bpcheck
