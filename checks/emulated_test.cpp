// Emulated, mp100 arithmetic that rounds like float or double at random: each result within u of the
// exact one, exact outside a scope, reproducible per seed, and the cancellation inside a formula shown
// as a spread far beyond u.
#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "bpcheck/emulated.hpp"
#include "emulated_rounding.hpp"
#include "helpers.hpp"

using bpcheck::Emulated;
using bpcheck::EmulatedRounding;
using bpcheck::Matrix;
using bpcheck::mp100;

namespace {

mp100 relative_error(const Emulated& x, const mp100& exact) { return mp100(abs(x.value() - exact) / abs(exact)); }

/// A few operations' results in one scope, as exact mp100 values.
std::set<std::string> results_with_seed(std::uint64_t seed) {
  EmulatedRounding rounding(mp100(bpcheck::unit_roundoff<double>()), seed);
  std::set<std::string> out;
  for (int i = 1; i <= 8; ++i) out.insert(bpcheck::to_string((Emulated(i) / 7 + exp(Emulated(i))).value()));
  return out;
}

}  // namespace

TEST_CASE("emulated: outside a scope every operation is mp100's", "[emulated]") {
  const Emulated a = Emulated(2) / 3, b = exp(Emulated(1)) * 5 - 1;
  CHECK(a.value() == mp100(2) / 3);
  CHECK(b.value() == exp(mp100(1)) * 5 - 1);
  CHECK(erf(a).value() == erf(mp100(2) / 3));
  Matrix<Emulated> A(2, 3), B(3, 2);
  Matrix<mp100> Am(2, 3), Bm(3, 2);
  for (int i = 0; i < 6; ++i) {
    A(i) = Emulated(i + 1) / 7, Am(i) = mp100(i + 1) / 7;
    B(i) = Emulated(i) - Emulated(5) / 2, Bm(i) = mp100(i) - mp100(5) / 2;
  }
  const Matrix<Emulated> C = A * B;
  const Matrix<mp100> Cm = Am * Bm;
  for (int i = 0; i < 4; ++i) CHECK(abs(C(i).value() - Cm(i)) <= 1e-98 * abs(Cm(i)));
  CHECK(std::numeric_limits<Emulated>::epsilon().value() == std::numeric_limits<mp100>::epsilon());
}

TEST_CASE("emulated: each result lies within u of the exact one, and the δs are not all zero", "[emulated]") {
  for (const double u : {double(bpcheck::unit_roundoff<float>()), bpcheck::unit_roundoff<double>()}) {
    EmulatedRounding rounding(mp100(u), 42);
    mp100 largest = 0;
    for (int i = 1; i <= 200; ++i) {
      const mp100 x = mp100(i) / 3;
      const mp100 e = relative_error(Emulated(i) / 3, x);
      CHECK(e <= mp100(u) * (1 + 1e-20));
      CHECK(relative_error(tanh(Emulated(x)), tanh(x)) <= mp100(u) * (1 + 1e-20));
      largest = std::max(largest, e);
    }
    CHECK(largest > mp100(u) / 2);  // 200 draws uniform in [−u, u]
    CHECK(std::numeric_limits<Emulated>::epsilon().value() == mp100(2 * u));
  }
}

TEST_CASE("emulated: the same seed gives the same δs, another seed others, scopes nest", "[emulated]") {
  CHECK(results_with_seed(1) == results_with_seed(1));
  CHECK(results_with_seed(1) != results_with_seed(2));
  {
    EmulatedRounding outer(mp100(1e-7), 3);
    {
      EmulatedRounding inner(mp100(0), 4);
      CHECK((Emulated(1) / 3).value() == mp100(1) / 3);
    }
    CHECK((Emulated(1) / 3).value() != mp100(1) / 3);
  }
  CHECK((Emulated(1) / 3).value() == mp100(1) / 3);
}

TEST_CASE("emulated: 1 + erf(x) at x = −2.5 spreads by far more than u, as double's rounding does", "[emulated]") {
  // erf(−2.5) = −0.99959…: the sum keeps 4e-4 of terms of size 1, so double's u on erf becomes
  // ~2.5e3 u on the result. The emulated spread must show that amplification.
  const mp100 x = mp100(-5) / 2, exact = 1 + erf(x);
  const double u = bpcheck::unit_roundoff<double>();
  mp100 spread = 0;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    EmulatedRounding rounding(mp100(u), seed);
    spread = std::max(spread, relative_error(Emulated(1) + erf(Emulated(x)), exact));
  }
  CHECK(spread > mp100(100 * u));
  CHECK(spread < mp100(1e4 * u));
}

TEST_CASE("emulated: in the rung's model a result IEEE arithmetic leaves exact stays, any other moves", "[emulated]") {
  // m + log(1) = m, m − m = 0 and 2m are exact in float: a δ on them moved a max-shifted log-softmax's
  // largest output from 0 to m·δ (1e23 · 6e-8 at m = e⁵³), which e^y then overflowed.
  const double u = bpcheck::unit_roundoff<float>();
  const mp100 m(float(1.0413759e23f));  // a float, 24 significant bits
  EmulatedRounding rounding(mp100(u), 7, mp100(std::numeric_limits<float>::denorm_min()),
                            EmulatedRounding::Model::rung_numbers);
  const Emulated moved = Emulated(m) * Emulated(mp100(1) / 3);  // off float's numbers, as after any rounding
  for (int k = 0; k < 20; ++k) {
    CHECK((Emulated(m) + log(Emulated(1))).value() == m);
    CHECK((Emulated(m) - Emulated(m)).value() == 0);
    CHECK((Emulated(m) * 2).value() == 2 * m);
    CHECK((Emulated(3) / 4).value() == mp100(3) / 4);
    CHECK((moved + Emulated(0)).value() == moved.value());  // an operand returned unchanged
    CHECK((moved * 1).value() == moved.value());
    CHECK((moved - moved).value() == 0);
  }
  // m + 1 is no float: it moves, by at most u
  mp100 largest = 0;
  for (int k = 0; k < 50; ++k) largest = std::max(largest, relative_error(Emulated(m) + Emulated(1), m + 1));
  CHECK(largest > 0);
  CHECK(largest <= mp100(u) * (1 + 1e-20));
  // tanh(−128) is −1 in mp100 too, but not exactly: it moves
  bool tanh_moved = false;
  for (int k = 0; k < 20; ++k) tanh_moved = tanh_moved || tanh(Emulated(-128)).value() != -1;
  CHECK(tanh_moved);
  // below float's normal range a value also moves by up to half the subnormal spacing 2⁻¹⁴⁹, which no
  // relative rounding shows (2⁻¹⁴⁰/3 is no multiple of it); a subnormal float stays
  const mp100 tiny = ldexp(mp100(1), -149), sub = ldexp(mp100(1), -140) / 3;
  bool sub_moved = false;
  for (int k = 0; k < 20; ++k) {
    const mp100 r = (Emulated(sub) * Emulated(mp100(1) + ldexp(mp100(1), -60))).value();
    sub_moved = sub_moved || abs(r - sub) > ldexp(mp100(1), -200);
    CHECK(abs(r - sub) <= mp100(u) * sub * 2 + tiny / 2);
  }
  CHECK(sub_moved);
  CHECK((Emulated(mp100(6) * tiny) * Emulated(2)).value() == 12 * tiny);
}
