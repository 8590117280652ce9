// Explicit instantiations of the residual block on float, double and their duals.
#include "bpcheck/layers/residual.hpp"

#define BPCHECK_INSTANTIATE_RESIDUAL(T) \
  template class Residual<T, true>;     \
  template class Residual<T, false>;

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_RESIDUAL)
}
