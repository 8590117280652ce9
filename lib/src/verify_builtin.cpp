// The verification engine instantiated for networks (LossLayer); registry layers go through
// AnyLayerFactory (verify_layer.cpp).
#include <exception>
#include <future>
#include <limits>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/verify/network_layer.hpp"
#include "bpcheck/verify/network_units.hpp"
#include "bpcheck/verify/verify.hpp"
#include "hvp_impl.hpp"
#include "verdict.hpp"
#include "verify_points.hpp"

namespace bpcheck {

namespace {

/// A registered layer on every rung; built once on double first, so that a bad spec is reported
/// before any check runs.
AnyLayerFactory registry_factory(const LayerSpec& spec, Index input_size) {
  (void)make_layer<double>(spec, input_size);
  return AnyLayerFactory([spec, input_size]<class T>(rung<T>) { return make_layer<T>(spec, input_size); },
                         AnyLayerFactory::without_emulation, AnyLayerFactory::with_float16);
}

/// Whether every entry of M is finite (any rung).
template <class T>
bool all_finite(const Matrix<T>& M) {
  using std::isfinite;
  for (Index i = 0; i < M.size(); ++i)
    if (!isfinite(value_of(M(i)))) return false;
  return true;
}

/// The largest |entry| of an mp100 matrix, as short text ("2.5e+30"); mp100 holds numbers beyond
/// double's range, so the text comes from mp100 itself.
std::string largest_magnitude(const Matrix<mp100>& M) {
  mp100 most(0);
  for (Index i = 0; i < M.size(); ++i) most = std::max(most, mp100(abs(M(i))));
  return most.str(3, std::ios_base::scientific);
}

/// Where rung R overflows on the model's own parameters and batch, when it does: forward, layer by
/// layer (x_k = f_k(x_{k−1}) holds Inf or NaN while mp100's x_k is finite), then the loss, then
/// backprop (the first layer, going backwards, whose dℓ/dθ_k is not finite). The network check
/// already flags such a rung as unstable; this verdict names the layer, so that an overflow is
/// never read as a wrong gradient.
template <class R>
std::optional<CheckResult> locate_overflow(const Network<R>& net, const Batch<R>& batch, const Network<mp100>& exact,
                                           const Batch<mp100>& exact_batch, const std::string& subject,
                                           std::uint64_t seed) {
  CheckResult r;
  r.check = "overflow";
  r.subject = subject;
  r.precision = scalar_name<R>();
  r.seed = seed;
  r.metric = "first step whose result is Inf or NaN in " + r.precision + " and finite in mp100";
  r.formula = "every activation, the loss and every dℓ/dθ_k finite";
  // The rung's own values are not finite where mp100's are: judged as any such result is.
  verify_detail::Evidence overflow;
  overflow.what = "the network";
  overflow.precision = r.precision;
  overflow.value_finite = false;
  verify_detail::apply(r, verify_detail::judge(overflow, verify_detail::Tolerances{}));
  r.value = std::numeric_limits<double>::infinity();
  r.threshold = double(std::numeric_limits<R>::max());
  const std::string limit = fmt::format("{:.3g}", r.threshold);
  const auto x = net.activations(batch.inputs);
  const auto exact_x = exact.activations(exact_batch.inputs);
  for (std::size_t k = 0; k < net.depth(); ++k) {
    r.evaluations = 1;
    if (all_finite(x[k + 1]) || !all_finite(exact_x[k + 1])) continue;
    r.message = fmt::format("{} overflows in the forward pass at layer {} ({}): its output holds Inf or NaN where the "
                            "exact output is finite (largest magnitude {}; {} holds at most {})",
                            r.precision, k, net.layer(k).type_name(), largest_magnitude(exact_x[k + 1]), r.precision,
                            limit);
    return r;
  }
  using std::isfinite;
  const R loss = net.loss().value(x.back(), batch.targets);
  if (!isfinite(loss)) {
    r.message = fmt::format("{} overflows in the loss ({}): Inf or NaN where the exact loss is {} ({} holds at most {})",
                            r.precision, net.loss().name(), exact.loss_value(exact_batch.inputs, exact_batch.targets)
                                                                .str(3, std::ios_base::scientific),
                            r.precision, limit);
    return r;
  }
  const auto g = net.gradient(batch.inputs, batch.targets);
  r.evaluations = 2;
  for (std::size_t k = net.depth(); k-- > 0;) {
    if (all_finite(Matrix<R>(g.layers[k]))) continue;
    r.message = fmt::format("{} overflows in backprop at layer {} ({}): dℓ/dθ holds Inf or NaN ({} holds at most {})",
                            r.precision, k, net.layer(k).type_name(), r.precision, limit);
    return r;
  }
  if (!all_finite(g.input)) {
    r.message = fmt::format("{} overflows in backprop: dℓ/dX holds Inf or NaN ({} holds at most {})", r.precision,
                            r.precision, limit);
    return r;
  }
  return std::nullopt;
}

}  // namespace

VerificationReport verify_layer(const LayerSpec& spec, Index input_size, const VerifyOptions& options) {
  return verify_layer(registry_factory(spec, input_size), options);
}

FullJacobianCost full_jacobian_cost(const NetworkSubject& subject, const VerifyOptions& options) {
  // Sizes only: the network is built on double (no parameters are read) and the batch is the data's.
  const Network<double> net(subject.spec);
  Index batch = options.batch;
  if (subject.data && subject.data->is_object() && subject.data->contains("inputs") &&
      subject.data->at("inputs").is_array())
    batch = Index(subject.data->at("inputs").size());
  FullJacobianCost cost;
  const auto add = [&cost](const std::string& name, Index rows, Index n) {
    if (rows * n > cost.largest_entries) cost.largest_entries = rows * n, cost.largest_subject = name;
    cost.passes += (n + 7) / 8;
  };
  add("network", 1, net.input_size() * batch + net.parameter_count());
  for (std::size_t k = 0; k < net.depth(); ++k)
    add("layer " + std::to_string(k) + " " + net.layer(k).type_name(), net.layer(k).output_size() * options.batch,
        net.layer(k).input_size() * options.batch + net.layer(k).parameter_count());
  return cost;
}

std::size_t network_unit_count(const NetworkSubject& subject, const VerifyOptions& options) {
  return 1 + subject.spec.layers.size() * std::size_t(std::max(options.points, 0));
}

std::vector<VerificationReport> verify_network_units(const NetworkSubject& subject, const VerifyOptions& options,
                                                     const std::vector<std::size_t>& chosen) {
  // The oracles hold the network in dual<mp100>, the largest rung: refuse before allocating it when
  // even one copy of its parameters would not fit.
  check_model_memory(subject.spec, sizeof(dual<mp100>), scalar_name<dual<mp100>>(), "model");
  // The network, its parameters and its batch on the real rung R, read from the JSON once per rung
  // (decimal strings keep all their digits in mp100): parsing 100k parameters into mp100 costs more
  // than a backprop, and the checks build the network dozens of times. Dual rungs ride on their real
  // rung's values.
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
  // The three at once where verify may use several threads: reading decimal strings into 100 digits
  // takes longer than the other two together. Errors come out in the order float, double, mp100.
  const std::launch policy = thread_count(options.threads) > 1 ? std::launch::async : std::launch::deferred;
  auto float_parse = std::async(policy, [&] { return network_on(rung<float>{}); });
  auto double_parse = std::async(policy, [&] { return network_on(rung<double>{}); });
  std::optional<std::pair<Network<mp100>, Batch<mp100>>> parsed_mp;
  std::exception_ptr mp_error;
  try {
    parsed_mp.emplace(network_on(rung<mp100>{}));
  } catch (...) {
    mp_error = std::current_exception();
  }
  const auto on_float = float_parse.get();
  const auto on_double = double_parse.get();
  if (mp_error) std::rethrow_exception(mp_error);
  auto network_mp = std::move(*parsed_mp);
  // The 16-bit rungs only when asked for: an fp16 network refuses parameters or data beyond 65504.
  const auto wanted = [&options](const char* p) {
    return std::find(options.precisions.begin(), options.precisions.end(), p) != options.precisions.end();
  };
  std::optional<std::pair<Network<bf16>, Batch<bf16>>> on_bf16;
  std::optional<std::pair<Network<fp16>, Batch<fp16>>> on_fp16;
  if (wanted("bf16")) on_bf16.emplace(network_on(rung<bf16>{}));
  if (wanted("fp16")) on_fp16.emplace(network_on(rung<fp16>{}));
  const auto parsed = [&]<class R>(rung<R>) -> const std::pair<Network<R>, Batch<R>>& {
    if constexpr (std::is_same_v<R, float>)
      return on_float;
    else if constexpr (std::is_same_v<R, double>)
      return on_double;
    else if constexpr (std::is_same_v<R, bf16>)
      return *on_bf16;
    else if constexpr (std::is_same_v<R, fp16>)
      return *on_fp16;
    else
      return network_mp;
  };
  // Called from several threads at once: it only reads the parsed networks.
  auto make = [&parsed]<class T>(rung<T>) {
    using R = real_t<T>;
    const auto& [net, batch] = parsed(rung<R>{});
    if constexpr (std::is_same_v<T, R>) {
      return LossLayer<T>(Network<T>(net), Targets<T>(batch.targets));
    } else {
      // A dual rung runs only through dual_forward, which sets the parameters at every call: the
      // network's own are not converted (on dual<mp100> two passes over 72 MB for 100k parameters).
      Targets<T> t;
      t.values = matrix_cast<T>(batch.targets.values);
      t.classes = batch.targets.classes;
      return LossLayer<T>(Network<T>(net.spec()), std::move(t));
    }
  };
  // Named references, not a structured binding: the overflow check's lambda below uses them, and
  // clang 14 does not let a lambda capture a structured binding.
  Network<mp100>& net_mp = network_mp.first;
  Batch<mp100>& batch_mp = network_mp.second;
  VerifyOptions loss_options = options;
  // The network is judged at its own batch once: more points would repeat the same X with other
  // random directions, each costing as much as the first. Its layers get `points` points each.
  loss_options.points = 1;
  loss_options.random_parameters = false;
  loss_options.inputs = batch_mp.inputs;
  // The network and each of its layers on its own (at random points of its own width): all their
  // points are run together, on options.threads threads.
  // The verification's deadline, which the network's second-order checks (run after every point) keep too.
  std::optional<verify_detail::Clock::time_point> deadline;
  if (options.time_limit > 0)
    deadline = verify_detail::Clock::now() + std::chrono::duration_cast<verify_detail::Clock::duration>(
                                                 std::chrono::duration<double>(options.time_limit));
  const verify_detail::Subject<decltype(make)> network(make, loss_options);
  std::vector<AnyLayerFactory> factories;
  Index width = subject.spec.input_size;
  for (std::size_t k = 0; k < subject.spec.layers.size(); ++k) {
    factories.push_back(registry_factory(subject.spec.layers[k], width));
    width = net_mp.layer(k).output_size();
  }
  std::vector<verify_detail::Subject<const AnyLayerFactory>> layers;
  layers.reserve(factories.size());  // each Subject refers to its factory
  for (const auto& f : factories) layers.emplace_back(f, options);
  // Unit 0 is the network's one point, unit 1 + k·points + p point p of layer k.
  const std::size_t units = network_unit_count(subject, options);
  const auto points = std::size_t(options.points);
  std::vector<std::function<verify_detail::PointOutcome()>> tasks;
  for (const std::size_t unit : chosen) {
    if (unit >= units) throw input_error(fmt::format("verify: unit {} of a run of {} units", unit, units));
    if (unit == 0)
      tasks.push_back([&network] { return network.run_point(0); });
    else
      tasks.push_back([&layers, unit, points] { return layers[(unit - 1) / points].run_point(int((unit - 1) % points)); });
  }
  auto outcomes = verify_detail::run_tasks(tasks, options.threads, options.progress);

  std::vector<VerificationReport> reports;
  for (std::size_t i = 0; i < chosen.size(); ++i) {
    std::vector<verify_detail::PointOutcome> one;
    one.push_back(std::move(outcomes[i]));
    if (chosen[i] == 0) {
      VerificationReport report = network.report(std::move(one));
      report.subject = "network (" + std::to_string(subject.spec.layers.size()) + " layers, " + subject.spec.loss + ")";
      // Overflow on the model's own parameters and batch, named by layer (float and double), listed with
      // the network's own checks.
      const std::string network_subject = report.checks.empty() ? report.subject : report.checks.front().subject;
      for (const auto& precision : options.precisions) {
        auto locate = [&]<class R>(rung<R>) {
          const auto& [net, batch] = parsed(rung<R>{});
          if (auto r = locate_overflow(net, batch, net_mp, batch_mp, network_subject, options.seed))
            report.checks.push_back(std::move(*r));
        };
        if (precision == "float") locate(rung<float>{});
        if (precision == "double") locate(rung<double>{});
        if (precision == "bf16") locate(rung<bf16>{});
        if (precision == "fp16") locate(rung<fp16>{});
      }
      // Second order of the loss in θ (hvp_impl.hpp), listed with the network's own checks.
      // Not evaluated once the time limit passes, as a point (no partial results); none without the point.
      if (options.order == 2 && report.not_evaluated.empty()) {
        const verify_detail::DeadlineScope within(deadline);
        try {
          for (auto& r : hvp_detail::network_second_order_checks(net_mp, batch_mp, options, network_subject))
            report.checks.push_back(std::move(r));
        } catch (const verify_detail::time_exceeded&) {
          VerificationReport::count(report.not_evaluated,
                                    fmt::format("the time limit of {:g} s was reached (the network's second-order "
                                                "checks)",
                                                options.time_limit));
        }
      }
      reports.push_back(std::move(report));
    } else {
      const std::size_t k = (chosen[i] - 1) / points;
      VerificationReport report = layers[k].report(std::move(one));
      for (auto& c : report.checks) c.subject = "layer " + std::to_string(k) + " " + c.subject;
      reports.push_back(std::move(report));
    }
  }
  return reports;
}

VerificationReport join_network_units(const NetworkSubject& subject, const VerifyOptions& options,
                                      const std::vector<VerificationReport>& units) {
  if (units.size() != network_unit_count(subject, options))
    throw input_error(fmt::format("verify: {} unit reports for a run of {} units", units.size(),
                                  network_unit_count(subject, options)));
  VerificationReport report = units.front();
  const auto points = std::size_t(options.points);
  for (std::size_t k = 0; k < subject.spec.layers.size(); ++k) {
    // A layer's points folded as Subject::report folds them: per check and rung the worst point
    // (the first of equals), evaluations and seconds summed.
    VerificationReport layer;
    verify_detail::Collector out;
    for (std::size_t p = 0; p < points; ++p) {
      const VerificationReport& point = units[1 + k * points + p];
      if (p == 0) layer.subject = point.subject;
      for (const auto& d : point.redrawn) VerificationReport::count(layer.redrawn, d.reason, d.count);
      for (const auto& d : point.not_evaluated) VerificationReport::count(layer.not_evaluated, d.reason, d.count);
      for (const auto& c : point.checks) out.add(c);
      for (const auto& kind : point.inputs)
        if (std::find(layer.inputs.begin(), layer.inputs.end(), kind) == layer.inputs.end()) layer.inputs.push_back(kind);
      layer.unstable_fails = point.unstable_fails;
    }
    layer.checks = out.take();
    report.merge(layer);
  }
  return report;
}

VerificationReport verify_network(const NetworkSubject& subject, const VerifyOptions& options) {
  std::vector<std::size_t> all(network_unit_count(subject, options));
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return join_network_units(subject, options, verify_network_units(subject, options, all));
}

}  // namespace bpcheck
