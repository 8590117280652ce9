// Explicit instantiations of the JSON formats on mp100.
#include "io_impl.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_FORMATS(::bpcheck::mp100)
}  // namespace bpcheck
