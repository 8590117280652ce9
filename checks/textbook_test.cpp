// The textbook set: layers written with PyTorch's own backward formulas (textbook_layers.hpp). Those in
// terms of y or plain sums raise no alarm on any rung, at ordinary and large input scales; those that
// cancel inside are never called wrong (unstable, where they lose digits, is advice); the same formulas
// with a classic bug are still called wrong. A hidden test prints the false-alarm table over 20 seeds.
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

/// Formulas in terms of the forward output y or of plain sums: as accurate as the rung allows.
const std::vector<Named>& textbook_set() {
  static const std::vector<Named> set{
      named<textbook::Tanh>("tanh (1 − y²)"),
      named<textbook::Sigmoid>("sigmoid (y(1 − y))"),
      named<textbook::Softmax>("softmax (s ⊙ (g − sᵀg))"),
      named<textbook::Softplus>("softplus via log(1 + eˣ)"),
      named<textbook::Mse>("mse"),
  };
  return set;
}

/// Formulas that cancel inside (log Σ eˣ next to x, 1 + erf at negative x, x − mean over a batch of two):
/// right, but they lose digits a stable form keeps, which the bound does not see inside a user's layer.
const std::vector<Named>& cancelling_set() {
  static const std::vector<Named> set{
      named<textbook::LogSoftmax>("log_softmax (g − s Σg)"),
      named<textbook::CrossEntropy>("cross_entropy via log_softmax"),
      named<textbook::Gelu>("gelu, exact, via 1 + erf"),
      named<textbook::LayerNorm>("layer_norm (PyTorch's docs)"),
      named<textbook::BatchNorm>("batch_norm (PyTorch's docs)"),
  };
  return set;
}

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

TEST_CASE("textbook layers that cancel inside are never called wrong, on any rung", "[verify][textbook]") {
  for (const auto& layer : cancelling_set())
    for (double scale : scales)
      for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        const VerificationReport r = bpcheck::verify_layer(layer.make(), at(scale, seed));
        for (const auto& rung : rungs) {
          INFO(layer.name << ", input scale " << scale << ", seed " << seed << ", " << rung << "\n"
                          << bpcheck::format_table(r));
          CHECK(failures(r, rung) == "");
        }
        CHECK(r.passed());  // unstable is advice
      }
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
  std::vector<Named> all = textbook_set();
  all.insert(all.end(), cancelling_set().begin(), cancelling_set().end());
  for (const auto& layer : all)
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
