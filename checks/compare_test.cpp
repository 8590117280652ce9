// compare_gradient and `bpcheck compare`: bpcheck's own float and double gradients pass in their
// precision, altered ones are caught with block and entry named, and bad documents are refused.
#include <cmath>
#include <limits>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/compare.hpp"
#include "cli_run.hpp"

namespace {

using nlohmann::json;

/// A model spec, parameters from the seed and a generated batch, as the documents compare reads.
struct CmpCase {
  bpcheck::NetworkSubject subject;
  json gradient_float, gradient_double;
};

CmpCase cmp_case(const std::string& model_text, std::uint64_t seed = 7, bpcheck::Index samples = 4,
                 const std::string& data_text = "") {
  CmpCase c;
  c.subject.spec = bpcheck::model_spec_from_json(json::parse(model_text), "model");
  bpcheck::Network<bpcheck::mp100> net(c.subject.spec);
  net.initialize(seed);
  // Parameters and data as mp100 writes them: all digits, so every rung reads the same numbers up to
  // its own rounding (the float gradient is then computed at float's reading of them).
  c.subject.parameters = json::parse(bpcheck::parameters_to_json(net).dump());
  if (data_text.empty())
    c.subject.data = json::parse(bpcheck::batch_to_json(net, bpcheck::generate_batch(net, seed, samples)).dump());
  else
    c.subject.data = json::parse(data_text);
  const auto gradient_on = [&c]<class T>(T) {
    bpcheck::Network<T> n(c.subject.spec);
    bpcheck::parameters_from_json(n, *c.subject.parameters, "parameters");
    const auto batch = bpcheck::batch_from_json(n, *c.subject.data, "data");
    return json::parse(bpcheck::gradient_to_json(n, n.gradient(batch.inputs, batch.targets)).dump());
  };
  c.gradient_float = gradient_on(float{});
  c.gradient_double = gradient_on(double{});
  return c;
}

const char* const cmp_mlp = R"({"input_size": 3, "layers": [{"type": "dense", "units": 4}, {"type": "tanh"},
  {"type": "dense", "units": 2}], "loss": "cross_entropy"})";

/// The message of the input_error compare_gradient throws for this gradient document ("" if none).
std::string cmp_refusal(const CmpCase& c, const json& gradient, const std::string& precision = "") {
  try {
    (void)bpcheck::compare_gradient(c.subject, gradient, precision);
  } catch (const bpcheck::input_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("compare: bpcheck's own float and double gradients pass in their precision on every layer family",
          "[compare]") {
  const std::vector<std::string> models{
      cmp_mlp,
      R"({"input_size": 6, "layers": [{"type": "dense", "units": 5}, {"type": "layer_norm"}, {"type": "gelu"},
          {"type": "dense", "units": 3}, {"type": "softmax"}], "loss": "mse"})",
      R"({"input_size": 12, "layers": [{"type": "conv1d", "channels": 2, "length": 6, "out_channels": 3, "kernel": 3},
          {"type": "relu"}, {"type": "max_pool1d", "channels": 3, "length": 4, "kernel": 2}, {"type": "flatten"},
          {"type": "dense", "units": 2}], "loss": "bce_with_logits"})",
      R"({"input_size": 8, "layers": [{"type": "multi_head_attention", "sequence": 2, "heads": 2, "causal": true},
          {"type": "dense", "units": 4}, {"type": "batch_norm"}, {"type": "log_softmax"}], "loss": "nll"})"};
  for (const auto& m : models) {
    const CmpCase c = cmp_case(m);
    for (const std::string precision : {"float", "double"}) {
      const json& g = precision == "float" ? c.gradient_float : c.gradient_double;
      const auto r = bpcheck::compare_gradient(c.subject, g, precision);
      INFO(m << "\n" << bpcheck::format_table(r));
      CHECK(r.verdict() == bpcheck::CompareVerdict::pass);
      CHECK(r.exit_code() == 0);
      REQUIRE(!r.blocks.empty());
      for (const auto& b : r.blocks) {
        CHECK(b.ratio <= 1);
        // float keeps at least 4 of its 7 digits here, double at least 12 of its 16, where the exact
        // gradient is not 0 (a bias before batch_norm: the batch mean removes it)
        if (b.max_exact > 1e-10) CHECK(b.digits >= (precision == "float" ? 4 : 12));
      }
    }
  }
}

TEST_CASE("compare: a float gradient judged as double is less accurate, a wrong block is wrong, a NaN is wrong",
          "[compare]") {
  const CmpCase c = cmp_case(cmp_mlp);
  SECTION("float's digits fall short of double's bound, not grossly: a failure that names float") {
    json g = c.gradient_float;
    g["precision"] = "double";
    const auto r = bpcheck::compare_gradient(c.subject, g, "double");
    INFO(bpcheck::format_table(r));
    CHECK(r.verdict() == bpcheck::CompareVerdict::less_accurate);
    CHECK(r.exit_code() == 1);  // another program's lost digits are not known to be rounding
    CHECK(r.worst_block()->consistent_with == "float");
    CHECK_THAT(bpcheck::format_table(r), Catch::Matchers::Contains("as accurate as float"));
    bpcheck::CompareOptions allow;
    allow.allow_less_accurate = true;
    CHECK(bpcheck::compare_gradient(c.subject, g, "double", allow).exit_code() == 0);
  }
  SECTION("three correct digits in double: less accurate, no precision explains it") {
    json g = c.gradient_double;
    for (auto& row : g["gradients"][0]["values"])
      for (auto& x : row) x = fmt::format("{:.17g}", std::stod(x.get<std::string>()) * (1 + 1e-3));
    const auto r = bpcheck::compare_gradient(c.subject, g, "double");
    INFO(bpcheck::format_table(r));
    CHECK(r.verdict() == bpcheck::CompareVerdict::less_accurate);
    CHECK(r.exit_code() == 1);
    CHECK(r.blocks[0].consistent_with.empty());
    CHECK_THAT(r.blocks[0].explanation, Catch::Matchers::Contains("3.0 digits: no rounding in float or double"));
  }
  SECTION("one entry changed in its 4th digit is caught in double, with its place") {
    json g = c.gradient_double;
    auto& v = g["gradients"][0]["values"][2][1];
    v = fmt::format("{:.17g}", std::stod(v.get<std::string>()) * (1 + 3e-4));
    const auto r = bpcheck::compare_gradient(c.subject, g, "double");
    CHECK(r.verdict() != bpcheck::CompareVerdict::pass);
    REQUIRE(r.worst_block() != nullptr);
    CHECK(r.worst_block()->layer == 0);
    CHECK(r.worst_block()->name == "W");
    CHECK(r.worst_block()->worst.front().where == "W[2,1]");
    CHECK(r.blocks[1].verdict == bpcheck::CompareVerdict::pass);  // the bias is untouched
    CHECK_THAT(bpcheck::format_table(r), Catch::Matchers::Contains("layer 0 (dense) W[2,1]"));
  }
  SECTION("a block with the wrong sign is wrong, in float too") {
    for (const std::string precision : {"float", "double"}) {
      json g = precision == "float" ? c.gradient_float : c.gradient_double;
      for (auto& row : g["gradients"][2]["values"])
        for (auto& x : row) x = fmt::format("{:.17g}", -std::stod(x.get<std::string>()));
      const auto r = bpcheck::compare_gradient(c.subject, g, precision);
      CHECK(r.verdict() == bpcheck::CompareVerdict::wrong);
      CHECK(r.exit_code() == 1);
      CHECK(r.blocks[2].verdict == bpcheck::CompareVerdict::wrong);
      CHECK(r.blocks[0].verdict == bpcheck::CompareVerdict::pass);
    }
  }
  SECTION("NaN and Inf entries are wrong, named, and the JSON holds null for their error") {
    json g = c.gradient_float;
    g["gradients"][1]["values"][3] = "nan";
    g["gradients"][3]["values"][0] = "-inf";
    const auto r = bpcheck::compare_gradient(c.subject, g, "float");
    CHECK(r.verdict() == bpcheck::CompareVerdict::wrong);
    CHECK(r.blocks[1].verdict == bpcheck::CompareVerdict::wrong);
    CHECK(r.blocks[1].worst.front().where == "b[3]");
    CHECK(r.blocks[3].verdict == bpcheck::CompareVerdict::wrong);
    CHECK(r.blocks[0].verdict == bpcheck::CompareVerdict::pass);
    const auto j = bpcheck::to_json(r);
    CHECK(j["blocks"][1]["worst"][0]["abs_error"].is_null());
    CHECK(j["verdict"] == "wrong");
    CHECK_THAT(bpcheck::to_junit_xml(r), Catch::Matchers::Contains("<failure"));
  }
}

TEST_CASE("compare: gradients that do not fit the model, and precisions it cannot judge, are refused", "[compare]") {
  const CmpCase c = cmp_case(cmp_mlp);
  const json& g = c.gradient_double;
  using Catch::Matchers::Contains;
  {
    json bad = g;
    bad["gradients"][0]["name"] = "weight";
    CHECK_THAT(cmp_refusal(c, bad), Contains("has no block 'weight'") && Contains("it has: W, b"));
  }
  {
    json bad = g;
    bad["gradients"][2]["shape"] = json::array({4, 2});
    CHECK_THAT(cmp_refusal(c, bad), Contains("shape [4,2] does not match the model's [2, 4]"));
  }
  {
    json bad = g;
    bad["gradients"][2]["values"][1].erase(0);
    CHECK_THAT(cmp_refusal(c, bad), Contains("values[1]: expected a list of 4 numbers, got 3 entries"));
  }
  {
    json bad = g;
    bad["gradients"].erase(3);
    CHECK_THAT(cmp_refusal(c, bad), Contains("no gradient for block 'b' of layer 2"));
  }
  {
    json bad = g;
    bad["gradients"][3] = bad["gradients"][2];
    CHECK_THAT(cmp_refusal(c, bad), Contains("is given twice"));
  }
  {
    json bad = g;
    bad["gradients"][0]["layer"] = 1;
    CHECK_THAT(cmp_refusal(c, bad), Contains("layer 1 (tanh) has no block 'W' (it has no parameters)"));
  }
  {
    json bad = g;
    bad["gradients"][1]["values"][0] = "0.1x";
    CHECK_THAT(cmp_refusal(c, bad), Contains("'0.1x' is not a number"));
    bad["gradients"][1]["values"][0] = nullptr;
    CHECK_THAT(cmp_refusal(c, bad), Contains("expected a number or a decimal string"));
  }
  CHECK_THAT(cmp_refusal(c, g, "mp100"), Contains("judged in float or double"));
  CHECK_THAT(cmp_refusal(c, g, "float"), Contains("computed in double, not in float"));
  {
    json bad = g;
    bad.erase("precision");
    CHECK_THAT(cmp_refusal(c, bad), Contains("give --precision"));
    CHECK(cmp_refusal(c, bad, "double").empty());
  }
  CHECK_THAT(cmp_refusal(c, json::array()), Contains("a gradient is a JSON object"));
  {
    CmpCase no_data = c;
    no_data.subject.data.reset();
    CHECK_THAT(cmp_refusal(no_data, g), Contains("data"));
  }
}

TEST_CASE("bpcheck compare: table, --json and --junit, exit 0 right, 1 wrong, 2 bad input", "[compare][cli]") {
  using bpcheck::testing::bpcheck_run;
  using bpcheck::testing::write_file;
  using Catch::Matchers::Contains;
  const CmpCase c = cmp_case(cmp_mlp);
  const std::string files = "--model '" + write_file("cmp_m.json", cmp_mlp) + "' --params '" +
                            write_file("cmp_p.json", c.subject.parameters->dump()) + "' --data '" +
                            write_file("cmp_d.json", c.subject.data->dump()) + "'";
  const std::string json_out = bpcheck::testing::temp_path("cmp_out.json");
  const std::string junit_out = bpcheck::testing::temp_path("cmp_out.xml");
  {
    const auto r = bpcheck_run("compare " + files + " --gradient '" + write_file("cmp_g.json", c.gradient_float.dump()) +
                               "' --json '" + json_out + "' --junit '" + junit_out + "'");
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Contains("a float gradient") && Contains("layer 2 dense W") && Contains("verdict: pass"));
    const json j = json::parse(bpcheck::testing::slurp(json_out));
    CHECK(j["verdict"] == "pass");
    CHECK(j["precision"] == "float");
    CHECK(j["blocks"].size() == 4);
    CHECK(j["blocks"][0]["digits"].get<double>() > 4);
    CHECK_THAT(bpcheck::testing::slurp(junit_out), Contains("tests=\"4\" failures=\"0\""));
  }
  {
    json g = c.gradient_double;
    g["gradients"][0]["values"][0][0] = "1e3";
    const auto r = bpcheck_run("compare " + files + " --gradient '" + write_file("cmp_bad.json", g.dump()) + "'");
    CHECK(r.code == 1);
    CHECK_THAT(r.out, Contains("WRONG") && Contains("worst entry: layer 0 (dense) W[0,0]: given 1e3"));
  }
  {
    json g = c.gradient_double;
    g["gradients"][0]["shape"] = json::array({3, 4});
    const auto err = bpcheck::testing::one_error_line(
        bpcheck_run("compare " + files + " --gradient '" + write_file("cmp_shape.json", g.dump()) + "'"));
    CHECK_THAT(err, Contains("cmp_shape.json: gradients[0] (layer 0 dense, W): shape [3,4] does not match"));
  }
  {
    // float's gradient stated as double: less accurate, a failure unless --allow-less-accurate.
    json g = c.gradient_float;
    g["precision"] = "double";
    const std::string less = "compare " + files + " --gradient '" + write_file("cmp_less.json", g.dump()) + "'";
    const auto r = bpcheck_run(less);
    CHECK(r.code == 1);
    CHECK_THAT(r.out, Contains("as accurate as float") && Contains("--allow-less-accurate makes it advice"));
    CHECK(bpcheck_run(less + " --strict").code == 1);
    const auto allowed = bpcheck_run(less + " --allow-less-accurate");
    CHECK(allowed.code == 0);
    CHECK_THAT(allowed.out, Contains("verdict: less accurate than double allows (advice"));
    bpcheck::testing::one_error_line(bpcheck_run(less + " --allow-less-accurate --strict"));
  }
  bpcheck::testing::one_error_line(bpcheck_run("compare " + files + " --gradient '" +
                                               write_file("cmp_g2.json", c.gradient_double.dump()) +
                                               "' --precision mp100"));
  bpcheck::testing::one_error_line(bpcheck_run("compare --model '" + bpcheck::testing::temp_path("cmp_m.json") +
                                               "' --gradient '" + bpcheck::testing::temp_path("cmp_g2.json") + "'"));
}

TEST_CASE("compare: beyond the sweep limit the bound is normwise, and still passes right and catches wrong gradients",
          "[compare]") {
  const CmpCase c = cmp_case(R"({"input_size": 6, "layers": [{"type": "dense", "units": 5}, {"type": "tanh"},
      {"type": "layer_norm"}, {"type": "dense", "units": 3}], "loss": "cross_entropy"})");
  bpcheck::CompareOptions normwise;
  normwise.sweep_limit = 0;
  for (const std::string precision : {"float", "double"}) {
    const json& g = precision == "float" ? c.gradient_float : c.gradient_double;
    const auto r = bpcheck::compare_gradient(c.subject, g, precision, normwise);
    INFO(bpcheck::format_table(r));
    CHECK(!r.absolute_sweep);
    CHECK(r.verdict() == bpcheck::CompareVerdict::pass);
    CHECK(bpcheck::compare_gradient(c.subject, g, precision).absolute_sweep);
    // Row 3 moved by the block's largest value: a gross error whatever row 3 holds.
    json wrong = g;
    double largest = 0;
    for (const auto& row : g["gradients"][0]["values"])
      for (const auto& x : row) largest = std::max(largest, std::abs(std::stod(x.get<std::string>())));
    for (auto& x : wrong["gradients"][0]["values"][3])
      x = fmt::format("{:.17g}", std::stod(x.get<std::string>()) + largest);
    const auto w = bpcheck::compare_gradient(c.subject, wrong, precision, normwise);
    CHECK(w.verdict() == bpcheck::CompareVerdict::wrong);
    CHECK(w.worst_block()->worst.front().row == 3);
  }
}

namespace {

/// The float or double gradient of a case with one block scaled by (1 + rel).
json scaled_block(const json& gradient, std::size_t block, double rel) {
  json g = gradient;
  auto& values = g["gradients"][block]["values"];
  for (auto& row : values) {
    if (row.is_array())
      for (auto& x : row) x = fmt::format("{:.17g}", std::stod(x.get<std::string>()) * (1 + rel));
    else
      row = fmt::format("{:.17g}", std::stod(row.get<std::string>()) * (1 + rel));
  }
  return g;
}

}  // namespace

TEST_CASE("compare: a zero gradient from terms that cancel is bounded by their size, in normwise mode too",
          "[compare]") {
  // The dense bias before a training-mode batch norm: Σ_s δ_s = 0 exactly, formed from δ_s of size 1e-1.
  const std::vector<std::string> models{
      R"({"input_size": 5, "layers": [{"type": "dense", "units": 6}, {"type": "batch_norm"}, {"type": "tanh"},
          {"type": "dense", "units": 3}], "loss": "cross_entropy"})",
      R"({"input_size": 12, "layers": [{"type": "conv1d", "channels": 2, "length": 6, "out_channels": 2, "kernel": 3},
          {"type": "flatten"}, {"type": "batch_norm"}, {"type": "dense", "units": 2}], "loss": "mse"})"};
  for (const auto& m : models) {
    const CmpCase c = cmp_case(m, 3, 6);
    for (const bpcheck::Index limit : {bpcheck::Index(0), bpcheck::Index(1000000)}) {
      bpcheck::CompareOptions o;
      o.sweep_limit = limit;
      for (const std::string precision : {"float", "double"}) {
        const json& g = precision == "float" ? c.gradient_float : c.gradient_double;
        const auto r = bpcheck::compare_gradient(c.subject, g, precision, o);
        INFO(m << "\n" << precision << " sweep limit " << limit << "\n" << bpcheck::format_table(r));
        REQUIRE(r.blocks.size() >= 2);
        const auto& bias = r.blocks[1];
        CHECK(bias.exact_zero);
        CHECK(r.verdict() == bpcheck::CompareVerdict::pass);
        // A residue that is the rounding of the cancelled terms passes...
        const double size = bias.worst.front().bound;  // the bound of a residue: the terms' rounding
        json residue = g;
        auto& b0 = residue["gradients"][1]["values"][0];
        b0 = fmt::format("{:.17g}", 0.3 * size);
        CHECK(bpcheck::compare_gradient(c.subject, residue, precision, o).blocks[1].verdict ==
              bpcheck::CompareVerdict::pass);
        // ...and so does one the size of float's residue in float: not the underflow floor.
        CHECK(size > (precision == "float" ? 1e-9 : 1e-18));
        // A residue a hundred times beyond it fails.
        b0 = fmt::format("{:.17g}", 100 * size);
        const auto w = bpcheck::compare_gradient(c.subject, residue, precision, o);
        CHECK(w.blocks[1].verdict != bpcheck::CompareVerdict::pass);
        CHECK(w.exit_code() == 1);
      }
    }
  }
}

TEST_CASE("compare: the bound is within 100× of the rounding bpcheck's own gradient makes, and catches "
          "a block scaled by 1e-4 in float and 1e-11 in double on a normwise model",
          "[compare]") {
  const CmpCase c = cmp_case(R"({"input_size": 40, "layers": [{"type": "dense", "units": 32}, {"type": "silu"},
      {"type": "layer_norm"}, {"type": "dense", "units": 16}, {"type": "elu"}, {"type": "dense", "units": 5},
      {"type": "log_softmax"}], "loss": "nll"})",
                             11, 8);
  bpcheck::CompareOptions normwise;
  normwise.sweep_limit = 0;
  for (const std::string precision : {"float", "double"}) {
    const json& g = precision == "float" ? c.gradient_float : c.gradient_double;
    const auto r = bpcheck::compare_gradient(c.subject, g, precision, normwise);
    INFO(precision << "\n" << bpcheck::format_table(r));
    CHECK(r.verdict() == bpcheck::CompareVerdict::pass);
    double worst = 0;
    for (const auto& b : r.blocks) worst = std::max(worst, b.ratio);
    CHECK(worst > 1.0 / 100);  // sharp: the largest error is within 100× of its bound (measured: 55–70×)
    for (std::size_t block = 0; block < r.blocks.size(); block += 2) {
      const double rel = precision == "float" ? 1e-4 : 1e-11;
      const auto w = bpcheck::compare_gradient(c.subject, scaled_block(g, block, rel), precision, normwise);
      INFO("block " << block << " scaled by 1 + " << rel << "\n" << bpcheck::format_table(w));
      CHECK(w.blocks[block].verdict != bpcheck::CompareVerdict::pass);
      CHECK(w.exit_code() == 1);
    }
  }
}

#include "verdict.hpp"

TEST_CASE("compare: another program's gradient is judged by the verdict rule, with verify's gross predicate",
          "[compare][verdict]") {
  using bpcheck::Verdict;
  using bpcheck::mp100;
  namespace vd = bpcheck::verify_detail;
  const vd::Tolerances t;
  vd::Evidence e;
  e.what = "layer 0 dense W";
  e.precision = "float";
  e.external = true;
  e.digits = 7;  // digits kept do not rescue a block beyond its bound: no mp100 run of that program exists
  e.rung_digits = 7.2;
  e.ratio = 1;
  CHECK(vd::judge(e, t).verdict == Verdict::pass);
  e.ratio = 1.01;
  CHECK(vd::judge(e, t).verdict == Verdict::unstable);
  CHECK(vd::judge(e, t).grounds == vd::Grounds::beyond_bound_external);
  e.gross = true;
  CHECK(vd::judge(e, t).verdict == Verdict::fail);
  CHECK(vd::judge(e, t).grounds == vd::Grounds::gross);
  e.gross = false;
  e.value_finite = false;
  e.ratio = std::numeric_limits<double>::infinity();
  CHECK(vd::judge(e, t).verdict == Verdict::fail);
  // the same evidence without `external` is verify's float-against-mp100 row: keeping 7 digits passes
  vd::Evidence v = e;
  v.external = false;
  v.value_finite = true;
  v.ratio = 1.01;
  CHECK(vd::judge(v, t).verdict == Verdict::pass);
  CHECK(vd::judge(v, t).grounds == vd::Grounds::keeps_half_digits);
  // gross: above a tenth of the block's largest value and above the floor, both strictly
  const mp100 block(1), floor(0.05);
  CHECK(vd::gross_error(mp100(0.11), block, &floor, t.gross_fraction));
  CHECK_FALSE(vd::gross_error(mp100(0.09), block, &floor, t.gross_fraction));
  const mp100 high_floor(0.2);
  CHECK_FALSE(vd::gross_error(mp100(0.11), block, &high_floor, t.gross_fraction));
  CHECK(vd::gross_error(mp100(0.11), block, nullptr, t.gross_fraction));
  CHECK_FALSE(vd::gross_error(mp100(1), mp100(0), nullptr, t.gross_fraction));
}

TEST_CASE("compare: n counts the lengths of the sums backprop forms from the loss down to the first layer",
          "[compare]") {
  // cross_entropy's gradient (2 outputs) + the top dense's Wᵀδ (its 2 units) + tanh's product (1) + the
  // first dense's sum over the 4 samples: 9 (counting every layer's input and output width gave 28).
  const CmpCase mlp = cmp_case(cmp_mlp);
  const auto a = bpcheck::compare_gradient(mlp.subject, mlp.gradient_double, "double");
  CHECK(a.rounding_terms == 9);
  // 3 outputs + dense's 3 units + layer norm's width 5 + tanh's 1 + the 4 samples
  const CmpCase norm = cmp_case(R"({"input_size": 6, "layers": [{"type": "dense", "units": 5}, {"type": "tanh"},
      {"type": "layer_norm"}, {"type": "dense", "units": 3}], "loss": "cross_entropy"})");
  const auto b = bpcheck::compare_gradient(norm.subject, norm.gradient_float, "float");
  CHECK(b.rounding_terms == 16);
  CHECK(b.verdict() == bpcheck::CompareVerdict::pass);
}

TEST_CASE("compare: the truth on quad judges as the truth in mp100 does, block by block", "[compare]") {
  // quad's rounding is 2^-51 of double's bound at most: every verdict, digit count, exact 0 and explanation
  // the same, the exact values to their printed digits, on correct gradients, one entry wrong in its 4th digit, a float gradient judged as double,
  // and blocks whose exact value is 0 (the bias before batch norm).
  const std::vector<std::string> models{
      cmp_mlp,
      R"({"input_size": 6, "layers": [{"type": "dense", "units": 5}, {"type": "layer_norm"}, {"type": "gelu"},
          {"type": "dense", "units": 3}, {"type": "softmax"}], "loss": "mse"})",
      R"({"input_size": 12, "layers": [{"type": "conv1d", "channels": 2, "length": 6, "out_channels": 2, "kernel": 3},
          {"type": "flatten"}, {"type": "batch_norm"}, {"type": "dense", "units": 2}], "loss": "mse"})",
      R"({"input_size": 8, "layers": [{"type": "multi_head_attention", "sequence": 2, "heads": 2, "causal": true},
          {"type": "dense", "units": 4}, {"type": "batch_norm"}, {"type": "log_softmax"}], "loss": "nll"})"};
  bpcheck::CompareOptions mp;
  mp.mp100_truth = true;
  int exact_zeros = 0, not_passed = 0;
  for (const auto& m : models) {
    const CmpCase c = cmp_case(m, 3, 6);
    for (const std::string precision : {"float", "double"}) {
      json wrong = precision == "float" ? c.gradient_float : c.gradient_double;
      auto& w0 = wrong["gradients"][0]["values"][0][0];
      w0 = fmt::format("{:.17g}", std::stod(w0.get<std::string>()) * (1 + 1e-4));
      json as_double = c.gradient_float;
      as_double["precision"] = precision;
      const json* own = precision == "float" ? &c.gradient_float : &c.gradient_double;
      for (const json* g : {own, static_cast<const json*>(&wrong), static_cast<const json*>(&as_double)}) {
        const auto q = bpcheck::compare_gradient(c.subject, *g, precision);
        const auto r = bpcheck::compare_gradient(c.subject, *g, precision, mp);
        INFO(m << "\n" << precision << "\nquad:\n" << bpcheck::format_table(q) << "mp100:\n" << bpcheck::format_table(r));
        CHECK(q.truth == "quad");
        CHECK(r.truth == "mp100");
        CHECK(q.exact_loss == r.exact_loss);
        REQUIRE(q.blocks.size() == r.blocks.size());
        for (std::size_t b = 0; b < q.blocks.size(); ++b) {
          const auto &x = q.blocks[b], &y = r.blocks[b];
          CHECK(x.verdict == y.verdict);
          CHECK(x.exact_zero == y.exact_zero);
          CHECK(x.consistent_with == y.consistent_with);
          CHECK(x.explanation == y.explanation);
          CHECK(std::abs(x.digits - y.digits) < 1e-6);
          // cond's moves are measured, not derived: at a moved point mp100's tanh backward takes its
          // derivative from the moved y, quad's from x beyond |x| = 1/2, so the bound moves by a few %.
          CHECK(std::abs(x.ratio - y.ratio) <= 0.25 * y.ratio);
          exact_zeros += y.exact_zero;
          not_passed += y.verdict != bpcheck::CompareVerdict::pass;
          if (!y.exact_zero) {
            REQUIRE(x.worst.size() == y.worst.size());
            for (std::size_t e = 0; e < x.worst.size(); ++e)  // an entry's exact 0 differs: ~1e-33 of its terms in quad
              if (std::abs(std::stod(y.worst[e].exact)) > 1e-25 * y.max_exact) CHECK(x.worst[e].exact == y.worst[e].exact);
          }
        }
      }
    }
  }
  // the cases hold what they are meant to: exact zeros, and wrong and less accurate blocks
  CHECK(exact_zeros >= 4);
  CHECK(not_passed >= 8);
}
