// The names the library knows, in documentation order: the layer types from the registry's table
// (layer_table.hpp), the losses, the finite-difference schemes.
#include "bpcheck/losses.hpp"
#include "bpcheck/verify/finite_difference.hpp"
#include "layer_table.hpp"

namespace bpcheck {

const std::vector<LayerTypeInfo>& layer_types() {
  static const std::vector<LayerTypeInfo> types = [] {
    std::vector<LayerTypeInfo> v;
    for (const auto& entry : layer_table<double>()) v.push_back({entry.name, entry.summary, entry.shape, entry.options});
    return v;
  }();
  return types;
}

const LayerTypeInfo& layer_type(const std::string& name) {
  const auto& entry = layer_entry<double>(name);  // throws for an unknown name, listing the known ones
  return layer_types()[std::size_t(&entry - layer_table<double>().data())];
}

const std::vector<std::string>& layer_type_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& type : layer_types()) v.push_back(type.name);
    return v;
  }();
  return names;
}

const std::vector<std::string>& loss_names() {
  static const std::vector<std::string> names{"mse", "cross_entropy", "bce_with_logits", "huber", "nll", "kl_div"};
  return names;
}

std::string fd_scheme_name(FdScheme s) {
  switch (s) {
    case FdScheme::forward: return "forward";
    case FdScheme::backward: return "backward";
    case FdScheme::central: return "central";
    case FdScheme::central4: return "central4";
    case FdScheme::central6: return "central6";
    case FdScheme::richardson: return "richardson";
  }
  return "unknown";
}

}  // namespace bpcheck
