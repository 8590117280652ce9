// The `bpcheck` program, run as a user runs it: output that parses and agrees across precisions,
// and every kind of bad input ending in exit code 2 with one line on stderr naming the problem.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "bpcheck/io/formats.hpp"
#include "cli_run.hpp"
#include "helpers.hpp"

using bpcheck::mp100;
using Catch::Contains;
using Catch::StartsWith;
using nlohmann::json;

using bpcheck::testing::bpcheck_run;
using bpcheck::testing::model_text;
using bpcheck::testing::one_error_line;
using bpcheck::testing::Run;
using bpcheck::testing::slurp;
using bpcheck::testing::temp_dir;
using bpcheck::testing::write_file;

namespace {

/// Significant digits written in a decimal string ("-1.2500e-3" has 5).
int significant_digits(const std::string& s) {
  std::string mantissa = s.substr(0, s.find_first_of("eE"));
  std::string digits;
  for (char c : mantissa)
    if (c >= '0' && c <= '9') digits += c;
  const auto first = digits.find_first_not_of('0');
  return first == std::string::npos ? 0 : int(digits.size() - first);
}

/// Every value of a gradient JSON, in order, as decimal strings.
std::vector<std::string> all_values(const json& g) {
  std::vector<std::string> v;
  for (const auto& e : g.at("gradients")) {
    for (const auto& x : e.at("values")) {
      if (x.is_array())
        for (const auto& y : x) v.push_back(y.get<std::string>());
      else
        v.push_back(x.get<std::string>());
    }
  }
  return v;
}

/// min over entries of −log10(|a − t| / max(|t|, floor)), in mp100.
double digits_of_agreement(const std::vector<std::string>& a, const std::vector<std::string>& truth,
                           const mp100& floor) {
  using std::abs;
  using std::log10;
  REQUIRE(a.size() == truth.size());
  double worst = 1000;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const mp100 x = bpcheck::from_string<mp100>(a[i]), t = bpcheck::from_string<mp100>(truth[i]);
    const mp100 r = abs(mp100(x - t)) / std::max(mp100(abs(t)), floor);
    if (r > 0) worst = std::min(worst, bpcheck::scalar_cast<double>(mp100(-log10(r))));
  }
  return worst;
}

}  // namespace

TEST_CASE("bpcheck gradient prints a gradient JSON that agrees across float, double and mp100", "[cli]") {
  const std::string model = write_file("model.json", model_text);
  std::map<std::string, json> out;
  for (const std::string p : {"float", "double", "mp100"}) {
    const Run r = bpcheck_run("gradient --model " + model + " --precision " + p);
    REQUIRE(r.code == 0);
    CHECK(r.err.empty());
    CHECK_THAT(r.out, Contains("\n  \"precision\""));  // pretty, 2-space indent
    out[p] = json::parse(r.out);
    CHECK(out[p]["precision"] == p);
    const auto& g = out[p]["gradients"];
    REQUIRE(g.size() == 4);
    CHECK(g[0]["layer"] == 0);
    CHECK(g[0]["name"] == "W");
    CHECK(g[0]["shape"] == json::array({4, 3}));
    CHECK(g[0]["values"].size() == 4);
    CHECK(g[0]["values"][0].size() == 3);
    CHECK(g[1]["name"] == "b");
    CHECK(g[1]["shape"] == json::array({4}));
    CHECK(g[2]["layer"] == 2);
    CHECK(g[2]["shape"] == json::array({2, 4}));
    CHECK(g[3]["values"].size() == 2);
  }
  // Digits: the rung's all (float 9, double 17, mp100 > 100); trailing zeros may drop in float/double.
  int most_float = 0, most_double = 0, least_mp = 1000;
  for (const auto& s : all_values(out["float"])) most_float = std::max(most_float, significant_digits(s));
  for (const auto& s : all_values(out["double"])) most_double = std::max(most_double, significant_digits(s));
  for (const auto& s : all_values(out["mp100"])) least_mp = std::min(least_mp, significant_digits(s));
  CHECK(most_float == 9);
  CHECK(most_double == 17);
  CHECK(least_mp >= 100);
  CHECK(significant_digits(out["mp100"]["loss"].get<std::string>()) >= 100);

  const auto truth = all_values(out["mp100"]);
  const mp100 floor = bpcheck::from_string<mp100>("1e-30");
  const double float_digits = digits_of_agreement(all_values(out["float"]), truth, floor);
  const double double_digits = digits_of_agreement(all_values(out["double"]), truth, floor);
  INFO("float agrees to " << float_digits << " digits, double to " << double_digits);
  CHECK(float_digits >= 5);
  CHECK(double_digits >= 13);
  // A different seed gives different numbers.
  const Run other = bpcheck_run("gradient --model " + model + " --precision double --seed 7");
  REQUIRE(other.code == 0);
  CHECK(all_values(json::parse(other.out)) != all_values(out["double"]));
}

TEST_CASE("bpcheck gradient reads parameters and data files and computes what the library computes", "[cli]") {
  const std::string model = write_file("model.json", model_text);
  bpcheck::Network<double> net(bpcheck::model_spec_from_json(json::parse(model_text), "model"));
  net.initialize(9);
  const auto batch = bpcheck::generate_batch(net, 9, 3);
  const std::string params = write_file("params.json", bpcheck::parameters_to_json(net).dump());
  const std::string data = write_file("data.json", bpcheck::batch_to_json(net, batch).dump());
  const Run r = bpcheck_run("gradient --model " + model + " --params " + params + " --data " + data +
                            " --precision double");
  REQUIRE(r.code == 0);
  const json j = json::parse(r.out);
  const auto g = net.gradient(batch.inputs, batch.targets);
  CHECK(bpcheck::from_string<double>(j["loss"].get<std::string>()) == g.loss);
  const auto values = all_values(j);
  // Layer 0: W is 4 × 3 printed by rows, then b; layer 2 likewise.
  CHECK(bpcheck::from_string<double>(values[0 * 3 + 2]) == g.layers[0](0 + 2 * 4));  // W(0, 2)
  CHECK(bpcheck::from_string<double>(values[12 + 3]) == g.layers[0](12 + 3));        // b(3)
  CHECK(bpcheck::from_string<double>(values.back()) == g.layers[2](g.layers[2].size() - 1));
}

TEST_CASE("bpcheck example prints the precision comparison as a table and as JSON", "[cli]") {
  const Run table = bpcheck_run("example");
  REQUIRE(table.code == 0);
  CHECK_THAT(table.out, Contains("loss (mp100)") && Contains("layer 2 b 3"));
  const Run r = bpcheck_run("example --json");
  REQUIRE(r.code == 0);
  const json j = json::parse(r.out);
  CHECK(j["seed"] == 42);
  CHECK(j["samples"] == 4);
  CHECK(significant_digits(j["loss"]["mp100"].get<std::string>()) >= 100);
  REQUIRE(j["blocks"].size() == 4);
  for (const auto& b : j["blocks"]) {
    INFO(b.dump());
    CHECK(b["digits_vs_mp100"]["float"].get<double>() >= 5);
    CHECK(b["digits_vs_mp100"]["float"].get<double>() <= 9);
    CHECK(b["digits_vs_mp100"]["double"].get<double>() >= 13);
    CHECK(b["digits_vs_mp100"]["double"].get<double>() <= 17);
    CHECK(b["digits_backprop_vs_explicit"]["float"].get<double>() >= 5);
    CHECK(b["digits_backprop_vs_explicit"]["double"].get<double>() >= 13);
    CHECK(b["digits_backprop_vs_explicit"]["mp100"].get<double>() >= 90);
  }
}

TEST_CASE("bpcheck --help and --version exit 0", "[cli]") {
  const Run help = bpcheck_run("--help");
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Contains("gradient") && Contains("example"));
  const Run sub = bpcheck_run("gradient --help");
  CHECK(sub.code == 0);
  CHECK_THAT(sub.out, Contains("--precision") && Contains("--model"));
  const Run version = bpcheck_run("--version");
  CHECK(version.code == 0);
  CHECK_THAT(version.out, StartsWith("bpcheck "));
}

TEST_CASE("bad input of every kind exits 2 with one line naming the file and the problem", "[cli]") {
  const std::string model = write_file("model.json", model_text);
  auto gradient = [&](const std::string& extra) {
    return one_error_line(bpcheck_run("gradient --precision double " + extra));
  };

  SECTION("unknown layer") {
    const std::string m = write_file("conv.json", R"({"input_size": 3, "layers": [{"type": "conv"}], "loss": "mse"})");
    CHECK_THAT(gradient("--model " + m), Contains(m) && Contains("unknown layer type 'conv'"));
  }
  SECTION("unknown loss") {
    const std::string m = write_file(
        "hinge.json", R"({"input_size": 3, "layers": [{"type": "dense", "units": 2}], "loss": "hinge"})");
    CHECK_THAT(gradient("--model " + m), Contains(m) && Contains("unknown loss 'hinge'"));
  }
  SECTION("wrong shape in parameters") {
    const std::string p = write_file("params.json", R"({"layers": [
        {"W": [[1, 2, 3], [1, 2, 3], [1, 2, 3]], "b": [0, 0, 0, 0]}, {},
        {"W": [[1, 2, 3, 4], [1, 2, 3, 4]], "b": [0, 0]}]})");
    CHECK_THAT(gradient("--model " + model + " --params " + p),
               Contains(p) && Contains("layer 0 (dense): W") && Contains("expected 4 rows of 3 numbers, got 3 rows"));
  }
  SECTION("target out of range") {
    const std::string d = write_file("data.json", R"({"inputs": [[1, 2, 3], [0, 0, 0]], "targets": [0, 2]})");
    CHECK_THAT(gradient("--model " + model + " --data " + d), Contains(d) && Contains("class 2, outside 0..1"));
  }
  SECTION("NaN in data, as a string") {
    const std::string d = write_file("nan.json", R"({"inputs": [[1, "nan", 3]], "targets": [0]})");
    CHECK_THAT(gradient("--model " + model + " --data " + d), Contains(d) && Contains("inputs[0][1]") &&
                                                                  Contains("not finite"));
  }
  SECTION("Inf in data, as an overflowing number") {
    const std::string d = write_file("inf.json", R"({"inputs": [[1, 1e999, 3]], "targets": [0]})");
    CHECK_THAT(gradient("--model " + model + " --data " + d), Contains(d) && Contains("1e999"));
  }
  SECTION("malformed JSON") {
    const std::string m = write_file("broken.json", R"({"input_size": 3, "layers": [})");
    CHECK_THAT(gradient("--model " + m), Contains(m) && Contains("malformed JSON at byte"));
  }
  SECTION("missing file") {
    const std::string m = (temp_dir() / "no_such_model.json").string();
    CHECK_THAT(gradient("--model " + m), Contains(m) && Contains("cannot open"));
  }
  SECTION("unknown flag") {
    CHECK_THAT(gradient("--model " + model + " --bogus"), Contains("--bogus"));
  }
  SECTION("bad precision") {
    CHECK_THAT(one_error_line(bpcheck_run("gradient --model " + model + " --precision quad")),
               Contains("--precision") && Contains("quad"));
  }
  SECTION("missing required option") {
    CHECK_THAT(gradient(""), Contains("--model"));
  }
  SECTION("bad seed") {
    CHECK_THAT(gradient("--model " + model + " --seed many"), Contains("--seed"));
  }
  SECTION("no subcommand") {
    CHECK_THAT(one_error_line(bpcheck_run("")), Contains("a command is required") && Contains("gradient"));
  }
  SECTION("unknown subcommand") {
    CHECK_THAT(one_error_line(bpcheck_run("frobnicate")), Contains("unknown command 'frobnicate'"));
  }
}

TEST_CASE("bpcheck verify exits 0 on a right model and writes its JSON and JUnit files", "[cli][verify]") {
  const std::string model = write_file("verify_model.json", model_text);
  const auto json_path = temp_dir() / "verify.json", junit_path = temp_dir() / "verify.xml";
  const Run r = bpcheck_run("verify --model " + model + " --json '" + json_path.string() + "' --junit '" +
                            junit_path.string() + "'");
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK_THAT(r.out, Contains("backward vs oracle") && Contains("result: all gradients correct"));
  const json j = json::parse(slurp(json_path));
  CHECK(j.at("passed") == true);
  CHECK(j.at("checks").size() > 10);
  for (const auto& c : j.at("checks")) CHECK(c.at("verdict") != "FAIL");
  const std::string xml = slurp(junit_path);
  CHECK_THAT(xml, StartsWith("<?xml") && Contains("<testsuite ") && Contains("failures=\"0\""));
}

TEST_CASE("bpcheck verify --projections compares no Jacobian in full and still passes a right model", "[cli][verify]") {
  const std::string model = write_file("projections_model.json", model_text);
  const auto json_path = temp_dir() / "projections.json", full_path = temp_dir() / "full.json";
  // Without the flag this small model's Jacobians are compared in full.
  const Run full = bpcheck_run("verify --model " + model + " --json '" + full_path.string() + "'");
  CHECK(full.code == 0);
  const json full_json = json::parse(slurp(full_path));  // held: a range-for over a temporary's member dangles
  for (const auto& c : full_json.at("checks"))
    if (c.at("check").get<std::string>().rfind("jacobians vs", 0) == 0) CHECK(c.at("verdict") == "pass");
  const Run r = bpcheck_run("verify --projections --model " + model + " --json '" + json_path.string() + "'");
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK_THAT(r.out, Contains("result: all gradients correct"));
  const json j = json::parse(slurp(json_path));
  int projected = 0;
  for (const auto& c : j.at("checks")) {
    CHECK(c.at("verdict") != "FAIL");
    if (c.at("check").get<std::string>().rfind("jacobians vs", 0) == 0) {
      CHECK(c.at("verdict") == "skipped");
      CHECK_THAT(c.at("message").get<std::string>(), Contains("projection mode"));
      ++projected;
    }
  }
  CHECK(projected > 0);
}

TEST_CASE("bpcheck verify --strict exits 1 when float overflows where the exact gradient is finite, 0 without", "[cli][verify]") {
  const std::string model = write_file("overflow_model.json", R"({"input_size": 2,
    "layers": [{"type": "dense", "units": 2}, {"type": "softplus"}, {"type": "dense", "units": 2}], "loss": "mse"})");
  const std::string params = write_file("overflow_params.json", R"({"layers": [
    {"W": [["1e30", 0], [0, "1e30"]], "b": [0, 0]}, {}, {"W": [["1e20", "1e20"], ["-1e20", "1e20"]], "b": [0, 0]}]})");
  const std::string data = write_file("overflow_data.json",
                                      R"({"inputs": [[0.5, 0.25], [0.75, -0.5]], "targets": [[0, 1], [1, 0]]})");
  const Run r = bpcheck_run("verify --strict --model " + model + " --params " + params + " --data " + data);
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Contains("unstable") && Contains("overflowed") && Contains("largest number"));
  // Without --strict the overflow is reported as advice: no gradient is wrong.
  const Run advice = bpcheck_run("verify --model " + model + " --params " + params + " --data " + data);
  CHECK(advice.code == 0);
  CHECK_THAT(advice.out, Contains("unstable") && Contains("lose digits"));
  // The same model judged only in double and mp100 is right.
  const Run d = bpcheck_run("verify --precision double,mp100 --model " + model + " --params " + params +
                            " --data " + data);
  CHECK(d.code == 0);
}

TEST_CASE("bpcheck verify refuses bad input with exit 2 and leaves no partial output file", "[cli][verify]") {
  const std::string model = write_file("verify_model2.json", model_text);
  CHECK_THAT(one_error_line(bpcheck_run("verify --model " + model + " --points 0")), Contains("--points"));
  CHECK_THAT(one_error_line(bpcheck_run("verify --model " + model + " --precision half")), Contains("half"));
  const std::string bad_dir = (temp_dir() / "no_such_dir" / "out.json").string();
  CHECK_THAT(one_error_line(bpcheck_run("verify --model " + model + " --json '" + bad_dir + "'")),
             Contains("cannot be written"));
  CHECK_FALSE(std::filesystem::exists(temp_dir() / "no_such_dir"));
}
