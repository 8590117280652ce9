// Explicit instantiations of the JSON formats on float and double.
#include "io_impl.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_FORMATS(float)
BPCHECK_INSTANTIATE_FORMATS(double)
}  // namespace bpcheck
