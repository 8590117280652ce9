// `bpcheck verify --shard k/n` and `bpcheck verify merge`, run as a CI matrix runs them: parts that
// merge into exactly the unsharded run's table, JSON, JUnit and exit code, and every kind of bad
// input (a bad --shard, parts of different runs, a missing, repeated or malformed part) ending in
// exit code 2 with one line on stderr.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_run.hpp"

using Catch::Contains;
using nlohmann::json;

using bpcheck::testing::bpcheck_run;
using bpcheck::testing::model_text;
using bpcheck::testing::one_error_line;
using bpcheck::testing::Run;
using bpcheck::testing::slurp;
using bpcheck::testing::temp_path;
using bpcheck::testing::write_file;

namespace {

std::string quoted(const std::string& path) { return "'" + path + "'"; }

/// A model with a kink (relu) and given parameters and data, so that resampling, the network's own
/// batch and both fingerprints are part of what the shards must reproduce.
const char* const relu_model = R"({"input_size": 2,
  "layers": [{"type": "dense", "units": 3}, {"type": "relu"}, {"type": "dense", "units": 1}], "loss": "mse"})";
const char* const relu_params = R"({"layers": [{"W": [[0.5, -0.25], [0.75, 0.125], [-0.5, 1]], "b": [0.1, 0, -0.2]},
  {}, {"W": [[1, -1, 0.5]], "b": [0.25]}]})";
const char* const relu_data = R"({"inputs": [[1, 2], [-0.5, 0.25], [0.3, -0.7]], "targets": [[0.5], [-1], [0]]})";

/// Writes shard k/n of `args` to a file named after `name`; requires success.
std::string shard(const std::string& name, const std::string& args, int k, int n, const std::string& extra = "") {
  const std::string path = temp_path(name + "-" + std::to_string(k) + ".json");
  const Run r = bpcheck_run("verify " + args + " --shard " + std::to_string(k) + "/" + std::to_string(n) + " --out " +
                            quoted(path) + " " + extra);
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE_THAT(r.out, Contains(std::to_string(k) + "/" + std::to_string(n)));
  return path;
}

/// The unsharded run and the merge of its n shards (given to merge in reverse order) print the same
/// table, write the same JSON and JUnit bytes and exit with the same code.
void require_merge_equals_unsharded(const std::string& name, const std::string& args, int n) {
  const Run full = bpcheck_run("verify " + args + " --json " + quoted(temp_path(name + "-full.json")) + " --junit " +
                               quoted(temp_path(name + "-full.xml")));
  INFO(full.err);
  REQUIRE((full.code == 0 || full.code == 1));
  std::string parts;
  for (int k = n; k >= 1; --k) parts += " " + quoted(shard(name, args, k, n, k % 2 ? "--jobs 1" : "--jobs 2"));
  const Run merged = bpcheck_run("verify merge --json " + quoted(temp_path(name + "-merged.json")) + " --junit " +
                                 quoted(temp_path(name + "-merged.xml")) + parts);
  INFO(merged.err);
  CHECK(merged.code == full.code);
  CHECK(merged.out == full.out);
  CHECK(slurp(temp_path(name + "-merged.json")) == slurp(temp_path(name + "-full.json")));
  CHECK(slurp(temp_path(name + "-merged.xml")) == slurp(temp_path(name + "-full.xml")));
  // The JSON holds the network's checks and every layer's.
  const json j = json::parse(slurp(temp_path(name + "-full.json")));
  REQUIRE(j.at("checks").size() > 10);
}

}  // namespace

TEST_CASE("verify: shards merge into exactly the unsharded run", "[cli][shard]") {
  const std::string model = write_file("model.json", model_text);
  SECTION("three shards of the default model") {
    require_merge_equals_unsharded("three", "--model " + quoted(model) + " --no-timings --seed 5", 3);
  }
  SECTION("more shards than a layer has points, given parameters and data, a kink") {
    const std::string args = "--model " + quoted(write_file("relu.json", relu_model)) + " --params " +
                             quoted(write_file("relu_params.json", relu_params)) + " --data " +
                             quoted(write_file("relu_data.json", relu_data)) + " --no-timings --points 3";
    require_merge_equals_unsharded("relu", args, 5);
  }
  SECTION("one shard of one") {
    require_merge_equals_unsharded("one", "--model " + quoted(model) + " --no-timings --precision double,mp100", 1);
  }
}

TEST_CASE("verify --shard: unit i goes to shard (i mod n) + 1, so each shard gets a share of every layer",
          "[cli][shard]") {
  const std::string model = write_file("model.json", model_text);  // 3 layers, 4 points: 13 units
  const std::string args = "--model " + quoted(model) + " --no-timings";
  for (int k = 1; k <= 4; ++k) {
    const json part = json::parse(slurp(shard("rr", args, k, 4)));
    CHECK(part.at("format") == "bpcheck verify shard");
    CHECK(part.at("shard").at("index") == k);
    CHECK(part.at("run").at("units") == 13);
    std::vector<std::size_t> got;
    for (const auto& u : part.at("units")) got.push_back(u.at("index").get<std::size_t>());
    std::vector<std::size_t> want;
    for (std::size_t i = std::size_t(k - 1); i < 13; i += 4) want.push_back(i);
    CHECK(got == want);
    // Unit 0 is the network's loss; every other unit is one point of one layer.
    for (const auto& u : part.at("units")) {
      const auto i = u.at("index").get<std::size_t>();
      const std::string subject = u.at("report").at("checks").at(0).at("subject");
      CHECK_THAT(subject, Contains(i == 0 ? "network" : "layer " + std::to_string((i - 1) / 4)));
    }
  }
}

TEST_CASE("verify merge: a part whose unit found a wrong gradient fails the merged run", "[cli][shard]") {
  const std::string args = "--model " + quoted(write_file("model.json", model_text)) + " --no-timings";
  const std::string p1 = shard("wrong", args, 1, 2), p2 = shard("wrong", args, 2, 2);
  REQUIRE(bpcheck_run("verify merge " + quoted(p1) + " " + quoted(p2)).code == 0);
  json part = json::parse(slurp(p2));
  auto& check = part.at("units").at(0).at("report").at("checks").at(0);
  check.at("verdict") = "FAIL";
  check.at("message") = "tampered";
  const std::string tampered = write_file("wrong-tampered.json", part.dump());
  const Run r = bpcheck_run("verify merge " + quoted(p1) + " " + quoted(tampered));
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Contains("FAIL") && Contains("tampered"));
}

TEST_CASE("verify --shard and verify merge: bad input is one line on stderr and exit code 2", "[cli][shard]") {
  const auto expect_error = [](const std::string& args, const std::string& what) {
    const Run r = bpcheck_run(args);
    INFO(args);
    CHECK_THAT(one_error_line(r), Contains(what));
  };
  const std::string model = write_file("model.json", model_text);
  const std::string args = "--model " + quoted(model) + " --no-timings";
  const std::string out = " --out " + quoted(temp_path("bad-shard.json"));
  for (const char* bad : {"3/2", "0/2", "x", "1/", "1/0", "-1/2", "1/2/3"})
    expect_error("verify " + args + " --shard " + bad + out, "--shard");
  expect_error("verify " + args + " --shard 1/2 --json " + quoted(temp_path("j.json")) + out, "verify merge");
  expect_error("verify " + args + " --out " + quoted(temp_path("o.json")), "--shard");
  expect_error("verify " + args + " --shard 1/2 --out " + quoted(temp_path("no-such-folder/p.json")), "cannot be written");
  expect_error("verify --shard 1/2", "--model");

  const std::string a1 = shard("a", args + " --seed 1", 1, 2), a2 = shard("a", args + " --seed 1", 2, 2);
  const std::string b2 = shard("b", args + " --seed 2", 2, 2);
  const std::string p2 = shard("p", args + " --seed 1 --points 2", 2, 2);
  const std::string m2 =
      shard("m", "--model " + quoted(write_file("other.json", R"({"input_size": 3, "layers": [{"type": "dense",
                "units": 4}, {"type": "sigmoid"}, {"type": "dense", "units": 2}], "loss": "cross_entropy"})")) +
                     " --no-timings --seed 1",
            2, 2);
  const std::string t3 = shard("t", args + " --seed 1", 3, 3);
  expect_error("verify merge", "parts");
  expect_error("verify merge " + quoted(a1) + " " + quoted(b2), "different run");
  expect_error("verify merge " + quoted(a1) + " " + quoted(b2), "'seed' differs");
  expect_error("verify merge " + quoted(a1) + " " + quoted(p2), "'points' differs");
  expect_error("verify merge " + quoted(a1) + " " + quoted(m2), "'model' differs");
  expect_error("verify merge " + quoted(a1) + " " + quoted(t3), "3 parts");
  expect_error("verify merge " + quoted(a1), "missing shard 2/2");
  expect_error("verify merge " + quoted(a1) + " " + quoted(a1) + " " + quoted(a2), "given twice");
  expect_error("verify merge " + quoted(temp_path("no-such-part.json")), "no-such-part.json");
  expect_error("verify merge " + quoted(write_file("notjson.json", "{\"format\": ")), "malformed JSON");
  expect_error("verify merge " + quoted(write_file("notshard.json", R"({"a": 1})")), "not a shard");
  expect_error("verify --seed 3 merge " + quoted(a1) + " " + quoted(a2), "merge takes only");

  // Parts edited by hand: a unit in the wrong shard, a unit left out, a broken unit report.
  const json part = json::parse(slurp(a2));
  json moved = part;
  moved.at("units").at(0).at("index") = 0;
  expect_error("verify merge " + quoted(a1) + " " + quoted(write_file("moved.json", moved.dump())), "does not belong");
  json cut = part;
  cut.at("units").erase(cut.at("units").begin());
  expect_error("verify merge " + quoted(a1) + " " + quoted(write_file("cut.json", cut.dump())), "units present");
  json verdict = part;
  verdict.at("units").at(0).at("report").at("checks").at(0).at("verdict") = "maybe";
  expect_error("verify merge " + quoted(a1) + " " + quoted(write_file("verdict.json", verdict.dump())), "maybe");
  json missing_key = part;
  missing_key.at("units").at(0).at("report").at("checks").at(0).erase("value");
  expect_error("verify merge " + quoted(a1) + " " + quoted(write_file("nokey.json", missing_key.dump())),
               "not a valid shard");
  json version = part;
  version.at("version") = 2;
  expect_error("verify merge " + quoted(a1) + " " + quoted(write_file("version.json", version.dump())), "version");
}
