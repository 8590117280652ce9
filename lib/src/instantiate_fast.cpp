// Every family of lib/src/instantiations.hpp on float, double and their duals.
#include "instantiations.hpp"

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_EVERY_RUNG)
BPCHECK_INSTANTIATE_REAL_RUNGS(float)
BPCHECK_INSTANTIATE_REAL_RUNGS(double)
}  // namespace bpcheck
