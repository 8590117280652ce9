// Who checks the checker: the property suite runs verify_layer at generated points against every
// deliberately wrong layer of the zoo (mutants.hpp), in mp100, double and float. Each catch comes
// with its shrunk counterexample; the table of catches is printed, and the test fails unless every
// mutant is caught in mp100 and double, and in float whenever its error exceeds float's bound.
#include <iostream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "bpcheck/properties/catch.hpp"
#include "bpcheck/properties/generators.hpp"
#include "bpcheck/verify/verify.hpp"
#include "mutants.hpp"

namespace {

using namespace bpcheck::properties;
using bpcheck::Index;
using bpcheck::mp100;
using bpcheck::mutants::Mutant;
using bpcheck::mutants::MutantFactory;

/// One bug class: the mutant, and the rungs on which its gradient is wrong.
struct ZooEntry {
  Mutant mutant;
  std::string bug;
  std::set<std::string> wrong_on{"mp100", "double", "float"};
  bool below_float_bound = false;  ///< its error is smaller than float's rounding: float must not flag it
};

const std::vector<ZooEntry>& zoo() {
  static const std::vector<ZooEntry> entries{
      {Mutant::transposed_weight, "transposed weight in the input gradient"},
      {Mutant::missing_derivative, "missing activation-derivative factor"},
      {Mutant::derivative_at_output, "derivative evaluated at the output, not the input"},
      {Mutant::bias_first_sample, "bias gradient not summed over the batch"},
      {Mutant::divided_by_batch, "gradient divided by the batch size twice"},
      {Mutant::flipped_sign, "sign error in one entry"},
      {Mutant::off_by_one, "off-by-one index"},
      {Mutant::wrong_for_negative, "wrong only for negative inputs"},
      {Mutant::wrong_for_batch, "wrong only for batch > 1"},
      {Mutant::softmax_diagonal_only, "softmax Jacobian diagonal only"},
      {Mutant::norm_missing_epsilon, "missing epsilon in a normalisation's backward"},
      {Mutant::overwritten_dtheta, "parameter gradient overwritten, not accumulated"},
      {Mutant::relative_offset_small, "gradient off by a relative 1e-9", {"mp100", "double"}, true},
      {Mutant::relative_offset, "gradient off by a relative 1e-8", {"mp100", "double"}, true},
      {Mutant::wrong_in_float, "wrong only in float (float fast path)", {"float"}},
      {Mutant::missing_bias_gradient, "bias gradient never accumulated"},
      {Mutant::log_softmax_missing_sum, "log_softmax backward as the identity"},
      {Mutant::softplus_mirrored, "softplus' evaluated at −x"},
      {Mutant::silu_missing_term, "product rule half applied (silu)"},
      {Mutant::gelu_wrong_approximation, "derivative of the other approximation (gelu)"},
      {Mutant::wrong_jacobian, "explicit J_θ vectorised row-major"},
  };
  return entries;
}

/// A generated point for a mutant: its sizes (clamped to what the mutant needs) and inputs.
struct MutantCase {
  Index input_size = 1, units = 1, batch = 1;
  Distribution distribution = Distribution::standard;
  std::vector<mp100> inputs;
};

void showValue(const MutantCase& c, std::ostream& os) {
  os << c.input_size << " inputs, " << c.units << " units, batch " << c.batch << ", "
     << distribution_name(c.distribution) << " X = [";
  for (std::size_t i = 0; i < c.inputs.size(); ++i) os << (i ? ", " : "") << c.inputs[i].convert_to<double>();
  os << "]";
}

rc::Gen<MutantCase> mutant_cases(Mutant m) {
  GeneratorOptions o;
  o.max_input_size = 4;
  o.max_units = 4;
  o.max_batch = 3;
  return rc::gen::mapcat(rc::gen::pair(gen::shape(o), gen::distribution(o)), [m](const std::pair<Shape, Distribution>& sd) {
    const auto& [s, d] = sd;
    const auto layer = bpcheck::mutants::make_mutant<double>(m, s.input_size, s.units);
    MutantCase c;
    c.input_size = layer.input_size();
    c.units = layer.output_size();
    c.batch = s.batch;
    c.distribution = d;
    return rc::gen::map(gen::values(d, std::size_t(c.input_size * c.batch)), [c](std::vector<mp100> x) {
      MutantCase out = c;
      out.inputs = std::move(x);
      return out;
    });
  });
}

/// The failing checks of a report, one line.
std::string failing_checks(const bpcheck::VerificationReport& r) {
  std::string s;
  for (const auto& c : r.checks)
    if (c.verdict == bpcheck::Verdict::fail || c.verdict == bpcheck::Verdict::unstable)
      s += fmt::format("{}{} [{}] {} ({:.3g} > {:.3g})", s.empty() ? "" : "; ", c.check, c.precision,
                       bpcheck::verdict_name(c.verdict), c.value, c.threshold);
  return s;
}

/// Runs the property "verify_layer finds nothing wrong" for the mutant on one rung.
PropertyRun hunt(const ZooEntry& e, const std::string& precision) {
  const auto g = mutant_cases(e.mutant);
  const Mutant m = e.mutant;
  return run_property("the checker passes '" + e.bug + "' [" + precision + "]", case_count(20),
                      [g, m, precision] {
                        const MutantCase c = *g;
                        bpcheck::VerifyOptions o;
                        o.points = 1;
                        o.precisions = {precision};
                        o.seed = default_seed;
                        o.unstable_fails = true;  // float's catches beyond its bound count, unstable or wrong
                        o.inputs = bpcheck::Matrix<mp100>(
                            Eigen::Map<const bpcheck::Matrix<mp100>>(c.inputs.data(), c.input_size, c.batch));
                        const auto r = bpcheck::verify_layer(MutantFactory{m, c.input_size, c.units}, o);
                        if (!r.passed()) RC_FAIL(failing_checks(r));
                      });
}

}  // namespace

TEST_CASE("mutant zoo: every wrong gradient is caught in mp100 and double, and in float above its bound, each with a shrunk counterexample",
          "[property][mutant]") {
  const std::vector<std::string> rungs{"mp100", "double", "float"};
  std::map<std::string, int> wrong, caught;
  std::ostringstream table, examples;
  table << fmt::format("{:<52} {:<12} {:<12} {:<12}\n", "bug class (mutant)", "mp100", "double", "float");
  for (const auto& e : zoo()) {
    table << fmt::format("{:<52}", e.bug);
    for (const auto& p : rungs) {
      const PropertyRun run = hunt(e, p);
      const bool is_wrong = e.wrong_on.count(p) > 0;
      const bool hidden = p == "float" && e.below_float_bound;
      std::string cell;
      if (is_wrong) {
        ++wrong[p];
        caught[p] += run.passed ? 0 : 1;
        cell = run.passed ? "MISSED" : "caught";
      } else {
        cell = hidden ? "below bound" : "right here";
      }
      table << fmt::format(" {:<12}", cell);
      INFO(e.bug << " [" << p << "]\n" << run.message);
      if (is_wrong) {
        CHECK(!run.passed);
        CHECK(!run.counterexample.empty());
        if (!run.passed)
          examples << fmt::format("  {} [{}]: {}    {}\n", e.bug, p,
                                  run.counterexample.substr(0, run.counterexample.find_last_not_of('\n') + 1),
                                  run.failure);
      } else {
        CHECK(run.passed);  // right on this rung (or its error below the rung's bound): no false alarm
      }
    }
    table << "\n";
  }
  table << fmt::format("{:<52}", "detected");
  for (const auto& p : rungs)
    table << fmt::format(" {:<12}", fmt::format("{}/{} {:.0f}%", caught[p], wrong[p], 100.0 * caught[p] / wrong[p]));
  table << "\n";
  std::cout << "mutant zoo: detection table (mutant × precision)\n"
            << table.str() << "\nshrunk counterexamples:\n"
            << examples.str() << std::flush;
  CHECK(zoo().size() >= 20);
  CHECK(caught["mp100"] == wrong["mp100"]);
  CHECK(caught["double"] == wrong["double"]);
  CHECK(caught["float"] == wrong["float"]);
}

TEST_CASE("mutant zoo: the correct normalisation twin passes in mp100, double and float", "[property][mutant]") {
  // In float and double forward mode cancels in the derivative of x/√(x² + ε) when one feature
  // dominates (1/r − x²/r³, condition ≈ (x² + ε)/ε); the dot-product identity's bound counts forward
  // mode's own error, so the correct twin raises no alarm on any rung.
  const ZooEntry twin{Mutant::rms_norm, "rms_norm with ε in forward and backward"};
  for (const std::string precision : {"mp100", "double", "float"}) {
    const PropertyRun run = hunt(twin, precision);
    INFO(precision << ": " << run.message);
    CHECK(run.passed);
  }
}
