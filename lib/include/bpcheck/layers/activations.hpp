#pragma once
// Elementwise activations: y = f(x) applied to every entry.
//
//   bpcheck::Tanh<double> t(5);                         // width 5, no parameters
//   bpcheck::LeakyRelu<mp100> l(5, mp100("0.01"));      // negative slope, exact in mp100
//   bpcheck::Gelu<float> g(5, bpcheck::GeluApproximation::tanh);
//
// Every activation is sample independent with J_x = diag(f'(vec X)) and no parameters, so the
// layer mechanics live once in ElementwiseLayer; each activation states f and f' with the stable
// formula it uses. Kinks take PyTorch's one-sided choice (relu'(0) = 0, leaky_relu'(0) = slope).
#include <cmath>
#include <concepts>

#include <limits>

#include "bpcheck/layer.hpp"

namespace bpcheck {

namespace kernels {
/// Y = tanh(X) and dX = dY ⊙ sech²(X) on `size` contiguous entries, float and double (defined in
/// lib/src/tanh_kernels.cpp, vectorised; Tanh's whole-matrix forms call them).
void tanh(const float* x, float* y, Index size);
void tanh(const double* x, double* y, Index size);
/// tanh of one value by the same code as the whole-matrix form, bit for bit.
float tanh(float x);
double tanh(double x);
void tanh_backward(const float* x, const float* dy, float* dx, Index size);
void tanh_backward(const double* x, const double* dy, double* dx, Index size);
}  // namespace kernels

/// Layer mechanics for y = f(x) elementwise; Derived supplies value(x) and derivative(x, y), where y is
/// value(x) as forward computed it (an activation may take f' from either).
template <class Derived, class T>
class ElementwiseLayer {
 public:
  using scalar_type = T;

  explicit ElementwiseLayer(Index width) : n_(width) {
    if (n_ <= 0) throw input_error("activation: width must be positive, got " + std::to_string(n_));
  }

  Index input_size() const { return n_; }
  Index output_size() const { return n_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return Vector<T>(0); }
  void set_parameters(const Vector<T>& theta) {
    if (theta.size() != 0) throw input_error(self().type_name() + ": takes no parameters");
  }

  /// Y = f(X). An activation may also state f and f' on a whole matrix (value_block,
  /// derivative_block) where that is faster than one entry at a time; the entrywise forms stay the
  /// reference on the other rungs.
  Matrix<T> forward(const Matrix<T>& X) const {
    expect_rows(X, n_, self().type_name());
    if constexpr (requires(const Derived& d) { d.value_block(X); }) return self().value_block(X);
    else return X.unaryExpr([this](const T& x) { return self().value(x); });
  }

  /// dX = f'(X) ⊙ dY (an activation may state it on the whole matrix as backward_block(X, dY))
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>>) const {
    if constexpr (requires(const Derived& d) { d.backward_block(X, dY); }) {
      if (dY.rows() != X.rows() || dY.cols() != X.cols())
        throw input_error(self().type_name() + ": dY is " + std::to_string(dY.rows()) + "×" +
                          std::to_string(dY.cols()) + ", X is " + std::to_string(X.rows()) + "×" +
                          std::to_string(X.cols()));
      return self().backward_block(X, dY);
    } else {
      return dY.cwiseProduct(derivatives(X, Y));
    }
  }

  /// J_x = diag(f'(vec X)), on the batch as well as per sample.
  Matrix<T> jacobian_input(const Matrix<T>& X) const {
    const Matrix<T> D = derivatives(X, forward(X));
    return Eigen::Map<const Vector<T>>(D.data(), D.size()).asDiagonal();
  }

  /// No parameters: an out·B × 0 matrix.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const {
    expect_rows(X, n_, self().type_name());
    return Matrix<T>(n_ * X.cols(), 0);
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
  Matrix<T> derivatives(const Matrix<T>& X, const Matrix<T>& Y) const {
    if constexpr (requires(const Derived& d) { d.derivative_block(X, Y); }) return self().derivative_block(X, Y);
    else return X.binaryExpr(Y, [this](const T& x, const T& y) { return self().derivative(x, y); });
  }
  Index n_;
};

/// relu(x) = max(x, 0);  relu'(x) = [x > 0]
template <class T>
class Relu : public ElementwiseLayer<Relu<T>, T> {
 public:
  using ElementwiseLayer<Relu<T>, T>::ElementwiseLayer;
  std::string type_name() const { return "relu"; }
  T value(const T& x) const { return x > T(0) ? x : T(0); }
  T derivative(const T& x, const T&) const { return x > T(0) ? T(1) : T(0); }
};

/// leaky_relu(x) = x for x > 0, a·x otherwise;  derivative 1 or a
template <class T>
class LeakyRelu : public ElementwiseLayer<LeakyRelu<T>, T> {
 public:
  LeakyRelu(Index width, T negative_slope)
      : ElementwiseLayer<LeakyRelu<T>, T>(width), a_(std::move(negative_slope)) {}
  std::string type_name() const { return "leaky_relu"; }
  const T& negative_slope() const { return a_; }
  T value(const T& x) const { return x > T(0) ? x : T(a_ * x); }
  T derivative(const T& x, const T&) const { return x > T(0) ? T(1) : a_; }

 private:
  T a_;
};

/// σ(x) = 1/(1 + e^−x) for x ≥ 0 and e^x/(1 + e^x) for x < 0 (no overflow of e^−x);
/// σ' = σ(x)σ(−x): the same as σ(1 − σ), but 1 − σ(x) cancels for large x where σ(−x) does not.
template <class T>
T stable_sigmoid(const T& x) {
  using std::exp;
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

template <class T>
class Sigmoid : public ElementwiseLayer<Sigmoid<T>, T> {
 public:
  using ElementwiseLayer<Sigmoid<T>, T>::ElementwiseLayer;
  std::string type_name() const { return "sigmoid"; }
  T value(const T& x) const { return stable_sigmoid(x); }
  T derivative(const T& x, const T& y) const { return y * stable_sigmoid(T(-x)); }
};

/// eʸ for y ≤ 0 by Eigen's vectorised exp, except below T's smallest normal number, where Eigen clamps
/// y and returns about that number (sech²(1002) came out 1e-308 in double, not 0, and the rest of the
/// network multiplied the error by 1e6): there, rarely, std::exp gives the subnormal or 0 that IEEE
/// arithmetic rounds eʸ to.
template <class T, class A>
A tanh_underflow_exp(const A& y) {
  static const T lowest = std::log(std::numeric_limits<T>::min());
  A e = y.exp();
  for (Index i = 0; i < y.size(); ++i)
    if (y(i) < lowest) e(i) = std::exp(y(i));
  return e;
}

/// tanh' = sech²(x) = 4e^{−2|x|}/(1 + e^{−2|x|})², which keeps its relative accuracy in saturation
/// where 1 − tanh² cancels to 0; 1 − y² for |x| ≤ 1/2, where it does not.
template <class T>
class Tanh : public ElementwiseLayer<Tanh<T>, T> {
 public:
  using ElementwiseLayer<Tanh<T>, T>::ElementwiseLayer;
  std::string type_name() const { return "tanh"; }
  T value(const T& x) const {
    using std::tanh;
    if constexpr (std::is_same_v<T, dual<float>> || std::is_same_v<T, dual<double>>) {
      // Forward mode on float/double takes its values from the rung's own tanh (kernels::tanh, bit for
      // bit the whole-matrix form), so it differentiates the very function the rung computes: where the
      // rung's tanh ties two values (and a max pool after it takes one), its duals tie them too.
      T y = tanh(x);
      y.v = kernels::tanh(x.v);
      return y;
    } else {
      return tanh(x);
    }
  }
  T derivative(const T& x, const T& y) const {
    using std::abs;
    using std::exp;
    // In mp100, (1 − y)(1 + y) from the forward's y, where its relative error, about ε·e^{2|x|}/2, stays
    // under 1e-82: MPFR's exp costs as much as its tanh (bench/bench_mp100.cpp), so this halves the
    // transcendental work of tanh's backward.
    if constexpr (std::is_same_v<T, mp100>)
      if (abs(x) <= 20) return (T(1) - y) * (T(1) + y);
    // Near 0, 1 − y² (y² < 1/4 there: nothing cancels): on dual numbers its derivative −2y·ẏ keeps its
    // digits, where 4ė(1 − e)/(1 + e)³ rounds e = e^{−2|x|} to 1 at |x| ≈ 1e-8 in float and gives 0 for
    // the exact −2x, and (1 − y)(1 + y)'s is ẏ(1 − y) − ẏ(1 + y), which cancels (the second-order check
    // runs this on dual<T>).
    if (abs(x) <= T(0.5)) return T(1) - y * y;
    const T e = exp(T(-2) * abs(x));
    const T d = T(1) + e;
    return T(4) * e / (d * d);
  }

  // float and double: whole-matrix forms (lib/src/tanh_kernels.cpp), since std::tanh and Eigen's double
  // tanh go one entry at a time (bench/bench_mlp.cpp measures the difference): SLEEF's vectorised tanh.
  Matrix<T> value_block(const Matrix<T>& X) const
    requires std::floating_point<T>
  {
    Matrix<T> Y(X.rows(), X.cols());
    kernels::tanh(X.data(), Y.data(), X.size());
    return Y;
  }
  /// sech²(x) = 4e/(1 + e)², e = e^{−2|x|}, as above with a vectorised exp.
  Matrix<T> derivative_block(const Matrix<T>& X, const Matrix<T>&) const
    requires std::floating_point<T>
  {
    const auto e = tanh_underflow_exp<T>(Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>(T(-2) * X.array().abs()));
    return (T(4) * e / ((T(1) + e) * (T(1) + e))).matrix();
  }
  /// dX = dY ⊙ sech²(X), derivative_block's formula without a batch-sized temporary.
  Matrix<T> backward_block(const Matrix<T>& X, const Matrix<T>& dY) const
    requires std::floating_point<T>
  {
    Matrix<T> dX(X.rows(), X.cols());
    kernels::tanh_backward(X.data(), dY.data(), dX.data(), X.size());
    return dX;
  }
};

/// softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|});  softplus' = σ(x).
/// (PyTorch switches to the identity above x = 20; this formula is exact there too.)
template <class T>
class Softplus : public ElementwiseLayer<Softplus<T>, T> {
 public:
  using ElementwiseLayer<Softplus<T>, T>::ElementwiseLayer;
  std::string type_name() const { return "softplus"; }
  T value(const T& x) const {
    using std::abs;
    using std::exp;
    using std::log1p;
    return (x > T(0) ? x : T(0)) + log1p(exp(-abs(x)));
  }
  T derivative(const T& x, const T&) const { return stable_sigmoid(x); }
};

enum class GeluApproximation { none, tanh };

/// "none": gelu(x) = x Φ(x), Φ(x) = erfc(−x/√2)/2;  gelu' = Φ(x) + x φ(x), φ(x) = e^{−x²/2}/√(2π).
/// "tanh": gelu(x) = x/2 (1 + tanh z) = x σ(2z), z = k(x + c x³), k = √(2/π), c = 0.044715;
///         gelu' = σ(2z) + 2x σ(2z) σ(−2z) k (1 + 3c x²).
/// erfc(−x/√2) rather than 1 + erf(x/√2), and σ(2z) rather than (1 + tanh z)/2, keep the relative
/// accuracy for negative x, where the textbook forms cancel to 0.
template <class T>
class Gelu : public ElementwiseLayer<Gelu<T>, T> {
 public:
  Gelu(Index width, GeluApproximation approximate)
      : ElementwiseLayer<Gelu<T>, T>(width), approximate_(approximate) {
    using std::sqrt;
    inv_sqrt2_ = T(1) / sqrt(T(2));
    inv_sqrt_2pi_ = T(1) / sqrt(T(2) * pi<T>());
    k_ = sqrt(T(2) / pi<T>());
    c_ = from_string<T>("0.044715");  // nearest in T (10⁶ overflows fp16: 44715/10⁶ would be 0 there)
  }
  std::string type_name() const { return "gelu"; }
  GeluApproximation approximate() const { return approximate_; }
  T value(const T& x) const {
    using std::erfc;
    if (approximate_ == GeluApproximation::none) return x * erfc(-x * inv_sqrt2_) / T(2);
    return x * stable_sigmoid(T(T(2) * z(x)));
  }
  T derivative(const T& x, const T&) const {
    using std::erfc;
    using std::exp;
    if (approximate_ == GeluApproximation::none)
      return erfc(-x * inv_sqrt2_) / T(2) + x * inv_sqrt_2pi_ * exp(-x * x / T(2));
    const T two_z = T(2) * z(x);
    const T s = stable_sigmoid(two_z);
    return s + T(2) * x * s * stable_sigmoid(T(-two_z)) * k_ * (T(1) + T(3) * c_ * x * x);
  }

 private:
  T z(const T& x) const { return k_ * (x + c_ * x * x * x); }
  GeluApproximation approximate_;
  T inv_sqrt2_, inv_sqrt_2pi_, k_, c_;
};

/// silu(x) = x σ(x);  silu' = σ(x)(1 + x σ(−x))   (σ(−x) = 1 − σ(x), without the cancellation)
template <class T>
class Silu : public ElementwiseLayer<Silu<T>, T> {
 public:
  using ElementwiseLayer<Silu<T>, T>::ElementwiseLayer;
  std::string type_name() const { return "silu"; }
  T value(const T& x) const { return x * stable_sigmoid(x); }
  T derivative(const T& x, const T&) const {
    return stable_sigmoid(x) * (T(1) + x * stable_sigmoid(T(-x)));
  }
};

static_assert(LayerWithJacobians<Tanh<double>>, "activations must satisfy the Layer concept");
static_assert(LayerWithJacobians<Gelu<double>>, "activations must satisfy the Layer concept");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_ACTIVATIONS_CLASSES(X, T) \
  X(ElementwiseLayer<Relu<T>, T>)         \
  X(ElementwiseLayer<LeakyRelu<T>, T>)    \
  X(ElementwiseLayer<Sigmoid<T>, T>)      \
  X(ElementwiseLayer<Tanh<T>, T>)         \
  X(ElementwiseLayer<Softplus<T>, T>)     \
  X(ElementwiseLayer<Gelu<T>, T>)         \
  X(ElementwiseLayer<Silu<T>, T>)
#define BPCHECK_EXTERN_ACTIVATIONS(T) BPCHECK_ACTIVATIONS_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_ACTIVATIONS)
#undef BPCHECK_EXTERN_ACTIVATIONS

}  // namespace bpcheck
