// The report's second-order section: the central difference of the gradient along one direction
// against the exact H v, and the float and double H v against mp100, on a small tanh MLP.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "bpcheck/io/formats.hpp"
#include "cli_run.hpp"
#include "helpers.hpp"
#include "report.hpp"

using Catch::Contains;
namespace fs = std::filesystem;

using bpcheck::testing::bpcheck_run;
using bpcheck::testing::Run;
using bpcheck::testing::slurp;
using bpcheck::testing::temp_dir;
using bpcheck::testing::write_file;
using so_json = nlohmann::ordered_json;

namespace {

// 3 → dense 5 → tanh → dense 4 → tanh → dense 2, mse; parameters and batch from the seed.
const char* so_tanh_mlp = R"({"input_size": 3, "layers": [{"type": "dense", "units": 5}, {"type": "tanh"},
  {"type": "dense", "units": 4}, {"type": "tanh"}, {"type": "dense", "units": 2}], "loss": "mse"})";

/// The second_order results of a model's plan, float first, computed directly (no page).
std::vector<so_json> second_order_of(const std::string& model_text, const std::optional<nlohmann::json>& data = {}) {
  bpcheck::report::ReportOptions o;
  o.model = bpcheck::model_spec_from_json(nlohmann::json::parse(model_text), "model");
  o.data = data;
  std::vector<so_json> out;
  for (const auto& item : bpcheck::report::plan(o))
    if (item.kind == "second_order") out.push_back(bpcheck::report::compute(item, o));
  return out;
}

double step_of_least_error(const so_json& so) {
  const so_json& err = so.at("fd").at("error");
  std::size_t best = err.size();
  for (std::size_t i = 0; i < err.size(); ++i)
    if (err[i].is_number() && (best == err.size() || err[i].get<double>() < err[best].get<double>())) best = i;
  REQUIRE(best < err.size());
  return so.at("h")[best].get<double>();
}

}  // namespace

TEST_CASE("report second order: a tanh MLP's gradient differences have their V, H v its digits", "[report][hvp]") {
  const auto results = second_order_of(so_tanh_mlp);
  REQUIRE(results.size() == 2);
  const so_json& f = results[0];
  const so_json& d = results[1];
  REQUIRE(f.at("precision") == "float");
  REQUIRE(d.at("precision") == "double");
  for (const so_json& so : results) {
    INFO(so.at("precision"));
    REQUIRE_FALSE(so.contains("unavailable"));
    REQUIRE(so.at("parameters") == 20 + 24 + 10);
    REQUIRE(so.at("hvp").at("blocks").size() == 6);  // W, b of three dense layers
    for (const auto& b : so.at("hvp").at("blocks")) {
      REQUIRE(b.at("rel_error").is_number());
      REQUIRE(std::isfinite(b.at("rel_error").get<double>()));
    }
    REQUIRE(so.at("h").size() == so.at("fd").at("error").size());
    // Every step a difference can be formed at gives a finite error; the large steps always can.
    for (std::size_t i = 0; i < 8; ++i) REQUIRE(so.at("fd").at("error")[i].is_number());
    REQUIRE(so.at("fd").at("best_error").is_number());
    // The step of least error is the one reported.
    REQUIRE(step_of_least_error(so) == so.at("fd").at("best_h").get<double>());
  }
  // Central differences of a gradient: truncation h², round-off u/h, least near u^(1/3) ≈ 6e-6 in double.
  const double best_double = d.at("fd").at("best_h").get<double>();
  CHECK(best_double >= 1e-7);
  CHECK(best_double <= 1e-2);
  CHECK(d.at("fd").at("slope_truncation").get<double>() == Approx(2).margin(0.3));
  CHECK(d.at("fd").at("best_error").get<double>() < 1e-8);
  // The rungs' own H v, per block.
  for (const auto& b : d.at("hvp").at("blocks")) CHECK(b.at("digits").get<double>() >= 12);
  for (const auto& b : f.at("hvp").at("blocks")) CHECK(b.at("digits").get<double>() >= 4);
  CHECK(d.at("hvp").at("worst_block_digits").get<double>() >= 12);

  // must-fail: float cannot meet double's bar, in either measurement; the section tells the rungs apart.
  CHECK(f.at("hvp").at("worst_block_digits").get<double>() < 12);
  CHECK(f.at("fd").at("best_error").get<double>() > 1e3 * d.at("fd").at("best_error").get<double>());
  const double best_float = f.at("fd").at("best_h").get<double>();
  CHECK(best_float > 10 * best_double);  // float's u^(1/3) ≈ 4e-3
  // Below float's optimum the round-off grows as u/h: at 1e-6 float has lost what double keeps.
  const auto at_step = [](const so_json& so, double h) {
    for (std::size_t i = 0; i < so.at("h").size(); ++i)
      if (std::abs(so.at("h")[i].get<double>() / h - 1) < 1e-9) return so.at("fd").at("error")[i];
    return so_json(nullptr);
  };
  const so_json f6 = at_step(f, 1e-6), d6 = at_step(d, 1e-6);
  REQUIRE(d6.is_number());
  CHECK((f6.is_null() || f6.get<double>() > 1e-2));
  CHECK(d6.get<double>() < 1e-8);
}

TEST_CASE("report second order: in report.json, second_order.csv and the page of a user's model", "[report][hvp]") {
  const std::string model = write_file("so_model.json", so_tanh_mlp);
  const std::string out = (temp_dir() / "so_report").string();
  const Run run = bpcheck_run("report --quick --jobs 2 --out '" + out + "' --model '" + model + "'");
  INFO(run.err);
  REQUIRE(run.code == 0);
  const so_json r = so_json::parse(slurp(fs::path(out) / "report.json"));
  // The first-order sections are unchanged beside the new one.
  REQUIRE(r.at("finite_differences").size() == 2);
  REQUIRE(r.at("backprop").size() == 1);
  REQUIRE(r.at("second_order").size() == 2);
  for (const auto& so : r.at("second_order")) REQUIRE(so.at("h") == r.at("finite_differences")[0].at("h"));
  const std::string csv = slurp(fs::path(out) / "second_order.csv");
  REQUIRE_THAT(csv, Contains("subject,precision,series,h,layer,type,block,size,rel_error,digits\n"));
  REQUIRE_THAT(csv, Contains("model,double,fd_central,0.1,") && Contains("model,float,hvp,,4,dense,b,2,"));
  const std::string html = slurp(fs::path(out) / "index.html");
  REQUIRE_THAT(html, Contains("<figure id=\"fd2-model-float\">") && Contains("<figure id=\"fd2-model-double\">"));
  REQUIRE_THAT(html, Contains("<h3 id=\"second-order\">") && Contains("double H v digits") &&
                         Contains("Second order in double"));
}

TEST_CASE("report second order: a model without a dual-number run says why and the section is empty",
          "[report][hvp]") {
  // batch_norm in training mode refuses a batch of one sample, so there is no H v to measure.
  const char* bn = R"({"input_size": 3,
    "layers": [{"type": "dense", "units": 4}, {"type": "batch_norm"}, {"type": "dense", "units": 2}], "loss": "mse"})";
  const auto one = second_order_of(bn, nlohmann::json::parse(R"({"inputs": [[0.1, 0.2, 0.3]], "targets": [[0.5, 0.1]]})"));
  REQUIRE(one.size() == 2);
  for (const auto& so : one) {
    REQUIRE(so.contains("unavailable"));
    CHECK_THAT(so.at("unavailable").get<std::string>(), Contains("batch_norm"));
    CHECK_FALSE(so.contains("hvp"));
  }
  // must-pass: two samples give the section its numbers.
  const auto two = second_order_of(
      bn, nlohmann::json::parse(R"({"inputs": [[0.1, 0.2, 0.3], [0.3, -0.2, 0.1]], "targets": [[0.5, 0.1], [0, 1]]})"));
  for (const auto& so : two) {
    REQUIRE_FALSE(so.contains("unavailable"));
    CHECK(so.at("hvp").at("digits").get<double>() >= 4);
  }
}
