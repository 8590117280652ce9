#pragma once
// Deliberately broken layers: each wraps or derives from a built-in layer and plants one classic
// backprop bug (or one numerical flaw) that the verification engine must report.
//
//   auto report = bpcheck::verify_layer(bpcheck::mutants::MutantFactory{bpcheck::mutants::Mutant::flipped_sign});
//   // report.passed() == false; the worst entry of `backward vs oracle` [mp100] is dW[1,2]
//
// Every mutant is reachable through one factory type (MutantFactory, returning AnyLayer<T>), so the
// engine is instantiated once for all of them rather than once per mutant: mp100 code is slow to compile.
#include <string>
#include <type_traits>
#include <vector>

#include "bpcheck/layer.hpp"
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/verify/verify.hpp"

namespace bpcheck::mutants {

// ---- wrong gradients ----------------------------------------------------------------------------

/// Bug: transposed weight in the input gradient, dX = W dY instead of Wᵀ dY (square W, so shapes fit).
template <class T>
class TransposedWeight : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (dX = W dY)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    (void)Dense<T>::backward(X, Y, dY, dtheta);
    return Matrix<T>(this->W()) * dY;
  }
};

/// Bug: missing activation-derivative factor, dX = dY instead of tanh'(X) ⊙ dY.
template <class T>
class MissingDerivative : public Tanh<T> {
 public:
  using Tanh<T>::Tanh;
  std::string type_name() const { return "tanh (no f' factor)"; }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY;
  }
};

/// Bug: input gradient off by a relative 1e-8 (below float's resolution, far above double's).
template <class T>
class RelativeOffset : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (dX · (1 + 1e-8))"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Matrix<T> dX = Dense<T>::backward(X, Y, dY, dtheta);
    return dX + dX / T(100000000);
  }
};

/// Bug: wrong sign in one entry, dW[1,2] (row 1, column 2 of W) gets −(dY Xᵀ)[1,2].
template <class T>
class FlippedSign : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (sign of dW[1,2])"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Matrix<T> dX = Dense<T>::backward(X, Y, dY, dtheta);
    const Index rows = this->output_size();
    const T entry = (dY * X.transpose())(1, 2);
    dtheta(2 * rows + 1) -= T(2) * entry;  // vec(W) is column-major: W[1,2] sits at 2·rows + 1
    return dX;
  }
};

/// Bug: bias gradient not summed over the batch, db += dY[:, 0] (only the first sample's).
template <class T>
class BiasFirstSample : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (db from sample 0 only)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Index out = this->output_size(), in = this->input_size();
    Eigen::Map<Matrix<T>> dW(dtheta.data(), out, in);
    dW.noalias() += dY * X.transpose();
    dtheta.segment(out * in, out) += dY.col(0);
    return Matrix<T>(this->W()).transpose() * dY;
  }
};

/// Bug: derivative evaluated at the output instead of the input, σ'(Y) in place of σ'(X).
template <class T>
class DerivativeAtOutput : public Sigmoid<T> {
 public:
  using Sigmoid<T>::Sigmoid;
  std::string type_name() const { return "sigmoid (σ' at Y)"; }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(Y.unaryExpr([this](const T& y) { return this->derivative(y, stable_sigmoid(y)); }));
  }
};

/// Bug: dθ overwritten instead of accumulated (dW = dY Xᵀ, db = dY 1): right only when dθ starts at 0.
template <class T>
class OverwrittenDtheta : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (dθ = instead of +=)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Index out = this->output_size(), in = this->input_size();
    Eigen::Map<Matrix<T>> dW(dtheta.data(), out, in);
    dW.noalias() = dY * X.transpose();
    dtheta.segment(out * in, out) = dY.rowwise().sum();
    return Matrix<T>(this->W()).transpose() * dY;
  }
};

/// Bug: wrong only in float, a float fast path that forgets the bias gradient.
template <class T>
class WrongInFloat : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (float path drops db)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    return Dense<T>::backward(X, Y, dY, dtheta);
  }
};
template <>
inline Matrix<float> WrongInFloat<float>::backward(const Matrix<float>& X, const Matrix<float>&,
                                                   const Matrix<float>& dY, Eigen::Ref<Vector<float>> dtheta) const {
  Eigen::Map<Matrix<float>> dW(dtheta.data(), output_size(), input_size());
  dW.noalias() += dY * X.transpose();
  return Matrix<float>(W()).transpose() * dY;
}

/// Bug: wrong only for batch > 1, tanh' taken at the first sample's inputs for every sample.
template <class T>
class WrongForBatch : public Tanh<T> {
 public:
  using Tanh<T>::Tanh;
  std::string type_name() const { return "tanh (f' of sample 0)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    const Matrix<T> d0 = X.col(0).unaryExpr([this](const T& x) { return this->derivative(x, x); });
    return dY.cwiseProduct(d0.replicate(1, X.cols()));
  }
};

// ---- flaws that single checks must see ------------------------------------------------------------

/// Width and no parameters; states no explicit Jacobians, so only the checks under test can object.
template <class T>
class NoParameters {
 public:
  using scalar_type = T;
  explicit NoParameters(Index width) : n_(width) {}
  Index input_size() const { return n_; }
  Index output_size() const { return n_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return Vector<T>(0); }
  void set_parameters(const Vector<T>& theta) {
    if (theta.size() != 0) throw input_error("takes no parameters");
  }

 private:
  Index n_;
};

/// Flaw: forward couples samples, Y = X + m 1ᵀ with m the batch mean of X, yet the layer does not
/// declare sample_independent = false. backward is the right VJP: dX = dY + (dY 1 / B) 1ᵀ.
template <class T>
class CoupledSamples : public NoParameters<T> {
 public:
  using NoParameters<T>::NoParameters;
  std::string type_name() const { return "batch-mean shift (claims sample independence)"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    const Vector<T> m = X.rowwise().sum() / T(X.cols());
    return X.colwise() + m;
  }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    const Vector<T> s = dY.rowwise().sum() / T(dY.cols());
    return dY.colwise() + s;
  }
};

/// Flaw: forward throws in float only (Stan's rule: every rung must throw, or none).
template <class T>
class ThrowsInFloat : public Tanh<T> {
 public:
  using Tanh<T>::Tanh;
  std::string type_name() const { return "tanh (throws in float)"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    if constexpr (std::is_same_v<T, float>) throw error("float is not supported by this layer");
    return Tanh<T>::forward(X);
  }
};

/// Flaw: softmax without the max shift, s = eˣ / Σ eˣ: e^x overflows in float for x > 88.7.
/// backward is the right VJP dx = s ⊙ (dy − (sᵀdy) 1).
template <class T>
class NaiveSoftmax : public NoParameters<T> {
 public:
  using NoParameters<T>::NoParameters;
  std::string type_name() const { return "softmax (no max shift)"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    using std::exp;
    Matrix<T> E = X.unaryExpr([](const T& x) { return T(exp(x)); });
    for (Index c = 0; c < E.cols(); ++c) E.col(c) /= T(E.col(c).sum());
    return E;
  }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    const Matrix<T> dots = Y.cwiseProduct(dY).colwise().sum();
    return Y.cwiseProduct(dY - dots.replicate(Y.rows(), 1));
  }
};

/// Flaw: naive softplus log(1 + eˣ) with derivative eˣ / (1 + eˣ): both overflow in float for x > 88.7.
template <class T>
class NaiveSoftplus : public NoParameters<T> {
 public:
  using NoParameters<T>::NoParameters;
  std::string type_name() const { return "softplus (log(1 + exp x))"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    using std::exp;
    using std::log;
    return X.unaryExpr([](const T& x) { return T(log(T(1) + exp(x))); });
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    using std::exp;
    return dY.cwiseProduct(X.unaryExpr([](const T& x) { return T(exp(x) / (T(1) + exp(x))); }));
  }
};

/// Flaw: forward not transparent to dual numbers: y = x · value_of(x) computes x² but drops the
/// tangent of one factor (as a cast to double would; value_of keeps mp100's digits so that finite
/// differences stay exact). backward is the true 2x dy, so the dual oracle and the differences disagree.
template <class T>
class TangentDropped : public NoParameters<T> {
 public:
  using NoParameters<T>::NoParameters;
  std::string type_name() const { return "square (tangent dropped)"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    return X.unaryExpr([](const T& x) { return T(x * T(value_of(x))); });
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return T(2) * dY.cwiseProduct(X);
  }
};

/// Bug: the stated J_θ takes vec(W) row-major: ∂y_i/∂W(i,j) = x_j written at column i·in + j instead of
/// j·units + i. backward is right.
template <class T>
class WrongJacobian : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (J_θ row-major)"; }
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const {
    Matrix<T> J = Dense<T>::jacobian_parameters(X);
    const Index out = this->output_size(), in = this->input_size();
    J.leftCols(out * in).setZero();
    for (Index s = 0; s < X.cols(); ++s)
      for (Index i = 0; i < out; ++i)
        for (Index j = 0; j < in; ++j) J(s * out + i, i * in + j) = X(j, s);
    return J;
  }
};

// ---- one factory for all ----------------------------------------------------------------------

enum class Mutant {
  transposed_weight,
  missing_derivative,
  relative_offset,
  flipped_sign,
  bias_first_sample,
  derivative_at_output,
  overwritten_dtheta,
  wrong_in_float,
  wrong_for_batch,
  coupled_samples,
  throws_in_float,
  naive_softmax,
  naive_softplus,
  tangent_dropped,
  wrong_jacobian,
};

/// Builds a mutant on T at fixed sizes: square 3 × 3 for the transposed weight, dense 4 → 3
/// otherwise, width 4 for the elementwise ones.
template <class T>
AnyLayer<T> make_mutant(Mutant m) {
  switch (m) {
    case Mutant::transposed_weight: return TransposedWeight<T>(3, 3);
    case Mutant::missing_derivative: return MissingDerivative<T>(4);
    case Mutant::relative_offset: return RelativeOffset<T>(4, 3);
    case Mutant::flipped_sign: return FlippedSign<T>(4, 3);
    case Mutant::bias_first_sample: return BiasFirstSample<T>(4, 3);
    case Mutant::derivative_at_output: return DerivativeAtOutput<T>(4);
    case Mutant::overwritten_dtheta: return OverwrittenDtheta<T>(4, 3);
    case Mutant::wrong_in_float: return WrongInFloat<T>(4, 3);
    case Mutant::wrong_for_batch: return WrongForBatch<T>(4);
    case Mutant::coupled_samples: return CoupledSamples<T>(3);
    case Mutant::throws_in_float: return ThrowsInFloat<T>(4);
    case Mutant::naive_softmax: return NaiveSoftmax<T>(4);
    case Mutant::naive_softplus: return NaiveSoftplus<T>(4);
    case Mutant::tangent_dropped: return TangentDropped<T>(4);
    case Mutant::wrong_jacobian: return WrongJacobian<T>(4, 3);
  }
  throw error("unknown mutant");
}

/// A verify_layer factory for any mutant.
struct MutantFactory {
  Mutant which;
  template <class T>
  AnyLayer<T> operator()(rung<T>) const {
    return make_mutant<T>(which);
  }
};

}  // namespace bpcheck::mutants
