// Benchmark 1: backprop of an MLP 784-512-512-10 (tanh, mse), batch 64, float and double.
//   forward          Network::forward
//   forward_backward Network::gradient(X, t, out, InputGradient::skip) (forward, loss, backprop to dθ
//                    of every layer, no dℓ/dX), reusing `out` from one step to the next as a training
//                    loop does: the work of PyTorch's training step, eight matrix products
//   forward_backward_input  the same with dℓ/dX too (InputGradient::compute): nine products
//   forward_backward_plain  Network::gradient(X, t, InputGradient::skip), a fresh Gradient per step
//   gemm_limit       the eight matrix products forward_backward contains, as plain BLAS calls on
//                    preallocated buffers: the rate the machine reaches on these shapes, so that
//                    gemm_limit / forward_backward is the fraction of it the library reaches
//   gemm_limit_input the nine products of forward_backward_input
// FLOP counters count the matrix products only (2·m·n·k each).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include "bench_setup.hpp"

namespace {

using namespace bpcheck;

const std::vector<Index> widths{784, 512, 512, 10};
constexpr Index batch = 64;

ModelSpec mlp() { return bench::tanh_mlp(784, {512, 512}, 10); }

/// Forward: Y = W X per layer; backward: dW = dY Xᵀ and dX = Wᵀ dY per layer.
double forward_flops() {
  double f = 0;
  for (std::size_t k = 0; k + 1 < widths.size(); ++k) f += 2.0 * double(widths[k + 1] * widths[k] * batch);
  return f;
}

template <class T>
void forward(benchmark::State& state) {
  bench::Problem<T> p(mlp(), batch);
  for (auto _ : state) benchmark::DoNotOptimize(p.net.forward(p.batch.inputs));
  state.counters["flops"] = benchmark::Counter(forward_flops(), benchmark::Counter::kIsIterationInvariantRate);
}

/// The first layer's dX = W₀ᵀ dY₀ (in × batch).
double input_gradient_flops() { return 2.0 * double(widths[0] * widths[1] * batch); }

template <class T, InputGradient input>
void forward_backward(benchmark::State& state) {
  bench::Problem<T> p(mlp(), batch);
  Gradient<T> g;
  for (auto _ : state) {
    p.net.gradient(p.batch.inputs, p.batch.targets, g, input);
    benchmark::DoNotOptimize(g.loss);
    benchmark::ClobberMemory();
  }
  const double flops = 3 * forward_flops() - (input == InputGradient::skip ? input_gradient_flops() : 0.0);
  state.counters["flops"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
void forward_backward_plain(benchmark::State& state) {
  bench::Problem<T> p(mlp(), batch);
  for (auto _ : state) benchmark::DoNotOptimize(p.net.gradient(p.batch.inputs, p.batch.targets, InputGradient::skip));
  state.counters["flops"] = benchmark::Counter(3 * forward_flops() - input_gradient_flops(),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void gemm(const float* A, CBLAS_TRANSPOSE ta, const float* B, CBLAS_TRANSPOSE tb, float* C, int m, int n, int k,
          int lda, int ldb) {
  cblas_sgemm(CblasColMajor, ta, tb, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C, m);
}
void gemm(const double* A, CBLAS_TRANSPOSE ta, const double* B, CBLAS_TRANSPOSE tb, double* C, int m, int n, int k,
          int lda, int ldb) {
  cblas_dgemm(CblasColMajor, ta, tb, m, n, k, 1.0, A, lda, B, ldb, 0.0, C, m);
}

template <class T, InputGradient input>
void gemm_limit(benchmark::State& state) {
  const std::size_t L = widths.size() - 1;
  std::vector<Matrix<T>> W(L), dW(L), X(L + 1), dX(L + 1);
  for (std::size_t k = 0; k < L; ++k) {
    W[k] = Matrix<T>::Random(widths[k + 1], widths[k]);
    dW[k] = Matrix<T>::Zero(widths[k + 1], widths[k]);
  }
  for (std::size_t k = 0; k <= L; ++k) {
    X[k] = Matrix<T>::Random(widths[k], batch);
    dX[k] = Matrix<T>::Random(widths[k], batch);
  }
  for (auto _ : state) {
    for (std::size_t k = 0; k < L; ++k)  // X_{k+1} = W_k X_k
      gemm(W[k].data(), CblasNoTrans, X[k].data(), CblasNoTrans, X[k + 1].data(), int(widths[k + 1]), int(batch),
           int(widths[k]), int(widths[k + 1]), int(widths[k]));
    for (std::size_t k = L; k-- > 0;) {
      // dW_k = dX_{k+1} X_kᵀ;  dX_k = W_kᵀ dX_{k+1}
      gemm(dX[k + 1].data(), CblasNoTrans, X[k].data(), CblasTrans, dW[k].data(), int(widths[k + 1]),
           int(widths[k]), int(batch), int(widths[k + 1]), int(widths[k]));
      if (k > 0 || input == InputGradient::compute)
        gemm(W[k].data(), CblasTrans, dX[k + 1].data(), CblasNoTrans, dX[k].data(), int(widths[k]), int(batch),
             int(widths[k + 1]), int(widths[k + 1]), int(widths[k + 1]));
    }
    benchmark::ClobberMemory();
  }
  const double flops = 3 * forward_flops() - (input == InputGradient::skip ? input_gradient_flops() : 0.0);
  state.counters["flops"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(forward<float>)->Name("mlp/forward/float")->Unit(benchmark::kMicrosecond);
BENCHMARK(forward_backward<float, InputGradient::skip>)->Name("mlp/forward_backward/float")->Unit(benchmark::kMicrosecond);
BENCHMARK(forward_backward<float, InputGradient::compute>)
    ->Name("mlp/forward_backward_input/float")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(forward_backward_plain<float>)->Name("mlp/forward_backward_plain/float")->Unit(benchmark::kMicrosecond);
BENCHMARK(gemm_limit<float, InputGradient::skip>)->Name("mlp/gemm_limit/float")->Unit(benchmark::kMicrosecond);
BENCHMARK(gemm_limit<float, InputGradient::compute>)->Name("mlp/gemm_limit_input/float")->Unit(benchmark::kMicrosecond);
BENCHMARK(forward<double>)->Name("mlp/forward/double")->Unit(benchmark::kMicrosecond);
BENCHMARK(forward_backward<double, InputGradient::skip>)->Name("mlp/forward_backward/double")->Unit(benchmark::kMicrosecond);
BENCHMARK(forward_backward<double, InputGradient::compute>)
    ->Name("mlp/forward_backward_input/double")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(forward_backward_plain<double>)->Name("mlp/forward_backward_plain/double")->Unit(benchmark::kMicrosecond);
BENCHMARK(gemm_limit<double, InputGradient::skip>)->Name("mlp/gemm_limit/double")->Unit(benchmark::kMicrosecond);
BENCHMARK(gemm_limit<double, InputGradient::compute>)->Name("mlp/gemm_limit_input/double")->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
