// Built-in layer and network cases on mp100 (apart: 100-digit code dominates build time).
#include "cases_impl.hpp"

namespace bpcheck::properties {
template LayerAtPoint<mp100> layer_case_at<mp100>(const LayerCase&);
template LayerAtPoint<mp100> network_at<mp100>(const NetworkCase&);
template LayerAtPoint<mp100> network_loss_at<mp100>(const NetworkCase&);
template Outcome chain_rule<mp100>(const NetworkCase&);
template Outcome accumulation_orders<mp100>(const NetworkCase&);
template Outcome closed_form<mp100>(const LayerCase&);
}  // namespace bpcheck::properties
