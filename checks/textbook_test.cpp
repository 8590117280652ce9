// The textbook set: layers written with PyTorch's own backward formulas (textbook_layers.hpp) raise no
// alarm on any rung, at ordinary and large input scales, including those that cancel inside (judged
// against the same code with the rung's rounding emulated); the same layers with a backward that
// recomputes from X are never called wrong; the same formulas with a classic bug, and a constant wrong in
// float alone, are still called wrong. A hidden test prints the false-alarm table over 20 seeds.
#include <algorithm>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bpcheck/verify/verify.hpp"
#include "helpers.hpp"
#include "textbook_layers.hpp"

namespace {

using bpcheck::AnyLayerFactory;
using bpcheck::Matrix;
using bpcheck::Verdict;
using bpcheck::VerificationReport;
using bpcheck::VerifyOptions;

struct Named {
  std::string name;
  std::function<AnyLayerFactory()> make;
};

template <template <class> class L>
Named named(std::string name, bpcheck::Index width = 4) {
  return {std::move(name), [width] { return AnyLayerFactory(textbook::factory<L>(width)); }};
}

/// Formulas in terms of the forward output y or of plain sums, and formulas that cancel inside (log Σ eˣ
/// next to x, 1 + erf at negative x, x − mean over a batch of two): all right as written.
const std::vector<Named>& textbook_set() {
  static const std::vector<Named> set{
      named<textbook::Tanh>("tanh (1 − y²)"),
      named<textbook::Sigmoid>("sigmoid (y(1 − y))"),
      named<textbook::Softmax>("softmax (s ⊙ (g − sᵀg))"),
      named<textbook::Softplus>("softplus via log(1 + eˣ)"),
      named<textbook::Mse>("mse"),
      named<textbook::LogSoftmax>("log_softmax (g − s Σg)"),
      named<textbook::CrossEntropy>("cross_entropy via log_softmax"),
      named<textbook::Gelu>("gelu, exact, via 1 + erf"),
      named<textbook::LayerNorm>("layer_norm (PyTorch's docs)"),
      named<textbook::BatchNorm>("batch_norm (PyTorch's docs)"),
  };
  return set;
}

/// The same layers with a backward that recomputes what it needs from X instead of reading Y.
const std::vector<Named>& recompute_set() {
  static const std::vector<Named> set{
      named<textbook::TanhFromX>("tanh (t = tanh x, 1 − t²)"),
      named<textbook::SigmoidFromX>("sigmoid (s = σ(x), s(1 − s))"),
      named<textbook::SiluFromX>("silu (x/(1 + e^(−x)))"),
      named<textbook::SoftmaxFromX>("softmax (s recomputed)"),
      named<textbook::LayerNormFromX>("layer_norm (mean, variance recomputed)"),
  };
  return set;
}

/// Both styles: the read-Y set, then the recompute-from-X set.
std::vector<Named> both_styles() {
  std::vector<Named> all = textbook_set();
  all.insert(all.end(), recompute_set().begin(), recompute_set().end());
  return all;
}

/// tanh whose backward is off by 1.001 in float alone: a float code path with a wrong constant.
template <class T>
class TanhWrongConstantInFloat : public textbook::Tanh<T> {
 public:
  using textbook::Tanh<T>::Tanh;
  std::string type_name() const { return "tanh, dX × 1.001 in float"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<bpcheck::Vector<T>> dtheta) const {
    Matrix<T> dX = textbook::Tanh<T>::backward(X, Y, dY, dtheta);
    if constexpr (std::is_same_v<T, float>) dX *= 1.001f;
    return dX;
  }
};

/// tanh whose float path is a faster approximation, 1e-5 relative off: a rung-specific code path that
/// loses digits the formula does not, which emulating float's rounding on the exact path cannot explain.
template <class T>
class TanhApproximateInFloat : public textbook::Tanh<T> {
 public:
  using textbook::Tanh<T>::Tanh;
  std::string type_name() const { return "tanh, approximate in float"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    Matrix<T> Y = textbook::Tanh<T>::forward(X);
    if constexpr (std::is_same_v<T, float>) Y *= 1 + 1e-5f;
    return Y;
  }
};

/// The same path off by 1e-3: three digits, fewer than half of float's, a thousand times its rounding.
template <class T>
class TanhWrongInFloat : public textbook::Tanh<T> {
 public:
  using textbook::Tanh<T>::Tanh;
  std::string type_name() const { return "tanh, 1e-3 off in float"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    Matrix<T> Y = textbook::Tanh<T>::forward(X);
    if constexpr (std::is_same_v<T, float>) Y *= 1 + 1e-3f;
    return Y;
  }
};

VerifyOptions at(double input_scale, std::uint64_t seed, std::vector<std::string> distributions = {}) {
  VerifyOptions o;
  o.input_scale = input_scale;
  o.seed = seed;
  if (!distributions.empty()) o.distributions = std::move(distributions);
  return o;
}

/// The checks of one rung whose verdict is one of `verdicts`, one line each.
std::string verdicts(const VerificationReport& r, const std::string& precision, std::initializer_list<Verdict> which) {
  std::string s;
  for (const auto& c : r.checks)
    if (c.precision == precision && std::find(which.begin(), which.end(), c.verdict) != which.end())
      s += fmt::format("  {} [{}] {}: {}\n", c.check, c.precision, verdict_name(c.verdict), c.message);
  return s;
}
std::string alarms(const VerificationReport& r, const std::string& precision) {
  return verdicts(r, precision, {Verdict::fail, Verdict::unstable});
}
std::string failures(const VerificationReport& r, const std::string& precision) {
  return verdicts(r, precision, {Verdict::fail});
}

const std::vector<double> scales{1, 4, 8, 20};
const std::vector<std::string> rungs{"float", "double", "mp100"};

}  // namespace

TEST_CASE("textbook layers raise no alarm on any rung at input scales 1, 4, 8 and 20", "[verify][textbook]") {
  for (const auto& layer : textbook_set())
    for (double scale : scales)
      for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const VerificationReport r = bpcheck::verify_layer(layer.make(), at(scale, seed));
        for (const auto& rung : rungs) {
          INFO(layer.name << ", input scale " << scale << ", seed " << seed << ", " << rung << "\n"
                          << bpcheck::format_table(r));
          CHECK(alarms(r, rung) == "");
        }
      }
}

TEST_CASE("textbook layers in both styles, reading Y or recomputing from X, are never called wrong",
          "[verify][textbook]") {
  for (const auto& layer : both_styles())
    for (double scale : scales)
      for (std::uint64_t seed = 1; seed <= 5; ++seed) {
        const VerificationReport r = bpcheck::verify_layer(layer.make(), at(scale, seed));
        for (const auto& rung : rungs) {
          INFO(layer.name << ", input scale " << scale << ", seed " << seed << ", " << rung << "\n"
                          << bpcheck::format_table(r));
          CHECK(failures(r, rung) == "");
        }
      }
}

TEST_CASE("a constant wrong in float alone (dX × 1.001) is wrong in float, and right on the other rungs",
          "[verify][textbook]") {
  for (std::uint64_t seed : {1, 2, 3}) {
    const VerificationReport r = bpcheck::verify_layer(textbook::factory<TanhWrongConstantInFloat>(4), at(1, seed));
    INFO("seed " << seed << "\n" << bpcheck::format_table(r));
    CHECK(!r.passed());
    CHECK(failures(r, "float") != "");
    CHECK(failures(r, "double") == "");
    CHECK(failures(r, "mp100") == "");
  }
}

TEST_CASE("a formula that cancels inside passes by its emulated rounding, naming the digits it loses",
          "[verify][textbook]") {
  // gelu via 1 + erf at input scale 4 and layer_norm as PyTorch's docs write it lose more digits in
  // float and double than the bound of a stable form allows (bench/false_alarms.md, before).
  for (const auto& layer : {named<textbook::Gelu>("gelu"), named<textbook::LayerNorm>("layer_norm")}) {
    int emulated = 0;
    for (std::uint64_t seed = 1; seed <= 6; ++seed) {
      const VerificationReport r = bpcheck::verify_layer(layer.make(), at(4, seed));
      for (const auto& c : r.checks)
        if (c.message.find("formula as written") != std::string::npos) {
          ++emulated;
          CHECK(c.verdict == Verdict::pass);
          CHECK(c.precision != "mp100");
          CHECK_THAT(c.message, Catch::Matchers::Contains("a stable form keeps about"));
          CHECK_THAT(c.formula, Catch::Matchers::Contains("rounding emulated"));
        }
    }
    INFO(layer.name);
    CHECK(emulated > 0);
  }
}

TEST_CASE("a float-only approximation that keeps half of float's digits passes, three digits FAIL in float",
          "[verify][textbook]") {
  // uniform in ±1 only: in saturation y(1 + 1e-5) passes 1, and 1 − y² changes sign: a gross error.
  // Right in mp100, 1e-5 off keeps five of float's seven digits: beyond the bound, but no alarm even
  // in strict mode, and the message says why.
  VerifyOptions strict = at(1, 1, {"uniform"});
  strict.unstable_fails = true;
  const VerificationReport r = bpcheck::verify_layer(textbook::factory<TanhApproximateInFloat>(4), strict);
  INFO(bpcheck::format_table(r));
  CHECK(r.passed());
  bool said = false;
  for (const auto& c : r.checks) said = said || c.message.find("more than half of the precision's") != std::string::npos;
  CHECK(said);
  // 1e-3 off is a thousand times what float's rounding of the same code does, with fewer than half its
  // digits: a code path of float is wrong, while double and mp100 stay right.
  const VerificationReport wrong = bpcheck::verify_layer(textbook::factory<TanhWrongInFloat>(4), at(1, 1, {"uniform"}));
  INFO(bpcheck::format_table(wrong));
  CHECK(failures(wrong, "float") != "");
  CHECK_THAT(failures(wrong, "float"), Catch::Matchers::Contains("a code path of this precision is wrong"));
  CHECK(alarms(wrong, "double") == "");
  CHECK(alarms(wrong, "mp100") == "");
}

TEST_CASE("textbook formulas with a classic bug are wrong in mp100 and double at the default scale",
          "[verify][textbook]") {
  const std::vector<Named> bugs{
      named<textbook::TanhMissingSquare>("tanh′ as 1 − y"),
      named<textbook::SigmoidSaturationShortcut>("σ′ = 0 beyond |x| > 4"),
      named<textbook::SoftmaxDiagonalOnly>("softmax, diagonal only"),
      named<textbook::GeluMissingTerm>("gelu′ without x φ(x)"),
      named<textbook::LayerNormMissingTerm>("layer_norm without the x̂ term"),
  };
  for (const auto& bug : bugs)
    for (std::uint64_t seed : {1, 2, 3}) {
      const VerificationReport r = bpcheck::verify_layer(bug.make(), at(1, seed));
      INFO(bug.name << ", seed " << seed << "\n" << bpcheck::format_table(r));
      CHECK(!r.passed());
      bool wrong_in_mp100 = false, wrong_in_double = false;
      for (const auto& c : r.checks) {
        wrong_in_mp100 = wrong_in_mp100 || (c.precision == "mp100" && c.verdict == Verdict::fail);
        wrong_in_double = wrong_in_double || (c.precision == "double" && c.verdict == Verdict::fail);
      }
      CHECK(wrong_in_mp100);
      CHECK(wrong_in_double);
    }
}

// Not run by default (a few minutes): the false-alarm table over 20 seeds per cell, for inputs uniform in
// ±scale only and for the default distributions. A cell counts the seeds with an alarm on that rung
// (wrong or unstable); "wrong" counts failures alone.
//   build/checks/bpcheck_checks "[.false-alarm-table]"
TEST_CASE("textbook false-alarm table over 20 seeds", "[.false-alarm-table]") {
  std::cout << "| correct layer | inputs | float | double | mp100 | wrong |\n|---|---|---|---|---|---|\n";
  for (const auto& layer : both_styles())
    for (bool uniform_only : {true, false})
      for (double scale : scales) {
        std::vector<int> count(rungs.size(), 0);
        int wrong = 0;
        for (std::uint64_t seed = 1; seed <= 20; ++seed) {
          const VerificationReport r =
              bpcheck::verify_layer(layer.make(), at(scale, seed, uniform_only ? std::vector<std::string>{"uniform"}
                                                                               : std::vector<std::string>{}));
          bool any_wrong = false;
          for (std::size_t k = 0; k < rungs.size(); ++k) {
            count[k] += !alarms(r, rungs[k]).empty();
            any_wrong = any_wrong || !failures(r, rungs[k]).empty();
          }
          wrong += any_wrong;
        }
        std::cout << fmt::format("| {} | {} ±{} | {}/20 | {}/20 | {}/20 | {}/20 |\n", layer.name,
                                 uniform_only ? "uniform" : "default", scale, count[0], count[1], count[2], wrong)
                  << std::flush;
      }
}

