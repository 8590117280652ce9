// Explicit instantiations of the dual-number JVP oracle on mp100 (its own unit: slow to compile).
#include "bpcheck/verify/jvp.hpp"
#include "verify_jvp_instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_JVP(::bpcheck::mp100)
}
