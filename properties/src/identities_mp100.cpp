// The identities instantiated for mp100 (apart: 100-digit code dominates build time).
#include "identities_impl.hpp"

namespace bpcheck::properties {
template Outcome jacobian_routes<mp100>(const LayerAtPoint<mp100>&);
template Outcome dot_product<mp100>(const LayerAtPoint<mp100>&);
template Outcome linearity<mp100>(const LayerAtPoint<mp100>&);
template Outcome taylor<mp100>(const LayerAtPoint<mp100>&);
template Matrix<mp100> jacobian_by_jvp<mp100>(const LayerAtPoint<mp100>&);
}  // namespace bpcheck::properties
