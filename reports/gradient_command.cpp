// bpcheck gradient --model M.json [--params P.json] [--data D.json] --precision P [--seed N]
#include <memory>

#include "commands.hpp"
#include "model_input.hpp"

namespace bpcheck::cli {

namespace {

template <class T>
int gradient_in(const ModelInput& o, std::ostream& out) {
  const auto [net, batch] = o.read<T>(sizeof(T), scalar_name<T>());
  const auto json = gradient_to_json(net, net.gradient(batch.inputs, batch.targets));
  out << json.dump(2) << '\n';
  return 0;
}

}  // namespace

Command add_gradient_command(CLI::App& parent) {
  auto o = std::make_shared<ModelInput>();
  CLI::App* app = parent.add_subcommand(
      "gradient", "Print the loss gradient of a model on a batch (backprop) as JSON, every value with all digits");
  o->add_options(app);
  return {app, [o](std::ostream& out) {
            return with_precision(o->precision, [&](auto tag) { return gradient_in<decltype(tag)>(*o, out); });
          }};
}

}  // namespace bpcheck::cli
