// Benchmark 2: the paper's two ways of getting the gradient, in double, batch 4, across depth and width:
//   backprop  Network::gradient: vector–Jacobian products from the loss back, no matrix formed
//   explicit  Network::explicit_gradient: P_k = J_L ⋯ J_{k+1} formed as matrices, ∇ℓᵀ · P_k · J_θ,k
// The network is `depth` blocks dense(width) → tanh, then dense(width), mse. Backprop costs
// O(depth · width² · B); the explicit product multiplies (width·B)² matrices, O(depth · (width·B)³),
// plus ∇ℓᵀ P_k J_θ,k with J_θ,k of (width·B) × width² entries.
#include <benchmark/benchmark.h>

#include "bench_setup.hpp"

namespace {

using namespace bpcheck;
constexpr Index batch = 4;

ModelSpec network(Index depth, Index width) {
  return bench::tanh_mlp(width, std::vector<Index>(std::size_t(depth), width), width);
}

void backprop(benchmark::State& state) {
  bench::Problem<double> p(network(state.range(0), state.range(1)), batch);
  for (auto _ : state) benchmark::DoNotOptimize(p.net.gradient(p.batch.inputs, p.batch.targets));
}

void explicit_product(benchmark::State& state) {
  bench::Problem<double> p(network(state.range(0), state.range(1)), batch);
  for (auto _ : state) benchmark::DoNotOptimize(p.net.explicit_gradient(p.batch.inputs, p.batch.targets));
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"depth", "width"});
  for (int64_t depth : {1, 2, 4, 8})
    for (int64_t width : {16, 32, 64}) b->Args({depth, width});
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(backprop)->Name("routes/backprop")->Apply(shapes);
BENCHMARK(explicit_product)->Name("routes/explicit")->Apply(shapes);

}  // namespace

BENCHMARK_MAIN();
