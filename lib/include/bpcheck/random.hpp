#pragma once
// Reproducible random numbers: the same seed gives the same numbers on every platform and rung.
// std::mt19937_64 is specified bit for bit by the standard; the std distributions are not, so the
// map from 64 random bits to a double is written out here.
#include <cstdint>
#include <random>

namespace bpcheck {

class Random {
 public:
  explicit Random(std::uint64_t seed) : engine_(seed) {}
  /// Uniform in [0, 1), 53 random bits.
  double unit() { return double(engine_() >> 11) * 0x1.0p-53; }
  /// Uniform in [−1, 1).
  double symmetric() { return 2.0 * unit() - 1.0; }
  /// Uniform integer in [0, n), n > 0 (modulo bias below 2^-40 for the small n used here).
  std::uint64_t below(std::uint64_t n) { return engine_() % n; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace bpcheck
