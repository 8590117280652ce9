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
  // Refused before any point: inside a point the factory's throw would read as the layer's own.
  for (const auto& p : options.precisions)
    if ((p == "bf16" || p == "fp16") && !make.builds_float16())
      throw input_error("verify: this layer factory does not build on " + p +
                        ": wrap it as AnyLayerFactory(factory, AnyLayerFactory::with_float16) to verify it there");
  return verify_detail::verify_layer_with(make, options);
}

}  // namespace bpcheck
