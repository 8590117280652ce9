// The families of lib/src/instantiations.hpp on the 16-bit rungs bf16 and fp16: the layers, network,
// losses, registry and JSON formats. No dual numbers and no oracles on them: the verifier's forward-mode
// references on a 16-bit rung run on dual<float> (scalar_traits<bf16>::forward_mode), and the oracles
// are mp100's.
#include "instantiations.hpp"

namespace bpcheck {
BPCHECK_HALF_RUNGS(BPCHECK_INSTANTIATE_EVERY_RUNG)
BPCHECK_HALF_RUNGS(BPCHECK_INSTANTIATE_FORMATS)
}  // namespace bpcheck
