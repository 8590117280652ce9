// The JSON formats: round trips, digits beyond double carried into mp100, and every bad input
// refused with an input_error that names the file and the problem.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "bpcheck/io/formats.hpp"
#include "helpers.hpp"

using bpcheck::Index;
using bpcheck::mp100;
using bpcheck::testing::input_error_message;
using Catch::Contains;
using nlohmann::json;

namespace {

bpcheck::ModelSpec small_spec(const std::string& loss = "cross_entropy") {
  return bpcheck::ModelSpec{2, {{"dense", {{"units", 3}}}, {"tanh", {}}, {"dense", {{"units", 2}}}}, loss};
}

std::string write_temp(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::temp_directory_path() / "bpcheck_io_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

// A valid parameter file for small_spec, with W of layer 0 = [[1,2],[3,4],[5,6]].
json small_params() {
  return json::parse(R"({"layers": [
    {"W": [[1, 2], [3, 4], [5, 6]], "b": [0.5, -0.5, "0.25"]},
    {},
    {"W": [[1, 0, -1], [0.5, 0.5, 0.5]], "b": [0, 1]}]})");
}

}  // namespace

// ---- model spec --------------------------------------------------------------------------------

TEST_CASE("a model spec is read with its layer options and written back unchanged", "[io][model]") {
  const json j = json::parse(R"({"input_size": 4, "layers": [
      {"type": "dense", "units": 8}, {"type": "leaky_relu", "negative_slope": "0.2"},
      {"type": "gelu", "approximate": "tanh"}, {"type": "dense", "units": 3}], "loss": "mse"})");
  const auto spec = bpcheck::model_spec_from_json(j, "m.json");
  CHECK(spec.input_size == 4);
  REQUIRE(spec.layers.size() == 4);
  CHECK(spec.layers[0].type == "dense");
  CHECK(spec.layers[0].options == json{{"units", 8}});
  CHECK(spec.layers[1].options == json{{"negative_slope", "0.2"}});
  CHECK(spec.layers[2].options == json{{"approximate", "tanh"}});
  CHECK(spec.loss == "mse");
  CHECK(json::parse(bpcheck::model_spec_to_json(spec).dump()) == j);
}

TEST_CASE("a bad model spec is refused with the file name and the problem", "[io][model]") {
  auto bad = [](const std::string& text) {
    return input_error_message([&] { bpcheck::model_spec_from_json(json::parse(text), "m.json"); });
  };
  const std::string layers = R"("layers": [{"type": "dense", "units": 2}])";
  CHECK_THAT(bad(R"({"input_size": 2, )" + layers + R"(, "loss": "mse", "extra": 1})"),
             Contains("m.json") && Contains("unknown key 'extra'"));
  CHECK_THAT(bad(R"({"input_size": 2, )" + layers + "}"), Contains("m.json") && Contains("no 'loss'"));
  CHECK_THAT(bad(R"({"input_size": 0, )" + layers + R"(, "loss": "mse"})"), Contains("positive integer"));
  CHECK_THAT(bad(R"({"input_size": 2.5, )" + layers + R"(, "loss": "mse"})"), Contains("positive integer"));
  CHECK_THAT(bad(R"({"input_size": 2, "layers": [], "loss": "mse"})"), Contains("non-empty list"));
  CHECK_THAT(bad(R"({"input_size": 2, "layers": [{"units": 2}], "loss": "mse"})"),
             Contains("layer 0") && Contains("\"type\""));
  CHECK_THAT(bad(R"({"input_size": 2, "layers": [{"type": "conv"}], "loss": "mse"})"),
             Contains("m.json: layer 0") && Contains("unknown layer type 'conv'"));
  CHECK_THAT(bad(R"({"input_size": 2, "layers": [{"type": "tanh", "units": 3}], "loss": "mse"})"),
             Contains("m.json: layer 0") && Contains("unknown option 'units'"));
  CHECK_THAT(bad(R"({"input_size": 2, "layers": [{"type": "dense"}], "loss": "mse"})"),
             Contains("missing option 'units'"));
  CHECK_THAT(bad(R"({"input_size": 2, )" + layers + R"(, "loss": "hinge"})"),
             Contains("m.json") && Contains("unknown loss 'hinge'"));
  CHECK_THAT(bad("[1, 2]"), Contains("must be a JSON object"));
}

// ---- files -------------------------------------------------------------------------------------

TEST_CASE("reading a file reports a missing file and malformed JSON with its byte position", "[io][file]") {
  const std::string good = write_temp("good.json", R"({"a": 1})");
  CHECK(bpcheck::read_json_file(good) == json{{"a", 1}});
  const std::string missing = (std::filesystem::temp_directory_path() / "bpcheck_io_test/none.json").string();
  CHECK_THAT(input_error_message([&] { bpcheck::read_json_file(missing); }),
             Contains(missing) && Contains("cannot open"));
  const std::string broken = write_temp("broken.json", R"({"a": 1,, "b": 2})");
  CHECK_THAT(input_error_message([&] { bpcheck::read_json_file(broken); }),
             Contains(broken) && Contains("malformed JSON at byte 9"));
  const std::string huge = write_temp("huge.json", R"({"a": 1e999})");
  CHECK_THAT(input_error_message([&] { bpcheck::read_json_file(huge); }),
             Contains(huge) && Contains("malformed JSON"));
  CHECK_THAT(input_error_message([&] { bpcheck::read_json_file(std::filesystem::temp_directory_path().string()); }),
             Contains("is a directory"));
}

// ---- parameters --------------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("parameters written and read back are the same numbers", "[io][params]",
                        bpcheck::testing::real_rungs) {
  using T = TestType;
  bpcheck::Network<T> a(small_spec());
  a.initialize(3);
  bpcheck::Network<T> b(small_spec());
  bpcheck::parameters_from_json(b, json::parse(bpcheck::parameters_to_json(a).dump()), "p.json");
  CHECK(a.parameters() == b.parameters());
  CHECK(b.parameters() != bpcheck::Vector<T>::Zero(b.parameter_count()));
}

TEST_CASE("parameters put row i of W at unit i, and the vector block after vec(W)", "[io][params]") {
  bpcheck::Network<double> net(small_spec());
  bpcheck::parameters_from_json(net, small_params(), "p.json");
  bpcheck::Vector<double> expected(9);
  expected << 1, 3, 5, 2, 4, 6, 0.5, -0.5, 0.25;  // vec(W) column-major, then b
  CHECK(net.layer(0).parameters() == expected);
  CHECK(net.layer(1).parameter_count() == 0);
}

TEST_CASE("a decimal string carries more than 17 digits into mp100", "[io][params]") {
  const std::string digits = "0.12345678901234567890123456789012345678901234567890";
  json j = small_params();
  j["layers"][0]["W"][1][0] = digits;
  bpcheck::Network<mp100> net(small_spec());
  bpcheck::parameters_from_json(net, j, "p.json");
  const mp100 w = net.layer(0).parameters()(1);  // W(1, 0)
  CHECK(w == bpcheck::from_string<mp100>(digits));
  CHECK(w != mp100(0.12345678901234567890));  // the double nearest differs after 17 digits
  using std::abs;
  CHECK(abs(mp100(w - bpcheck::from_string<mp100>("0.1234567890123456789012345678901234567890123456789"))) <
        bpcheck::from_string<mp100>("1e-49"));
  // Written back, all the digits are still there.
  CHECK_THAT(bpcheck::parameters_to_json(net)["layers"][0]["W"][1][0].get<std::string>(),
             Contains("1.2345678901234567890123456789012345678901234567890"));
}

TEST_CASE("bad parameters are refused with the file, layer, block and problem", "[io][params]") {
  auto bad = [](const json& j) {
    bpcheck::Network<double> net(small_spec());
    return input_error_message([&] { bpcheck::parameters_from_json(net, j, "p.json"); });
  };
  json j = small_params();
  j["layers"].erase(2);
  CHECK_THAT(bad(j), Contains("p.json") && Contains("3 layers") && Contains("lists 2"));
  j = small_params();
  j["layers"][2].erase("b");
  CHECK_THAT(bad(j), Contains("p.json: layer 2 (dense)") && Contains("missing parameter block 'b'"));
  j = small_params();
  j["layers"][0]["V"] = json::array({1});
  CHECK_THAT(bad(j), Contains("layer 0 (dense)") && Contains("unknown parameter block 'V'"));
  j = small_params();
  j["layers"][1]["W"] = json::array({1});
  CHECK_THAT(bad(j), Contains("layer 1 (tanh)") && Contains("has no parameters"));
  j = small_params();
  j["layers"][0]["W"].erase(2);
  CHECK_THAT(bad(j), Contains("layer 0 (dense): W") && Contains("expected 3 rows of 2 numbers") &&
                         Contains("got 2 rows"));
  j = small_params();
  j["layers"][0]["W"][1] = json::array({1, 2, 3});
  CHECK_THAT(bad(j), Contains("W[1]") && Contains("expected 3 rows of 2 numbers") && Contains("row of 3"));
  j = small_params();
  j["layers"][2]["b"] = json::array({1, 2, 3});
  CHECK_THAT(bad(j), Contains("layer 2 (dense): b") && Contains("expected a list of 2 numbers") &&
                         Contains("got 3"));
  j = small_params();
  j["layers"][0]["b"][1] = "nan";
  CHECK_THAT(bad(j), Contains("b[1]") && Contains("not finite"));
  j = small_params();
  j["layers"][0]["b"][1] = "1e999";
  CHECK_THAT(bad(j), Contains("b[1]") && Contains("not finite"));
  j = small_params();
  j["layers"][0]["W"][0][1] = true;
  CHECK_THAT(bad(j), Contains("W[0][1]") && Contains("expected a number"));
  j = small_params();
  j["layers"][0]["W"][0][1] = "two";
  CHECK_THAT(bad(j), Contains("W[0][1]") && Contains("'two' is not a number"));
  CHECK_THAT(bad(json::parse(R"({"layers": [], "seed": 1})")), Contains("unknown key 'seed'"));
}

TEST_CASE("a value beyond float's range is refused in float only", "[io][params]") {
  json j = small_params();
  j["layers"][0]["b"][0] = "1e39";
  bpcheck::Network<double> d(small_spec());
  CHECK_NOTHROW(bpcheck::parameters_from_json(d, j, "p.json"));
  bpcheck::Network<float> f(small_spec());
  CHECK_THAT(input_error_message([&] { bpcheck::parameters_from_json(f, j, "p.json"); }),
             Contains("b[0]") && Contains("not finite in float"));
}

// ---- data --------------------------------------------------------------------------------------

TEST_CASE("data rows become columns, and class targets and value targets are read", "[io][data]") {
  bpcheck::Network<double> ce(small_spec("cross_entropy"));
  const auto b = bpcheck::batch_from_json(
      ce, json::parse(R"({"inputs": [[1, 2], [3, "4"], [5, 6]], "targets": [1, 0, 1]})"), "d.json");
  REQUIRE(b.inputs.rows() == 2);
  REQUIRE(b.inputs.cols() == 3);
  CHECK(b.inputs(0, 1) == 3);
  CHECK(b.inputs(1, 1) == 4);
  CHECK(b.targets.classes == std::vector<Index>{1, 0, 1});

  bpcheck::Network<double> mse(small_spec("mse"));
  const auto v = bpcheck::batch_from_json(
      mse, json::parse(R"({"inputs": [[1, 2], [3, 4]], "targets": [[0.5, 1], [0, 0.25]]})"), "d.json");
  REQUIRE(v.targets.values.rows() == 2);
  REQUIRE(v.targets.values.cols() == 2);
  CHECK(v.targets.values(1, 0) == 1);
  CHECK(v.targets.values(1, 1) == 0.25);
}

TEMPLATE_LIST_TEST_CASE("a batch written and read back is the same numbers", "[io][data]",
                        bpcheck::testing::real_rungs) {
  using T = TestType;
  for (const std::string loss : {"cross_entropy", "bce_with_logits"}) {
    bpcheck::Network<T> net(small_spec(loss));
    const auto a = bpcheck::generate_batch(net, 11, 5);
    const auto b = bpcheck::batch_from_json(net, json::parse(bpcheck::batch_to_json(net, a).dump()), "d.json");
    CHECK(a.inputs == b.inputs);
    CHECK(a.targets.classes == b.targets.classes);
    CHECK(a.targets.values == b.targets.values);
  }
}

TEST_CASE("a generated batch is deterministic, in range, and the same on double and mp100", "[io][data]") {
  bpcheck::Network<double> d(small_spec("cross_entropy"));
  bpcheck::Network<mp100> m(small_spec("cross_entropy"));
  const auto a = bpcheck::generate_batch(d, 42, 64);
  const auto again = bpcheck::generate_batch(d, 42, 64);
  const auto other = bpcheck::generate_batch(d, 43, 64);
  const auto mp = bpcheck::generate_batch(m, 42, 64);
  CHECK(a.inputs == again.inputs);
  CHECK(a.targets.classes == again.targets.classes);
  CHECK(a.inputs != other.inputs);
  CHECK(bpcheck::matrix_cast<double>(mp.inputs) == a.inputs);
  CHECK(mp.targets.classes == a.targets.classes);
  CHECK(a.inputs.minCoeff() >= -1);
  CHECK(a.inputs.maxCoeff() < 1);
  bool saw[2] = {false, false};
  for (Index c : a.targets.classes) {
    REQUIRE(c >= 0);
    REQUIRE(c < 2);
    saw[c] = true;
  }
  CHECK((saw[0] && saw[1]));
  bpcheck::Network<double> bce(small_spec("bce_with_logits"));
  const auto v = bpcheck::generate_batch(bce, 42, 64);
  CHECK(v.targets.values.minCoeff() >= 0);
  CHECK(v.targets.values.maxCoeff() < 1);
}

TEST_CASE("a generated batch for a model that starts with an embedding holds valid indices", "[io][data]") {
  // `bpcheck gradient` and `report` without --data feed this batch straight to the embedding.
  const bpcheck::ModelSpec spec{3, {{"embedding", {{"num_embeddings", 4}, {"embedding_dim", 2}}}, {"dense", {{"units", 2}}}}, "mse"};
  bpcheck::Network<double> net(spec);
  net.initialize(5);
  const auto batch = bpcheck::generate_batch(net, 9, 16);
  bool saw[4] = {false, false, false, false};
  for (Index i = 0; i < batch.inputs.size(); ++i) {
    const double x = batch.inputs(i);
    REQUIRE(x == std::floor(x));
    REQUIRE(x >= 0);
    REQUIRE(x < 4);
    saw[Index(x)] = true;
  }
  CHECK((saw[0] && saw[1] && saw[2] && saw[3]));
  CHECK(net.gradient(batch.inputs, batch.targets).layers.size() == 2);
}

TEST_CASE("bad data is refused with the file and the problem", "[io][data]") {
  auto bad = [](const std::string& loss, const std::string& text) {
    bpcheck::Network<double> net(small_spec(loss));
    return input_error_message([&] { bpcheck::batch_from_json(net, json::parse(text), "d.json"); });
  };
  CHECK_THAT(bad("mse", R"({"inputs": [], "targets": []})"), Contains("d.json") && Contains("empty list"));
  CHECK_THAT(bad("mse", R"({"inputs": [[1, 2], [3]], "targets": [[0, 0], [0, 0]]})"),
             Contains("d.json: inputs[1]") && Contains("ragged"));
  CHECK_THAT(bad("mse", R"({"inputs": [[1, 2, 3]], "targets": [[0, 0]]})"),
             Contains("inputs[0]") && Contains("expected 2 numbers per sample, got 3"));
  CHECK_THAT(bad("mse", R"({"inputs": [[1, "nan"]], "targets": [[0, 0]]})"),
             Contains("inputs[0][1]") && Contains("not finite"));
  CHECK_THAT(bad("mse", R"({"inputs": [[1, "-inf"]], "targets": [[0, 0]]})"), Contains("not finite"));
  CHECK_THAT(bad("mse", R"({"inputs": [[1, 2], [3, 4]], "targets": [[0, 0]]})"),
             Contains("2 samples in 'inputs' but 1 in 'targets'"));
  CHECK_THAT(bad("mse", R"({"inputs": [[1, 2]], "targets": [[0, 0, 0]]})"),
             Contains("targets[0]") && Contains("expected 2 numbers"));
  CHECK_THAT(bad("cross_entropy", R"({"inputs": [[1, 2]], "targets": [2]})"),
             Contains("d.json: targets") && Contains("class 2, outside 0..1"));
  CHECK_THAT(bad("cross_entropy", R"({"inputs": [[1, 2]], "targets": [-1]})"), Contains("outside 0..1"));
  CHECK_THAT(bad("cross_entropy", R"({"inputs": [[1, 2]], "targets": [0.5]})"),
             Contains("targets[0]") && Contains("integer class index"));
  CHECK_THAT(bad("cross_entropy", R"({"inputs": [[1, 2]], "targets": [18446744073709551615]})"),
             Contains("outside 0..1"));
  CHECK_THAT(bad("cross_entropy", R"({"inputs": [[1, 2]]})"), Contains("no 'targets'"));
  CHECK_THAT(bad("cross_entropy", R"({"inputs": [[1, 2]], "targets": [0], "weights": [1]})"),
             Contains("unknown key 'weights'"));
}

// ---- gradient output ---------------------------------------------------------------------------

TEMPLATE_LIST_TEST_CASE("the gradient JSON has one entry per block with the rung's digits", "[io][gradient]",
                        bpcheck::testing::real_rungs) {
  using T = TestType;
  bpcheck::Network<T> net(small_spec());
  net.initialize(5);
  const auto batch = bpcheck::generate_batch(net, 5);
  const auto g = net.gradient(batch.inputs, batch.targets);
  const json j = json::parse(bpcheck::gradient_to_json(net, g).dump());
  CHECK(j["precision"] == bpcheck::scalar_name<T>());
  CHECK(bpcheck::from_string<T>(j["loss"].get<std::string>()) == g.loss);
  REQUIRE(j["gradients"].size() == 4);  // W, b of layer 0 and of layer 2; tanh has none
  CHECK(j["gradients"][0]["layer"] == 0);
  CHECK(j["gradients"][0]["name"] == "W");
  CHECK(j["gradients"][0]["shape"] == json::array({3, 2}));
  CHECK(j["gradients"][1]["shape"] == json::array({3}));
  CHECK(j["gradients"][2]["layer"] == 2);
  // W(2, 1) of layer 0 sits at vec index 2 + 1·3; every string reads back to the exact value.
  CHECK(bpcheck::from_string<T>(j["gradients"][0]["values"][2][1].get<std::string>()) == g.layers[0](5));
  CHECK(bpcheck::from_string<T>(j["gradients"][3]["values"][1].get<std::string>()) == g.layers[2](7));
}
