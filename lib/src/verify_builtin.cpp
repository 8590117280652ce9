// The verification engine instantiated once for the registry's layers and for networks.
#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/network_layer.hpp"
#include "bpcheck/verify/verify.hpp"

namespace bpcheck {

VerificationReport verify_layer(const LayerSpec& spec, Index input_size, const VerifyOptions& options) {
  // Build once on double so a bad spec is reported before any check runs.
  (void)make_layer<double>(spec, input_size);
  return verify_layer([&spec, input_size]<class T>(rung<T>) { return make_layer<T>(spec, input_size); }, options);
}

VerificationReport verify_network(const NetworkSubject& subject, const VerifyOptions& options) {
  // The network, its parameters and its batch on the real rung R, read once per rung so that decimal
  // strings keep all their digits in mp100; dual rungs ride on their real rung's values.
  auto network_on = [&subject, &options]<class R>(rung<R>) {
    Network<R> net(subject.spec);
    if (subject.parameters)
      parameters_from_json(net, *subject.parameters, subject.parameters_file);
    else
      net.initialize(options.seed);
    Batch<R> batch = subject.data ? batch_from_json(net, *subject.data, subject.data_file)
                                  : generate_batch(net, options.seed, options.batch);
    return std::pair{std::move(net), std::move(batch)};
  };
  auto make = [&network_on]<class T>(rung<T>) {
    using R = real_t<T>;
    auto [net, batch] = network_on(rung<R>{});
    if constexpr (std::is_same_v<T, R>) {
      return LossLayer<T>(std::move(net), std::move(batch.targets));
    } else {
      Targets<T> t;
      t.values = matrix_cast<T>(batch.targets.values);
      t.classes = batch.targets.classes;
      return LossLayer<T>(net.template rebind<T>(), std::move(t));
    }
  };
  auto [net_mp, batch_mp] = network_on(rung<mp100>{});
  VerifyOptions loss_options = options;
  loss_options.random_parameters = false;
  loss_options.inputs = batch_mp.inputs;
  VerificationReport report = verify_layer(make, loss_options);
  report.subject = "network (" + std::to_string(subject.spec.layers.size()) + " layers, " + subject.spec.loss + ")";

  // Each layer on its own, at random points of its own width.
  Index width = subject.spec.input_size;
  for (std::size_t k = 0; k < subject.spec.layers.size(); ++k) {
    VerificationReport layer_report = verify_layer(subject.spec.layers[k], width, options);
    for (auto& c : layer_report.checks) c.subject = "layer " + std::to_string(k) + " " + c.subject;
    report.merge(layer_report);
    width = net_mp.layer(k).output_size();
  }
  return report;
}

}  // namespace bpcheck
