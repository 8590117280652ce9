#pragma once
// Dense (fully connected) layer, PyTorch `Linear` convention: y = W x + b, W is units × in.
//
//   bpcheck::Dense<double> d(4, 3);          // in = 4, units = 3; θ = [vec(W); b], 15 numbers
//   d.W() = ...; d.b() = ...;                 // views into θ
//   auto Y = d.forward(X);                    // Y = W X + b 1ᵀ
//   bpcheck::Dense<double> t(4, 3, 5);       // 5 tokens of 4 features per sample, each mapped alone
//
// With `tokens` T > 1 a sample holds T vectors of in features one after the other (PyTorch's (T, in)
// row-major), each mapped by the same W and b (nn.Linear on (B, T, in)). That memory is the in × T·B
// matrix of tokens (column s·T + t: token t of sample s), and the output's the units × T·B one, so the
// layer is the one-token layer on T·B columns: every formula below holds with the tokens as samples.
#include <type_traits>

#include <unsupported/Eigen/KroneckerProduct>

#include "bpcheck/layer.hpp"

namespace bpcheck {

namespace blas {
/// C = α·op(A)·op(B) + β·C, column-major, op = transpose or not: OpenBLAS's sgemm/dgemm (defined in
/// lib/src/blas.cpp). On float and double the dense layer calls it rather than Eigen's product, which
/// reaches about half of OpenBLAS's rate on the shapes of bench/bench_mlp.cpp.
void gemm(bool transpose_a, bool transpose_b, Index m, Index n, Index k, float alpha, const float* A, Index lda,
          const float* B, Index ldb, float beta, float* C, Index ldc);
void gemm(bool transpose_a, bool transpose_b, Index m, Index n, Index k, double alpha, const double* A, Index lda,
          const double* B, Index ldb, double beta, double* C, Index ldc);
template <class T>
inline constexpr bool has_gemm = std::is_same_v<T, float> || std::is_same_v<T, double>;
}  // namespace blas

template <class T>
class Dense {
 public:
  using scalar_type = T;

  /// `input_size` is the features of one token (in); a sample has tokens · in values.
  Dense(Index input_size, Index units, Index tokens = 1);

  std::string type_name() const { return "dense"; }
  Index tokens() const { return tokens_; }
  Index in_features() const { return in_; }
  Index input_size() const { return in_ * tokens_; }
  Index output_size() const { return out_ * tokens_; }
  std::vector<ParameterBlock> parameter_blocks() const;
  const Vector<T>& parameters() const { return theta_; }
  void set_parameters(Eigen::Ref<const Vector<T>> theta);  // a network's segment, not copied first

  Eigen::Map<Matrix<T>> W() { return {theta_.data(), out_, in_}; }
  Eigen::Map<const Matrix<T>> W() const { return {theta_.data(), out_, in_}; }
  Eigen::Map<Vector<T>> b() { return {theta_.data() + out_ * in_, out_}; }
  Eigen::Map<const Vector<T>> b() const { return {theta_.data() + out_ * in_, out_}; }

  /// Y = W X + b 1ᵀ
  Matrix<T> forward(const Matrix<T>& X) const;

  /// dX = Wᵀ dY;  dW += dY Xᵀ;  db += dY 1   (the VJP of the Jacobians below)
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// dW += dY Xᵀ;  db += dY 1: backward's dθ without its dX (LayerWithParameterBackward).
  void backward_parameters(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                           Eigen::Ref<Vector<T>> dtheta) const;

  /// Per sample J_x = W, so on the batch J_x = I_B ⊗ W.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;

  /// Per sample ∂y/∂vec(W) = xᵀ ⊗ I_units and ∂y/∂b = I_units; the batch stacks one row block per
  /// sample: J_θ = [x_sᵀ ⊗ I, I] for s = 0 … B−1.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

 private:
  /// A batch seen as its tokens: rows × T·B over the same memory (T = 1: the batch itself).
  static Eigen::Map<const Matrix<T>> tokens_of(const Matrix<T>& A, Index rows) {
    return {A.data(), rows, A.size() / rows};
  }
  Index in_, out_, tokens_;
  Vector<T> theta_;
};

template <class T>
Dense<T>::Dense(Index input_size, Index units, Index tokens) : in_(input_size), out_(units), tokens_(tokens) {
  if (in_ <= 0 || out_ <= 0 || tokens_ <= 0)
    throw input_error("dense: input size, units and tokens must be positive (got " + std::to_string(in_) +
                      " inputs, " + std::to_string(out_) + " units, " + std::to_string(tokens_) + " tokens)");
  theta_ = zeros<T>(out_ * in_ + out_);
}

template <class T>
std::vector<ParameterBlock> Dense<T>::parameter_blocks() const {
  return {{"W", out_, in_, 0, false}, {"b", out_, 1, out_ * in_, true}};
}

template <class T>
void Dense<T>::set_parameters(Eigen::Ref<const Vector<T>> theta) {
  if (theta.size() != theta_.size())
    throw input_error("dense: expected " + std::to_string(theta_.size()) + " parameters, got " +
                      std::to_string(theta.size()));
  theta_ = theta;
}

template <class T>
Matrix<T> Dense<T>::forward(const Matrix<T>& X0) const {
  expect_rows(X0, input_size(), "dense");
  const auto X = tokens_of(X0, in_);
  if constexpr (blas::has_gemm<T>) {
    Matrix<T> Y(out_, X.cols());
    Y.colwise() = b();
    if (X.cols() > 0)
      blas::gemm(false, false, out_, X.cols(), in_, T(1), W().data(), out_, X.data(), in_, T(1), Y.data(), out_);
    return tokens_ == 1 ? Y : Matrix<T>(tokens_of(Y, output_size()));
  } else {
    Matrix<T> Y = W() * X;
    Y.colwise() += b();
    return tokens_ == 1 ? Y : Matrix<T>(tokens_of(Y, output_size()));
  }
}

template <class T>
void Dense<T>::backward_parameters(const Matrix<T>& X0, const Matrix<T>&, const Matrix<T>& dY0,
                                   Eigen::Ref<Vector<T>> dtheta) const {
  const auto X = tokens_of(X0, in_);
  const auto dY = tokens_of(dY0, out_);
  dtheta.segment(out_ * in_, out_) += dY.rowwise().sum();
  if (dY.cols() == 0) return;
  if constexpr (blas::has_gemm<T>) {
    blas::gemm(false, true, out_, in_, dY.cols(), T(1), dY.data(), out_, X.data(), in_, T(1), dtheta.data(), out_);
  } else {
    Eigen::Map<Matrix<T>> dW(dtheta.data(), out_, in_);
    dW.noalias() += dY * X.transpose();
  }
}

template <class T>
Matrix<T> Dense<T>::backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY0,
                             Eigen::Ref<Vector<T>> dtheta) const {
  backward_parameters(X, Y, dY0, dtheta);
  const auto dY = tokens_of(dY0, out_);
  if constexpr (blas::has_gemm<T>) {
    Matrix<T> dX(in_, dY.cols());  // β = 0: gemm writes it without reading
    if (dY.cols() == 0) return Matrix<T>(input_size(), 0);
    blas::gemm(true, false, in_, dY.cols(), out_, T(1), W().data(), out_, dY.data(), out_, T(0), dX.data(), in_);
    return tokens_ == 1 ? dX : Matrix<T>(tokens_of(dX, input_size()));
  } else {
    Matrix<T> dX = W().transpose() * dY;
    return tokens_ == 1 ? dX : Matrix<T>(tokens_of(dX, input_size()));
  }
}

template <class T>
Matrix<T> Dense<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "dense");
  const Index columns = X.cols() * tokens_;
  return Eigen::kroneckerProduct(Matrix<T>::Identity(columns, columns), Matrix<T>(W()));
}

template <class T>
Matrix<T> Dense<T>::jacobian_parameters(const Matrix<T>& X0) const {
  expect_rows(X0, input_size(), "dense");
  const auto X = tokens_of(X0, in_);
  const Index B = X.cols();
  const Matrix<T> I = Matrix<T>::Identity(out_, out_);
  Matrix<T> J(out_ * B, theta_.size());
  for (Index s = 0; s < B; ++s) {
    J.block(s * out_, 0, out_, out_ * in_) = Eigen::kroneckerProduct(X.col(s).transpose(), I);
    J.block(s * out_, out_ * in_, out_, out_) = I;
  }
  return J;
}

static_assert(LayerWithJacobians<Dense<double>>, "Dense must satisfy the Layer concept with Jacobians");
static_assert(LayerWithParameterBackward<Dense<double>>, "Dense must state backward_parameters");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_DENSE_CLASSES(X, T) \
  X(Dense<T>)
#define BPCHECK_EXTERN_DENSE(T) BPCHECK_DENSE_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_DENSE)
#undef BPCHECK_EXTERN_DENSE

}  // namespace bpcheck
