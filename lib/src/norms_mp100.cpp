// Explicit instantiations of layer_norm and batch_norm on mp100.
#include "bpcheck/layers/norms.hpp"
#include "norm_instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_NORMS(::bpcheck::mp100)
}
