// bpcheck hvp --model M.json [--params P.json] [--data D.json] --vector V.json --precision P [--seed N]
// Prints H v, the Hessian of the loss with respect to the parameters times V, as JSON (the HVP format):
// the network's backward run on dual numbers with the parameters seeded along V (bpcheck/verify/hvp.hpp).
#include <cmath>
#include <memory>

#include "bpcheck/verify/hvp.hpp"
#include "commands.hpp"
#include "model_input.hpp"

namespace bpcheck::cli {

namespace {

struct HvpOptions : ModelInput {
  std::string vector;
};

template <class T>
int hvp_in(const HvpOptions& o, std::ostream& out) {
  const auto [net, batch] = o.read<T>(sizeof(dual<T>), scalar_name<dual<T>>());
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
  o->add_options(app);
  app->add_option("--vector", o->vector, "V, one value per parameter, in the gradient format")->required();
  return {app, [o](std::ostream& out) {
            return with_precision(o->precision, [&](auto tag) { return hvp_in<decltype(tag)>(*o, out); });
          }};
}

}  // namespace bpcheck::cli
