// Explicit instantiations of add/concat branches on float, double and their duals.
#include "branches_impl.hpp"

#define BPCHECK_INSTANTIATE_BRANCHES(T) \
  template class Branches<T, true>;     \
  template class Branches<T, false>;

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_BRANCHES)
}
