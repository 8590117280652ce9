// The identities instantiated for float and double.
#include "identities_impl.hpp"

namespace bpcheck::properties {
#define BPCHECK_INSTANTIATE_IDENTITIES(T)                      \
  template Outcome jacobian_routes<T>(const LayerAtPoint<T>&); \
  template Outcome dot_product<T>(const LayerAtPoint<T>&);     \
  template Outcome linearity<T>(const LayerAtPoint<T>&);       \
  template Outcome taylor<T>(const LayerAtPoint<T>&);          \
  template Matrix<T> jacobian_by_jvp<T>(const LayerAtPoint<T>&);
BPCHECK_INSTANTIATE_IDENTITIES(float)
BPCHECK_INSTANTIATE_IDENTITIES(double)
}  // namespace bpcheck::properties
