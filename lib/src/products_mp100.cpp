// Explicit instantiations of the matrix products on mp100.
#include "products_impl.hpp"

namespace bpcheck {
BPCHECK_INSTANTIATE_PRODUCTS(::bpcheck::mp100)
}
