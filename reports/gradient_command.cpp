// bpcheck gradient --model M.json [--params P.json] [--data D.json] --precision P [--seed N]
#include <memory>

#include "commands.hpp"
#include "model_input.hpp"

namespace bpcheck::cli {

namespace {

/// gradient's options: the model input, and how 16-bit products accumulate.
struct GradientOptions : ModelInput {
  std::string accumulate = "same";
};

template <class T>
int gradient_in(const GradientOptions& o, std::ostream& out) {
  const auto [net, batch] = o.read<T>(sizeof(T), scalar_name<T>());
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
  o->add_options(app, precision_names_16());
  add_accumulate_option(app, o->accumulate);
  return {app, [o](std::ostream& out) {
            if (o->accumulate != "same" && o->precision != "bf16" && o->precision != "fp16")
              throw input_error("--accumulate applies to the 16-bit precisions (bf16, fp16) only");
            return with_precision_16(o->precision, [&](auto tag) { return gradient_in<decltype(tag)>(*o, out); });
          }};
}

}  // namespace bpcheck::cli
