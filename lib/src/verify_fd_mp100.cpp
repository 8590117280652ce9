// Explicit instantiations of the finite-difference oracle on mp100 (its own unit: slow to compile).
#include "bpcheck/verify/finite_difference.hpp"
#include "verify_fd_instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_FD(::bpcheck::mp100)
}
