#pragma once
// The whole property suite for your own layer, inside a Catch2 test.
//
//   #include <bpcheck/properties/check_layer.hpp>
//   TEST_CASE("learnable swish satisfies every property") {
//     bpcheck::properties::check_layer([]<class T>(bpcheck::rung<T>) { return LearnableSwish<T>(5); });
//   }
//
// The factory is the one verify_layer takes. At generated points (batch 1–max_batch, inputs from every
// distribution of the options: standard, wide range, near kinks, saturation, near ties; mp100 inputs
// with digits beyond double) and on float, double and mp100, check_layer requires:
//   - explicit J (when the layer states it) = columns of the JVP = rows of the VJP = finite differences
//   - uᵀ(Jv) = (Jᵀu)ᵀv
//   - JVP and VJP are linear in the direction
//   - the Taylor remainder falls like h² (points where the function itself is not smooth are skipped)
//   - verify_layer passes: backward right in mp100, float and double within their rounding bound
// A failing property fails the test with its shrunk counterexample (batch 1, simple values where the
// failure allows) and the RC_PARAMS that reproduces it. check_layer_report gives the same without Catch2.
// Cases: GeneratorOptions::cases, or BPCHECK_PROPERTY_CASES (runner.hpp); mp100 runs a tenth.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "bpcheck/properties/generators.hpp"
#include "bpcheck/properties/identities.hpp"
#include "bpcheck/properties/runner.hpp"
#include "bpcheck/verify/verify.hpp"

namespace bpcheck::properties {

/// Every property's run, by name.
struct LayerCheckReport {
  std::vector<std::pair<std::string, PropertyRun>> runs;
  bool passed() const {
    for (const auto& [name, run] : runs)
      if (!run.passed) return false;
    return !runs.empty();
  }
};

namespace check_layer_detail {

inline int cases(const GeneratorOptions& o, int fallback, bool mp100) {
  if (o.cases > 0) return mp100 ? std::max(2, o.cases / 10) : o.cases;
  return case_count(fallback, mp100);
}

template <class T, class Make>
void identities_on(Make& make, const GeneratorOptions& o, LayerCheckReport& report) {
  constexpr bool mp = std::is_same_v<T, mp100>;
  const auto proto = make(rung<double>{});
  const std::string name = proto.type_name();
  const Index in = proto.input_size(), out = proto.output_size(), P = parameter_count(proto.parameter_blocks());
  rc::Gen<LayerCase> g = gen::point_case(name, in, out, P, o);
  if constexpr (mp) g = gen::with_digits_beyond_double(g);
  const auto at = [make](const LayerCase& c) {
    return layer_at_point(make(rung<T>{}), make(rung<dual<T>>{}), inputs_on<T>(c), parameters_on<T>(c),
                          cotangent_on<T>(c), direction_on<T>(c));
  };
  using Identity = Outcome (*)(const LayerAtPoint<T>&);
  const std::vector<std::pair<std::string, Identity>> identities{
      {"explicit J, the JVP's columns, the VJP's rows and finite differences agree", &jacobian_routes<T>},
      {"uᵀ(Jv) by forward mode equals (Jᵀu)ᵀv by reverse mode", &dot_product<T>},
      {"JVP and VJP are linear in the direction", &linearity<T>},
      {"the Taylor remainder falls like h² away from kinks", &taylor<T>},
  };
  for (const auto& [sentence, identity] : identities) {
    const std::string title = name + ": " + sentence + " [" + scalar_name<T>() + "]";
    report.runs.emplace_back(title, run_property(title, cases(o, mp ? 3 : 30, mp), [g, at, identity = identity] {
                               const LayerCase c = *g;
                               const Outcome result = identity(at(c));
                               if (!result.holds) RC_FAIL(result.message);
                             }));
  }
}

}  // namespace check_layer_detail

/// Runs the property suite (see the file comment) and returns every run; never throws for a failed
/// property.
template <class Make>
LayerCheckReport check_layer_report(Make make, const GeneratorOptions& o = {}) {
  LayerCheckReport report;
  check_layer_detail::identities_on<float>(make, o, report);
  check_layer_detail::identities_on<double>(make, o, report);
  check_layer_detail::identities_on<mp100>(make, o, report);
  // float and double within their bound of mp100, and every check of verify_layer, at generated points
  const auto proto = make(rung<double>{});
  const std::string title = proto.type_name() + ": verify_layer passes (float and double within their error bound of mp100)";
  const auto g = gen::point_case(proto.type_name(), proto.input_size(), proto.output_size(),
                                 parameter_count(proto.parameter_blocks()), o);
  report.runs.emplace_back(title, run_property(title, check_layer_detail::cases(o, 5, false), [g, make] {
                             const LayerCase c = *g;
                             VerifyOptions options;
                             options.points = 1;
                             options.inputs = inputs_on<mp100>(c);
                             options.seed = default_seed;
                             const VerificationReport r = verify_layer(make, options);
                             if (!r.passed()) RC_FAIL(format_table(r));
                           }));
  return report;
}

/// check_layer_report inside a Catch2 test: one CHECK per property, each failure with its message.
template <class Make>
void check_layer(Make make, const GeneratorOptions& o = {}) {
  const LayerCheckReport report = check_layer_report(std::move(make), o);
  for (const auto& [name, run] : report.runs) {
    INFO(run.message);
    CHECK(run.passed);
  }
}

}  // namespace bpcheck::properties
