// Benchmark 3: mp100 forward+backward of an MLP 32-64-64-8 (tanh, mse), batch 8, against the matrix
// products it contains, and MPFR (the library's mp100) against Boost's cpp_bin_float_100.
//   forward_backward  Network<mp100>::gradient(X, t, out) with dℓ/dX, reusing `out` as a training loop
//                     does (benchmark 1's row), on one thread and on two (one network each)
//   gemms/<backend>   the nine matrix products of forward+backward alone, Eigen on preallocated
//                     matrices: forward_backward / gemms/mpfr is the overhead of everything else
//                     (temporaries, allocation, tanh, the loss)
//   tanh/<backend>    tanh of every hidden entry (2 × 64 × 8), the transcendental part
#include <benchmark/benchmark.h>

#include <boost/multiprecision/cpp_bin_float.hpp>
#include <boost/multiprecision/eigen.hpp>

#include "bench_setup.hpp"

namespace {

using namespace bpcheck;
using cpp_bin_float_100 =
    boost::multiprecision::number<boost::multiprecision::cpp_bin_float<100>, boost::multiprecision::et_off>;

const std::vector<Index> widths{32, 64, 64, 8};
constexpr Index batch = 8;

void forward_backward(benchmark::State& state) {
  bench::Problem<mp100> p(bench::tanh_mlp(32, {64, 64}, 8), batch);
  Gradient<mp100> g;
  for (auto _ : state) {
    p.net.gradient(p.batch.inputs, p.batch.targets, g);
    benchmark::ClobberMemory();
  }
}

template <class S>
using M = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;

template <class S>
M<S> random_matrix(Index rows, Index cols) {
  const Matrix<double> d = Matrix<double>::Random(rows, cols);
  return d.unaryExpr([](double x) { return S(x); });
}

template <class S>
void gemms(benchmark::State& state) {
  const std::size_t L = widths.size() - 1;
  std::vector<M<S>> W(L), dW(L), X(L + 1), dX(L + 1);
  for (std::size_t k = 0; k < L; ++k) {
    W[k] = random_matrix<S>(widths[k + 1], widths[k]);
    dW[k] = M<S>::Zero(widths[k + 1], widths[k]);
  }
  for (std::size_t k = 0; k <= L; ++k) {
    X[k] = random_matrix<S>(widths[k], batch);
    dX[k] = random_matrix<S>(widths[k], batch);
  }
  for (auto _ : state) {
    for (std::size_t k = 0; k < L; ++k) X[k + 1].noalias() = W[k] * X[k];
    for (std::size_t k = L; k-- > 0;) {
      dW[k].noalias() = dX[k + 1] * X[k].transpose();
      dX[k].noalias() = W[k].transpose() * dX[k + 1];
    }
    benchmark::ClobberMemory();
  }
}

template <class S>
void hidden_tanh(benchmark::State& state) {
  M<S> H = random_matrix<S>(64, batch), Y(64, batch);
  for (auto _ : state) {
    for (int layer = 0; layer < 2; ++layer)
      for (Index i = 0; i < H.size(); ++i) Y(i) = tanh(H(i));
    benchmark::ClobberMemory();
  }
}

BENCHMARK(forward_backward)->Name("mp100/forward_backward")->Unit(benchmark::kMicrosecond)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(gemms<mp100>)->Name("mp100/gemms/mpfr")->Unit(benchmark::kMicrosecond);
BENCHMARK(gemms<cpp_bin_float_100>)->Name("mp100/gemms/cpp_bin_float")->Unit(benchmark::kMicrosecond);
BENCHMARK(hidden_tanh<mp100>)->Name("mp100/tanh/mpfr")->Unit(benchmark::kMicrosecond);
BENCHMARK(hidden_tanh<cpp_bin_float_100>)->Name("mp100/tanh/cpp_bin_float")->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
