// Explicit instantiations of layer_norm and batch_norm on float, double and their duals.
#include "bpcheck/layers/norms.hpp"
#include "norm_instantiations.hpp"

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_NORMS)
}
