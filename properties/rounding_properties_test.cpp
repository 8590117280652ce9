// Float and double gradients are within their error bound of the mp100 gradient: the verifier raises
// no false alarm on correct built-in layers and networks, at points from every distribution.
// Nightly: BPCHECK_PROPERTY_CASES=10000 runs 10,000 cases per layer.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>
#include <string>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/verify.hpp"
#include "helpers.hpp"

namespace {
using namespace bpcheck::properties;
using bpcheck::VerificationReport;
using bpcheck::VerifyOptions;

/// verify_network on the case's own model, parameters and data: exactly what
/// `bpcheck verify --model --params --data` runs on the documents the counterexample prints.
VerificationReport verify_case(const NetworkCase& c) {
  bpcheck::NetworkSubject subject;
  subject.spec = c.spec;
  subject.parameters = nlohmann::json::parse(parameters_json(c).dump());
  subject.data = nlohmann::json::parse(data_json(c).dump());
  VerifyOptions options;
  options.points = 1;
  options.unstable_fails = true;  // the suite's own layers keep their stable forms: unstable is an alarm here
  return bpcheck::verify_network(subject, options);
}

/// Whether a float check met an exact value beyond float's largest number (wide-range parameters
/// multiplied through attention reach 1e38). Float cannot hold the answer there and the verifier says
/// so; such a point lies outside the claim that correct code raises no alarm, and is discarded.
bool beyond_float_range(const VerificationReport& r) {
  for (const auto& c : r.checks)
    if (c.precision == "float" && c.verdict != bpcheck::Verdict::pass)
      for (const auto& w : c.worst)
        if (std::abs(std::strtod(w.expected.c_str(), nullptr)) > double(std::numeric_limits<float>::max())) return true;
  return false;
}

/// Whether every alarm of the report is in a rung whose `overflow` check fired: Inf or NaN in that rung
/// where mp100 is finite, an intermediate beyond the rung's range (attention's dO·Vᵀ at 1e46 in float
/// turns the softmax backward's dP − Σ P dP into NaN where the exact gradient is 0). The verifier's
/// verdict there is a fact about the rung, measured, not a false alarm; such a point is discarded.
bool only_overflow(const VerificationReport& r) {
  std::set<std::string> overflowed;
  for (const auto& c : r.checks)
    if (c.check == "overflow" && c.verdict != bpcheck::Verdict::pass && c.verdict != bpcheck::Verdict::skipped)
      overflowed.insert(c.precision);
  if (overflowed.empty()) return false;
  for (const auto& c : r.checks)
    if ((c.verdict == bpcheck::Verdict::fail || c.verdict == bpcheck::Verdict::unstable) && !overflowed.count(c.precision))
      return false;
  return true;
}

/// No false alarm at the case, unless it lies beyond float's range or a rung overflowed there.
void expect_no_false_alarm(const NetworkCase& c) {
  const VerificationReport r = verify_case(c);
  if (r.passed()) return;
  RC_PRE(!beyond_float_range(r));
  RC_PRE(!only_overflow(r));
  RC_FAIL(bpcheck::format_table(r));
}
}  // namespace

TEST_CASE("float and double gradients of every built-in layer are within their error bound of the mp100 gradient",
          "[property][rounding]") {
  for (const auto& type : testing::builtin_layer_types()) {
    const auto g = testing::layer_cases<double>(type);
    require_property("no false alarm [" + type + "]", case_count(20), [g] {
      const LayerCase c = *g;
      expect_no_false_alarm(as_network_case(c));
    });
  }
}

TEST_CASE("float and double gradients of random networks are within their error bound of the mp100 gradient",
          "[property][rounding]") {
  GeneratorOptions o;
  o.max_depth = 5;
  const auto g = gen::network_case(o);
  require_property("no false alarm [random networks]", case_count(50), [g] {
    const NetworkCase c = *g;
    expect_no_false_alarm(c);
  });
}
