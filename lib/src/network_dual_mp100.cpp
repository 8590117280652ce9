// Explicit instantiations of the network, losses and layer registry on dual<mp100>.
#include "losses_impl.hpp"
#include "network_impl.hpp"
#include "layer_table.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_NETWORK(::bpcheck::dual<::bpcheck::mp100>)
BPCHECK_INSTANTIATE_LOSSES(::bpcheck::dual<::bpcheck::mp100>)
BPCHECK_INSTANTIATE_MAKE_LAYER(::bpcheck::dual<::bpcheck::mp100>)
}  // namespace bpcheck
