// `bpcheck report` on users' models of three kinds (a ReLU + max-pool CNN, an attention model, a tanh/gelu
// MLP), with its default options: every statement of theory holds or says why it does not apply, and the
// layer-by-layer chart's data and the conditioning estimates are there. Also: a user model's report in
// shards (its verification split across them) merges into exactly the unsharded one, the summary names
// the layers whose gradient keeps fewer than 2 digits, and bad input ends in exit code 2.
#include <cmath>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "helpers.hpp"
#include "report.hpp"

using Catch::Contains;
using Catch::StartsWith;
using nlohmann::json;
namespace fs = std::filesystem;

using bpcheck::testing::bpcheck_run;
using bpcheck::testing::Run;
using bpcheck::testing::slurp;
using bpcheck::testing::temp_path;
using bpcheck::testing::write_file;

namespace users_models {


// LeNet-like: conv 3×3 (3) → ReLU → max-pool → conv 3×3 (4) → tanh → avg-pool → dense → ReLU → dense.
const char* relu_cnn_model = R"({"input_size": 100, "layers": [
  {"type": "conv2d", "channels": 1, "height": 10, "width": 10, "out_channels": 3, "kernel": 3}, {"type": "relu"},
  {"type": "max_pool2d", "channels": 3, "height": 8, "width": 8, "kernel": 2},
  {"type": "conv2d", "channels": 3, "height": 4, "width": 4, "out_channels": 4, "kernel": 3}, {"type": "tanh"},
  {"type": "avg_pool2d", "channels": 4, "height": 2, "width": 2, "kernel": 2},
  {"type": "dense", "units": 8}, {"type": "relu"}, {"type": "dense", "units": 3}], "loss": "cross_entropy"})";

// Self-attention over 4 tokens of 4 features, layer norm per token, the mean over tokens, a linear head.
const char* users_attention_model = R"({"input_size": 16, "layers": [
  {"type": "dense", "units": 16}, {"type": "multi_head_attention", "sequence": 4, "heads": 2},
  {"type": "layer_norm", "tokens": 4}, {"type": "token_mean", "tokens": 4}, {"type": "dense", "units": 3}],
  "loss": "cross_entropy"})";

const char* users_mlp_model = R"({"input_size": 6, "layers": [
  {"type": "dense", "units": 12}, {"type": "tanh"}, {"type": "dense", "units": 12}, {"type": "gelu"},
  {"type": "dense", "units": 3}], "loss": "cross_entropy"})";

json report_on(const std::string& name, const std::string& model, const std::string& extra = "") {
  const std::string path = write_file(name + "_model.json", model);
  const Run r = bpcheck_run("report --jobs 2 --out '" + temp_path(name) + "' --model '" + path + "' " + extra);
  INFO(r.err);
  REQUIRE(r.code == 0);
  return json::parse(slurp(fs::path(temp_path(name)) / "report.json"));
}

/// No statement fails: each holds, or is not applicable and says why.
void require_no_statement_fails(const json& theory) {
  REQUIRE_FALSE(theory.empty());
  for (const auto& t : theory) {
    INFO(t.dump());
    if (t.at("applicable") == true) {
      REQUIRE(t.at("holds") == true);
    } else {
      REQUIRE(t.at("holds").is_null());
      REQUIRE(t.at("not_applicable").get<std::string>().size() > 10);
    }
  }
}

}  // namespace users_models

using namespace users_models;

TEST_CASE("report on users' models: a ReLU CNN, an attention model and an MLP, no statement fails", "[report]") {
  for (const auto& [name, model] : {std::pair<std::string, std::string>{"users_cnn", relu_cnn_model},
                                    {"users_attention", users_attention_model},
                                    {"users_mlp", users_mlp_model}}) {
    INFO(name);
    const json r = report_on(name, model);
    const std::size_t depth = json::parse(model).at("layers").size();
    require_no_statement_fails(r.at("theory"));
    // The statements about steps are made on these models (not all set aside): some are judged.
    std::size_t judged = 0;
    for (const auto& t : r.at("theory")) judged += t.at("applicable") == true;
    REQUIRE(judged >= 2);

    // The layer-by-layer chart's data, for every precision.
    REQUIRE(r.at("layerwise").size() == 2);
    for (const auto& lw : r.at("layerwise")) {
      REQUIRE(lw.at("layers").size() == depth);
      for (const auto& l : lw.at("layers")) {
        REQUIRE(l.at("forward_digits").is_number());
        REQUIRE(l.at("backward_digits").is_number());
      }
      REQUIRE(lw.at("backward_under_2_digits").is_array());
    }
    REQUIRE(fs::exists(fs::path(temp_path(name)) / "layerwise.csv"));
    // The conditioning: every layer's J and every product J_k⋯J_1, each with its largest singular value.
    const json& c = r.at("conditioning").at(0);
    REQUIRE(c.at("layers").size() == depth);
    REQUIRE(c.at("products").size() == depth);
    for (const auto& p : c.at("products")) {
      INFO(p.dump());
      REQUIRE(p.at("sigma_max").get<double>() > 0);
      REQUIRE((p.at("cond").is_number() || p.at("singular") == true || p.value("resolved", true) == false));
    }
  }
}

TEST_CASE("report: the optimal-step statement fails where the best step is far from the measured optimum",
          "[report]") {
  const json r = report_on("users_mlp_tampered", users_mlp_model, "--quick");
  require_no_statement_fails(r.at("theory"));
  // The must-fail case: the best central step moved a thousandfold.
  json moved = r;
  for (auto& fd : moved.at("finite_differences"))
    for (auto& s : fd.at("schemes"))
      if (s.at("scheme") == "central") s["best_h"] = s.at("best_h").get<double>() * 1000;
  std::size_t failing = 0;
  for (const auto& t : bpcheck::report::theory_checks(moved))
    if (t.at("holds") == false) {
      ++failing;
      REQUIRE_THAT(t.at("statement").get<std::string>(), StartsWith("optimal h of central "));
    }
  REQUIRE(failing == 2);  // float and double
}

TEST_CASE("report: a user model's shards, its verification split across them, merge into the unsharded report",
          "[report]") {
  const std::string model = write_file("shard_cnn_model.json", relu_cnn_model);
  const Run whole = bpcheck_run("report --quick --jobs 1 --out '" + temp_path("cnn_whole") + "' --model '" + model + "'");
  INFO(whole.err);
  REQUIRE(whole.code == 0);
  const json w = json::parse(slurp(fs::path(temp_path("cnn_whole")) / "report.json"));
  // Verification is two items (the loss at the batch; the layers' points), joined into one entry.
  REQUIRE(w.at("verification").size() == 1);
  REQUIRE(w.at("verification")[0].at("checks").size() > 10);
  std::string parts;
  for (int k = 1; k <= 3; ++k) {
    const std::string part = temp_path("cnn_part" + std::to_string(k));
    REQUIRE(bpcheck_run(fmt::format("report --quick --jobs 2 --shard {}/3 --out '{}' --model '{}'", k, part, model))
                .code == 0);
    parts += " '" + part + "'";
  }
  const Run merged = bpcheck_run("report merge --out '" + temp_path("cnn_merged") + "'" + parts);
  INFO(merged.err);
  REQUIRE(merged.code == 0);
  REQUIRE(slurp(fs::path(temp_path("cnn_merged")) / "report.json") == slurp(fs::path(temp_path("cnn_whole")) / "report.json"));

  SECTION("a missing part of the verification is refused, not joined short") {
    const Run short_merge = bpcheck_run("report merge --out '" + temp_path("cnn_short") + "' '" + temp_path("cnn_part1") + "' '" +
                                        temp_path("cnn_part2") + "'");
    REQUIRE(short_merge.code == 2);
    REQUIRE_THAT(short_merge.err, Contains("missing shard 3/3"));
  }
}

TEST_CASE("report summary: the layers where a precision's gradient keeps fewer than 2 digits, by name", "[report]") {
  // The last dense layer sums two cotangents that cancel to 1e-6 of their size: float keeps about one
  // digit of it from there on, double about ten.
  const double y = std::tanh(0.25) + std::tanh(0.275);
  const std::string model = write_file(
      "cancel_model.json",
      R"({"input_size": 2, "layers": [{"type": "dense", "units": 2}, {"type": "tanh"}, {"type": "dense", "units": 2}], "loss": "mse"})");
  const std::string params = write_file(
      "cancel_params.json",
      R"({"layers": [{"W": [[0.5, 0.25], [0.25, 0.5]], "b": [0, 0]}, {}, {"W": [[1, 1], [1, 1]], "b": [0, 0]}]})");
  const std::string data =
      write_file("cancel_data.json", json{{"inputs", {{0.3, 0.4}}}, {"targets", {{y + 1, y - 1 + 1e-6}}}}.dump());
  const Run r = bpcheck_run("report --quick --out '" + temp_path("cancel") + "' --model '" + model + "' --params '" + params +
                            "' --data '" + data + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE_THAT(r.out, Contains("float's gradient keeps fewer than 2 digits after the backward of layer 0 (dense), "
                               "1 (tanh), 2 (dense)"));
  REQUIRE_THAT(r.out, !Contains("double's gradient keeps fewer"));
  const json j = json::parse(slurp(fs::path(temp_path("cancel")) / "report.json"));
  // One sample of two outputs: the round-off slope is not judged over so few values, and says so.
  require_no_statement_fails(j.at("theory"));
  bool few_outputs = false;
  for (const auto& t : j.at("theory"))
    few_outputs = few_outputs || t.value("not_applicable", "").find("over 2 output values only") != std::string::npos;
  REQUIRE(few_outputs);
  for (const auto& lw : j.at("layerwise")) {
    INFO(lw.dump());
    const bool is_float = lw.at("precision") == "float";
    REQUIRE(lw.at("backward_under_2_digits").size() == (is_float ? 3u : 0u));
    for (const auto& l : lw.at("layers")) REQUIRE((l.at("backward_digits").get<double>() < 2) == is_float);
  }
  const std::string html = slurp(fs::path(temp_path("cancel")) / "index.html");
  REQUIRE_THAT(html, Contains("<li class=\"few-digits\">float: the gradient keeps fewer than 2 digits after the "
                              "backward of layer 0 (dense"));
  REQUIRE_THAT(html, Contains("<li class=\"few-digits\">double: the gradient keeps at least 2 digits"));

  SECTION("the summary follows the precisions the report holds, whatever their names") {
    json three = j;
    json other = j.at("layerwise")[0];
    other["precision"] = "bf16";
    three.at("layerwise").push_back(other);
    REQUIRE_THAT(bpcheck::report::render(three).at("index.html"),
                 Contains("<li class=\"few-digits\">bf16: the gradient keeps fewer than 2 digits"));
  }
}

TEST_CASE("report: more bad input, each one line on stderr and exit code 2", "[report]") {
  auto expect_error = [](const std::string& args, const std::string& what) {
    const Run r = bpcheck_run(args);
    INFO(args << "\n" << r.err);
    REQUIRE(r.code == 2);
    REQUIRE_THAT(r.err, StartsWith("bpcheck: error: ") && Contains(what));
  };
  const std::string out = " --out '" + temp_path("more_errors") + "'";
  const std::string model = write_file(
      "bad_input_model.json", R"({"input_size": 2, "layers": [{"type": "dense", "units": 1}], "loss": "mse"})");
  const std::string m = " --model '" + model + "'";
  expect_error("report --quick" + m + out + " --params '" +
                   write_file("nan_params.json", R"({"layers": [{"W": [["nan", 1]], "b": [0]}]})") + "'",
               "not finite");
  expect_error("report --quick" + m + out + " --data '" +
                   write_file("inf_data.json", R"({"inputs": [[1, "inf"]], "targets": [[0]]})") + "'",
               "not finite");
  expect_error("report --quick" + m + out + " --data '" +
                   write_file("no_samples.json", R"({"inputs": [], "targets": []})") + "'",
               "non-empty");
  expect_error("report --quick" + m + out + " --data '" +
                   write_file("empty_sample.json", R"({"inputs": [[]], "targets": [[0]]})") + "'",
               "expected 2 numbers");
  expect_error("report --quick" + out + " --model '" +
                   write_file("not_a_model.json", R"({"input_size": "two", "layers": []})") + "'",
               "not_a_model.json");
  expect_error("report --quick --seed -3" + out, "--seed");
  expect_error("report --quick --seed 5x" + out, "--seed");
  expect_error("report --quick --bogus" + out, "--bogus");
  expect_error("report --quick extra" + out, "extra");
  REQUIRE_FALSE(fs::exists(fs::path(temp_path("more_errors")) / "report.json"));
}
