// Benchmark 4: verification of an MLP 32-64-64-8 (tanh, mse; 6 856 parameters), batch 2, seed 42.
//   network/full         verify_network as `bpcheck verify` runs it: the loss with its full Jacobian
//                        [J_x J_θ] (1 × 6 920) formed in mp100 by dual numbers and differences, then each
//                        layer on its own; float, double and the mp100 verdict
//   network/projections  the same with full_jacobian_limit = 0: every comparison through random
//                        projections J V, Jᵀu (VerifyOptions::projections of them)
//   loss/full, loss/projections
//                        the loss layer alone (backprop and the explicit product of the whole network):
//                        the scope of PyTorch's gradcheck on the same network
//   floor/mp100_forward, floor/mp100_gradient
//                        one forward, one backprop of the same network and batch in mp100: the least an
//                        mp100 verdict costs (projections need at least one of each; a full Jacobian
//                        needs an oracle per column, 6 920 of them, each at least one mp100 forward)
// One iteration each for verify: a run takes seconds to minutes.
#include <benchmark/benchmark.h>

#include "bench_setup.hpp"
#include "bpcheck/verify/network_layer.hpp"
#include "bpcheck/verify/verify.hpp"

namespace {

using namespace bpcheck;

ModelSpec mlp() { return bench::tanh_mlp(32, {64, 64}, 8); }

VerifyOptions options(bool full) {
  VerifyOptions o;
  o.seed = 42;
  if (!full) o.full_jacobian_limit = 0;
  return o;
}

void network(benchmark::State& state) {
  NetworkSubject subject{mlp(), std::nullopt, std::nullopt};
  const VerifyOptions o = options(state.range(0) != 0);
  int exit_code = -1;
  for (auto _ : state) exit_code = verify_network(subject, o).exit_code();
  if (exit_code != 0) state.SkipWithError("the verification failed: the benchmark measured a wrong run");
}

/// The network's loss on the batch as one layer, as verify_network builds it.
void loss(benchmark::State& state) {
  VerifyOptions o = options(state.range(0) != 0);
  bench::Problem<mp100> truth(mlp(), o.batch, o.seed);
  auto make = [&]<class T>(rung<T>) {
    Network<T> net = truth.net.template rebind<T>();
    Targets<T> t;
    t.values = matrix_cast<T>(truth.batch.targets.values);
    return LossLayer<T>(std::move(net), std::move(t));
  };
  o.random_parameters = false;
  o.inputs = truth.batch.inputs;
  int exit_code = -1;
  for (auto _ : state) exit_code = verify_layer(make, o).exit_code();
  if (exit_code != 0) state.SkipWithError("the verification failed: the benchmark measured a wrong run");
}

void mp100_forward(benchmark::State& state) {
  bench::Problem<mp100> p(mlp(), VerifyOptions{}.batch, 42);
  for (auto _ : state) benchmark::DoNotOptimize(p.net.forward(p.batch.inputs));
}

void mp100_gradient(benchmark::State& state) {
  bench::Problem<mp100> p(mlp(), VerifyOptions{}.batch, 42);
  Gradient<mp100> g;
  for (auto _ : state) {
    p.net.gradient(p.batch.inputs, p.batch.targets, g);
    benchmark::ClobberMemory();
  }
}

BENCHMARK(mp100_forward)->Name("verify/floor/mp100_forward")->Unit(benchmark::kMillisecond);
BENCHMARK(mp100_gradient)->Name("verify/floor/mp100_gradient")->Unit(benchmark::kMillisecond);
BENCHMARK(loss)->Name("verify/loss")->ArgName("full")->Arg(1)->Arg(0)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(network)->Name("verify/network")->ArgName("full")->Arg(1)->Arg(0)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
