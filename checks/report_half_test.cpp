// The report on the 16-bit rungs (report --precision bf16,fp16): the layer-by-layer digits of a small
// model sit at bf16's and fp16's few digits and below double's, a deep chain that loses digits in bf16 is
// named in the summary while double is not, the theory statements that cannot hold at a 16-bit unit roundoff
// are not applicable (never FAIL), second order says why it has no 16-bit H v, and a run's precisions and
// accumulation are part of its identity.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "report.hpp"

using Catch::Contains;
using nlohmann::json;
namespace fs = std::filesystem;

using bpcheck::testing::bpcheck_run;
using bpcheck::testing::Run;
using bpcheck::testing::slurp;
using bpcheck::testing::temp_path;
using bpcheck::testing::write_file;

namespace {


// dense → tanh → dense → relu → dense, cross-entropy.
const char* half_small_model = R"({"input_size": 6, "layers": [{"type": "dense", "units": 8}, {"type": "tanh"},
  {"type": "dense", "units": 8}, {"type": "relu"}, {"type": "dense", "units": 3}], "loss": "cross_entropy"})";
// The same without a kink: every theory statement's premise (smoothness) holds.
const char* half_smooth_model = R"({"input_size": 6, "layers": [{"type": "dense", "units": 8}, {"type": "tanh"},
  {"type": "dense", "units": 8}, {"type": "softplus"}, {"type": "dense", "units": 3}], "loss": "cross_entropy"})";

/// 10 × (dense 16 → tanh) → dense 3: bf16's rounding piles up along the backward pass.
std::string deep_chain() {
  json layers = json::array();
  for (int k = 0; k < 10; ++k) {
    layers.push_back({{"type", "dense"}, {"units", 16}});
    layers.push_back({{"type", "tanh"}});
  }
  layers.push_back({{"type", "dense"}, {"units", 3}});
  return json{{"input_size", 16}, {"layers", layers}, {"loss", "cross_entropy"}}.dump();
}

json run_report(const std::string& name, const std::string& model_text, const std::string& flags, Run* out = nullptr) {
  const std::string model = write_file("half_" + name + ".json", model_text);
  const Run run = bpcheck_run("report --quick --jobs 2 --out '" + temp_path("half_" + name) + "' --model '" + model + "' " + flags);
  INFO(run.err);
  REQUIRE(run.code == 0);
  if (out) *out = run;
  return json::parse(slurp(fs::path(temp_path("half_" + name)) / "report.json"));
}

const json& entry(const json& list, const std::string& precision) {
  for (const auto& e : list)
    if (e.at("precision") == precision) return e;
  FAIL("no entry for " << precision);
  return list;
}

}  // namespace

TEST_CASE("report --precision bf16,fp16: layer by layer at the 16-bit rungs' few digits, below double's",
          "[report][float16]") {
  const json r = run_report("small", half_small_model, "--precision fp16,double,bf16");
  // The rungs in the report's own order, whatever order the flag gave; the identity records them.
  CHECK(r.at("run").at("precisions") == json({"double", "bf16", "fp16"}));
  CHECK(r.at("run").at("accumulate") == "same");
  REQUIRE(r.at("layerwise").size() == 3);
  const json& dbl = entry(r.at("layerwise"), "double");
  for (const std::string p : {"bf16", "fp16"}) {
    const json& lw = entry(r.at("layerwise"), p);
    INFO(lw.dump());
    // bf16 keeps 8 significand bits (2.4 digits), fp16 11 (3.3): rounding, not worse, and never more.
    const double lo = p == "bf16" ? 1.0 : 2.0, hi = p == "bf16" ? 3.5 : 4.5;
    REQUIRE(lw.at("layers").size() == 5);
    CHECK(lw.at("unit_roundoff").get<double>() == (p == "bf16" ? 0x1p-8 : 0x1p-11));
    for (std::size_t k = 0; k < 5; ++k) {
      const double back = lw.at("layers")[k].at("backward_digits").get<double>();
      const double fwd = lw.at("layers")[k].at("forward_digits").get<double>();
      CHECK(back > lo);
      CHECK(back < hi);
      CHECK(fwd > lo);
      CHECK(fwd < hi);
      CHECK(back < dbl.at("layers")[k].at("backward_digits").get<double>() - 10);
    }
  }
  // fp16's 3 more bits show: on average over the layers it keeps more digits than bf16.
  double bf = 0, fp = 0;
  for (std::size_t k = 0; k < 5; ++k) {
    bf += entry(r.at("layerwise"), "bf16").at("layers")[k].at("backward_digits").get<double>();
    fp += entry(r.at("layerwise"), "fp16").at("layers")[k].at("backward_digits").get<double>();
  }
  CHECK(fp > bf + 2.5);  // 5 layers × about 0.9 digits

  // Finite differences on every chosen rung, at its own unit roundoff: h* = u^(1/(p+1)).
  for (const std::string p : {"double", "bf16", "fp16"}) {
    const json& fd = entry(r.at("finite_differences"), p);
    const double u = fd.at("unit_roundoff").get<double>();
    for (const auto& sc : fd.at("schemes"))
      if (sc.at("order").get<int>() > 0)
        CHECK(sc.at("theory_h").get<double>() == Approx(std::pow(u, 1.0 / (sc.at("order").get<int>() + 1))));
  }
  // Backprop: float and double always, the chosen 16-bit rungs beside them, per block and worst.
  REQUIRE(r.at("backprop").size() == 1);
  const json& bp = r.at("backprop").front();
  for (const char* key : {"float_digits", "double_digits", "bf16_digits", "fp16_digits"}) CHECK(bp.contains(key));
  CHECK(bp.at("bf16_digits").get<double>() < bp.at("float_digits").get<double>() - 3);
  for (const auto& b : bp.at("blocks")) CHECK(b.contains("fp16_rel_error"));
  const std::string csv = slurp(fs::path(temp_path("half_small")) / "backprop_error.csv");
  CHECK_THAT(csv.substr(0, csv.find('\n')), Contains(",bf16_rel_error,bf16_digits,fp16_rel_error,fp16_digits"));

  // Second order: never dropped. The 16-bit rungs' gradient difference is measured; their own H v is not
  // applicable, with why, on the page too.
  for (const std::string p : {"bf16", "fp16"}) {
    const json& so = entry(r.at("second_order"), p);
    CHECK(so.at("fd").at("best_error").is_number());
    CHECK_THAT(so.at("hvp").at("not_applicable").get<std::string>(), Contains("dual numbers"));
  }
  CHECK(entry(r.at("second_order"), "double").at("hvp").at("digits").get<double>() > 12);
  const std::string page = slurp(fs::path(temp_path("half_small")) / "index.html");
  CHECK_THAT(page, Contains("bf16: H v not applicable"));
  CHECK_THAT(page, Contains("bf16 backward"));  // the digits-against-depth chart has the 16-bit rungs
  CHECK_THAT(page, Contains("finite differences of model in bf16 against"));  // its own plot
}

TEST_CASE("report on the 16-bit rungs of a smooth model: no theory statement fails, those that cannot hold say why",
          "[report][float16]") {
  for (const char* seed : {"1", "7"}) {
    const json r = run_report(std::string("smooth") + seed, half_smooth_model,
                              std::string("--precision bf16,fp16,double --seed ") + seed);
    std::size_t sixteen = 0, said = 0;
    for (const auto& t : r.at("theory")) {
      INFO(t.dump());
      CHECK(t.at("holds") != false);
      const std::string subject = t.at("subject");
      if (subject.find("bf16") == std::string::npos && subject.find("fp16") == std::string::npos) continue;
      ++sixteen;
      if (t.at("holds").is_null()) {
        ++said;
        CHECK(!t.at("not_applicable").get<std::string>().empty());
      }
    }
    // bf16's optimum of central differences (u^(1/3) ≈ 0.16) lies above the grid's 0.1: said so, not failed.
    bool above = false;
    for (const auto& t : r.at("theory"))
      if (t.at("subject") == "model, bf16" && t.at("statement").get<std::string>().find("optimal h of central ") == 0)
        above = t.at("not_applicable").get<std::string>().find("above the sweep's largest step") != std::string::npos;
    CHECK(above);
    CHECK(sixteen >= 8);   // both rungs have their statements, stated
    CHECK(said >= 6);      // and most of them cannot hold at a 16-bit u
  }
}

TEST_CASE("report names the layers where bf16's gradient keeps fewer than 2 digits, and none for double",
          "[report][float16]") {
  Run run;
  const json r = run_report("deep", deep_chain(), "--precision double,bf16", &run);
  const json& bf = entry(r.at("layerwise"), "bf16");
  const json& dbl = entry(r.at("layerwise"), "double");
  INFO(bf.dump());
  REQUIRE(!bf.at("backward_under_2_digits").empty());
  CHECK(dbl.at("backward_under_2_digits").empty());
  // The named layers are those whose backward digits are under 2, and the first layer (farthest from the
  // loss, the most roundings behind it) is among them.
  std::vector<int> under;
  for (const auto& l : bf.at("layers"))
    if (l.at("backward_digits").get<double>() < 2) under.push_back(l.at("layer").get<int>());
  std::vector<int> named;
  for (const auto& f : bf.at("backward_under_2_digits")) named.push_back(f.at("layer").get<int>());
  CHECK(named == under);
  CHECK(named.front() == 0);
  CHECK_THAT(run.out, Contains("bf16's gradient keeps fewer than 2 digits after the backward of layer 0 (dense)"));
  CHECK_THAT(run.out, !Contains("double's gradient keeps fewer"));
  const std::string page = slurp(fs::path(temp_path("half_deep")) / "index.html");
  CHECK_THAT(page, Contains("<li class=\"few-digits\">bf16: the gradient keeps fewer than 2 digits after the backward "
                            "of layer 0 (dense"));
  CHECK_THAT(page, Contains("<li class=\"few-digits\">double: the gradient keeps at least 2 digits"));
}

TEST_CASE("report --accumulate float reaches the 16-bit rungs' products on every thread", "[report][float16]") {
  const json same = run_report("acc_same", deep_chain(), "--precision bf16");
  const json mixed = run_report("acc_float", deep_chain(), "--precision bf16 --accumulate float");
  CHECK(mixed.at("run").at("accumulate") == "float");
  // Sums of 16 products in float, rounded once: fewer roundings, more digits kept at the first layer.
  const double d_same = same.at("layerwise")[0].at("layers")[0].at("backward_digits").get<double>();
  const double d_mixed = mixed.at("layerwise")[0].at("layers")[0].at("backward_digits").get<double>();
  CHECK(d_mixed != d_same);
  CHECK(d_mixed > d_same);
}

TEST_CASE("report --precision: a rung it does not know is refused before any work, exit 2", "[report][float16]") {
  const std::string model = write_file("half_refused.json", half_small_model);
  struct Case {
    std::string flags, message;
  };
  const std::vector<Case> cases{
      {"--precision bf17", "unknown precision 'bf17' (known for report: float, double, bf16, fp16)"},
      {"--precision float,Double", "unknown precision 'Double'"},
      {"--precision mp100", "mp100 is the report's reference"},
      {"--precision bf16,bf16", "'bf16' given twice"},
      {"--precision float --accumulate float", "--accumulate applies to the 16-bit precisions"},
      {"--precision bf16 --accumulate fast", "--accumulate"},
  };
  for (const auto& c : cases) {
    const std::string out = temp_path("half_refused");
    const Run run = bpcheck_run("report --quick --out '" + out + "' --model '" + model + "' " + c.flags);
    INFO(c.flags << ": " << run.err);
    CHECK(run.code == 2);
    CHECK_THAT(run.err, Contains(c.message));
    CHECK(!fs::exists(fs::path(out) / "report.json"));
  }
  // The library's own check, for callers of report::plan.
  bpcheck::report::ReportOptions o;
  o.precisions = {"fp16", "float"};
  CHECK(bpcheck::report::checked_precisions(o.precisions) == std::vector<std::string>{"float", "fp16"});
  o.precisions = {"half"};
  CHECK_THROWS_AS(bpcheck::report::plan(o), bpcheck::input_error);
}

TEST_CASE("report merge refuses shards of runs with different precisions or accumulation", "[report][float16]") {
  const std::string model = write_file("half_shard.json", half_smooth_model);
  auto shard = [&](const std::string& name, const std::string& flags) {
    const Run run = bpcheck_run("report --quick --jobs 1 --out '" + temp_path("half_" + name) + "' --model '" + model + "' " + flags);
    INFO(run.err);
    REQUIRE(run.code == 0);
    return temp_path("half_" + name);
  };
  const std::string a1 = shard("s_a1", "--precision double,bf16 --shard 1/2");
  const std::string a2 = shard("s_a2", "--precision double,bf16 --shard 2/2");
  const std::string b2 = shard("s_b2", "--shard 2/2");
  const std::string c2 = shard("s_c2", "--precision double,bf16 --accumulate float --shard 2/2");
  const Run mixed = bpcheck_run("report merge --out '" + temp_path("half_s_m") + "' '" + a1 + "' '" + b2 + "'");
  CHECK(mixed.code == 2);
  CHECK_THAT(mixed.err, Contains("'precisions' differs"));
  const Run accumulated = bpcheck_run("report merge --out '" + temp_path("half_s_m") + "' '" + a1 + "' '" + c2 + "'");
  CHECK(accumulated.code == 2);
  CHECK_THAT(accumulated.err, Contains("'accumulate' differs"));
  // The parts of one run join into exactly what an unsharded run writes.
  const Run joined = bpcheck_run("report merge --out '" + temp_path("half_s_m") + "' '" + a1 + "' '" + a2 + "'");
  INFO(joined.err);
  REQUIRE(joined.code == 0);
  const json whole = run_report("s_whole", half_smooth_model, "--precision double,bf16");
  json merged = json::parse(slurp(fs::path(temp_path("half_s_m")) / "report.json"));
  CHECK(merged == whole);
}

TEST_CASE("report without --precision: float and double as before, no 16-bit columns", "[report][float16]") {
  const json r = run_report("default", half_small_model, "");
  CHECK(r.at("run").at("precisions") == json({"float", "double"}));
  CHECK(!r.at("run").contains("accumulate"));
  CHECK(r.at("layerwise").size() == 2);
  CHECK(!r.at("backprop").front().contains("bf16_digits"));
  const std::string csv = slurp(fs::path(temp_path("half_default")) / "backprop_error.csv");
  CHECK(csv.substr(0, csv.find('\n')).find("bf16") == std::string::npos);
}
