#pragma once
// The deliberately broken layers themselves (see mutants.hpp for the factory tests use). Only the
// mutants_*.cpp files include this header: each mutant is compiled once per rung, there.
#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "bpcheck/layer.hpp"
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/attention.hpp"
#include "bpcheck/layers/conv.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/embedding.hpp"
#include "bpcheck/layers/norms.hpp"
#include "bpcheck/layers/pool.hpp"
#include "bpcheck/layers/softmax.hpp"
#include "bpcheck/verify/verify.hpp"
#include "mutants.hpp"

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
    const Matrix<T> d0 =
        X.col(0).unaryExpr([this](const T& x) { return this->derivative(x, this->value(x)); });
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

/// Bug: input gradient off by a relative 1e-9 (below float's resolution, far above double's).
template <class T>
class RelativeOffsetSmall : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (dX · (1 + 1e-9))"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Matrix<T> dX = Dense<T>::backward(X, Y, dY, dtheta);
    return dX + dX / T(1000000000);
  }
};

/// Bug: parameter gradient divided by the batch size (the loss's mean applied a second time):
/// dW += dY Xᵀ / B, db += dY 1 / B. Right for a batch of one.
template <class T>
class DividedByBatch : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (dθ / batch)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Index out = this->output_size(), in = this->input_size();
    const T B(X.cols());
    Eigen::Map<Matrix<T>> dW(dtheta.data(), out, in);
    dW.noalias() += dY * X.transpose() / B;
    dtheta.segment(out * in, out) += dY.rowwise().sum() / B;
    return Matrix<T>(this->W()).transpose() * dY;
  }
};

/// Bug: bias gradient never accumulated (db stays as it was).
template <class T>
class MissingBiasGradient : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (no db)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    Eigen::Map<Matrix<T>> dW(dtheta.data(), this->output_size(), this->input_size());
    dW.noalias() += dY * X.transpose();
    return Matrix<T>(this->W()).transpose() * dY;
  }
};

/// Bug: off-by-one index, dX(i, s) = dY(i, s) tanh'(X(i + 1, s)) (wrapping): right for width 1.
template <class T>
class OffByOne : public Tanh<T> {
 public:
  using Tanh<T>::Tanh;
  std::string type_name() const { return "tanh (f' of the next entry)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    Matrix<T> dX(X.rows(), X.cols());
    for (Index s = 0; s < X.cols(); ++s)
      for (Index i = 0; i < X.rows(); ++i) {
        const T& x = X((i + 1) % X.rows(), s);
        dX(i, s) = dY(i, s) * this->derivative(x, this->value(x));
      }
    return dX;
  }
};

/// Bug: wrong only for negative inputs, leaky_relu'(x) = 1 for x < 0 (slope forgotten).
template <class T>
class WrongForNegative : public LeakyRelu<T> {
 public:
  explicit WrongForNegative(Index width) : LeakyRelu<T>(width, T(1) / T(8)) {}
  std::string type_name() const { return "leaky_relu (slope 1 for x < 0)"; }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY;
  }
};

/// Bug: softmax Jacobian diagonal only, dx = s ⊙ (1 − s) ⊙ dy (the −s_i s_j terms dropped).
template <class T>
class SoftmaxDiagonalOnly : public Softmax<T> {
 public:
  using Softmax<T>::Softmax;
  std::string type_name() const { return "softmax (diagonal J only)"; }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(Y.cwiseProduct((Matrix<T>::Ones(Y.rows(), Y.cols()) - Y)));
  }
};

/// Bug: log_softmax backward as if J = I: dx = dy (the −s (1ᵀdy) term dropped).
template <class T>
class LogSoftmaxMissingSum : public LogSoftmax<T> {
 public:
  using LogSoftmax<T>::LogSoftmax;
  std::string type_name() const { return "log_softmax (dx = dy)"; }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY;
  }
};

/// Bug: softplus' taken as σ(−x) instead of σ(x).
template <class T>
class SoftplusMirrored : public Softplus<T> {
 public:
  using Softplus<T>::Softplus;
  std::string type_name() const { return "softplus (σ(−x))"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(X.unaryExpr([](const T& x) { return stable_sigmoid(T(-x)); }));
  }
};

/// Bug: silu' without the product rule's second term: σ(x) instead of σ(x)(1 + x σ(−x)).
template <class T>
class SiluMissingTerm : public Silu<T> {
 public:
  using Silu<T>::Silu;
  std::string type_name() const { return "silu (σ(x) only)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(X.unaryExpr([](const T& x) { return stable_sigmoid(x); }));
  }
};

/// Bug: exact gelu ("none") differentiated with the tanh approximation's derivative.
template <class T>
class GeluWrongApproximation : public Gelu<T> {
 public:
  explicit GeluWrongApproximation(Index width)
      : Gelu<T>(width, GeluApproximation::none), approximate_(width, GeluApproximation::tanh) {}
  std::string type_name() const { return "gelu none (tanh derivative)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(
        X.unaryExpr([this](const T& x) { return approximate_.derivative(x, approximate_.value(x)); }));
  }

 private:
  Gelu<T> approximate_;
};

/// A correct RMS normalisation per sample: y = x / r, r = √(mean(x²) + ε), ε = 1e-5, no parameters.
/// (The library's own normalisation layers are tested elsewhere; this one is the twin of the mutant
/// below.)
template <class T>
class RmsNorm : public NoParameters<T> {
 public:
  using NoParameters<T>::NoParameters;
  std::string type_name() const { return "rms_norm"; }
  static T epsilon() { return T(1) / T(100000); }
  Vector<T> radii(const Matrix<T>& X, const T& eps) const {
    using std::sqrt;
    Vector<T> r(X.cols());
    for (Index s = 0; s < X.cols(); ++s) r(s) = sqrt(T(X.col(s).squaredNorm() / T(X.rows()) + eps));
    return r;
  }
  Matrix<T> forward(const Matrix<T>& X) const {
    expect_rows(X, this->input_size(), type_name());
    const Vector<T> r = radii(X, epsilon());
    Matrix<T> Y = X;
    for (Index s = 0; s < X.cols(); ++s) Y.col(s) /= r(s);
    return Y;
  }
  // ∂y_i/∂x_j = δ_ij / r − x_i x_j / (n r³):  dx = dy / r − x (xᵀdy) / (n r³), evaluated as
  // dx_j = (dy_j (Σ_{i≠j} x_i² + n ε) − x_j Σ_{i≠j} x_i dy_i) / (n r³): the diagonal term 1/r − x_j²/(n r³)
  // would cancel when x_j dominates (always, for one feature).
  Matrix<T> backward_with(const Matrix<T>& X, const Matrix<T>& dY, const T& eps) const {
    const Vector<T> r = radii(X, eps);
    const Index n = X.rows();
    Matrix<T> dX(n, X.cols());
    for (Index s = 0; s < X.cols(); ++s) {
      const T denominator = T(n) * r(s) * r(s) * r(s);
      for (Index j = 0; j < n; ++j) {
        T others_squared = T(n) * eps, others_dot(0);
        for (Index i = 0; i < n; ++i)
          if (i != j) {
            others_squared += X(i, s) * X(i, s);
            others_dot += X(i, s) * dY(i, s);
          }
        dX(j, s) = (dY(j, s) * others_squared - X(j, s) * others_dot) / denominator;
      }
    }
    return dX;
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return backward_with(X, dY, epsilon());
  }
};

/// Bug: the normalisation's backward forgets ε: r = √mean(x²) there, √(mean(x²) + ε) in forward.
template <class T>
class RmsNormMissingEpsilon : public RmsNorm<T> {
 public:
  using RmsNorm<T>::RmsNorm;
  std::string type_name() const { return "rms_norm (no ε in backward)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return this->backward_with(X, dY, T(0));
  }
};

/// Bug: backward is right, but backward_parameters (the route a network's first layer takes without
/// dℓ/dX) leaves db out.
template <class T>
class ParameterBackwardMissingBias : public Dense<T> {
 public:
  using Dense<T>::Dense;
  std::string type_name() const { return "dense (no db in backward_parameters)"; }
  void backward_parameters(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                           Eigen::Ref<Vector<T>> dtheta) const {
    const Vector<T> db = dtheta.tail(this->output_size());
    Dense<T>::backward_parameters(X, Y, dY, dtheta);
    dtheta.tail(this->output_size()) = db;
  }
};

// ---- layers of common architectures --------------------------------------------------------------

/// Bug: grouped conv whose dW forgets the group offset: every group's G_g P_gᵀ is added to group 0's rows.
template <class T>
class ConvGroupsWeightIntoFirst : public Conv<T> {
 public:
  ConvGroupsWeightIntoFirst()
      : Conv<T>("conv2d", WindowGeometry::make("conv2d", {2, 3, 3}, {2, 2}, {1, 1}, {0, 0}, {1, 1}), 4, 2) {}
  std::string type_name() const { return "conv2d groups 2 (dW of every group in group 0)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    Vector<T> d = Vector<T>::Zero(dtheta.size());
    const Matrix<T> dX = Conv<T>::backward(X, Y, dY, d);
    Eigen::Map<Matrix<T>> dW(d.data(), 4, 4);  // out 4 × (C/G · K) = 4 × 4
    dW.topRows(2) += dW.bottomRows(2);
    dW.bottomRows(2).setZero();
    dtheta += d;
    return dX;
  }
};

/// Bug: batch_norm2d's dx = γ(g − x̂ mean(g ⊙ x̂))/s per channel, the −mean(g) term dropped.
template <class T>
class BatchNorm2dMissingMean : public BatchNormTrain<T> {
 public:
  BatchNorm2dMissingMean() : BatchNormTrain<T>(2, T(1) / T(100000), 4, "batch_norm2d") {}
  std::string type_name() const { return "batch_norm2d (dx without −mean g)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    using std::sqrt;
    (void)BatchNormTrain<T>::backward(X, Y, dY, dtheta);  // dθ is right
    const Index m = 4, B = X.cols();
    Matrix<T> dX(X.rows(), B);
    for (Index c = 0; c < 2; ++c) {
      Vector<T> x(m * B), g(m * B);
      for (Index b = 0; b < B; ++b) {
        x.segment(b * m, m) = X.col(b).segment(c * m, m);
        g.segment(b * m, m) = this->parameters()(c) * dY.col(b).segment(c * m, m);
      }
      const T mean = x.sum() / T(m * B);
      const Vector<T> centred = x.array() - mean;
      const T s = sqrt(T(centred.squaredNorm() / T(m * B) + T(1) / T(100000)));
      const Vector<T> xhat = centred / s;
      const Vector<T> dx = (g - xhat * T(g.dot(xhat) / T(m * B))) / s;
      for (Index b = 0; b < B; ++b) dX.col(b).segment(c * m, m) = dx.segment(b * m, m);
    }
    return dX;
  }
};

/// Bug: adaptive average pooling's dx divides every bin by ⌈H/oh⌉·⌈W/ow⌉, right only for equal bins.
template <class T>
class AdaptivePoolUniformBins : public AdaptiveAvgPool2d<T> {
 public:
  AdaptivePoolUniformBins() : AdaptiveAvgPool2d<T>(1, 5, 4, 3, 3) {}
  std::string type_name() const { return "adaptive_avg_pool2d 5 × 4 → 3 × 3 (uniform bin size)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    Matrix<T> dX = Matrix<T>::Zero(X.rows(), X.cols());
    for (Index s = 0; s < X.cols(); ++s)
      for (Index i = 0; i < 3; ++i)
        for (Index j = 0; j < 3; ++j)
          for (Index y = i * 5 / 3; y < ((i + 1) * 5 + 2) / 3; ++y)
            for (Index x = j * 4 / 3; x < ((j + 1) * 4 + 2) / 3; ++x) dX(y * 4 + x, s) += dY(i * 3 + j, s) / T(2 * 2);
    return dX;
  }
};

/// Bug: dense on tokens whose db sums the batch but not the tokens (token 0's rows only).
template <class T>
class DenseTokensBiasFirstToken : public Dense<T> {
 public:
  DenseTokensBiasFirstToken() : Dense<T>(2, 3, 3) {}
  std::string type_name() const { return "dense on 3 tokens (db from token 0)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Vector<T> db = dtheta.tail(3);
    const Matrix<T> dX = Dense<T>::backward(X, Y, dY, dtheta);
    dtheta.tail(3) = db + dY.topRows(3).rowwise().sum();
    return dX;
  }
};

/// Bug: layer_norm on tokens whose dγ and dβ come from token 0 only.
template <class T>
class LayerNormTokensAffineFirst : public LayerNorm<T> {
 public:
  LayerNormTokensAffineFirst() : LayerNorm<T>(3, T(1) / T(100000), 2) {}
  std::string type_name() const { return "layer_norm on 2 tokens (dγ, dβ from token 0)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    // token 0 of every sample alone, through the one-token layer with the same γ, β
    LayerNorm<T> first(3, T(1) / T(100000));
    first.set_parameters(this->parameters());
    const Matrix<T> X0 = X.topRows(3), dY0 = dY.topRows(3);
    Vector<T> d = Vector<T>::Zero(6);
    (void)first.backward(X0, first.forward(X0), dY0, d);
    dtheta += d;
    Vector<T> ignored = Vector<T>::Zero(6);
    return LayerNorm<T>::backward(X, Y, dY, ignored);
  }
};

/// Bug: position_embedding's dP(t, f) taken from row f·T + t of dy (θ's order) instead of t·F + f.
template <class T>
class PositionEmbeddingUntransposed : public PositionEmbedding<T> {
 public:
  PositionEmbeddingUntransposed() : PositionEmbedding<T>(3, 2) {}
  std::string type_name() const { return "position_embedding 3 × 2 (dP not transposed)"; }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    dtheta += dY.rowwise().sum();
    return dY;
  }
};

/// Bug: token_mean's dx = dy for every token (the 1/T of the mean forgotten).
template <class T>
class TokenMeanMissingScale : public TokenMean<T> {
 public:
  TokenMeanMissingScale() : TokenMean<T>(3, 2) {}
  std::string type_name() const { return "token_mean of 3 tokens (no 1/T)"; }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.replicate(3, 1);
  }
};

/// Bug: a transformer layer whose forward uses gelu and whose backward goes through relu (the other
/// activation's derivative), parameters shared.
template <class T>
class TransformerWrongActivation : public TransformerEncoderLayer<T> {
 public:
  TransformerWrongActivation()
      : TransformerEncoderLayer<T>(4, 2, 2, 3, false, true, T(1) / T(100000)),
        relu_(4, 2, 2, 3, false, false, T(1) / T(100000)) {}
  std::string type_name() const { return "transformer_encoder_layer gelu (relu in backward)"; }
  void set_parameters(const Vector<T>& theta) {
    TransformerEncoderLayer<T>::set_parameters(theta);
    relu_.set_parameters(theta);
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    return relu_.backward(X, Y, dY, dtheta);
  }

 private:
  TransformerEncoderLayer<T> relu_;
};

// ---- the factory's definition (declared in mutants.hpp) ------------------------------------------

template <class T>
AnyLayer<T> make_mutant(Mutant m, Index input_size, Index units) {
  const bool chosen = input_size > 0;
  const Index in = chosen ? input_size : 4, out = units > 0 ? units : 3, width = chosen ? input_size : 4;
  switch (m) {
    case Mutant::transposed_weight: return TransposedWeight<T>(chosen ? in : 3, chosen ? in : 3);
    case Mutant::missing_derivative: return MissingDerivative<T>(width);
    case Mutant::relative_offset: return RelativeOffset<T>(in, out);
    case Mutant::flipped_sign: return FlippedSign<T>(std::max<Index>(in, 3), std::max<Index>(out, 2));
    case Mutant::bias_first_sample: return BiasFirstSample<T>(in, out);
    case Mutant::derivative_at_output: return DerivativeAtOutput<T>(width);
    case Mutant::overwritten_dtheta: return OverwrittenDtheta<T>(in, out);
    case Mutant::wrong_in_float: return WrongInFloat<T>(in, out);
    case Mutant::wrong_for_batch: return WrongForBatch<T>(width);
    case Mutant::coupled_samples: return CoupledSamples<T>(chosen ? width : 3);
    case Mutant::throws_in_float: return ThrowsInFloat<T>(width);
    case Mutant::naive_softmax: return NaiveSoftmax<T>(width);
    case Mutant::naive_softplus: return NaiveSoftplus<T>(width);
    case Mutant::tangent_dropped: return TangentDropped<T>(width);
    case Mutant::wrong_jacobian: return WrongJacobian<T>(in, out);
    case Mutant::relative_offset_small: return RelativeOffsetSmall<T>(in, out);
    case Mutant::divided_by_batch: return DividedByBatch<T>(in, out);
    case Mutant::missing_bias_gradient: return MissingBiasGradient<T>(in, out);
    case Mutant::off_by_one: return OffByOne<T>(width);
    case Mutant::wrong_for_negative: return WrongForNegative<T>(width);
    case Mutant::softmax_diagonal_only: return SoftmaxDiagonalOnly<T>(width);
    case Mutant::log_softmax_missing_sum: return LogSoftmaxMissingSum<T>(width);
    case Mutant::softplus_mirrored: return SoftplusMirrored<T>(width);
    case Mutant::silu_missing_term: return SiluMissingTerm<T>(width);
    case Mutant::gelu_wrong_approximation: return GeluWrongApproximation<T>(width);
    case Mutant::norm_missing_epsilon: return RmsNormMissingEpsilon<T>(width);
    case Mutant::rms_norm: return RmsNorm<T>(width);
    case Mutant::parameter_backward_missing_bias: return ParameterBackwardMissingBias<T>(in, out);
    case Mutant::conv_groups_weight_into_first: return ConvGroupsWeightIntoFirst<T>();
    case Mutant::batch_norm2d_missing_mean: return BatchNorm2dMissingMean<T>();
    case Mutant::adaptive_pool_uniform_bins: return AdaptivePoolUniformBins<T>();
    case Mutant::dense_tokens_bias_first_token: return DenseTokensBiasFirstToken<T>();
    case Mutant::layer_norm_tokens_affine_first: return LayerNormTokensAffineFirst<T>();
    case Mutant::position_embedding_untransposed: return PositionEmbeddingUntransposed<T>();
    case Mutant::token_mean_missing_scale: return TokenMeanMissingScale<T>();
    case Mutant::transformer_wrong_activation:
      // Attention's products are instantiated on the library's rungs only (products.hpp), not on Emulated:
      // verify_layer then leaves out the emulated rounding runs, an aid to float/double verdicts only.
      if constexpr (std::is_same_v<T, Emulated>)
        throw error("the transformer mutant does not build on Emulated");
      else
        return TransformerWrongActivation<T>();
  }
  throw error("unknown mutant");
}

}  // namespace bpcheck::mutants
