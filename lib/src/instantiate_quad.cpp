// Every family of lib/src/instantiations.hpp that compare runs on quad (lib/src/quad.hpp): the layers,
// the network, the losses and the registry; not the oracles or the JSON formats.
#include "quad.hpp"

#include "instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_EVERY_RUNG(::bpcheck::quad)
}  // namespace bpcheck
