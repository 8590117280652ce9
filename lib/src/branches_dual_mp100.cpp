// Explicit instantiations of add/concat branches on dual<mp100>.
#include "branches_impl.hpp"

#define BPCHECK_INSTANTIATE_BRANCHES(T) \
  template class Branches<T, true>;     \
  template class Branches<T, false>;

namespace bpcheck {
BPCHECK_INSTANTIATE_BRANCHES(::bpcheck::dual<::bpcheck::mp100>)
}
