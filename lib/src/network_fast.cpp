// Explicit instantiations of the network, losses and layer registry on float, double and their duals.
#include "losses_impl.hpp"
#include "network_impl.hpp"
#include "layer_table.hpp"

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_NETWORK)
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_LOSSES)
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_MAKE_LAYER)
}  // namespace bpcheck
