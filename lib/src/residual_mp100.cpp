// Explicit instantiations of the residual block on mp100.
#include "bpcheck/layers/residual.hpp"

#define BPCHECK_INSTANTIATE_RESIDUAL(T) \
  template class Residual<T, true>;     \
  template class Residual<T, false>;

namespace bpcheck {
BPCHECK_INSTANTIATE_RESIDUAL(::bpcheck::mp100)
}
