// Explicit instantiations of the matrix products on float, double and their duals.
#include "products_impl.hpp"

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_PRODUCTS)
}
