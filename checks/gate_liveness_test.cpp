// The gate always answers: small correct layers built from elementary functions, chosen so that the
// exact forward leaves double's range, a periodic function meets a huge argument, a difference stencil
// or an oracle overflows while the layer does not, and a deliberately slow layer meets the time limit.
// Each verify_layer call must return within its budget with a verdict, never throw for the layer's own
// numerics, and never call these correct layers wrong.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "bpcheck/catch.hpp"
#include "bpcheck/layer.hpp"
#include "bpcheck/verify/verify.hpp"
#include "elementary_chain.hpp"

namespace {

using elementary::Chain;
using elementary::Op;

auto chain(std::vector<Op> ops, int sleep_ms = 0) {
  return [ops, sleep_ms]<class T>(bpcheck::rung<T>) { return Chain<T>(5, ops, sleep_ms); };
}

int count(const bpcheck::VerificationReport& r, bpcheck::Verdict v) {
  int n = 0;
  for (const auto& c : r.checks) n += c.verdict == v;
  return n;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("liveness: exp then a periodic function ends with a verdict (no runaway argument reduction)",
          "[verify][liveness]") {
  // log1p(cos(cos(eˣ))²): at wide-range points exp(x) reaches 10^(4·10⁷) in mp100, and cos of it once
  // made MPFR compute π to tens of millions of bits. The point is redrawn instead.
  bpcheck::VerifyOptions o;
  o.distributions = {"wide_range"};
  o.time_limit = 120;
  const auto start = std::chrono::steady_clock::now();
  const auto report = bpcheck::verify_layer(chain({Op::exp, Op::cos, Op::cos, Op::log1p_square}), o);
  CHECK(seconds_since(start) < 120);
  INFO(bpcheck::format_table(report));
  CHECK(report.evaluated());
  CHECK(count(report, bpcheck::Verdict::fail) == 0);
  CHECK(!report.redrawn.empty());  // the huge draws were replaced, and counted
  CHECK(report.not_evaluated.empty());
}

TEST_CASE("liveness: a forward that overflows at wide-range points gives a verdict, not an exception",
          "[verify][liveness]") {
  // square, sqrt(1 + x²), exp, affine: exp(x⁴-sized) leaves every range at most wide-range points.
  bpcheck::VerifyOptions o;
  o.points = 8;
  std::optional<bpcheck::VerificationReport> report;
  REQUIRE_NOTHROW(report = bpcheck::verify_layer(
                      chain({Op::square, Op::sqrt_one_plus_square, Op::exp, Op::affine}), o));
  INFO(bpcheck::format_table(*report));
  CHECK(report->evaluated());
  CHECK(count(*report, bpcheck::Verdict::fail) == 0);
  CHECK(!report->redrawn.empty());
}

TEST_CASE("liveness: an oracle that overflows while the layer does not is not an alarm", "[verify][liveness]") {
  // silu as x/(1 + e⁻ˣ) at x = −100: e^100 overflows float, x/inf = −0 is right, while forward mode
  // on dual<float> (bpcheck's reference for the dot-product identity) is inf/inf = NaN.
  bpcheck::VerifyOptions o;
  o.inputs = bpcheck::Matrix<bpcheck::mp100>::Constant(5, 2, bpcheck::mp100(-100));
  o.points = 1;
  const auto report = bpcheck::verify_layer(chain({Op::silu}), o);
  INFO(bpcheck::format_table(report));
  CHECK(count(report, bpcheck::Verdict::fail) == 0);
  CHECK(count(report, bpcheck::Verdict::unstable) == 0);
  bool oracle_named = false;
  for (const auto& c : report.checks)
    if (c.check == "dot-product identity" && c.verdict == bpcheck::Verdict::skipped)
      oracle_named = oracle_named || c.message.find("bpcheck's reference") != std::string::npos;
  CHECK(oracle_named);
}

TEST_CASE("liveness: a stencil that leaves the domain is a redraw, and a point never evaluable is reported",
          "[verify][liveness]") {
  // log x is NaN at negative inputs: uniform points in ±1 are redrawn until every input is positive,
  // which a batch of 2 × 5 rarely is; what cannot be evaluated is reported, not thrown.
  bpcheck::VerifyOptions o;
  o.distributions = {"uniform"};
  o.points = 2;
  std::optional<bpcheck::VerificationReport> report;
  REQUIRE_NOTHROW(report = bpcheck::verify_layer(chain({Op::log}), o));
  INFO(bpcheck::format_table(*report));
  CHECK(count(*report, bpcheck::Verdict::fail) == 0);
  CHECK((!report->redrawn.empty() || !report->not_evaluated.empty()));
  if (!report->evaluated()) {
    CHECK(report->exit_code() == 3);
    CHECK_FALSE(report->passed());
    CHECK(bpcheck::format_table(*report).find("NO VERDICT") != std::string::npos);
  }
  // At given inputs there is nothing to redraw: the point is not evaluated, with the reason.
  bpcheck::VerifyOptions given;
  given.inputs = bpcheck::Matrix<bpcheck::mp100>::Constant(5, 1, bpcheck::mp100(-1));
  given.points = 1;
  const auto at_given = bpcheck::verify_layer(chain({Op::log}), given);
  CHECK_FALSE(at_given.evaluated());
  CHECK(at_given.exit_code() == 3);
  REQUIRE(at_given.not_evaluated.size() == 1);
  CHECK(at_given.not_evaluated[0].reason.find("given inputs") != std::string::npos);
  CHECK(bpcheck::to_json(at_given)["not_evaluated"][0]["count"] == 1);
  CHECK(bpcheck::to_junit_xml(at_given).find("not evaluated") != std::string::npos);
}

TEST_CASE("liveness: forward mode that overflows in a rung's own check is the oracle's trouble, not an escape",
          "[verify][liveness]") {
  // ((3 e^x − 1) ↦ cos ↦ log ↦ square) at a wide-range point, the chain fuzz target's first finding
  // (fuzz/corpus/chain/): dual<double> overflowed in a check that did not catch it, and the exception
  // left verify_layer.
  bpcheck::VerifyOptions o;
  o.distributions = {"wide_range"};
  o.points = 1;
  o.batch = 1;
  o.precisions = {"double", "mp100"};
  o.time_limit = 60;
  const auto make = []<class T>(bpcheck::rung<T>) {
    return Chain<T>(2, {Op::exp, Op::affine, Op::cos, Op::log, Op::square});
  };
  std::optional<bpcheck::VerificationReport> report;
  REQUIRE_NOTHROW(report = bpcheck::verify_layer(make, o));
  INFO(bpcheck::format_table(*report));
  CHECK(count(*report, bpcheck::Verdict::fail) == 0);
  CHECK((report->evaluated() || !report->not_evaluated.empty()));
}

TEST_CASE("liveness: the time limit is honoured on a deliberately slow layer", "[verify][liveness]") {
  // Every forward sleeps 30 ms: a point takes seconds. With a limit of 1 s the run ends soon after it,
  // the points still running reported as not evaluated.
  bpcheck::VerifyOptions o;
  o.points = 6;
  o.time_limit = 1;
  const auto start = std::chrono::steady_clock::now();
  const auto report = bpcheck::verify_layer(chain({Op::square}, 30), o);
  const double took = seconds_since(start);
  INFO(bpcheck::format_table(report));
  CHECK(took < 1 + 2.0);  // the limit plus at most a few passes of the slow layer
  REQUIRE_FALSE(report.not_evaluated.empty());
  CHECK(report.not_evaluated[0].reason.find("time limit") != std::string::npos);
  CHECK(count(report, bpcheck::Verdict::fail) == 0);
  CHECK(bpcheck::format_table(report).find("not evaluated") != std::string::npos);
  // No limit: the same layer is evaluated in full.
  o.time_limit = 0;
  o.points = 1;
  o.precisions = {"double"};
  const auto unlimited = bpcheck::verify_layer(chain({Op::square}, 1), o);
  CHECK(unlimited.not_evaluated.empty());
  CHECK(unlimited.passed());
}

TEST_CASE("liveness: bad options are still refused", "[verify][liveness]") {
  bpcheck::VerifyOptions o;
  o.time_limit = -1;
  CHECK_THROWS_AS(bpcheck::verify_layer(chain({Op::square}), o), bpcheck::input_error);
  o.time_limit = std::nan("");
  CHECK_THROWS_AS(bpcheck::verify_layer(chain({Op::square}), o), bpcheck::input_error);
}
