// Explicit instantiations of the finite-difference oracle on float and double.
#include "bpcheck/verify/finite_difference.hpp"
#include "verify_fd_instantiations.hpp"

namespace bpcheck {

std::string fd_scheme_name(FdScheme s) {
  switch (s) {
    case FdScheme::forward: return "forward";
    case FdScheme::backward: return "backward";
    case FdScheme::central: return "central";
    case FdScheme::central4: return "central4";
    case FdScheme::central6: return "central6";
    case FdScheme::richardson: return "richardson";
  }
  return "unknown";
}

BPCHECK_INSTANTIATE_FD(float)
BPCHECK_INSTANTIATE_FD(double)

}  // namespace bpcheck
