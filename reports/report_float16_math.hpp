#pragma once
// frexp and ldexp on the 16-bit rungs, which the finite-difference oracle's step rounding calls
// (power_of_two_below) and float16.hpp does not define: the report runs that oracle on bf16 and fp16.
// Found by argument-dependent lookup from the oracle's `using std::frexp; frexp(h, &e)`.
#include <cmath>

#include "bpcheck/float16.hpp"

namespace bpcheck {

/// Exact: every 16-bit number is a float, and float's frexp of it is exact.
template <class F>
Float16<F> frexp(const Float16<F>& x, int* exponent) {
  return Float16<F>(std::frexp(x.value(), exponent));
}

/// x · 2^e rounded once to the format (exact unless it leaves the format's range or precision).
template <class F>
Float16<F> ldexp(const Float16<F>& x, int exponent) {
  return Float16<F>(std::ldexp(x.value(), exponent));
}

}  // namespace bpcheck
