// Explicit instantiations of the layers on float, double and their duals.
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/softmax.hpp"
#include "layer_instantiations.hpp"

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_LAYERS)
}
