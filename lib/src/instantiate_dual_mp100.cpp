// Every family of lib/src/instantiations.hpp on dual<mp100>.
#include "instantiations.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_EVERY_RUNG(::bpcheck::dual<::bpcheck::mp100>)
}  // namespace bpcheck
