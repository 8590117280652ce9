// The float/double tanh and its VJP over whole matrices (declared in layers/activations.hpp).
// Built with -fno-trapping-math (lib/CMakeLists.txt), which lets GCC turn selects into vector blends
// rather than branches that mispredict on the signs of a batch (measured on an earlier tanh loop here).
// The flag changes no result: it only lets the compiler assume floating-point exceptions are not
// trapped, which bpcheck never enables.
#include <algorithm>

#if defined(__SSE2__)
#include <emmintrin.h>  // SSE2: __m128, __m128d
#endif
#include <sleef.h>

#include "bpcheck/layers/activations.hpp"

namespace bpcheck::kernels {

namespace {

// 256 entries: 2 KiB of doubles per array, all of a chunk's arrays within L1, none on the heap.
constexpr Index chunk_size = 256;
template <class T>
using Chunk = Eigen::Array<T, Eigen::Dynamic, 1, Eigen::ColMajor, chunk_size, 1>;

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

// SLEEF's vectorised tanh (Debian's libsleef, 3.5-ulp class) for both rungs: within 1.7 ε over the
// accuracy test's sweep (checks/activation_accuracy_test.cpp), 1.8 ε in double over a denser one where
// the form −m/(2 + m) with Kahan's expm1 from Eigen's exp and log reached 4.0 ε, and 3–4× faster than
// that form (README, "The second round"). Eigen has no vectorised double tanh; its float one, a
// rational approximation, matched std::tanh bit for bit on 37% of sampled values, SLEEF's on 76%.
// SLEEF picks its SSE2, SSE4 or AVX2 code at run time, once. Every entry, the last few of a matrix and the single values below included,
// goes through the same vector call, so a value's tanh does not depend on where it stands: forward
// mode on dual<float>/dual<double> takes its values from the scalar forms (Tanh::value) and so
// computes exactly the rung's function.
#if defined(__SSE2__)
float tanh(float x) { return _mm_cvtss_f32(Sleef_tanhf4_u35(_mm_set1_ps(x))); }
double tanh(double x) { return _mm_cvtsd_f64(Sleef_tanhd2_u35(_mm_set1_pd(x))); }

void tanh(const float* x, float* y, Index size) {
  Index i = 0;
  for (; i + 4 <= size; i += 4) _mm_storeu_ps(y + i, Sleef_tanhf4_u35(_mm_loadu_ps(x + i)));
  for (; i < size; ++i) y[i] = tanh(x[i]);
}
void tanh(const double* x, double* y, Index size) {
  Index i = 0;
  for (; i + 2 <= size; i += 2) _mm_storeu_pd(y + i, Sleef_tanhd2_u35(_mm_loadu_pd(x + i)));
  for (; i < size; ++i) y[i] = tanh(x[i]);
}
#else
float tanh(float x) { return Sleef_tanhf_u35(x); }
double tanh(double x) { return Sleef_tanh_u35(x); }
void tanh(const float* x, float* y, Index size) {
  for (Index i = 0; i < size; ++i) y[i] = tanh(x[i]);
}
void tanh(const double* x, double* y, Index size) {
  for (Index i = 0; i < size; ++i) y[i] = tanh(x[i]);
}
#endif
void tanh_backward(const float* x, const float* dy, float* dx, Index size) { tanh_backward<float>(x, dy, dx, size); }
void tanh_backward(const double* x, const double* dy, double* dx, Index size) {
  tanh_backward<double>(x, dy, dx, size);
}

}  // namespace bpcheck::kernels
