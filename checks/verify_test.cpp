// Must-fail: the verification engine reports every planted bug (checks/mutants.hpp), each check type
// objects on its own to the flaw it exists for, and the report formats carry what they should.
#include <algorithm>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bpcheck/verify/verify.hpp"
#include "helpers.hpp"
#include "mutants.hpp"

namespace {

using bpcheck::CheckResult;
using bpcheck::Verdict;
using bpcheck::VerificationReport;
using bpcheck::VerifyOptions;
using bpcheck::mutants::Mutant;

VerificationReport verify(Mutant m, const VerifyOptions& o = {}) {
  return bpcheck::verify_layer(bpcheck::mutants::MutantFactory{m}, o);
}

/// The (worst) result of one check on one rung; fails the test when the report lacks it.
const CheckResult& result(const VerificationReport& r, const std::string& check, const std::string& precision) {
  for (const auto& c : r.checks)
    if (c.check == check && c.precision == precision) return c;
  FAIL("the report has no check '" << check << "' [" << precision << "]");
  throw;  // unreachable: FAIL throws
}

/// The planted bug is a wrong gradient: the decisive mp100 comparison fails and names the block.
void require_wrong_gradient(const VerificationReport& r, const std::string& block) {
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  const CheckResult& c = result(r, "backward vs oracle", "mp100");
  CHECK(c.verdict == Verdict::fail);
  REQUIRE(!c.worst.empty());
  CHECK(c.worst.front().block == block);
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

}  // namespace

// ---- wrong gradients ----------------------------------------------------------------------------

TEST_CASE("mutant: transposed weight in dX is a wrong gradient in x", "[verify][mutant]") {
  require_wrong_gradient(verify(Mutant::transposed_weight), "x");
}

TEST_CASE("mutant: a missing activation-derivative factor is a wrong gradient in x", "[verify][mutant]") {
  require_wrong_gradient(verify(Mutant::missing_derivative), "x");
}

TEST_CASE("mutant: a relative 1e-8 error is caught in mp100 and double, not in float", "[verify][mutant]") {
  const VerificationReport r = verify(Mutant::relative_offset);
  require_wrong_gradient(r, "x");
  INFO(bpcheck::format_table(r));
  CHECK(result(r, "backward vs mp100", "double").verdict == Verdict::fail);
  // 1e-8 is below float's unit roundoff (6e-8): within the rounding bound, so float cannot object.
  CHECK(result(r, "backward vs mp100", "float").verdict == Verdict::pass);
  VerifyOptions float_only;
  float_only.precisions = {"float"};
  CHECK(verify(Mutant::relative_offset, float_only).passed());
}

TEST_CASE("mutant: a flipped sign is found at exactly the flipped entry", "[verify][mutant]") {
  const VerificationReport r = verify(Mutant::flipped_sign);
  require_wrong_gradient(r, "W");
  const CheckResult& c = result(r, "backward vs oracle", "mp100");
  REQUIRE(!c.worst.empty());
  CHECK(c.worst.front().where == "dW[1,2]");
  // Only that entry is wrong, so it is the only one listed.
  CHECK(c.worst.size() == 1);
}

TEST_CASE("mutant: a bias gradient from the first sample only is a wrong gradient in b", "[verify][mutant]") {
  require_wrong_gradient(verify(Mutant::bias_first_sample), "b");
}

TEST_CASE("mutant: a derivative taken at the output is a wrong gradient in x", "[verify][mutant]") {
  require_wrong_gradient(verify(Mutant::derivative_at_output), "x");
}

TEST_CASE("mutant: a bug in the float code path only fails float, and names b", "[verify][mutant]") {
  const VerificationReport r = verify(Mutant::wrong_in_float);
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  CHECK(result(r, "backward vs oracle", "mp100").verdict == Verdict::pass);  // the mp100 code is right
  CHECK(result(r, "backward vs mp100", "double").verdict == Verdict::pass);
  const CheckResult& f = result(r, "backward vs mp100", "float");
  CHECK(f.verdict == Verdict::fail);
  REQUIRE(!f.worst.empty());
  CHECK(f.worst.front().block == "b");
}

TEST_CASE("mutant: a bug that needs batch > 1 is found at sample 1, and not with batch 1", "[verify][mutant]") {
  const VerificationReport r = verify(Mutant::wrong_for_batch);
  require_wrong_gradient(r, "x");
  const CheckResult& c = result(r, "backward vs oracle", "mp100");
  REQUIRE(!c.worst.empty());
  CHECK(c.worst.front().where.find("sample 1") != std::string::npos);
  VerifyOptions one;
  one.batch = 1;
  const VerificationReport single = verify(Mutant::wrong_for_batch, one);
  INFO(bpcheck::format_table(single));
  CHECK(single.passed());
}

// `backward vs oracle` starts from dθ = 0, where assigning and adding agree; the accumulation check
// calls backward twice onto the same dθ, and the batch check adds every sample's share into one dθ.
TEST_CASE("mutant: dθ overwritten instead of accumulated is caught, also with a batch of one", "[verify][mutant]") {
  const VerificationReport r = verify(Mutant::overwritten_dtheta);
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  CHECK(result(r, "backward vs oracle", "mp100").verdict == Verdict::pass);  // invisible from dθ = 0
  for (const char* p : {"float", "double", "mp100"}) {
    INFO(p);
    for (const char* check : {"batch = sum of samples", "dθ accumulates"}) {
      INFO(check);
      const CheckResult& c = result(r, check, p);
      CHECK(c.verdict == Verdict::fail);
      REQUIRE(!c.worst.empty());
      CHECK((c.worst.front().block == "W" || c.worst.front().block == "b"));
    }
  }
  VerifyOptions one;
  one.batch = 1;
  const VerificationReport single = verify(Mutant::overwritten_dtheta, one);
  INFO(bpcheck::format_table(single));
  CHECK(!single.passed());
  CHECK(result(single, "dθ accumulates", "mp100").verdict == Verdict::fail);
}

TEST_CASE("mutant: a backward_parameters that leaves out db is caught while backward passes", "[verify][mutant]") {
  const VerificationReport r = verify(Mutant::parameter_backward_missing_bias);
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  CHECK(result(r, "backward vs oracle", "mp100").verdict == Verdict::pass);
  for (const char* p : {"float", "double", "mp100"}) {
    INFO(p);
    const CheckResult& c = result(r, "dθ without dX = backward's", p);
    CHECK(c.verdict == Verdict::fail);
    REQUIRE(!c.worst.empty());
    CHECK(c.worst.front().block == "b");
  }
  // The correct dense layer passes the same check on every rung.
  const VerificationReport right = bpcheck::verify_layer(bpcheck::LayerSpec{"dense", {{"units", 2}}}, 3);
  INFO(bpcheck::format_table(right));
  CHECK(right.passed());
  for (const char* p : {"float", "double", "mp100"}) CHECK(result(right, "dθ without dX = backward's", p).verdict == Verdict::pass);
}

TEST_CASE("mutant: a wrong explicit J_θ fails the Jacobian check while backward passes", "[verify][mutant]") {
  const VerificationReport r = verify(Mutant::wrong_jacobian);
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  CHECK(result(r, "backward vs oracle", "mp100").verdict == Verdict::pass);
  for (const char* p : {"float", "double", "mp100"}) {
    INFO(p);
    const CheckResult& c = result(r, p == std::string("mp100") ? "jacobians vs oracle" : "jacobians vs mp100", p);
    CHECK(c.verdict == Verdict::fail);
    REQUIRE(!c.worst.empty());
    CHECK(c.worst.front().block == "J_W");
  }
}

TEST_CASE("projection mode: random projections judge large layers, pass and fail alike", "[verify][check]") {
  VerifyOptions projected;
  projected.full_jacobian_limit = 10;  // far below dense 4 → 3's 3·2·(4·2 + 15) entries
  const VerificationReport right = bpcheck::verify_layer(bpcheck::LayerSpec{"dense", {{"units", 3}}}, 4, projected);
  INFO(bpcheck::format_table(right));
  CHECK(right.passed());
  const CheckResult& skipped = result(right, "jacobians vs oracle", "mp100");
  CHECK(skipped.verdict == Verdict::skipped);
  const VerificationReport wrong = verify(Mutant::flipped_sign, projected);
  INFO(bpcheck::format_table(wrong));
  CHECK(!wrong.passed());
  const CheckResult& c = result(wrong, "backward vs oracle", "mp100");
  CHECK(c.verdict == Verdict::fail);
  REQUIRE(!c.worst.empty());
  CHECK(c.worst.front().block == "projection");
  CHECK(c.evaluations > 0);
}

// ---- each check on its own ------------------------------------------------------------------------

TEST_CASE("check: the dot-product identity fails for a wrong backward on every rung", "[verify][check]") {
  const VerificationReport r = verify(Mutant::transposed_weight);
  INFO(bpcheck::format_table(r));
  for (const char* p : {"float", "double", "mp100"}) {
    INFO(p);
    CHECK(result(r, "dot-product identity", p).verdict == Verdict::fail);
  }
}

TEST_CASE("check: the Taylor remainder of a wrong gradient falls with order 1", "[verify][check]") {
  const VerificationReport r = verify(Mutant::transposed_weight);
  INFO(bpcheck::format_table(r));
  for (const char* p : {"float", "double", "mp100"}) {
    INFO(p);
    const CheckResult& c = result(r, "taylor order", p);
    CHECK(c.verdict == Verdict::fail);
    if (std::string(p) == "float")
      CHECK(c.value < 1.5);  // float's ladder stops at h = 2⁻¹⁴, where h² still shows: order ≈ 1.3
    else
      CHECK(c.value == Approx(1).margin(0.1));
  }
}

TEST_CASE("check: the batch check catches a forward that couples samples", "[verify][check]") {
  const VerificationReport r = verify(Mutant::coupled_samples);
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  CHECK(result(r, "backward vs oracle", "mp100").verdict == Verdict::pass);  // its VJP is right
  for (const char* p : {"float", "double", "mp100"}) {
    INFO(p);
    const CheckResult& c = result(r, "batch = sum of samples", p);
    CHECK(c.verdict == Verdict::fail);
    REQUIRE(!c.worst.empty());
    CHECK(c.worst.front().block == "y");
  }
}

TEST_CASE("check: a forward that throws in float only fails forward consistency", "[verify][check]") {
  const VerificationReport r = verify(Mutant::throws_in_float);
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  const CheckResult& c = result(r, "forward vs mp100", "float");
  CHECK(c.verdict == Verdict::fail);
  CHECK(c.message.find("throws") != std::string::npos);
  CHECK(result(r, "forward vs mp100", "double").verdict == Verdict::pass);
  CHECK(result(r, "backward vs oracle", "mp100").verdict == Verdict::pass);
}

namespace {
/// Inputs around 100: e^x overflows float (max ≈ e^88.7) but not double.
VerifyOptions inputs_near_100() {
  using bpcheck::mp100;
  VerifyOptions o;
  bpcheck::Matrix<mp100> X(4, 2);
  X << 100, 98, mp100(201) / 2, 99, 97, 101, mp100(199) / 2, 96;
  o.inputs = X;
  return o;
}
}  // namespace

TEST_CASE("check: softmax without the max shift is unstable in float, right in mp100", "[verify][check]") {
  VerifyOptions strict = inputs_near_100();
  strict.unstable_fails = true;
  const VerificationReport r = verify(Mutant::naive_softmax, strict);
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  CHECK(result(r, "forward vs mp100", "float").verdict == Verdict::unstable);
  CHECK(result(r, "backward vs mp100", "float").verdict == Verdict::unstable);
  CHECK(result(r, "forward vs mp100", "double").verdict == Verdict::pass);
  CHECK(result(r, "backward vs mp100", "double").verdict == Verdict::pass);
  CHECK(result(r, "backward vs oracle", "mp100").verdict == Verdict::pass);
  // By default unstable is advice: the report passes, and its table says what is lost.
  const VerificationReport advice = verify(Mutant::naive_softmax, inputs_near_100());
  CHECK(advice.passed());
  CHECK_THAT(bpcheck::format_table(advice), Catch::Matchers::Contains("lose digits (unstable: advice"));
}

TEST_CASE("check: softplus as log(1 + exp x) is unstable in float, right in mp100", "[verify][check]") {
  VerifyOptions strict = inputs_near_100();
  strict.unstable_fails = true;
  const VerificationReport r = verify(Mutant::naive_softplus, strict);
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  CHECK(result(r, "forward vs mp100", "float").verdict == Verdict::unstable);
  CHECK(result(r, "backward vs mp100", "float").verdict == Verdict::unstable);
  CHECK(result(r, "forward vs mp100", "double").verdict == Verdict::pass);
  CHECK(result(r, "backward vs oracle", "mp100").verdict == Verdict::pass);
}

TEST_CASE("check: a forward that drops dual tangents makes the oracles disagree", "[verify][check]") {
  const VerificationReport r = verify(Mutant::tangent_dropped);
  INFO(bpcheck::format_table(r));
  CHECK(!r.passed());
  const CheckResult& c = result(r, "oracles agree (JVP = FD)", "mp100");
  CHECK(c.verdict == Verdict::fail);
  REQUIRE(!c.worst.empty());
  CHECK(c.worst.front().block == "J_x");
}

// ---- output formats -------------------------------------------------------------------------------

TEST_CASE("format: a failing report's JSON round-trips with every field and verdict name", "[verify][format]") {
  const VerificationReport r = verify(Mutant::transposed_weight);
  const nlohmann::json j = bpcheck::to_json(r);
  const nlohmann::json back = nlohmann::json::parse(j.dump());
  CHECK(back == j);
  CHECK(back.at("subject") == r.subject);
  CHECK(back.at("passed") == false);
  REQUIRE(back.at("checks").size() == r.checks.size());
  const std::vector<std::string> names{"pass", "FAIL", "unstable", "non-differentiable", "skipped"};
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    const auto& c = back.at("checks").at(i);
    for (const char* key : {"check", "subject", "precision", "verdict", "metric", "formula", "value", "threshold",
                            "digits", "seed", "message", "evaluations", "seconds", "worst"})
      CHECK(c.contains(key));
    CHECK(c.at("check") == r.checks[i].check);
    CHECK(c.at("verdict") == bpcheck::verdict_name(r.checks[i].verdict));
    CHECK(std::find(names.begin(), names.end(), c.at("verdict").get<std::string>()) != names.end());
    CHECK(c.at("seed").get<std::uint64_t>() == r.checks[i].seed);
  }
  const CheckResult& c = result(r, "backward vs oracle", "mp100");
  for (const auto& jc : back.at("checks"))
    if (jc.at("check") == c.check && jc.at("precision") == "mp100") {
      CHECK(jc.at("verdict") == "FAIL");
      REQUIRE(!jc.at("worst").empty());
      const auto& w = jc.at("worst").at(0);
      for (const char* key : {"block", "row", "col", "where", "expected", "actual", "abs_error", "rel_error"})
        CHECK(w.contains(key));
      CHECK(w.at("block") == "x");
      CHECK(w.at("where") == c.worst.front().where);
      // mp100 values keep their digits as strings
      CHECK(bpcheck::from_string<bpcheck::mp100>(w.at("expected").get<std::string>()) ==
            bpcheck::from_string<bpcheck::mp100>(c.worst.front().expected));
    }
}

TEST_CASE("format: JSON writes an overflowed metric as a string", "[verify][format]") {
  const VerificationReport r = verify(Mutant::naive_softmax, inputs_near_100());
  const nlohmann::json j = bpcheck::to_json(r);
  const nlohmann::json back = nlohmann::json::parse(j.dump());
  bool infinite = false;
  for (const auto& c : back.at("checks"))
    if (c.at("value").is_string()) infinite = infinite || c.at("value") == "inf";
  CHECK(infinite);
}

TEST_CASE("format: JUnit XML has one testcase per check, one failure per failing check, escaped text",
          "[verify][format]") {
  VerificationReport r = verify(Mutant::transposed_weight);
  r.subject = "dense<&>";
  for (auto& c : r.checks) c.subject = "a<&b";
  const std::string x = bpcheck::to_junit_xml(r);
  std::size_t failures = 0;
  for (const auto& c : r.checks) failures += c.verdict == Verdict::fail;
  CHECK(failures > 0);
  CHECK(x.rfind("<?xml", 0) == 0);
  CHECK(count(x, "<testsuites>") == 1);
  CHECK(count(x, "</testsuites>") == 1);
  CHECK(count(x, "<testsuite ") == 1);
  CHECK(count(x, "</testsuite>") == 1);
  CHECK(count(x, "<testcase ") == r.checks.size());
  CHECK(count(x, "</testcase>") == r.checks.size());
  CHECK(count(x, "<failure ") == failures);
  CHECK(count(x, "</failure>") == failures);
  CHECK(x.find(fmt::format("failures=\"{}\"", failures)) != std::string::npos);
  CHECK(x.find("a<&b") == std::string::npos);
  CHECK(x.find("dense<&>") == std::string::npos);
  CHECK(x.find("classname=\"a&lt;&amp;b\"") != std::string::npos);
  CHECK(x.find("dense&lt;&amp;&gt;") != std::string::npos);
  // every '&' starts an entity, every '<' a tag
  for (std::size_t at = x.find('&'); at != std::string::npos; at = x.find('&', at + 1)) {
    const std::string rest = x.substr(at, 6);
    CHECK((rest.rfind("&amp;", 0) == 0 || rest.rfind("&lt;", 0) == 0 || rest.rfind("&gt;", 0) == 0 ||
           rest.rfind("&quot;", 0) == 0 || rest.rfind("&apos;", 0) == 0));
  }
}

TEST_CASE("format: the table of a failing report names the worst entry", "[verify][format]") {
  const VerificationReport r = verify(Mutant::flipped_sign);
  const std::string t = bpcheck::format_table(r);
  const CheckResult& c = result(r, "backward vs oracle", "mp100");
  REQUIRE(!c.worst.empty());
  CHECK(t.find(c.worst.front().where) != std::string::npos);
  CHECK(t.find("dW[1,2]") != std::string::npos);
  CHECK(t.find("backward vs oracle [mp100]") != std::string::npos);
  CHECK(t.find("result: WRONG GRADIENT") != std::string::npos);
  CHECK(t.find(fmt::format("seed: {}", c.seed)) != std::string::npos);
}
