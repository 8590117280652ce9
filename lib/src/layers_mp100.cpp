// Explicit instantiations of the layers on mp100.
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/softmax.hpp"
#include "layer_instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_LAYERS(::bpcheck::mp100)
}
