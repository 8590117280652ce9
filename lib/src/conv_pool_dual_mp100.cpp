// Explicit instantiations of conv1d/2d, max/avg pooling and flatten on dual<mp100>.
#include "bpcheck/layers/conv.hpp"
#include "bpcheck/layers/pool.hpp"
#include "conv_pool_instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_CONV_POOL(::bpcheck::dual<::bpcheck::mp100>)
}
