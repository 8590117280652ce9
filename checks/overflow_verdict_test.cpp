// Numerical edge cases are verdicts, not crashes: a float forward pass that overflows on the model's
// own parameters is reported as an overflow of float at the layer where it happens (unstable: exit 0,
// exit 1 in strict mode), never as a wrong gradient; double and mp100 judge the same model right.
#include <algorithm>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/verify.hpp"
#include "helpers.hpp"

using Catch::Contains;
using nlohmann::json;

namespace {

/// The report as strict mode judges it: unstable fails.
bpcheck::VerificationReport strict(bpcheck::VerificationReport r) {
  r.unstable_fails = true;
  return r;
}

bpcheck::VerificationReport verify_model(const char* model, const char* params, const char* data,
                                         std::vector<std::string> precisions = {"float", "double", "mp100"}) {
  bpcheck::NetworkSubject subject;
  subject.spec = bpcheck::model_spec_from_json(json::parse(model), "model.json");
  subject.parameters = json::parse(params);
  subject.parameters_file = "params.json";
  subject.data = json::parse(data);
  subject.data_file = "data.json";
  bpcheck::VerifyOptions options;
  options.points = 1;
  options.precisions = std::move(precisions);
  return bpcheck::verify_network(subject, options);
}

std::vector<const bpcheck::CheckResult*> checks_named(const bpcheck::VerificationReport& r, const std::string& check) {
  std::vector<const bpcheck::CheckResult*> found;
  for (const auto& c : r.checks)
    if (c.check == check) found.push_back(&c);
  return found;
}

bool any_fail(const bpcheck::VerificationReport& r) {
  return std::any_of(r.checks.begin(), r.checks.end(),
                     [](const auto& c) { return c.verdict == bpcheck::Verdict::fail; });
}

const char* data = R"({"inputs": [[0.5, 0.25], [0.75, -0.5]], "targets": [[0, 1], [1, 0]]})";

}  // namespace

TEST_CASE("float overflowing in a dense layer's forward pass is named by layer, not called a wrong gradient",
          "[verify][overflow]") {
  const char* model = R"({"input_size": 2, "layers": [{"type": "dense", "units": 2}, {"type": "dense", "units": 2}],
                          "loss": "mse"})";
  // Layer 0's outputs reach 1e30 (fine in float); layer 1 multiplies them by 1e30 again: 1e60.
  const char* params = R"({"layers": [{"W": [["1e30", "1e30"], ["1e30", "-1e30"]], "b": [0, 0]},
                                      {"W": [["1e30", 2], [3, 4]], "b": [0, 0]}]})";
  const auto report = verify_model(model, params, data);
  const auto overflow = checks_named(report, "overflow");
  REQUIRE(overflow.size() == 1);
  CHECK(overflow[0]->precision == "float");
  CHECK(overflow[0]->verdict == bpcheck::Verdict::unstable);
  CHECK_THAT(overflow[0]->message, Contains("float overflows in the forward pass at layer 1 (dense)") &&
                                       Contains("largest magnitude 7.5"));
  CHECK_FALSE(any_fail(report));
  CHECK(report.exit_code() == 0);  // unstable is advice by default
  CHECK(strict(report).exit_code() == 1);
  // Judged in double and mp100 only, the same model is right and nothing overflows.
  const auto wide = verify_model(model, params, data, {"double", "mp100"});
  CHECK(checks_named(wide, "overflow").empty());
  CHECK(wide.exit_code() == 0);
}

TEST_CASE("float overflowing in the loss is named as the loss", "[verify][overflow]") {
  const char* model = R"({"input_size": 2, "layers": [{"type": "dense", "units": 2}], "loss": "mse"})";
  const char* params = R"({"layers": [{"W": [["1e30", "1e30"], ["1e30", "-1e30"]], "b": [0, 0]}]})";
  const auto report = verify_model(model, params, data);
  const auto overflow = checks_named(report, "overflow");
  REQUIRE(overflow.size() == 1);
  CHECK_THAT(overflow[0]->message, Contains("float overflows in the loss (mse)"));
  CHECK_FALSE(any_fail(report));
  CHECK(report.exit_code() == 0);  // unstable is advice by default
  CHECK(strict(report).exit_code() == 1);
}

TEST_CASE("a model that does not overflow gets no overflow verdict", "[verify][overflow]") {
  const char* model = R"({"input_size": 2, "layers": [{"type": "dense", "units": 2}, {"type": "tanh"}], "loss": "mse"})";
  const char* params = R"({"layers": [{"W": [["1e3", 1], [1, -1]], "b": [0, 0]}, {}]})";
  const auto report = verify_model(model, params, data);
  CHECK(checks_named(report, "overflow").empty());
  CHECK(report.exit_code() == 0);
}
