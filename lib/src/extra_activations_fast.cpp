// Explicit instantiations of elu, hardtanh, mish, swish and dropout on float, double and their duals.
#include "bpcheck/layers/dropout.hpp"
#include "bpcheck/layers/extra_activations.hpp"
#include "extra_activation_instantiations.hpp"

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_EXTRA_ACTIVATIONS)
}
