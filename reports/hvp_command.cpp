// bpcheck hvp --model M.json [--params P.json] [--data D.json] --vector V.json --precision P [--seed N]
// Prints H v, the Hessian of the loss with respect to the parameters times V, as JSON (the HVP format):
// the network's backward run on dual numbers with the parameters seeded along V (bpcheck/verify/hvp.hpp).
#include <cstdint>
#include <memory>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/verify/hvp.hpp"
#include "commands.hpp"

namespace bpcheck::cli {

namespace {

struct HvpOptions {
  std::string model, params, data, vector, precision;
  std::uint64_t seed = 42;
};

template <class T>
int hvp_in(const HvpOptions& o, std::ostream& out) {
  const ModelSpec spec = read_model_spec(o.model);
  // dual<T> holds nine numbers of T per value
  check_model_memory(spec, sizeof(dual<T>), scalar_name<dual<T>>(), o.model);
  auto net = [&] {
    try {
      return Network<T>(spec);
    } catch (const input_error& e) {
      throw input_error(o.model + ": " + e.what());
    }
  }();
  if (o.params.empty())
    net.initialize(o.seed);
  else
    read_parameters(net, o.params);
  const Batch<T> batch = o.data.empty() ? generate_batch(net, o.seed) : read_batch(net, o.data);
  const Vector<T> v = parameter_vector_from_json(net, read_json_file(o.vector), o.vector);
  const Gradient<T> hv = hessian_vector_product(net, batch.inputs, batch.targets, v);
  for (const auto& layer : hv.layers)
    for (Index i = 0; i < layer.size(); ++i) {
      using std::isfinite;
      if (!isfinite(layer(i)))
        throw input_error("the Hessian-vector product overflows or is NaN in " + scalar_name<T>() +
                          " at these numbers (try mp100)");
    }
  out << hvp_to_json(net, hv).dump(2) << '\n';
  return 0;
}

}  // namespace

Command add_hvp_command(CLI::App& parent) {
  auto o = std::make_shared<HvpOptions>();
  CLI::App* app = parent.add_subcommand(
      "hvp", "Print the Hessian-vector product H v of a model's loss with respect to its parameters as JSON: the "
             "network's backward on dual numbers seeded with V (forward over reverse)");
  app->add_option("--model", o->model, "model spec JSON file")->required();
  app->add_option("--params", o->params,
                  "parameters JSON file (default: Network::initialize(seed), uniform in ±1/√fan_in)");
  app->add_option("--data", o->data, "data JSON file (default: 4 samples generated from the seed)");
  app->add_option("--vector", o->vector, "V, one value per parameter, in the gradient format")->required();
  app->add_option("--precision", o->precision, "the rung to compute in")
      ->required()
      ->check(CLI::IsMember(precision_names()));
  app->add_option("--seed", o->seed, "seed for generated parameters and data")
      ->check(seed_check())
      ->capture_default_str();
  return {app, [o](std::ostream& out) {
            return with_precision(o->precision, [&](auto tag) { return hvp_in<decltype(tag)>(*o, out); });
          }};
}

}  // namespace bpcheck::cli
