// Explicit instantiations of layer_norm and batch_norm on dual<mp100>.
#include "bpcheck/layers/norms.hpp"
#include "norm_instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_NORMS(::bpcheck::dual<::bpcheck::mp100>)
}
