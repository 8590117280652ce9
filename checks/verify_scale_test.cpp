// Verification at scale: full Jacobians only where they are cheap or asked for (and then within a
// limit, refused beyond it), the distributions the points come from, the progress callback, and the
// command line's --full, --full-limit and --distributions.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/verify.hpp"
#include "cli_run.hpp"
#include "helpers.hpp"
#include "mutants.hpp"

namespace {

using bpcheck::CheckResult;
using bpcheck::LayerSpec;
using bpcheck::Verdict;
using bpcheck::VerificationReport;
using bpcheck::VerifyOptions;
using bpcheck::testing::bpcheck_run;
using bpcheck::testing::one_error_line;
using bpcheck::testing::Run;
using bpcheck::testing::write_file;
using Catch::Contains;

using bpcheck::testing::find_check;

/// dense 16 → 8 at a batch of 2: n = 32 + 136 columns, beyond the default of 64 for full Jacobians.
const LayerSpec wide_dense{"dense", {{"units", 8}}};

}  // namespace

TEST_CASE("scale: a layer with more than 64 inputs and parameters is judged by projections by default",
          "[verify][scale]") {
  VerifyOptions o;
  o.points = 1;
  const VerificationReport r = bpcheck::verify_layer(wide_dense, 16, o);
  INFO(bpcheck::format_table(r));
  CHECK(r.passed());
  const CheckResult* jacobians = find_check(r, "jacobians vs oracle", "mp100");
  REQUIRE(jacobians != nullptr);
  CHECK(jacobians->verdict == Verdict::skipped);
  CHECK(find_check(r, "oracles agree (JVP = FD)", "mp100") == nullptr);  // needs the full matrix
  // A small layer keeps its full comparison.
  const VerificationReport small = bpcheck::verify_layer(LayerSpec{"dense", {{"units", 3}}}, 4, o);
  CHECK(find_check(small, "jacobians vs oracle", "mp100")->verdict == Verdict::pass);
}

TEST_CASE("scale: full Jacobians on request, and a clear refusal beyond the limit", "[verify][scale]") {
  VerifyOptions o;
  o.points = 1;
  o.full = true;
  const VerificationReport r = bpcheck::verify_layer(wide_dense, 16, o);
  INFO(bpcheck::format_table(r));
  CHECK(r.passed());
  CHECK(find_check(r, "jacobians vs oracle", "mp100")->verdict == Verdict::pass);
  CHECK(find_check(r, "oracles agree (JVP = FD)", "mp100")->verdict == Verdict::pass);
  o.full_jacobian_limit = 100;  // 16 rows × 168 columns
  CHECK_THROWS_WITH(bpcheck::verify_layer(wide_dense, 16, o),
                    Contains("2688 entries") && Contains("above the limit of 100") && Contains("--full-limit"));
}

TEST_CASE("scale: projections still catch a wrong gradient in mp100 and double", "[verify][scale]") {
  VerifyOptions o;
  o.points = 1;
  o.full_jacobian_columns = 0;  // projections even for the small mutant
  const VerificationReport r = bpcheck::verify_layer(bpcheck::mutants::MutantFactory{bpcheck::mutants::Mutant::transposed_weight}, o);
  INFO(bpcheck::format_table(r));
  CHECK(find_check(r, "backward vs oracle", "mp100")->verdict == Verdict::fail);
  CHECK(find_check(r, "backward vs mp100", "double")->verdict == Verdict::fail);
}

TEST_CASE("scale: in projection mode the conditioning is measured only for an error beyond the bound without it",
          "[verify][scale]") {
  VerifyOptions o;
  o.points = 1;
  // A right gradient within float's and double's rounding: no mp100 pass at moved points.
  const VerificationReport r = bpcheck::verify_layer(wide_dense, 16, o);
  REQUIRE(r.passed());
  for (const char* precision : {"float", "double"}) {
    const CheckResult* backward = find_check(r, "backward vs mp100", precision);
    REQUIRE(backward != nullptr);
    CHECK(backward->evaluations == 2);  // the layer's own forward and backward only
    CHECK_THAT(backward->formula, Contains("not needed here"));
  }
  // A wrong one beyond the bound without it: measured, and judged with it.
  o.full_jacobian_columns = 0;
  const VerificationReport wrong =
      bpcheck::verify_layer(bpcheck::mutants::MutantFactory{bpcheck::mutants::Mutant::transposed_weight}, o);
  const CheckResult* backward = find_check(wrong, "backward vs mp100", "double");
  REQUIRE(backward != nullptr);
  CHECK(backward->verdict == Verdict::fail);
  CHECK(backward->evaluations > 2);
  CHECK_THAT(backward->formula, !Contains("not needed here"));
}

TEST_CASE("scale: the progress callback names each check as it starts", "[verify][scale]") {
  VerifyOptions o;
  o.points = 1;
  std::vector<std::string> seen;
  o.progress = [&seen](const std::string& where) { seen.push_back(where); };
  (void)bpcheck::verify_layer(LayerSpec{"tanh", nlohmann::json::object()}, 3, o);
  REQUIRE(!seen.empty());
  CHECK_THAT(seen.front(), Contains("tanh: "));
  bool taylor = false;
  for (const auto& s : seen) taylor = taylor || s == "tanh: taylor order [double]";
  CHECK(taylor);
}

TEST_CASE("points: drawn from the distributions in turn, named in the report, an unknown one is refused",
          "[verify][scale]") {
  VerifyOptions o;
  o.input_scale = 2;
  const VerificationReport r = bpcheck::verify_layer(LayerSpec{"sigmoid", nlohmann::json::object()}, 3, o);
  CHECK(r.inputs == std::vector<std::string>{"uniform ±2", "saturation", "wide_range", "near_ties"});
  CHECK_THAT(bpcheck::format_table(r), Contains("inputs: uniform ±2, saturation, wide_range, near_ties"));
  CHECK(bpcheck::to_json(r).at("inputs").size() == 4);
  o.distributions = {"saturation"};
  o.points = 1;
  CHECK(bpcheck::verify_layer(LayerSpec{"sigmoid", nlohmann::json::object()}, 3, o).inputs ==
        std::vector<std::string>{"saturation"});
  o.distributions = {"gaussian"};
  CHECK_THROWS_WITH(bpcheck::verify_layer(LayerSpec{"sigmoid", nlohmann::json::object()}, 3, o),
                    Contains("unknown input distribution 'gaussian'"));
}

TEST_CASE("bpcheck verify --full prints its cost, and refuses with exit 2 beyond --full-limit", "[cli][verify][scale]") {
  const std::string model = write_file("full_model.json", bpcheck::testing::model_text);
  const Run ok = bpcheck_run("verify --full --points 1 --precision double --model " + model);
  CHECK(ok.code == 0);
  CHECK_THAT(ok.err, Contains("verify --full: the largest Jacobian is") && Contains("dual-number passes"));
  const Run refused = bpcheck_run("verify --full --full-limit 10 --points 1 --model " + model);
  CHECK(refused.code == 2);
  CHECK_THAT(one_error_line(refused), Contains("above the limit of 10") && Contains("--full-limit"));
  const Run both = bpcheck_run("verify --full --projections --model " + model);
  CHECK(both.code == 2);
  const Run bad = bpcheck_run("verify --distributions gaussian --model " + model);
  CHECK(bad.code == 2);
  CHECK_THAT(one_error_line(bad), Contains("--distributions"));
}

TEST_CASE("scale: the report is the same on one thread and on several", "[verify][scale][threads]") {
  // A network (its loss and each layer, their points run together) and a layer that is wrong in every
  // rung: the verdicts, the values and their order must not depend on the threads.
  const bpcheck::ModelSpec spec{3, {{"dense", {{"units", 4}}}, {"tanh", {}}, {"dense", {{"units", 2}}}}, "mse"};
  const auto same_report = [](VerificationReport a, VerificationReport b) {
    for (auto* r : {&a, &b})
      for (auto& c : r->checks) c.seconds = 0;
    CHECK(bpcheck::to_json(a).dump() == bpcheck::to_json(b).dump());
  };
  VerifyOptions one, several;
  several.threads = 3;
  same_report(bpcheck::verify_network({spec, std::nullopt, std::nullopt}, one),
              bpcheck::verify_network({spec, std::nullopt, std::nullopt}, several));
  const bpcheck::mutants::MutantFactory wrong{bpcheck::mutants::Mutant::transposed_weight};
  const VerificationReport w1 = bpcheck::verify_layer(wrong, one), w3 = bpcheck::verify_layer(wrong, several);
  CHECK_FALSE(w3.passed());
  same_report(w1, w3);
  several.threads = -1;
  CHECK_THROWS_WITH(bpcheck::verify_layer(wrong, several), Contains("threads"));
}

TEST_CASE("cli: verify --jobs gives the same output as one thread, and refuses a bad count", "[cli][scale][threads]") {
  const std::string model = write_file("threads_model.json",
                                       R"({"input_size": 3, "layers": [{"type": "dense", "units": 2}, {"type": "relu"}],
                                           "loss": "mse"})");
  const Run one = bpcheck_run("verify --model '" + model + "' --points 2 --no-timings --jobs 1");
  const Run two = bpcheck_run("verify --model '" + model + "' --points 2 --no-timings --jobs 2");
  CHECK(one.code == 0);
  CHECK(one.out == two.out);
  CHECK_THAT(one_error_line(bpcheck_run("verify --model '" + model + "' --jobs -2")), Contains("--jobs"));
}

TEST_CASE("scale: projection mode catches every wrong gradient of the mutant zoo in mp100 and double",
          "[verify][scale][mutant]") {
  // The zoo's wrong gradients (properties/mutant_zoo_test.cpp) at their default sizes, forced through
  // projections with the default points and distributions: what large layers get by default. The
  // explicit-Jacobian mutant is left out (explicit Jacobians are compared in full mode only), as is the
  // float-only one.
  using bpcheck::mutants::Mutant;
  VerifyOptions o;
  o.full_jacobian_columns = 0;
  o.precisions = {"mp100", "double"};
  for (const Mutant m : {Mutant::transposed_weight, Mutant::missing_derivative, Mutant::derivative_at_output,
                         Mutant::bias_first_sample, Mutant::divided_by_batch, Mutant::flipped_sign, Mutant::off_by_one,
                         Mutant::wrong_for_negative, Mutant::wrong_for_batch, Mutant::softmax_diagonal_only,
                         Mutant::norm_missing_epsilon, Mutant::overwritten_dtheta, Mutant::relative_offset_small,
                         Mutant::relative_offset, Mutant::missing_bias_gradient, Mutant::log_softmax_missing_sum,
                         Mutant::softplus_mirrored, Mutant::silu_missing_term, Mutant::gelu_wrong_approximation,
                         Mutant::parameter_backward_missing_bias}) {
    const VerificationReport r = bpcheck::verify_layer(bpcheck::mutants::MutantFactory{m}, o);
    INFO("mutant " << int(m) << "\n" << bpcheck::format_table(r));
    bool mp100_fails = false, double_fails = false, full = false;
    for (const auto& c : r.checks) {
      mp100_fails = mp100_fails || (c.precision == "mp100" && c.verdict == Verdict::fail);
      double_fails = double_fails || (c.precision == "double" && c.verdict == Verdict::fail);
      full = full || (c.check == "jacobians vs oracle" && c.verdict != Verdict::skipped);
    }
    CHECK_FALSE(full);  // projections indeed
    CHECK(double_fails);
    // dθ's accumulation and backward_parameters are identities of the code, judged on double when it
    // runs (an mp100 backward less per point); mp100 judges them when it is the only rung.
    const bool identity = m == Mutant::overwritten_dtheta || m == Mutant::parameter_backward_missing_bias;
    if (identity) {
      VerifyOptions alone = o;
      alone.precisions = {"mp100"};
      const VerificationReport a = bpcheck::verify_layer(bpcheck::mutants::MutantFactory{m}, alone);
      CHECK(std::any_of(a.checks.begin(), a.checks.end(),
                        [](const auto& c) { return c.precision == "mp100" && c.verdict == Verdict::fail; }));
    } else {
      CHECK(mp100_fails);
    }
  }
  // and the correct twin passes the same way
  CHECK(bpcheck::verify_layer(bpcheck::mutants::MutantFactory{Mutant::rms_norm}, o).passed());
}

TEST_CASE("scale: two projections, one moving X and one θ, catch the mutant zoo at every one of 15 seeds",
          "[verify][scale][mutant]") {
  // The default k = 2 is one lane of the oracle's pass per direction: a wrong gradient escapes only where
  // a random direction's projection of its error cancels to within the bound. 270 runs, four points each.
  using bpcheck::mutants::Mutant;
  REQUIRE(VerifyOptions{}.projections == 2);
  int missed = 0;
  for (std::uint64_t seed = 1; seed <= 15; ++seed) {
    VerifyOptions o;
    o.full_jacobian_columns = 0;
    o.precisions = {"mp100", "double"};
    o.seed = seed;
    for (const Mutant m : {Mutant::transposed_weight, Mutant::missing_derivative, Mutant::derivative_at_output,
                           Mutant::bias_first_sample, Mutant::divided_by_batch, Mutant::flipped_sign,
                           Mutant::off_by_one, Mutant::wrong_for_negative, Mutant::wrong_for_batch,
                           Mutant::softmax_diagonal_only, Mutant::norm_missing_epsilon, Mutant::relative_offset_small,
                           Mutant::relative_offset, Mutant::missing_bias_gradient, Mutant::log_softmax_missing_sum,
                           Mutant::softplus_mirrored, Mutant::silu_missing_term, Mutant::gelu_wrong_approximation}) {
      const VerificationReport r = bpcheck::verify_layer(bpcheck::mutants::MutantFactory{m}, o);
      for (const char* rung : {"mp100", "double"}) {
        const bool caught = std::any_of(r.checks.begin(), r.checks.end(), [rung](const auto& c) {
          return c.precision == rung && c.verdict == Verdict::fail;
        });
        if (!caught) {
          ++missed;
          UNSCOPED_INFO("mutant " << int(m) << " at seed " << seed << " passes in " << rung);
        }
      }
    }
  }
  CHECK(missed == 0);
}
