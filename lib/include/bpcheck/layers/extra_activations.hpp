#pragma once
// More elementwise activations: elu, hardtanh, mish, swish with a fixed β, hardswish.
//
//   bpcheck::Elu<double> e(5, 1.0);                     // α = 1
//   bpcheck::Hardtanh<double> h(5, -1.0, 1.0);          // clamp to [min_val, max_val]
//   bpcheck::Mish<mp100> m(5);
//   bpcheck::Swish<float> s(5, 1.5f);                   // x σ(βx); β = 1 is silu
//   bpcheck::Hardswish<double> hs(5);                   // x relu6(x + 3)/6
//
// Each is sample independent with J_x = diag(f'(vec X)) and no parameters (ElementwiseLayer).
// Kinks take PyTorch's choice: elu'(0) = α (the x ≤ 0 branch), hardtanh' = 0 at both ends
// (PyTorch passes the gradient only strictly inside (min_val, max_val)), hardswish' at ±3 from the
// middle piece.
#include "bpcheck/layers/activations.hpp"

namespace bpcheck {

/// elu(x) = x for x > 0, α expm1(x) for x ≤ 0;  elu' = 1 or α eˣ.
/// expm1 rather than eˣ − 1 keeps the relative accuracy for small negative x.
template <class T>
class Elu : public ElementwiseLayer<Elu<T>, T> {
 public:
  Elu(Index width, T alpha) : ElementwiseLayer<Elu<T>, T>(width), alpha_(std::move(alpha)) {}
  std::string type_name() const { return "elu"; }
  const T& alpha() const { return alpha_; }
  T value(const T& x) const {
    using std::expm1;
    return x > T(0) ? x : T(alpha_ * expm1(x));
  }
  T derivative(const T& x, const T&) const {
    using std::exp;
    return x > T(0) ? T(1) : T(alpha_ * exp(x));
  }

 private:
  T alpha_;
};

/// hardtanh(x) = min(max(x, lo), hi);  hardtanh' = [lo < x < hi]: two kinks, at lo and at hi.
template <class T>
class Hardtanh : public ElementwiseLayer<Hardtanh<T>, T> {
 public:
  Hardtanh(Index width, T min_val, T max_val)
      : ElementwiseLayer<Hardtanh<T>, T>(width), lo_(std::move(min_val)), hi_(std::move(max_val)) {
    if (!(lo_ < hi_))
      throw input_error("hardtanh: min_val must be below max_val (got " + bpcheck::to_string(lo_) + " and " +
                        bpcheck::to_string(hi_) + ")");
  }
  std::string type_name() const { return "hardtanh"; }
  const T& min_val() const { return lo_; }
  const T& max_val() const { return hi_; }
  // At an end the value is the constant, not x: on dual numbers forward mode then carries the
  // derivative backward states there (0), so every route takes the same side of the kink. NaN passes.
  T value(const T& x) const { return x <= lo_ ? lo_ : (x >= hi_ ? hi_ : x); }
  T derivative(const T& x, const T&) const { return x > lo_ && x < hi_ ? T(1) : T(0); }

 private:
  T lo_, hi_;
};

/// mish(x) = x tanh(s), s = softplus(x) = max(x, 0) + log1p(e^{−|x|});
/// mish' = tanh(s) + x sech²(s) σ(x)   (ds/dx = σ(x)).
/// sech²(s) = 4e^{−2s}/(1 + e^{−2s})² (s ≥ 0) keeps its relative accuracy for large x, where
/// 1 − tanh²(s) cancels to 0.
template <class T>
class Mish : public ElementwiseLayer<Mish<T>, T> {
 public:
  using ElementwiseLayer<Mish<T>, T>::ElementwiseLayer;
  std::string type_name() const { return "mish"; }
  T value(const T& x) const {
    using std::tanh;
    return x * tanh(softplus(x));
  }
  T derivative(const T& x, const T&) const {
    using std::exp;
    using std::tanh;
    const T s = softplus(x);
    const T e = exp(T(-2) * s);
    const T d = T(1) + e;
    return tanh(s) + x * (T(4) * e / (d * d)) * stable_sigmoid(x);
  }

 private:
  static T softplus(const T& x) {
    using std::abs;
    using std::exp;
    using std::log1p;
    return (x > T(0) ? x : T(0)) + log1p(exp(-abs(x)));
  }
};

/// swish(x) = x σ(βx);  swish' = σ(βx)(1 + βx σ(−βx))   (σ(−βx) = 1 − σ(βx), without the cancellation).
/// β is a fixed option (not a parameter): β = 1 is silu. A learnable β is the out-of-tree example
/// examples/my_layer/learnable_swish.hpp.
template <class T>
class Swish : public ElementwiseLayer<Swish<T>, T> {
 public:
  Swish(Index width, T beta) : ElementwiseLayer<Swish<T>, T>(width), beta_(std::move(beta)) {}
  std::string type_name() const { return "swish"; }
  const T& beta() const { return beta_; }
  T value(const T& x) const { return x * stable_sigmoid(T(beta_ * x)); }
  T derivative(const T& x, const T&) const {
    const T bx = beta_ * x;
    return stable_sigmoid(bx) * (T(1) + bx * stable_sigmoid(T(-bx)));
  }

 private:
  T beta_;
};

/// hardswish(x) = x·relu6(x + 3)/6: 0 for x < −3, x for x > 3, x(x + 3)/6 between;
/// hardswish' = 0, 1 or (2x + 3)/6. Two kinks, at −3 and at 3; as PyTorch, the middle piece holds
/// both ends (hardswish'(−3) = −1/2, hardswish'(3) = 3/2).
/// The value at an end comes from the middle piece too, so forward mode on dual numbers carries the
/// derivative backward states there and every route takes the same side of the kink. 2x + 3 and
/// x + 3 are exact in every rung near −3/2 and −3, where they cancel. NaN passes.
template <class T>
class Hardswish : public ElementwiseLayer<Hardswish<T>, T> {
 public:
  using ElementwiseLayer<Hardswish<T>, T>::ElementwiseLayer;
  std::string type_name() const { return "hardswish"; }
  T value(const T& x) const { return x < T(-3) ? T(0) : (x > T(3) ? x : T(x * (x + T(3)) / T(6))); }
  T derivative(const T& x, const T&) const {
    return x < T(-3) ? T(0) : (x > T(3) ? T(1) : T((T(2) * x + T(3)) / T(6)));
  }
};

static_assert(LayerWithJacobians<Elu<double>>, "elu must satisfy the Layer concept with Jacobians");
static_assert(LayerWithJacobians<Hardtanh<double>>, "hardtanh must satisfy the Layer concept with Jacobians");
static_assert(LayerWithJacobians<Mish<double>>, "mish must satisfy the Layer concept with Jacobians");
static_assert(LayerWithJacobians<Swish<double>>, "swish must satisfy the Layer concept with Jacobians");
static_assert(LayerWithJacobians<Hardswish<double>>, "hardswish must satisfy the Layer concept with Jacobians");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_EXTRA_ACTIVATIONS_CLASSES(X, T) \
  X(ElementwiseLayer<Elu<T>, T>)                \
  X(ElementwiseLayer<Hardtanh<T>, T>)           \
  X(ElementwiseLayer<Mish<T>, T>)               \
  X(ElementwiseLayer<Swish<T>, T>)              \
  X(ElementwiseLayer<Hardswish<T>, T>)
#define BPCHECK_EXTERN_EXTRA_ACTIVATIONS(T) BPCHECK_EXTRA_ACTIVATIONS_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_EXTRA_ACTIVATIONS)
#undef BPCHECK_EXTERN_EXTRA_ACTIVATIONS

}  // namespace bpcheck
