// Explicit instantiations of elu, hardtanh, mish, swish and dropout on mp100.
#include "bpcheck/layers/dropout.hpp"
#include "bpcheck/layers/extra_activations.hpp"
#include "extra_activation_instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_EXTRA_ACTIVATIONS(::bpcheck::mp100)
}
