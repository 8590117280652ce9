#pragma once
// Normalisation layers: layer_norm over the features of each sample, batch_norm over the samples of
// each feature (training mode: batch statistics; evaluation mode: fixed running statistics).
//
//   bpcheck::LayerNorm<double> ln(6, 1e-5);              // normalised_shape = 6 features, eps
//   bpcheck::BatchNormTrain<double> bn(6, 1e-5);         // couples the samples of a batch
//   bpcheck::BatchNormEval<double> be(6, 1e-5, mean, var);
//
// θ = [weight; bias] (γ and β, PyTorch's names), one entry per feature; a new layer holds zeros, as
// every registered layer (PyTorch starts from γ = 1, β = 0: set them). Variances are the biased ones
// (divided by the count), which PyTorch normalises with; s = √(σ² + eps).
#include "bpcheck/layer.hpp"

namespace bpcheck {

namespace norm_detail {

/// x̂ = (x − mean)/s along each column of A (layer norm) and the s of each column.
template <class T>
void normalise_columns(const Matrix<T>& A, const T& eps, Matrix<T>& xhat, Vector<T>& s) {
  using std::sqrt;
  const Index n = A.rows();
  xhat.resize(A.rows(), A.cols());
  s.resize(A.cols());
  for (Index b = 0; b < A.cols(); ++b) {
    const T mean = A.col(b).sum() / T(n);
    const Vector<T> c = A.col(b).array() - mean;
    s(b) = sqrt(T(c.squaredNorm() / T(n) + eps));
    xhat.col(b) = c / s(b);
  }
}

/// The VJP of x̂ = (x − mean)/s over one group of n values x, given g = ∂ℓ/∂x̂:
/// dx = (g − mean(g) − x̂ mean(g ⊙ x̂)) / s.
/// For n = 2 the two subtractions cancel to (x̂₀ − x̂₁)-sized rounding noise while the exact result
/// is of the size of eps (1 and x̂ span the plane); there it is computed from the closed form
/// dx = (g₀ − g₁) eps/(|c|² + 2 eps) (1, −1)/s, c = x − mean, without cancellation.
template <class T>
Vector<T> normalise_vjp(const Vector<T>& g, const Vector<T>& x, const Vector<T>& xhat, const T& s, const T& eps) {
  const Index n = g.size();
  if (n == 2) {
    const T c = (x(0) - x(1)) / T(2);
    const T m = eps / (T(2) * c * c + T(2) * eps) * (g(0) - g(1)) / s;
    Vector<T> dx(2);
    dx << m, T(-m);
    return dx;
  }
  const T mg = g.sum() / T(n);
  const T mgx = g.dot(xhat) / T(n);
  return (g.array() - mg - xhat.array() * mgx).matrix() / s;
}

/// The Jacobian of x̂ with respect to x over one group of n values x: M/s with
/// M = I − 11ᵀ/n − x̂x̂ᵀ/n, i.e. M_ij = −1/n − c_i c_j/D off the diagonal (c = x − mean, D = |c|² + n eps).
/// The diagonal 1 − 1/n − c_i²/D cancels when x_i is far from the others; Lagrange's identity gives it
/// as a sum of squares instead: M_ii = (Σ_{k<l; k,l≠i} (x_k − x_l)² + n(n − 1) eps)/(n D). For n = 2 the
/// off-diagonal is −M_ii (1 + c₀c₁/s² cancels there).
template <class T>
Matrix<T> normalise_jacobian(const Vector<T>& x, const T& eps) {
  using std::sqrt;
  const Index n = x.size();
  const Vector<T> c = x.array() - T(x.sum() / T(n));
  const T D = c.squaredNorm() + T(n) * eps;
  const T s = sqrt(T(D / T(n)));
  Matrix<T> M = -(c * c.transpose()) / D;
  M.array() -= T(1) / T(n);
  for (Index i = 0; i < n; ++i) {
    T pairs(0);
    for (Index k = 0; k < n; ++k)
      for (Index l = k + 1; l < n; ++l)
        if (k != i && l != i) pairs += (x(k) - x(l)) * (x(k) - x(l));
    M(i, i) = (pairs + T(n * (n - 1)) * eps) / (T(n) * D);
  }
  if (n == 2) M(0, 1) = M(1, 0) = -M(0, 0);
  return M / s;
}

/// The absolute Jacobian of x̂ = (x − mean)/s over one group of n values x, as backward and the stated
/// J form it: (I + 11ᵀ/n + (x̃|x̂|ᵀ + |x̂|x̃ᵀ)/n)/s, the VJP's three terms added, with x̃ = (|x| + |mean|)/s
/// the size of the terms x̂ is computed from. At near-tied x, x̂ is the small difference of large terms
/// and rounds relative to x̃, not to |x̂|; that rounding enters the input gradient and ∂y/∂γ = x̂ alike.
/// Returns the matrix; `terms` receives x̃.
/// |A| entry by entry, with every rung's own abs (mp100 expressions are evaluated to T).
template <class T>
Matrix<T> abs_of(const Matrix<T>& A) {
  using std::abs;
  return A.unaryExpr([](const T& v) { return T(abs(v)); });
}

template <class T>
Matrix<T> normalise_absolute_jacobian(const Vector<T>& x, const T& eps, Vector<T>& terms) {
  using std::abs;
  using std::sqrt;
  const Index n = x.size();
  const T mean = x.sum() / T(n);
  const Vector<T> c = x.array() - mean;
  const T s = sqrt(T(c.squaredNorm() / T(n) + eps));
  const Vector<T> xhat_abs = abs_of<T>(c) / s;
  terms = (abs_of<T>(x).array() + T(abs(mean))).matrix() / s;
  Matrix<T> M = (terms * xhat_abs.transpose() + xhat_abs * terms.transpose()) / T(n);
  M.array() += T(1) / T(n);
  M.diagonal().array() += T(1);
  return M / s;
}

}  // namespace norm_detail

/// layer_norm over the n features of each sample: y = γ ⊙ x̂ + β, x̂ = (x − mean x)/√(var x + eps).
template <class T>
class LayerNorm {
 public:
  using scalar_type = T;

  LayerNorm(Index features, T eps);

  std::string type_name() const { return "layer_norm"; }
  Index input_size() const { return n_; }
  Index output_size() const { return n_; }
  std::vector<ParameterBlock> parameter_blocks() const;
  const Vector<T>& parameters() const { return theta_; }
  void set_parameters(const Vector<T>& theta);
  const T& eps() const { return eps_; }

  /// Y = γ ⊙ X̂ + β 1ᵀ
  Matrix<T> forward(const Matrix<T>& X) const;

  /// Per sample, with g = γ ⊙ dy: dx = (g − mean g − x̂ mean(g ⊙ x̂))/s;  dγ += Σ_b dy ⊙ x̂;  dβ += Σ_b dy.
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// Per sample J_x = diag(γ)(I − 11ᵀ/n − x̂x̂ᵀ/n)/s; block diagonal on the batch.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;

  /// Per sample ∂y/∂γ = diag(x̂), ∂y/∂β = I; one row block per sample on the batch.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

  /// [J_x J_θ] in absolute values as computed: per sample diag(|γ|)(I + 11ᵀ/n + (x̃|x̂|ᵀ + |x̂|x̃ᵀ)/n)/s,
  /// then diag(x̃) and I, with x̃ = (|x| + |mean x|)/s (norm_detail::normalise_absolute_jacobian).
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const;

 private:
  Eigen::Map<const Vector<T>> gamma() const { return {theta_.data(), n_}; }
  Eigen::Map<const Vector<T>> beta() const { return {theta_.data() + n_, n_}; }
  Index n_;
  T eps_;
  Vector<T> theta_;
};

/// batch_norm in training mode, over the B samples of each of n features (B ≥ 2):
/// y_ib = γ_i x̂_ib + β_i, x̂_ib = (x_ib − mean_b x_ib)/√(var_b x_ib + eps). Every output depends on
/// every sample of its feature, so the layer is not sample independent and its J_x is not block
/// diagonal over samples.
template <class T>
class BatchNormTrain {
 public:
  using scalar_type = T;
  static constexpr bool sample_independent = false;

  BatchNormTrain(Index features, T eps);

  std::string type_name() const { return "batch_norm"; }
  Index input_size() const { return n_; }
  Index output_size() const { return n_; }
  std::vector<ParameterBlock> parameter_blocks() const;
  const Vector<T>& parameters() const { return theta_; }
  void set_parameters(const Vector<T>& theta);
  const T& eps() const { return eps_; }

  /// Y = diag(γ) X̂ + β 1ᵀ, X̂ normalised along each row
  Matrix<T> forward(const Matrix<T>& X) const;

  /// Per feature i (a row), with g = γ_i dy: dx = (g − mean g − x̂ mean(g ⊙ x̂))/s_i;
  /// dγ_i += dy · x̂;  dβ_i += Σ_b dy.
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// ∂y_ib/∂x_jb' = [i = j] γ_i (δ_bb' − 1/B − x̂_ib x̂_ib'/B)/s_i on the whole batch (out·B × in·B,
  /// rows and columns in vec order: feature fastest).
  Matrix<T> jacobian_input(const Matrix<T>& X) const;

  /// ∂y_ib/∂γ_i = x̂_ib, ∂y_ib/∂β_i = 1.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

  /// [J_x J_θ] in absolute values as computed: layer_norm's form per feature over the batch, in vec order.
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const;

 private:
  /// X̂ and s per feature; throws input_error for fewer than two samples.
  void normalise(const Matrix<T>& X, Matrix<T>& xhat, Vector<T>& s) const;
  Eigen::Map<const Vector<T>> gamma() const { return {theta_.data(), n_}; }
  Eigen::Map<const Vector<T>> beta() const { return {theta_.data() + n_, n_}; }
  Index n_;
  T eps_;
  Vector<T> theta_;
};

/// batch_norm in evaluation mode with fixed running statistics m and v (buffers, not parameters):
/// y = γ ⊙ (x − m)/√(v + eps) + β, sample independent and affine in x.
template <class T>
class BatchNormEval {
 public:
  using scalar_type = T;

  BatchNormEval(Index features, T eps, Vector<T> running_mean, Vector<T> running_var);

  std::string type_name() const { return "batch_norm"; }
  Index input_size() const { return n_; }
  Index output_size() const { return n_; }
  std::vector<ParameterBlock> parameter_blocks() const;
  const Vector<T>& parameters() const { return theta_; }
  void set_parameters(const Vector<T>& theta);

  /// Y = diag(γ/s)(X − m 1ᵀ) + β 1ᵀ, s = √(v + eps)
  Matrix<T> forward(const Matrix<T>& X) const;

  /// dx = (γ/s) ⊙ dy;  dγ += Σ_b dy ⊙ x̂;  dβ += Σ_b dy
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// Per sample J_x = diag(γ/s); block diagonal on the batch.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;

  /// Per sample ∂y/∂γ = diag(x̂), ∂y/∂β = I.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

  /// [J_x J_θ] in absolute values as computed: diag(|γ|/s), then diag((|x| + |m|)/s) and I per sample.
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const;

 private:
  Matrix<T> normalised(const Matrix<T>& X) const;
  Eigen::Map<const Vector<T>> gamma() const { return {theta_.data(), n_}; }
  Eigen::Map<const Vector<T>> beta() const { return {theta_.data() + n_, n_}; }
  Index n_;
  T eps_;
  Vector<T> mean_, s_;
  Vector<T> theta_;
};

// ---- layer_norm ----------------------------------------------------------------------------------

namespace norm_detail {
inline void check_features(const std::string& who, Index n) {
  if (n <= 0) throw input_error(who + ": the number of features must be positive, got " + std::to_string(n));
}
template <class T>
void check_eps(const std::string& who, const T& eps) {
  if (!(eps > T(0))) throw input_error(who + ": eps must be positive, got " + bpcheck::to_string(eps));
}
inline std::vector<ParameterBlock> affine_blocks(Index n) {
  return {{"weight", n, 1, 0, true}, {"bias", n, 1, n, true}};
}
template <class T>
void set_affine(const std::string& who, Vector<T>& theta, const Vector<T>& given) {
  if (given.size() != theta.size())
    throw input_error(who + ": expected " + std::to_string(theta.size()) + " parameters, got " +
                      std::to_string(given.size()));
  theta = given;
}
}  // namespace norm_detail

template <class T>
LayerNorm<T>::LayerNorm(Index features, T eps) : n_(features), eps_(std::move(eps)) {
  norm_detail::check_features("layer_norm", n_);
  norm_detail::check_eps("layer_norm", eps_);
  theta_ = zeros<T>(2 * n_);
}

template <class T>
std::vector<ParameterBlock> LayerNorm<T>::parameter_blocks() const {
  return norm_detail::affine_blocks(n_);
}

template <class T>
void LayerNorm<T>::set_parameters(const Vector<T>& theta) {
  norm_detail::set_affine("layer_norm", theta_, theta);
}

template <class T>
Matrix<T> LayerNorm<T>::forward(const Matrix<T>& X) const {
  expect_rows(X, n_, "layer_norm");
  Matrix<T> xhat;
  Vector<T> s;
  norm_detail::normalise_columns(X, eps_, xhat, s);
  Matrix<T> Y = gamma().asDiagonal() * xhat;
  Y.colwise() += beta();
  return Y;
}

template <class T>
Matrix<T> LayerNorm<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                                 Eigen::Ref<Vector<T>> dtheta) const {
  Matrix<T> xhat;
  Vector<T> s;
  norm_detail::normalise_columns(X, eps_, xhat, s);
  dtheta.head(n_) += dY.cwiseProduct(xhat).rowwise().sum();
  dtheta.segment(n_, n_) += dY.rowwise().sum();
  Matrix<T> dX(X.rows(), X.cols());
  for (Index b = 0; b < X.cols(); ++b)
    dX.col(b) = norm_detail::normalise_vjp<T>(gamma().cwiseProduct(dY.col(b)), X.col(b), xhat.col(b), s(b), eps_);
  return dX;
}

template <class T>
Matrix<T> LayerNorm<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, n_, "layer_norm");
  Matrix<T> xhat;
  Vector<T> s;
  norm_detail::normalise_columns(X, eps_, xhat, s);
  std::vector<Matrix<T>> blocks;
  for (Index b = 0; b < X.cols(); ++b)
    blocks.push_back(gamma().asDiagonal() * norm_detail::normalise_jacobian<T>(X.col(b), eps_));
  return block_diagonal(blocks);
}

template <class T>
Matrix<T> LayerNorm<T>::jacobian_parameters(const Matrix<T>& X) const {
  expect_rows(X, n_, "layer_norm");
  Matrix<T> xhat;
  Vector<T> s;
  norm_detail::normalise_columns(X, eps_, xhat, s);
  Matrix<T> J = Matrix<T>::Zero(n_ * X.cols(), 2 * n_);
  for (Index b = 0; b < X.cols(); ++b) {
    J.block(b * n_, 0, n_, n_) = Vector<T>(xhat.col(b)).asDiagonal();
    J.block(b * n_, n_, n_, n_) = Matrix<T>::Identity(n_, n_);
  }
  return J;
}

template <class T>
Matrix<T> LayerNorm<T>::absolute_jacobian(const Matrix<T>& X) const {
  expect_rows(X, n_, "layer_norm");
  const Index B = X.cols();
  const Vector<T> gamma_abs = norm_detail::abs_of<T>(gamma());
  Matrix<T> A = Matrix<T>::Zero(n_ * B, n_ * B + 2 * n_);
  Vector<T> terms;
  for (Index b = 0; b < B; ++b) {
    A.block(b * n_, b * n_, n_, n_) =
        gamma_abs.asDiagonal() * norm_detail::normalise_absolute_jacobian<T>(X.col(b), eps_, terms);
    A.block(b * n_, n_ * B, n_, n_) = terms.asDiagonal();
    A.block(b * n_, n_ * B + n_, n_, n_) = Matrix<T>::Identity(n_, n_);
  }
  return A;
}

// ---- batch_norm, training mode -------------------------------------------------------------------

template <class T>
BatchNormTrain<T>::BatchNormTrain(Index features, T eps) : n_(features), eps_(std::move(eps)) {
  norm_detail::check_features("batch_norm", n_);
  norm_detail::check_eps("batch_norm", eps_);
  theta_ = zeros<T>(2 * n_);
}

template <class T>
std::vector<ParameterBlock> BatchNormTrain<T>::parameter_blocks() const {
  return norm_detail::affine_blocks(n_);
}

template <class T>
void BatchNormTrain<T>::set_parameters(const Vector<T>& theta) {
  norm_detail::set_affine("batch_norm", theta_, theta);
}

template <class T>
void BatchNormTrain<T>::normalise(const Matrix<T>& X, Matrix<T>& xhat, Vector<T>& s) const {
  expect_rows(X, n_, "batch_norm");
  // As PyTorch: a batch of one has no variance to normalise by.
  if (X.cols() < 2)
    throw input_error("batch_norm: training mode needs at least 2 samples per batch, got " + std::to_string(X.cols()));
  // The rows of X are the columns of Xᵀ: the same normalisation as layer_norm, transposed.
  Matrix<T> xhat_t;
  norm_detail::normalise_columns(Matrix<T>(X.transpose()), eps_, xhat_t, s);
  xhat = xhat_t.transpose();
}

template <class T>
Matrix<T> BatchNormTrain<T>::forward(const Matrix<T>& X) const {
  Matrix<T> xhat;
  Vector<T> s;
  normalise(X, xhat, s);
  Matrix<T> Y = gamma().asDiagonal() * xhat;
  Y.colwise() += beta();
  return Y;
}

template <class T>
Matrix<T> BatchNormTrain<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                                      Eigen::Ref<Vector<T>> dtheta) const {
  Matrix<T> xhat;
  Vector<T> s;
  normalise(X, xhat, s);
  dtheta.head(n_) += dY.cwiseProduct(xhat).rowwise().sum();
  dtheta.segment(n_, n_) += dY.rowwise().sum();
  Matrix<T> dX(X.rows(), X.cols());
  for (Index i = 0; i < n_; ++i)
    dX.row(i) = norm_detail::normalise_vjp<T>(Vector<T>(gamma()(i) * dY.row(i).transpose()),
                                              Vector<T>(X.row(i).transpose()), Vector<T>(xhat.row(i).transpose()),
                                              s(i), eps_)
                    .transpose();
  return dX;
}

template <class T>
Matrix<T> BatchNormTrain<T>::jacobian_input(const Matrix<T>& X) const {
  Matrix<T> xhat;
  Vector<T> s;
  normalise(X, xhat, s);
  const Index B = X.cols();
  Matrix<T> J = Matrix<T>::Zero(n_ * B, n_ * B);
  for (Index i = 0; i < n_; ++i) {
    const Matrix<T> Ji = gamma()(i) * norm_detail::normalise_jacobian<T>(Vector<T>(X.row(i).transpose()), eps_);
    for (Index b = 0; b < B; ++b)
      for (Index c = 0; c < B; ++c) J(b * n_ + i, c * n_ + i) = Ji(b, c);
  }
  return J;
}

template <class T>
Matrix<T> BatchNormTrain<T>::jacobian_parameters(const Matrix<T>& X) const {
  Matrix<T> xhat;
  Vector<T> s;
  normalise(X, xhat, s);
  Matrix<T> J = Matrix<T>::Zero(n_ * X.cols(), 2 * n_);
  for (Index b = 0; b < X.cols(); ++b) {
    J.block(b * n_, 0, n_, n_) = Vector<T>(xhat.col(b)).asDiagonal();
    J.block(b * n_, n_, n_, n_) = Matrix<T>::Identity(n_, n_);
  }
  return J;
}

template <class T>
Matrix<T> BatchNormTrain<T>::absolute_jacobian(const Matrix<T>& X) const {
  using std::abs;
  Matrix<T> xhat;
  Vector<T> s;
  normalise(X, xhat, s);  // checks the shape and the batch size
  const Index B = X.cols();
  Matrix<T> A = Matrix<T>::Zero(n_ * B, n_ * B + 2 * n_);
  Vector<T> terms;
  for (Index i = 0; i < n_; ++i) {
    const Matrix<T> Ai =
        T(abs(gamma()(i))) * norm_detail::normalise_absolute_jacobian<T>(Vector<T>(X.row(i).transpose()), eps_, terms);
    for (Index b = 0; b < B; ++b) {
      for (Index c = 0; c < B; ++c) A(b * n_ + i, c * n_ + i) = Ai(b, c);
      A(b * n_ + i, n_ * B + i) = terms(b);
      A(b * n_ + i, n_ * B + n_ + i) = T(1);
    }
  }
  return A;
}

// ---- batch_norm, evaluation mode -----------------------------------------------------------------

template <class T>
BatchNormEval<T>::BatchNormEval(Index features, T eps, Vector<T> running_mean, Vector<T> running_var)
    : n_(features), eps_(std::move(eps)), mean_(std::move(running_mean)) {
  using std::sqrt;
  norm_detail::check_features("batch_norm", n_);
  norm_detail::check_eps("batch_norm", eps_);
  if (mean_.size() != n_ || running_var.size() != n_)
    throw input_error("batch_norm: running_mean and running_var need " + std::to_string(n_) + " values each, got " +
                      std::to_string(mean_.size()) + " and " + std::to_string(running_var.size()));
  for (Index i = 0; i < n_; ++i)
    if (!(running_var(i) >= T(0)))
      throw input_error("batch_norm: running_var must not be negative, entry " + std::to_string(i) + " is " +
                        bpcheck::to_string(running_var(i)));
  s_ = running_var.unaryExpr([this](const T& v) { return T(sqrt(T(v + eps_))); });
  theta_ = zeros<T>(2 * n_);
}

template <class T>
std::vector<ParameterBlock> BatchNormEval<T>::parameter_blocks() const {
  return norm_detail::affine_blocks(n_);
}

template <class T>
void BatchNormEval<T>::set_parameters(const Vector<T>& theta) {
  norm_detail::set_affine("batch_norm", theta_, theta);
}

template <class T>
Matrix<T> BatchNormEval<T>::normalised(const Matrix<T>& X) const {
  expect_rows(X, n_, "batch_norm");
  Matrix<T> xhat = X.colwise() - mean_;
  return s_.cwiseInverse().asDiagonal() * xhat;
}

template <class T>
Matrix<T> BatchNormEval<T>::forward(const Matrix<T>& X) const {
  Matrix<T> Y = gamma().asDiagonal() * normalised(X);
  Y.colwise() += beta();
  return Y;
}

template <class T>
Matrix<T> BatchNormEval<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                                     Eigen::Ref<Vector<T>> dtheta) const {
  dtheta.head(n_) += dY.cwiseProduct(normalised(X)).rowwise().sum();
  dtheta.segment(n_, n_) += dY.rowwise().sum();
  return gamma().cwiseQuotient(s_).asDiagonal() * dY;
}

template <class T>
Matrix<T> BatchNormEval<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, n_, "batch_norm");
  const Matrix<T> D = gamma().cwiseQuotient(s_).asDiagonal();
  return block_diagonal(std::vector<Matrix<T>>(X.cols(), D));
}

template <class T>
Matrix<T> BatchNormEval<T>::jacobian_parameters(const Matrix<T>& X) const {
  const Matrix<T> xhat = normalised(X);
  Matrix<T> J = Matrix<T>::Zero(n_ * X.cols(), 2 * n_);
  for (Index b = 0; b < X.cols(); ++b) {
    J.block(b * n_, 0, n_, n_) = Vector<T>(xhat.col(b)).asDiagonal();
    J.block(b * n_, n_, n_, n_) = Matrix<T>::Identity(n_, n_);
  }
  return J;
}

template <class T>
Matrix<T> BatchNormEval<T>::absolute_jacobian(const Matrix<T>& X) const {
  expect_rows(X, n_, "batch_norm");
  const Index B = X.cols();
  const Vector<T> gain = norm_detail::abs_of<T>(gamma()).cwiseQuotient(s_);
  const Matrix<T> terms = (norm_detail::abs_of<T>(X).colwise() + Vector<T>(norm_detail::abs_of<T>(mean_))).array().colwise() / s_.array();
  Matrix<T> A = Matrix<T>::Zero(n_ * B, n_ * B + 2 * n_);
  for (Index b = 0; b < B; ++b) {
    A.block(b * n_, b * n_, n_, n_) = gain.asDiagonal();
    A.block(b * n_, n_ * B, n_, n_) = Vector<T>(terms.col(b)).asDiagonal();
    A.block(b * n_, n_ * B + n_, n_, n_) = Matrix<T>::Identity(n_, n_);
  }
  return A;
}

static_assert(LayerWithJacobians<LayerNorm<double>>, "layer_norm must satisfy the Layer concept with Jacobians");
static_assert(LayerWithJacobians<BatchNormTrain<double>>, "batch_norm must satisfy the Layer concept with Jacobians");
static_assert(LayerWithJacobians<BatchNormEval<double>>, "batch_norm must satisfy the Layer concept with Jacobians");
static_assert(!is_sample_independent<BatchNormTrain<double>>(), "batch_norm in training mode couples samples");
static_assert(LayerWithAbsoluteJacobian<LayerNorm<double>> && LayerWithAbsoluteJacobian<BatchNormTrain<double>> &&
                  LayerWithAbsoluteJacobian<BatchNormEval<double>>,
              "the normalisation layers state their absolute Jacobians");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_NORMS_CLASSES(X, T) \
  X(LayerNorm<T>)                   \
  X(BatchNormTrain<T>)              \
  X(BatchNormEval<T>)
#define BPCHECK_EXTERN_NORMS(T) BPCHECK_NORMS_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_NORMS)
#undef BPCHECK_EXTERN_NORMS

}  // namespace bpcheck
