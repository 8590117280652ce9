// Explicit instantiations of the dual-number JVP oracle on float and double.
#include "bpcheck/verify/jvp.hpp"
#include "verify_jvp_instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_JVP(float)
BPCHECK_INSTANTIATE_JVP(double)
}
