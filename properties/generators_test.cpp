// The generators: shapes and distributions cover what they promise, mp100 values carry digits beyond
// double, shrinking reaches the smallest failing case, a failing case prints as documents that
// reproduce it, and the same seed gives the same cases.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include "bpcheck/io/formats.hpp"
#include "helpers.hpp"

namespace {
using namespace bpcheck::properties;
using bpcheck::Index;
using bpcheck::mp100;

/// Scoped environment variable (restored on exit).
class Environment {
 public:
  Environment(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value == nullptr)
      ::unsetenv(name);
    else
      ::setenv(name, value, 1);
  }
  ~Environment() {
    if (old_.empty())
      ::unsetenv(name_);
    else
      ::setenv(name_, old_.c_str(), 1);
  }

 private:
  const char* name_;
  std::string old_;
};
}  // namespace

TEST_CASE("generated shapes include 1×1, tall, wide and batch 1", "[property][generator]") {
  GeneratorOptions o;
  std::vector<Shape> seen;
  const PropertyRun run = require_property("record shapes", 300, [&seen, o] {
    const Shape s = *gen::shape(o);
    seen.push_back(s);
    RC_ASSERT(s.input_size >= 1 && s.input_size <= o.max_input_size);
    RC_ASSERT(s.units >= 1 && s.units <= o.max_units);
    RC_ASSERT(s.batch >= 1 && s.batch <= o.max_batch);
  });
  const auto any = [&seen](auto pred) { return std::any_of(seen.begin(), seen.end(), pred); };
  CHECK(any([](const Shape& s) { return s.input_size == 1 && s.units == 1; }));
  CHECK(any([&o](const Shape& s) { return s.input_size == 1 && s.units == o.max_units; }));
  CHECK(any([&o](const Shape& s) { return s.input_size == o.max_input_size && s.units == 1; }));
  CHECK(any([](const Shape& s) { return s.batch == 1; }));
  CHECK(any([&o](const Shape& s) { return s.batch == o.max_batch; }));
}

TEST_CASE("every distribution stays in its range with values exact in float", "[property][generator]") {
  for (const Distribution d : all_distributions()) {
    require_property("values of " + distribution_name(d), 200, [d] {
      const auto v = *gen::values(d, 6);
      RC_ASSERT(v.size() == 6u);
      for (const mp100& x : v) {
        RC_ASSERT(mp100(x.convert_to<float>()) == x);  // every rung holds the same point
        const double a = std::abs(x.convert_to<double>());
        switch (d) {
          case Distribution::standard: RC_ASSERT(a > 0 && a < 4); break;
          case Distribution::wide_range: RC_ASSERT(a >= 0.999e-8 && a <= 2.1e8); break;
          case Distribution::near_kinks: RC_ASSERT(a > 0 && a < 1e-6); break;
          case Distribution::saturation: RC_ASSERT(a >= 20 && a < 60); break;
          case Distribution::near_ties:
            RC_ASSERT(std::abs((x - v.front()).convert_to<double>()) <= 1e-6);
            break;
        }
      }
    });
  }
}

TEST_CASE("arbitrary mp100 values carry digits beyond double", "[property][generator]") {
  require_property("mp100 values are not doubles", 200, [] {
    const mp100 x = *rc::gen::arbitrary<mp100>();
    const double d = x.convert_to<double>();
    RC_ASSERT(mp100(d) != x);
    RC_ASSERT(std::abs(d) < 4);
  });
  require_property("mp100 inputs of a case are not doubles", 50, [] {
    GeneratorOptions o;
    o.layer_types = {"tanh"};
    const LayerCase c = *gen::with_digits_beyond_double(gen::layer_case(o));
    for (const mp100& x : c.inputs) RC_ASSERT(mp100(x.convert_to<double>()) != x);
  });
}

TEST_CASE("random networks cover every layer type but embedding, every loss and depth 1 to 8",
          "[property][generator]") {
  std::set<std::string> types, losses;
  std::set<std::size_t> depths;
  GeneratorOptions o;
  require_property("record networks", 600, [&] {
    const NetworkCase c = *gen::network_case(o);
    depths.insert(c.spec.layers.size());
    losses.insert(c.spec.loss);
    for (const auto& l : c.spec.layers) types.insert(l.type);
    const bpcheck::Network<double> net(c.spec);  // every layer's options fit the width it receives
    RC_ASSERT(Index(c.parameters.size()) == net.parameter_count());
    RC_ASSERT(Index(c.inputs.size()) == c.spec.input_size * c.batch);
    RC_ASSERT(net.output_size() <= std::max(3 * o.max_units, c.spec.input_size));  // widths stay bounded
    if (bpcheck::make_loss<double>(c.spec.loss)->target_kind() == bpcheck::TargetKind::classes) {
      RC_ASSERT(c.classes.size() == std::size_t(c.batch));
      for (Index k : c.classes) RC_ASSERT(k >= 0 && k < net.output_size());
    }
  });
  std::set<std::string> expected(bpcheck::layer_type_names().begin(), bpcheck::layer_type_names().end());
  expected.erase("embedding");
  CHECK(types == expected);
  CHECK(losses == std::set<std::string>(bpcheck::loss_names().begin(), bpcheck::loss_names().end()));
  CHECK(*depths.begin() == 1);
  CHECK(*depths.rbegin() == 8);
}

TEST_CASE("random layer cases cover every registered layer type, with valid indices for embedding",
          "[property][generator]") {
  std::set<std::string> types;
  require_property("record layer cases", 400, [&] {
    const LayerCase c = *gen::layer_case(GeneratorOptions{});
    types.insert(c.spec.type);
    const auto layer = bpcheck::make_layer<double>(c.spec, c.input_size);
    RC_ASSERT(layer.output_size() == c.output_size);
    RC_ASSERT(Index(c.parameters.size()) == layer.parameter_count());
    RC_ASSERT(Index(c.direction.size()) == c.input_size * c.batch + layer.parameter_count());
    if (layer.input_is_index()) {
      for (std::size_t i = 0; i < c.inputs.size(); ++i) {
        RC_ASSERT(c.inputs[i] >= 0);
        RC_ASSERT(c.inputs[i] < layer.index_count());
        RC_ASSERT(bpcheck::mp100(floor(c.inputs[i])) == c.inputs[i]);
        RC_ASSERT(c.direction[i] == 0);
      }
    }
  });
  CHECK(types == std::set<std::string>(bpcheck::layer_type_names().begin(), bpcheck::layer_type_names().end()));
}

TEST_CASE("an embedding may start a random network when asked for, never stand later", "[property][generator]") {
  GeneratorOptions o;
  o.layer_types = {"embedding", "dense", "tanh"};
  bool started = false;
  require_property("embedding only first", 200, [&] {
    const NetworkCase c = *gen::network_case(o);
    for (std::size_t k = 1; k < c.spec.layers.size(); ++k) RC_ASSERT(c.spec.layers[k].type != "embedding");
    if (c.spec.layers.front().type == "embedding") {
      started = true;
      const bpcheck::Network<double> net(c.spec);
      for (const auto& x : c.inputs) RC_ASSERT(x >= 0 && x < net.layer(0).index_count());
    }
  });
  CHECK(started);
}

TEST_CASE("an unregistered layer type is refused by name", "[property][generator]") {
  GeneratorOptions o;
  o.layer_types = {"no_such_layer"};
  CHECK_THROWS_WITH(gen::layer_case(o)(rc::Random(), 0).value(), Catch::Contains("no_such_layer"));
}

TEST_CASE("shrinking yields the smallest failing network: one layer, one input, batch 1, simple values",
          "[property][generator]") {
  GeneratorOptions o;
  NetworkCase last_failing;
  // fails for every network that contains a sigmoid: the smallest such case is a lone sigmoid
  const PropertyRun run = run_property("no network contains a sigmoid", 200, [&last_failing, o] {
    const NetworkCase c = *gen::network_case(o);
    bool sigmoid = false;
    for (const auto& l : c.spec.layers) sigmoid = sigmoid || l.type == "sigmoid";
    if (sigmoid) last_failing = c;
    RC_ASSERT(!sigmoid);
  });
  INFO(run.message);
  REQUIRE(!run.passed);
  const NetworkCase& c = last_failing;  // the last failing evaluation is the shrunk case
  REQUIRE(c.spec.layers.size() == 1);
  CHECK(c.spec.layers[0].type == "sigmoid");
  CHECK(c.spec.input_size == 1);
  CHECK(c.batch == 1);
  CHECK(c.spec.loss == "mse");
  CHECK(c.distribution == Distribution::standard);
  REQUIRE(c.inputs.size() == 1u);
  CHECK(c.inputs[0] == mp100(1) / 128);
  // the message shows the case as documents and how to rerun it
  CHECK(run.message.find("bpcheck verify --model model.json --params params.json --data data.json") != std::string::npos);
  CHECK(run.message.find("RC_PARAMS=\"seed=") != std::string::npos);
}

TEST_CASE("a case prints as model, parameters and data documents that read back to the same case",
          "[property][generator]") {
  require_property("documents round-trip", 40, [] {
    const NetworkCase c = *gen::network_case({});
    std::ostringstream os;
    showValue(c, os);
    const std::string text = os.str();
    const auto document = [&text](const std::string& label) {
      const auto at = text.find(label);
      RC_ASSERT(at != std::string::npos);
      const auto start = at + label.size();
      return nlohmann::json::parse(text.substr(start, text.find('\n', start) - start));
    };
    const bpcheck::ModelSpec spec = bpcheck::model_spec_from_json(document("model.json:  "), "model");
    RC_ASSERT(spec.layers.size() == c.spec.layers.size());
    bpcheck::Network<mp100> net(spec);
    bpcheck::parameters_from_json(net, document("params.json: "), "params");
    RC_ASSERT(net.parameters() == detail::to_vector<mp100>(c.parameters));
    const auto batch = bpcheck::batch_from_json(net, document("data.json:   "), "data");
    RC_ASSERT(batch.inputs == detail::to_matrix<mp100>(c.inputs, c.spec.input_size, c.batch));
    RC_ASSERT(batch.targets.classes == c.classes);
  });
}

TEST_CASE("the same seed gives the same cases and the same verdicts", "[property][generator]") {
  const auto record = [] {
    std::vector<std::string> cases;
    const PropertyRun run = run_property("record", 30, [&cases] {
      const NetworkCase c = *gen::network_case({});
      std::ostringstream os;
      showValue(c, os);
      cases.push_back(os.str());
      RC_ASSERT(c.spec.layers.size() < 4);  // fails for deeper networks: the verdict must repeat too
    });
    return std::pair{cases, run.counterexample};
  };
  const auto first = record(), second = record();
  CHECK(first.first == second.first);
  CHECK(first.second == second.second);
  CHECK(!first.second.empty());
}

TEST_CASE("BPCHECK_PROPERTY_CASES sets the number of cases and RC_PARAMS the seed", "[property][generator]") {
  {
    Environment unset("BPCHECK_PROPERTY_CASES", nullptr);  // the nightly run sets it
    CHECK(case_count(17) == 17);
  }
  {
    Environment nightly("BPCHECK_PROPERTY_CASES", "10000");
    CHECK(case_count(17) == 10000);
    CHECK(case_count(3, true) == 1000);
    int runs = 0;
    const PropertyRun run = run_property("count", case_count(5), [&runs] { ++runs; });
    CHECK(run.passed);
    CHECK(runs == 10000);
  }
  {
    Environment bad("BPCHECK_PROPERTY_CASES", "many");
    CHECK_THROWS_AS(case_count(17), bpcheck::input_error);
  }
  if (!rc_params_set("seed")) CHECK(property_parameters(5).seed == default_seed);
  if (!rc_params_set("max_success")) CHECK(property_parameters(5).maxSuccess == 5);
}

TEST_CASE("BPCHECK_PROPERTY_LAYERS limits the per-layer properties to the layer types it names",
          "[property][generator]") {
  {
    Environment shard("BPCHECK_PROPERTY_LAYERS", "tanh,dense,tanh");
    CHECK(property_layer_types() == std::vector<std::string>{"tanh", "dense"});
  }
  {
    Environment typo("BPCHECK_PROPERTY_LAYERS", "dense,tahn");
    CHECK_THROWS_WITH(property_layer_types(), Catch::Contains("unknown layer type 'tahn'"));
  }
  {
    Environment none("BPCHECK_PROPERTY_LAYERS", ",");
    CHECK_THROWS_AS(property_layer_types(), bpcheck::input_error);
  }
  {
    Environment all("BPCHECK_PROPERTY_LAYERS", nullptr);
    CHECK(property_layer_types() == bpcheck::layer_type_names());
  }
}
