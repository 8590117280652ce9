#pragma once
// The two defaults of VerifyOptions' rounding bound. The bound every tolerance of the checker is built
// from, on every rung (built in the library, lib/src/rounding_bound.hpp):
//
//   |computed − exact| ≤ K (terms + 2) u_T · magnitude
//
// for a value summed from `terms` terms whose absolute values add up to `magnitude` (Higham's γ_n,
// with K = 16 for slack), u_T the rung's unit roundoff. In float and double it is the bound itself; in
// mp100 (u ≈ 5.7e-101) it is the floor under the 1e-40 tolerance: an exactly zero result of O(1) terms
// comes out as ~1e-101 there, and only a bound from the terms' size tells that from a wrong result.
namespace bpcheck {

/// K in the rounding bound (VerifyOptions::rounding_factor defaults to it).
inline constexpr double default_rounding_factor = 16;

/// The relative tolerance of the decisive mp100 comparisons (VerifyOptions::mp100_tolerance defaults to
/// it): 60 digits above mp100's rounding, 24 below any float/double error a wrong gradient makes.
inline constexpr double default_mp100_tolerance = 1e-40;

}  // namespace bpcheck
