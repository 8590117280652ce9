#pragma once
// The scope that sets the rounding Emulated emulates on this thread (bpcheck/emulated.hpp): the
// verifier's, around its emulated runs of a layer.
#include <cstdint>

#include "bpcheck/emulated.hpp"

namespace bpcheck {

/// Emulates rounding with unit roundoff u on this thread while it lives (nested scopes restore the
/// outer one), in one of emulated.hpp's two models. The same seed gives the same roundings.
class EmulatedRounding {
 public:
  enum class Model {
    relative,     ///< every result times (1 + δ), |δ| ≤ u: a sensitivity, linear in u (mp100)
    rung_numbers  ///< the same, but results IEEE arithmetic leaves exact stay (float, double)
  };
  /// `tiny`: the spacing of the rung's subnormal numbers (std::numeric_limits<T>::denorm_min()), so that
  /// underflow rounds as in T; 0 leaves it out. `overflow`: the rung's overflow threshold
  /// (overflow_threshold<T>(), rounding_bound.hpp), so that overflow happens as in T; 0 leaves it out.
  EmulatedRounding(const mp100& u, std::uint64_t seed, const mp100& tiny = 0, Model model = Model::relative,
                   const mp100& overflow = 0)
      : saved_(emulated_detail::state()) {
    emulated_detail::State s{u, tiny, seed};
    s.huge = overflow;
    // u = 2^−p for a rung of p significant bits (float: 2⁻²⁴, 24 bits)
    if (model == Model::rung_numbers && u > 0) s.bits = long(round(-log2(u)).convert_to<double>());
    emulated_detail::state() = s;
  }
  ~EmulatedRounding() { emulated_detail::state() = saved_; }
  EmulatedRounding(const EmulatedRounding&) = delete;
  EmulatedRounding& operator=(const EmulatedRounding&) = delete;

 private:
  emulated_detail::State saved_;
};

}  // namespace bpcheck
