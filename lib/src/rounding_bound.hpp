#pragma once
// The rounding bound K (terms + 2) u_T · magnitude and its companions (the decisive mp100 tolerance as
// an exact decimal, the underflow floor, the Taylor ladder): the verifier's and compare's, not a user's.
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "bpcheck/scalar.hpp"
#include "bpcheck/verify/rounding.hpp"

namespace bpcheck {

/// K (terms + 2) u_T · magnitude on rung T, in T's own arithmetic.
template <class T>
T rounding_bound(const T& terms, const T& magnitude, double K = default_rounding_factor) {
  return T(K) * (terms + T(2)) * T(unit_roundoff<T>()) * magnitude;
}

/// The same bound for a rung whose unit roundoff is `u`, in mp100 arithmetic: the verifier judges every
/// rung in mp100 (u = u_float, u_double or u_mp100, given as mp100).
inline mp100 rounding_bound(const mp100& terms, const mp100& magnitude, double K, const mp100& u) {
  return mp100(K) * (terms + 2) * u * magnitude;
}

/// A relative tolerance given as a double, in mp100 by its shortest decimal: 1e-40 is 1e-40, not the
/// double nearest to it (1e-40 + 2e-57).
inline mp100 mp100_tolerance(double tolerance = default_mp100_tolerance) {
  return from_string<mp100>(fmt::format("{}", tolerance));
}

/// The smallest normal number of rung T: below it results round by an absolute amount, not relative
/// to themselves.
template <class T>
constexpr double min_normal() {
  if constexpr (std::is_same_v<T, mp100>)
    return 1e-300;  // mp100 reaches far lower, but values under 1e-300 count as zero: below double's range
  else
    return double(std::numeric_limits<T>::min());
}

/// The smallest magnitude that rounds to ±∞ on rung T (to nearest): its largest number plus half a
/// unit in its last place (fp16: 65520, float: (2 − 2⁻²⁴) 2¹²⁷).
template <class T>
mp100 overflow_threshold() {
  using L = std::numeric_limits<T>;
  return scalar_cast<mp100>(L::max()) + ldexp(mp100(1), L::max_exponent - 1 - L::digits);
}

/// The absolute floor under a bound, for results that leave T's normal range: K · min_normal<T>() ·
/// terms · scale, in mp100.
template <class T>
mp100 underflow_floor(const mp100& terms, const mp100& scale, double K = default_rounding_factor) {
  return mp100(K * min_normal<T>()) * terms * scale;
}

/// The steps of a Taylor test on rung T, as exponents k of h = 2^−k, largest step first: halving down
/// to where the remainder h² meets T's rounding (2⁻¹⁴ in float, 2⁻³⁴ in double); in mp100 every 2¹⁰
/// from 2⁻¹⁰ to 2⁻⁶⁰, where h² stays far above mp100's rounding (10⁻¹⁰⁰) throughout. The observed
/// order between steps k₁ < k₂ is log₂(r₁ / r₂) / (k₂ − k₁).
template <class T>
std::vector<int> taylor_ladder() {
  std::vector<int> ks;
  if constexpr (std::is_same_v<T, float>)
    for (int k = 1; k <= 14; ++k) ks.push_back(k);
  else if constexpr (std::is_same_v<T, double>)
    for (int k = 1; k <= 34; ++k) ks.push_back(k);
  else if constexpr (is_float16_v<T>)  // as float's ladder, for p = 8 or 11 bits: 2⁻¹ … 2⁻⁵ or 2⁻⁷
    for (int k = 1; k <= std::numeric_limits<T>::digits * 3 / 5 + 1; ++k) ks.push_back(k);
  else
    for (int k = 10; k <= 60; k += 10) ks.push_back(k);
  return ks;
}

}  // namespace bpcheck
