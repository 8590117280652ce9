#pragma once
// Embedding (PyTorch's nn.Embedding without padding_idx or max_norm): integer indices in, table rows out.
//
//   bpcheck::Embedding<double> e(10, 3, 4);   // 10 indices, vectors of 3, 4 tokens per sample
//   auto Y = e.forward(X);                     // X: 4 × batch of indices 0 … 9; Y: 12 × batch
//
// A sample is a sequence of L indices (one column, stored as reals holding integers); its output holds
// the L rows of the table one after the other (token t at rows t·D … t·D + D − 1), PyTorch's (L, D)
// row-major. θ = vec(weight), weight the V × D table (PyTorch's Embedding.weight), column-major.
// The output is piecewise constant in the indices: there is no gradient with respect to them
// (input_is_index), dX is 0, and only the table is differentiated.
//
// Two token layers on the same layout (a sample is T tokens of F features, token t at rows t·F … t·F + F − 1):
//
//   bpcheck::PositionEmbedding<double> p(4, 3);   // y = x + P, P the learned 4 × 3 table (tokens × features)
//   bpcheck::TokenMean<double> m(4, 3);           // 12 → 3: the mean of the 4 tokens (x.mean(dim=1))
#include <cmath>

#include "bpcheck/layer.hpp"

namespace bpcheck {

template <class T>
class Embedding {
 public:
  using scalar_type = T;

  Embedding(Index num_embeddings, Index embedding_dim, Index tokens);

  std::string type_name() const { return "embedding"; }
  bool input_is_index() const { return true; }
  Index index_count() const { return V_; }
  Index input_size() const { return L_; }
  Index output_size() const { return L_ * D_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {{"weight", V_, D_, 0, false}}; }
  const Vector<T>& parameters() const { return theta_; }
  void set_parameters(const Vector<T>& theta);
  Eigen::Map<const Matrix<T>> weight() const { return {theta_.data(), V_, D_}; }

  /// The index held by entry x; throws input_error unless x is an integer in 0 … V − 1 (the checker's
  /// finite differences move an index by far less than the 1e-6 allowed, and never change it).
  Index index(const T& x) const;

  /// y_s[t·D + e] = weight(x_s[t], e)
  Matrix<T> forward(const Matrix<T>& X) const;

  /// dweight(x_s[t], :) += dy_s[t·D … t·D + D − 1];  dX = 0 (no gradient with respect to indices)
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// J_x = 0 (piecewise constant in the indices).
  Matrix<T> jacobian_input(const Matrix<T>& X) const;

  /// ∂y_s[t·D + e]/∂weight(k, e) = [k = x_s[t]]  (θ index e·V + k).
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

 private:
  Index V_, D_, L_;
  Vector<T> theta_;
};

template <class T>
Embedding<T>::Embedding(Index num_embeddings, Index embedding_dim, Index tokens)
    : V_(num_embeddings), D_(embedding_dim), L_(tokens) {
  if (V_ <= 0 || D_ <= 0 || L_ <= 0)
    throw input_error("embedding: num_embeddings, embedding_dim and the tokens per sample must be positive");
  theta_ = zeros<T>(V_ * D_);
}

template <class T>
void Embedding<T>::set_parameters(const Vector<T>& theta) {
  if (theta.size() != theta_.size())
    throw input_error("embedding: expected " + std::to_string(theta_.size()) + " parameters, got " +
                      std::to_string(theta.size()));
  theta_ = theta;
}

template <class T>
Index Embedding<T>::index(const T& x) const {
  const auto& v = value_of(x);
  const double d = scalar_cast<double>(v);
  const double k = std::round(d);
  if (!std::isfinite(d) || std::abs(d - k) > 1e-6 || k < 0 || k >= double(V_))
    throw input_error("embedding: input " + bpcheck::to_string(x) + " is not an index in 0.." + std::to_string(V_ - 1));
  return Index(k);
}

template <class T>
Matrix<T> Embedding<T>::forward(const Matrix<T>& X) const {
  expect_rows(X, L_, "embedding");
  Matrix<T> Y(output_size(), X.cols());
  for (Index s = 0; s < X.cols(); ++s)
    for (Index t = 0; t < L_; ++t) Y.col(s).segment(t * D_, D_) = weight().row(index(X(t, s))).transpose();
  return Y;
}

template <class T>
Matrix<T> Embedding<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                                 Eigen::Ref<Vector<T>> dtheta) const {
  Eigen::Map<Matrix<T>> dW(dtheta.data(), V_, D_);
  for (Index s = 0; s < X.cols(); ++s)
    for (Index t = 0; t < L_; ++t) dW.row(index(X(t, s))) += dY.col(s).segment(t * D_, D_).transpose();
  return Matrix<T>::Zero(X.rows(), X.cols());
}

template <class T>
Matrix<T> Embedding<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, L_, "embedding");
  return Matrix<T>::Zero(output_size() * X.cols(), L_ * X.cols());
}

template <class T>
Matrix<T> Embedding<T>::jacobian_parameters(const Matrix<T>& X) const {
  expect_rows(X, L_, "embedding");
  Matrix<T> J = Matrix<T>::Zero(output_size() * X.cols(), theta_.size());
  for (Index s = 0; s < X.cols(); ++s)
    for (Index t = 0; t < L_; ++t) {
      const Index k = index(X(t, s));
      for (Index e = 0; e < D_; ++e) J(s * output_size() + t * D_ + e, e * V_ + k) = T(1);
    }
  return J;
}

/// position_embedding: y = x + vec(Pᵀ) per sample, P the tokens × features table (a learned position
/// embedding added to the tokens, as `x + self.pos` with pos of shape (T, F)). θ = vec(P) column-major,
/// block "weight" (T rows of F), so θ index f·T + t is P(t, f), added to row t·F + f.
/// J_x = I;  ∂y(t·F + f)/∂P(t, f) = 1;  dx = dy;  dP(t, f) += Σ_s dy(t·F + f, s).
template <class T>
class PositionEmbedding {
 public:
  using scalar_type = T;

  PositionEmbedding(Index tokens, Index features) : T_(tokens), F_(features) {
    if (T_ <= 0 || F_ <= 0) throw input_error("position_embedding: tokens and features must be positive");
    theta_ = zeros<T>(T_ * F_);
  }

  std::string type_name() const { return "position_embedding"; }
  Index input_size() const { return T_ * F_; }
  Index output_size() const { return T_ * F_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {{"weight", T_, F_, 0, false}}; }
  const Vector<T>& parameters() const { return theta_; }
  void set_parameters(const Vector<T>& theta) {
    if (theta.size() != theta_.size())
      throw input_error("position_embedding: expected " + std::to_string(theta_.size()) + " parameters, got " +
                        std::to_string(theta.size()));
    theta_ = theta;
  }

  /// Y = X + vec(Pᵀ) 1ᵀ
  Matrix<T> forward(const Matrix<T>& X) const {
    expect_rows(X, input_size(), "position_embedding");
    return X.colwise() + sample_order();
  }
  /// dX = dY;  dP += the row sums of dY, each put at P's entry.
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Vector<T> sums = dY.rowwise().sum();
    for (Index t = 0; t < T_; ++t)
      for (Index f = 0; f < F_; ++f) dtheta(f * T_ + t) += sums(t * F_ + f);
    return dY;
  }
  Matrix<T> jacobian_input(const Matrix<T>& X) const {
    expect_rows(X, input_size(), "position_embedding");
    return Matrix<T>::Identity(X.size(), X.size());
  }
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const {
    expect_rows(X, input_size(), "position_embedding");
    Matrix<T> J = Matrix<T>::Zero(X.size(), theta_.size());
    for (Index s = 0; s < X.cols(); ++s)
      for (Index t = 0; t < T_; ++t)
        for (Index f = 0; f < F_; ++f) J(s * input_size() + t * F_ + f, f * T_ + t) = T(1);
    return J;
  }

 private:
  /// P in a sample's order: vec(Pᵀ), P(t, f) at t·F + f.
  Vector<T> sample_order() const {
    const Matrix<T> Pt = Eigen::Map<const Matrix<T>>(theta_.data(), T_, F_).transpose();
    return Eigen::Map<const Vector<T>>(Pt.data(), Pt.size());
  }
  Index T_, F_;
  Vector<T> theta_;
};

/// token_mean: y_f = Σ_t x(t·F + f)/T, the mean over the tokens (x.mean(dim=1) on (B, T, F)); no
/// parameters. J_x = [I_F … I_F]/T per sample;  dx(t·F + f) = dy_f/T.
template <class T>
class TokenMean {
 public:
  using scalar_type = T;

  TokenMean(Index tokens, Index features) : T_(tokens), F_(features) {
    if (T_ <= 0 || F_ <= 0) throw input_error("token_mean: tokens and features must be positive");
  }

  std::string type_name() const { return "token_mean"; }
  Index input_size() const { return T_ * F_; }
  Index output_size() const { return F_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return Vector<T>(0); }
  void set_parameters(const Vector<T>& theta) {
    if (theta.size() != 0) throw input_error("token_mean: takes no parameters");
  }

  /// y = Σ_t x_t / T
  Matrix<T> forward(const Matrix<T>& X) const {
    expect_rows(X, input_size(), "token_mean");
    Matrix<T> Y = Matrix<T>::Zero(F_, X.cols());
    for (Index t = 0; t < T_; ++t) Y += X.middleRows(t * F_, F_);
    return Y / T(T_);
  }
  /// dx_t = dy/T for every token t
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return (dY / T(T_)).replicate(T_, 1);
  }
  Matrix<T> jacobian_input(const Matrix<T>& X) const {
    expect_rows(X, input_size(), "token_mean");
    const Matrix<T> A = Matrix<T>::Identity(F_, F_).replicate(1, T_) / T(T_);
    return block_diagonal(std::vector<Matrix<T>>(X.cols(), A));
  }
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const {
    expect_rows(X, input_size(), "token_mean");
    return Matrix<T>(F_ * X.cols(), 0);
  }

 private:
  Index T_, F_;
};

static_assert(LayerWithJacobians<Embedding<double>>, "embedding must satisfy the Layer concept with Jacobians");
static_assert(LayerWithJacobians<PositionEmbedding<double>> && LayerWithJacobians<TokenMean<double>>,
              "the token layers must satisfy the Layer concept with Jacobians");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_EMBEDDING_CLASSES(X, T) \
  X(Embedding<T>)                       \
  X(PositionEmbedding<T>)               \
  X(TokenMean<T>)
#define BPCHECK_EXTERN_EMBEDDING(T) BPCHECK_EMBEDDING_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_EMBEDDING)
#undef BPCHECK_EXTERN_EMBEDDING

}  // namespace bpcheck
