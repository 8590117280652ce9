#pragma once
// What `bpcheck gradient` and `bpcheck hvp` read alike: a model, its parameters (or the seed's) and a
// batch (or the seed's), on one rung.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "commands.hpp"

namespace bpcheck::cli {

struct ModelInput {
  std::string model, params, data, precision;
  std::uint64_t seed = 42;

  /// --model, --params, --data, --precision (one of `precisions`) and --seed on `app`.
  void add_options(CLI::App* app, const std::vector<std::string>& precisions = precision_names()) {
    app->add_option("--model", model, "model spec JSON file")->required();
    app->add_option("--params", params,
                    "parameters JSON file (default: Network::initialize(seed), uniform in ±1/√fan_in)");
    app->add_option("--data", data, "data JSON file (default: 4 samples generated from the seed)");
    app->add_option("--precision", precision, "the rung to compute in")
        ->required()
        ->check(CLI::IsMember(precisions));
    app->add_option("--seed", seed, "seed for generated parameters and data")
        ->check(seed_check())
        ->capture_default_str();
  }

  /// The network on T and its batch. The spec was checked in double; an option may still not fit this
  /// rung (a slope beyond float), nor its size: `value_bytes` per value of `value_name` (mp100 takes
  /// ten times the memory of double, dual<T> nine numbers of T).
  template <class T>
  std::pair<Network<T>, Batch<T>> read(std::size_t value_bytes, const std::string& value_name) const {
    const ModelSpec spec = read_model_spec(model);
    check_model_memory(spec, value_bytes, value_name, model);
    auto net = [&] {
      try {
        return Network<T>(spec);
      } catch (const input_error& e) {
        throw input_error(model + ": " + e.what());
      }
    }();
    if (params.empty())
      net.initialize(seed);
    else
      read_parameters(net, params);
    Batch<T> batch = data.empty() ? generate_batch(net, seed) : read_batch(net, data);
    return {std::move(net), std::move(batch)};
  }
};

}  // namespace bpcheck::cli
