// Explicit instantiations of the matrix products on dual<mp100>.
#include "products_impl.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_PRODUCTS(::bpcheck::dual<::bpcheck::mp100>)
}
