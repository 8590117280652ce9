// Every family of lib/src/instantiations.hpp on mp100.
#include "instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_EVERY_RUNG(::bpcheck::mp100)
BPCHECK_INSTANTIATE_REAL_RUNGS(::bpcheck::mp100)
}  // namespace bpcheck
