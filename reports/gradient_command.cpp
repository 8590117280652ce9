// bpcheck gradient --model M.json [--params P.json] [--data D.json] --precision P [--seed N]
#include <cstdint>
#include <memory>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "commands.hpp"

namespace bpcheck::cli {

namespace {

struct GradientOptions {
  std::string model, params, data, precision, accumulate = "same";
  std::uint64_t seed = 42;
};

template <class T>
int gradient_in(const GradientOptions& o, std::ostream& out) {
  const ModelSpec spec = read_model_spec(o.model);
  // The spec was checked in double; an option may still not fit this rung (a slope beyond float),
  // nor its size (mp100 takes ten times the memory of double).
  check_model_memory(spec, sizeof(T), scalar_name<T>(), o.model);
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
  const AccumulationScope accumulation(accumulation_of(o.accumulate));
  const auto json = gradient_to_json(net, net.gradient(batch.inputs, batch.targets));
  out << json.dump(2) << '\n';
  return 0;
}

}  // namespace

Command add_gradient_command(CLI::App& parent) {
  auto o = std::make_shared<GradientOptions>();
  CLI::App* app = parent.add_subcommand(
      "gradient", "Print the loss gradient of a model on a batch (backprop) as JSON, every value with all digits");
  app->add_option("--model", o->model, "model spec JSON file")->required();
  app->add_option("--params", o->params,
                  "parameters JSON file (default: Network::initialize(seed), uniform in ±1/√fan_in)");
  app->add_option("--data", o->data, "data JSON file (default: 4 samples generated from the seed)");
  app->add_option("--precision", o->precision, "the rung to compute in")
      ->required()
      ->check(CLI::IsMember(precision_names_16()));
  add_accumulate_option(app, o->accumulate);
  app->add_option("--seed", o->seed, "seed for generated parameters and data")
      ->check(seed_check())
      ->capture_default_str();
  return {app, [o](std::ostream& out) {
            if (o->accumulate != "same" && o->precision != "bf16" && o->precision != "fp16")
              throw input_error("--accumulate applies to the 16-bit precisions (bf16, fp16) only");
            return with_precision_16(o->precision, [&](auto tag) { return gradient_in<decltype(tag)>(*o, out); });
          }};
}

}  // namespace bpcheck::cli
