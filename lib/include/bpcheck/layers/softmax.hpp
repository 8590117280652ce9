#pragma once
// Softmax and log-softmax over the features of each sample (each column).
//
//   bpcheck::Softmax<double> s(3);          // y = exp(x − max x) / Σ exp(x − max x)
//   bpcheck::LogSoftmax<double> l(3);       // y = x − max x − log Σ exp(x − max x)
//
// Shifting by the column maximum keeps exp from overflowing; it changes neither value nor Jacobian.
// Wherever 1 − s_k appears for the largest probability s_k it is computed as Σ_{j≠k} s_j, which keeps
// its relative accuracy when s is nearly one-hot (saturated logits), where 1 − s_k cancels.
#include "bpcheck/layer.hpp"

namespace bpcheck {

/// Per column: s = exp(x − m) / Σ exp(x − m), m = max x (never overflows).
template <class T>
Matrix<T> softmax_columns(const Matrix<T>& X);

/// Per column: x − m − log Σ exp(x − m).
template <class T>
Matrix<T> log_softmax_columns(const Matrix<T>& X);

template <class T>
class Softmax {
 public:
  using scalar_type = T;
  explicit Softmax(Index width);
  std::string type_name() const { return "softmax"; }
  Index input_size() const { return n_; }
  Index output_size() const { return n_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return Vector<T>(0); }
  void set_parameters(const Vector<T>& theta);

  Matrix<T> forward(const Matrix<T>& X) const;

  /// Per sample dx = s ⊙ (dy − (sᵀdy) 1), i.e. Jᵀdy with J symmetric; evaluated as
  /// dx_i = s_i (d_i − sᵀd), d = dy − dy_k, k = argmax s (the same number: Σ s = 1), so that no O(1)
  /// terms cancel in the entries of a nearly one-hot s.
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// Per sample J_x = diag(s) − s sᵀ; on the batch, block diagonal.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;
  /// The Jacobian's two terms in absolute values, diag(s) + s sᵀ per sample: what its routes round
  /// relative to (|J| is smaller wherever s_k − s_k² cancels).
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const;

 private:
  Index n_;
};

template <class T>
class LogSoftmax {
 public:
  using scalar_type = T;
  explicit LogSoftmax(Index width);
  std::string type_name() const { return "log_softmax"; }
  Index input_size() const { return n_; }
  Index output_size() const { return n_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return Vector<T>(0); }
  void set_parameters(const Vector<T>& theta);

  Matrix<T> forward(const Matrix<T>& X) const;

  /// Per sample dx = dy − s (1ᵀdy), s = exp(y) = softmax(x); for k = argmax s evaluated as
  /// dx_k = dy_k Σ_{j≠k} s_j − s_k Σ_{j≠k} dy_j.
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// Per sample J_x = I − 1 sᵀ; on the batch, block diagonal.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;
  /// The Jacobian's two terms in absolute values, I + 1 sᵀ per sample (|J| is smaller where 1 − s_k
  /// cancels).
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const;

 private:
  Index n_;
};

// ---- definitions ------------------------------------------------------------------------------

template <class T>
Matrix<T> softmax_columns(const Matrix<T>& X) {
  using std::exp;
  Matrix<T> S(X.rows(), X.cols());
  for (Index c = 0; c < X.cols(); ++c) {
    const T m = X.col(c).maxCoeff();
    S.col(c) = X.col(c).unaryExpr([&m](const T& x) { return T(exp(T(x - m))); });
    const T sum = S.col(c).sum();
    S.col(c) /= sum;
  }
  return S;
}

/// Per column: x − m − log1p(Σ_{j≠k} exp(x_j − m)), m = x_k the maximum. log1p keeps the largest
/// entry's relative accuracy (≈ −Σ_{j≠k} e^{x_j − m} when the others are far below).
template <class T>
Matrix<T> log_softmax_columns(const Matrix<T>& X) {
  using std::exp;
  using std::log1p;
  Matrix<T> L(X.rows(), X.cols());
  for (Index c = 0; c < X.cols(); ++c) {
    Index k = 0;
    const T m = X.col(c).maxCoeff(&k);
    T rest(0);
    for (Index j = 0; j < X.rows(); ++j)
      if (j != k) rest += exp(T(X(j, c) - m));
    const T lse = log1p(rest);
    L.col(c) = X.col(c).unaryExpr([&](const T& x) { return T(x - m - lse); });
  }
  return L;
}

namespace softmax_detail {
/// Σ_{j≠k} s_j = 1 − s_k without cancellation.
template <class T>
T complement(const Eigen::Ref<const Vector<T>>& s, Index k) {
  T r(0);
  for (Index j = 0; j < s.size(); ++j)
    if (j != k) r += s(j);
  return r;
}
}  // namespace softmax_detail

template <class T>
Softmax<T>::Softmax(Index width) : n_(width) {
  if (n_ <= 0) throw input_error("softmax: width must be positive, got " + std::to_string(n_));
}
template <class T>
void Softmax<T>::set_parameters(const Vector<T>& theta) {
  if (theta.size() != 0) throw input_error("softmax: takes no parameters");
}
template <class T>
Matrix<T> Softmax<T>::forward(const Matrix<T>& X) const {
  expect_rows(X, n_, "softmax");
  return softmax_columns(X);
}
template <class T>
Matrix<T> Softmax<T>::backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY,
                               Eigen::Ref<Vector<T>>) const {
  Matrix<T> dX(Y.rows(), Y.cols());
  for (Index c = 0; c < Y.cols(); ++c) {
    Index k = 0;
    Y.col(c).maxCoeff(&k);
    const Vector<T> d = dY.col(c).array() - dY(k, c);
    const T sd = Y.col(c).dot(d);
    dX.col(c) = Y.col(c).cwiseProduct(Vector<T>(d.array() - sd));
  }
  return dX;
}
template <class T>
Matrix<T> Softmax<T>::jacobian_input(const Matrix<T>& X) const {
  const Matrix<T> S = forward(X);
  std::vector<Matrix<T>> blocks;
  for (Index c = 0; c < S.cols(); ++c) {
    Matrix<T> J = -S.col(c) * S.col(c).transpose();
    J.diagonal() += S.col(c);
    Index k = 0;
    S.col(c).maxCoeff(&k);
    J(k, k) = S(k, c) * softmax_detail::complement<T>(S.col(c), k);
    blocks.push_back(std::move(J));
  }
  return block_diagonal(blocks);
}
template <class T>
Matrix<T> Softmax<T>::jacobian_parameters(const Matrix<T>& X) const {
  expect_rows(X, n_, "softmax");
  return Matrix<T>(n_ * X.cols(), 0);
}

template <class T>
Matrix<T> Softmax<T>::absolute_jacobian(const Matrix<T>& X) const {
  const Matrix<T> S = forward(X);
  std::vector<Matrix<T>> blocks;
  for (Index c = 0; c < S.cols(); ++c) {
    Matrix<T> J = S.col(c) * S.col(c).transpose();
    J.diagonal() += S.col(c);
    blocks.push_back(std::move(J));
  }
  return block_diagonal(blocks);
}

template <class T>
LogSoftmax<T>::LogSoftmax(Index width) : n_(width) {
  if (n_ <= 0) throw input_error("log_softmax: width must be positive, got " + std::to_string(n_));
}
template <class T>
void LogSoftmax<T>::set_parameters(const Vector<T>& theta) {
  if (theta.size() != 0) throw input_error("log_softmax: takes no parameters");
}
template <class T>
Matrix<T> LogSoftmax<T>::forward(const Matrix<T>& X) const {
  expect_rows(X, n_, "log_softmax");
  return log_softmax_columns(X);
}
template <class T>
Matrix<T> LogSoftmax<T>::backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY,
                                  Eigen::Ref<Vector<T>>) const {
  using std::exp;
  const Matrix<T> S = Y.unaryExpr([](const T& y) { return T(exp(y)); });
  Matrix<T> dX(Y.rows(), Y.cols());
  for (Index c = 0; c < Y.cols(); ++c) {
    Index k = 0;
    S.col(c).maxCoeff(&k);
    const T sum = dY.col(c).sum();
    dX.col(c) = dY.col(c) - S.col(c) * sum;
    // Σ_{j≠k} dy_j summed on its own: sum − dy_k would lose the small dy_j next to a large dy_k.
    dX(k, c) = dY(k, c) * softmax_detail::complement<T>(S.col(c), k) - S(k, c) * softmax_detail::complement<T>(dY.col(c), k);
  }
  return dX;
}
template <class T>
Matrix<T> LogSoftmax<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, n_, "log_softmax");
  const Matrix<T> S = softmax_columns(X);
  std::vector<Matrix<T>> blocks;
  for (Index c = 0; c < S.cols(); ++c) {
    Matrix<T> J = -Vector<T>::Ones(n_) * S.col(c).transpose();
    J.diagonal().array() += T(1);
    Index k = 0;
    S.col(c).maxCoeff(&k);
    J(k, k) = softmax_detail::complement<T>(S.col(c), k);
    blocks.push_back(std::move(J));
  }
  return block_diagonal(blocks);
}
template <class T>
Matrix<T> LogSoftmax<T>::jacobian_parameters(const Matrix<T>& X) const {
  expect_rows(X, n_, "log_softmax");
  return Matrix<T>(n_ * X.cols(), 0);
}

template <class T>
Matrix<T> LogSoftmax<T>::absolute_jacobian(const Matrix<T>& X) const {
  expect_rows(X, n_, "log_softmax");
  const Matrix<T> S = softmax_columns(X);
  std::vector<Matrix<T>> blocks;
  for (Index c = 0; c < S.cols(); ++c) {
    Matrix<T> J = Vector<T>::Ones(n_) * S.col(c).transpose();
    J.diagonal().array() += T(1);
    blocks.push_back(std::move(J));
  }
  return block_diagonal(blocks);
}

static_assert(LayerWithJacobians<Softmax<double>>, "Softmax must satisfy the Layer concept");
static_assert(LayerWithJacobians<LogSoftmax<double>>, "LogSoftmax must satisfy the Layer concept");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_SOFTMAX_CLASSES(X, T) \
  X(Softmax<T>)                       \
  X(LogSoftmax<T>)
#define BPCHECK_EXTERN_SOFTMAX(T) BPCHECK_SOFTMAX_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T) \
  extern template Matrix<T> softmax_columns<T>(const Matrix<T>&); \
  extern template Matrix<T> log_softmax_columns<T>(const Matrix<T>&);
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_SOFTMAX)
#undef BPCHECK_EXTERN_SOFTMAX

}  // namespace bpcheck
