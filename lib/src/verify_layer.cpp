// The verification engine instantiated once for every layer factory, behind AnyLayerFactory: a file
// that calls verify_layer compiles its layer, not the checks.
#include "bpcheck/verify/verify.hpp"
#include "verify_points.hpp"

namespace bpcheck {

const std::vector<std::string>& point_distributions() {
  static const std::vector<std::string> names{"uniform", "saturation", "wide_range", "near_ties"};
  return names;
}

VerificationReport verify_layer(const AnyLayerFactory& make, const VerifyOptions& options) {
  return verify_detail::verify_layer_with(make, options);
}

}  // namespace bpcheck
