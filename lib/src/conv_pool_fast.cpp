// Explicit instantiations of conv1d/2d, max/avg pooling and flatten on float, double and their duals.
#include "bpcheck/layers/conv.hpp"
#include "bpcheck/layers/pool.hpp"
#include "conv_pool_instantiations.hpp"

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_CONV_POOL)
}
