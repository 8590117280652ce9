// Built-in layer and network cases on float and double.
#include "cases_impl.hpp"

namespace bpcheck::properties {
#define BPCHECK_INSTANTIATE_CASES(T)                                \
  template LayerAtPoint<T> layer_case_at<T>(const LayerCase&);      \
  template LayerAtPoint<T> network_at<T>(const NetworkCase&);       \
  template LayerAtPoint<T> network_loss_at<T>(const NetworkCase&);  \
  template Outcome chain_rule<T>(const NetworkCase&);               \
  template Outcome accumulation_orders<T>(const NetworkCase&);      \
  template Outcome closed_form<T>(const LayerCase&);
BPCHECK_INSTANTIATE_CASES(float)
BPCHECK_INSTANTIATE_CASES(double)
}  // namespace bpcheck::properties
