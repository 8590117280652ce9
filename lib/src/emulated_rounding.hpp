#pragma once
// The scope that sets the rounding Emulated emulates on this thread (bpcheck/emulated.hpp): the
// verifier's, around its emulated runs of a layer.
#include <cstdint>

#include "bpcheck/emulated.hpp"

namespace bpcheck {

/// Emulates rounding with unit roundoff u on this thread while it lives (nested scopes restore the
/// outer one). The same seed gives the same δs.
class EmulatedRounding {
 public:
  /// `tiny`: the spacing of the rung's subnormal numbers (std::numeric_limits<T>::denorm_min()), so that
  /// underflow rounds as in T; 0 leaves it out.
  EmulatedRounding(const mp100& u, std::uint64_t seed, const mp100& tiny = 0) : saved_(emulated_detail::state()) {
    emulated_detail::state() = {u, tiny, seed};
  }
  ~EmulatedRounding() { emulated_detail::state() = saved_; }
  EmulatedRounding(const EmulatedRounding&) = delete;
  EmulatedRounding& operator=(const EmulatedRounding&) = delete;

 private:
  emulated_detail::State saved_;
};

}  // namespace bpcheck
