// The float/double tanh and its VJP over whole matrices (declared in layers/activations.hpp).
// Built with -fno-trapping-math (lib/CMakeLists.txt): without it GCC keeps the selects of the loop below
// as branches, which mispredict on the signs of a batch (perf: most of tanh's time); with it they
// become vector blends. The flag changes no result: it only lets the compiler assume floating-point
// exceptions are not trapped, which bpcheck never enables.
#include <algorithm>

#include "bpcheck/layers/activations.hpp"

namespace bpcheck::kernels {

namespace {

// 256 entries: 2 KiB of doubles per array, all of a chunk's arrays within L1, none on the heap.
constexpr Index chunk_size = 256;
template <class T>
using Chunk = Eigen::Array<T, Eigen::Dynamic, 1, Eigen::ColMajor, chunk_size, 1>;

// tanh|x| = −m/(2 + m) with m = expm1(−2|x|) ∈ (−1, 0]: no cancellation, as 2 + m ≥ 1. expm1 is
// Kahan's form from exp and log, expm1(y) = (u − 1)·y/log u with u = eʸ (exact when u = 1: y; when
// u − 1 = −1: −1), accurate to a few ulp; checks/activation_accuracy_test.cpp bounds the error.
template <class T>
void tanh_kahan(const T* x, T* out, Index size) {
  for (Index at = 0; at < size; at += chunk_size) {
    const Index n = std::min(chunk_size, size - at);
    const Chunk<T> y = T(-2) * Eigen::Map<const Chunk<T>>(x + at, n).abs();
    const Chunk<T> u = y.exp();
    const Chunk<T> log_u = u.log();
    const T* yp = y.data();
    const T* up = u.data();
    const T* lp = log_u.data();
    const T* xp = x + at;
    T* op = out + at;
    for (Index i = 0; i < n; ++i) {
      const T um1 = up[i] - T(1);
      T m = um1 * yp[i] / lp[i];  // 0/0 when u = 1: replaced by y below
      m = um1 == T(-1) ? T(-1) : m;
      m = up[i] == T(1) ? yp[i] : m;
      const T t = -m / (T(2) + m);
      op[i] = xp[i] < T(0) ? -t : t;
    }
  }
}

// dX = dY ⊙ sech²(X), sech²(x) = 4e/(1 + e)², e = e^{−2|x|}: Tanh::derivative_block's formula, with
// e = 0 below the smallest normal number (tanh_underflow_exp).
template <class T>
void tanh_backward(const T* x, const T* dy, T* dx, Index size) {
  for (Index at = 0; at < size; at += chunk_size) {
    const Index n = std::min(chunk_size, size - at);
    const Chunk<T> e = tanh_underflow_exp<T>(Chunk<T>(T(-2) * Eigen::Map<const Chunk<T>>(x + at, n).abs()));
    const Chunk<T> sech2 = T(4) * e / ((T(1) + e) * (T(1) + e));
    Eigen::Map<Chunk<T>>(dx + at, n) = Eigen::Map<const Chunk<T>>(dy + at, n) * sech2;
  }
}

}  // namespace

// float: Eigen's own vectorised tanh (a rational approximation, clamped to ±1 beyond |x| ≈ 7.9) is
// within 3 ε of the exact value over the accuracy test's sweep and about 4× faster than tanh_kahan
// on float; Eigen has no vectorised double tanh, so double keeps Kahan's form.
void tanh(const float* x, float* y, Index size) {
  Eigen::Map<Eigen::ArrayXf>(y, size) = Eigen::Map<const Eigen::ArrayXf>(x, size).tanh();
}
void tanh(const double* x, double* y, Index size) { tanh_kahan(x, y, size); }
void tanh_backward(const float* x, const float* dy, float* dx, Index size) { tanh_backward<float>(x, dy, dx, size); }
void tanh_backward(const double* x, const double* dy, double* dx, Index size) {
  tanh_backward<double>(x, dy, dx, size);
}

}  // namespace bpcheck::kernels
