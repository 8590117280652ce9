// The layer registry's table: every entry builds on every rung from the options it generates, its
// shape rule counts what the built layer holds, docs/layers.md lists it, and a name the table does
// not hold is an input_error wherever it is met (the factory, the memory estimate, the lookups).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/layer.hpp"
#include "bpcheck/network.hpp"

using bpcheck::Index;
using bpcheck::LayerShape;
using bpcheck::LayerSpec;
using bpcheck::Matrix;

namespace {

/// The knob vectors each entry's options are drawn from: the simplest, and a few others.
std::vector<std::vector<int>> registry_knob_sets() {
  std::vector<std::vector<int>> sets;
  for (int pattern = 0; pattern < 4; ++pattern) {
    std::vector<int> knobs(bpcheck::layer_option_knob_count);
    for (std::size_t i = 0; i < knobs.size(); ++i) knobs[i] = pattern == 0 ? 0 : int((pattern * 7 + 3 * i) % 11);
    sets.push_back(knobs);
  }
  return sets;
}

/// The layer on rung T, its forward on a batch of two columns (valid indices for an index layer).
template <class T>
void registry_builds_on(const LayerSpec& spec, Index input_size, Index outputs, Index parameters) {
  INFO("rung " << bpcheck::scalar_name<T>());
  const bpcheck::AnyLayer<T> layer = bpcheck::make_layer<T>(spec, input_size);
  CHECK(layer.output_size() == outputs);
  CHECK(layer.parameter_count() == parameters);
  Matrix<T> X(input_size, 2);
  for (Index i = 0; i < X.size(); ++i) X(i) = layer.input_is_index() ? T(0) : T(int(i % 7) - 3) / T(8);
  CHECK(layer.forward(X).rows() == outputs);
}

std::string registry_read_doc(const std::string& relative) {
  const char* root = std::getenv("BPCHECK_SOURCE_DIR");
  if (root == nullptr || *root == '\0') FAIL("BPCHECK_SOURCE_DIR is not set: run the tests through ctest");
  std::ifstream in(std::filesystem::path(root) / relative, std::ios::binary);
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("every registered layer builds on every rung from its generated options, as its shape rule counts it",
          "[registry]") {
  const Index input_size = 6, units = 3, batch = 2;
  for (const auto& type : bpcheck::layer_types()) {
    for (const auto& knobs : registry_knob_sets()) {
      const LayerSpec spec{type.name, type.options({knobs, input_size, units, batch})};
      INFO(type.name << " " << spec.options.dump());
      const auto layer = bpcheck::make_layer<double>(spec, input_size);
      const Index outputs = layer.output_size(), parameters = layer.parameter_count();
      if (type.shape != LayerShape::from_options) {
        CHECK(outputs == input_size);
        CHECK(parameters == 0);
      }
      if (type.shape == LayerShape::elementwise) {  // J_x diagonal
        Matrix<double> X(input_size, 1);
        for (Index i = 0; i < input_size; ++i) X(i) = double(i) / 4 - 0.6;
        Matrix<double> J = layer.jacobian_input(X);
        J.diagonal().setZero();
        CHECK(J.isZero(0));
      }
      registry_builds_on<float>(spec, input_size, outputs, parameters);
      registry_builds_on<double>(spec, input_size, outputs, parameters);
      registry_builds_on<bpcheck::mp100>(spec, input_size, outputs, parameters);
      registry_builds_on<bpcheck::dual<float>>(spec, input_size, outputs, parameters);
      registry_builds_on<bpcheck::dual<double>>(spec, input_size, outputs, parameters);
      registry_builds_on<bpcheck::dual<bpcheck::mp100>>(spec, input_size, outputs, parameters);
      // The memory estimate counts exactly the parameters the layer holds and at least its output.
      const bpcheck::ModelSpec model{input_size, {spec}, "mse"};
      const auto extent = bpcheck::model_extent(model);
      CHECK(extent.parameters == double(parameters));
      CHECK(extent.widest >= double(std::max(outputs, input_size)));
    }
  }
}

TEST_CASE("the names, the lookups and the table agree, and an unknown name lists the known ones", "[registry]") {
  const auto& types = bpcheck::layer_types();
  const auto& names = bpcheck::layer_type_names();
  REQUIRE(names.size() == types.size());
  for (std::size_t i = 0; i < types.size(); ++i) {
    CHECK(names[i] == types[i].name);
    CHECK(&bpcheck::layer_type(names[i]) == &types[i]);
    CHECK(!types[i].summary.empty());
    CHECK(types[i].options != nullptr);
  }
  CHECK_THROWS_AS(bpcheck::layer_type("spline"), bpcheck::input_error);
  CHECK_THROWS_WITH(bpcheck::layer_type("spline"),
                    Catch::Contains("unknown layer type 'spline'") && Catch::Contains("hardswish") &&
                        Catch::Contains("dense"));
  CHECK_THROWS_WITH(bpcheck::make_layer<float>({"spline", {}}, 3), Catch::Contains("unknown layer type 'spline'"));
}

TEST_CASE("the memory estimate refuses an unknown layer, at the top and nested, instead of stopping its count",
          "[registry][memory]") {
  const LayerSpec dense{"dense", {{"units", 4}}};
  const bpcheck::ModelSpec top{3, {dense, {"spline", {}}, dense}, "mse"};
  CHECK_THROWS_AS(bpcheck::model_extent(top), bpcheck::input_error);
  CHECK_THROWS_WITH(bpcheck::model_extent(top),
                    Catch::StartsWith("layer 1: unknown layer type 'spline'") && Catch::Contains("known: dense"));
  CHECK_THROWS_WITH(bpcheck::check_model_memory(top, sizeof(double), "double", "m.json"),
                    Catch::StartsWith("m.json: layer 1: unknown layer type 'spline'"));
  const bpcheck::ModelSpec nested{
      3,
      {dense, {"residual", nlohmann::json::parse(R"({"layers": [{"type": "tanh"}, {"type": "spline"}]})")}},
      "mse"};
  CHECK_THROWS_WITH(bpcheck::model_extent(nested),
                    Catch::StartsWith("layer 1: residual: inner layer 1: unknown layer type 'spline'"));
  const bpcheck::ModelSpec branch{
      3, {{"concat", nlohmann::json::parse(R"({"branches": [[], [{"type": "tanh"}, {"type": "spline"}]]})")}}, "mse"};
  CHECK_THROWS_WITH(bpcheck::model_extent(branch),
                    Catch::StartsWith("layer 0: concat: branch 1, layer 1: unknown layer type 'spline'"));
  // The model reader says the same as the registry would.
  CHECK_THROWS_WITH(bpcheck::model_spec_from_json(nlohmann::json::parse(R"({"input_size": 3, "layers":
                        [{"type": "dense", "units": 2}, {"type": "spline"}], "loss": "mse"})"),
                                                  "m.json"),
                    Catch::StartsWith("m.json: layer 1: unknown layer type 'spline'"));
  // Every registered layer is counted: an elementwise layer after a wide dense keeps the width.
  const bpcheck::ModelSpec known{3, {{"dense", {{"units", 50}}}, {"hardswish", {}}, {"dense", {{"units", 2}}}}, "mse"};
  const auto e = bpcheck::model_extent(known);
  CHECK(e.parameters == double(4 * 50 + 51 * 2));
  CHECK(e.widest == 50);
}

TEST_CASE("docs/layers.md lists every registered layer with its summary, and docs/formats.md names each",
          "[registry][docs]") {
  const std::string layers = registry_read_doc("docs/layers.md");
  const std::string formats = registry_read_doc("docs/formats.md");
  for (const auto& type : bpcheck::layer_types()) {
    const std::string line = "- `" + type.name + "`: " + type.summary + "\n";
    INFO("docs/layers.md should hold the line: " << line);
    CHECK(layers.find(line) != std::string::npos);
    INFO("docs/formats.md should name `" << type.name << "` among the model format's layers");
    CHECK(formats.find("`" + type.name + "`") != std::string::npos);
  }
}
