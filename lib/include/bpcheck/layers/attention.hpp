#pragma once
// Multi-head self-attention, PyTorch's nn.MultiheadAttention(embed, heads, batch_first=True) called as
// attn(x, x, x) (bias on, no dropout, no added key/value bias), with an optional causal mask.
//
//   bpcheck::MultiHeadAttention<double> a(4, 3, 2, true);   // embed 4, sequence 3, 2 heads, causal
//   auto Y = a.forward(X);                                   // X: 12 × batch, token t at rows t·4 … t·4 + 3
//
// A sample is one sequence: its column holds the S tokens' E-vectors one after the other (PyTorch's
// (L, E) row-major), i.e. the column is vec(X_s) of the E × S matrix X_s with one token per column.
// θ = [vec(in_proj_weight); in_proj_bias; vec(out_proj.weight); out_proj.bias] with PyTorch's names
// and shapes: in_proj_weight is 3E × E, the rows of W_q, W_k, W_v stacked; vec is column-major.
//
// Per sample and head h (d = E/H rows of each projection):
//   Q = W_q X + b_q 1ᵀ, K = W_k X + b_k 1ᵀ, V = W_v X + b_v 1ᵀ                    (E × S)
//   A_h = Q_hᵀ K_h / √d (S × S; A(i, j): query i, key j; causal: j > i is masked out)
//   P_h = softmax of each row of A_h (masked entries 0),  O_h = V_h P_hᵀ  (token i gets Σ_j P(i, j) v_j)
//   Y = W_o O + b_o 1ᵀ, O the heads' O_h stacked.
//
// transformer_encoder_layer (PyTorch's nn.TransformerEncoderLayer, batch_first, dropout 0) is composed
// of these pieces; see TransformerEncoderLayer below.
#include <array>
#include <cmath>

#include "bpcheck/layer.hpp"
#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/dense.hpp"
#include "bpcheck/layers/norms.hpp"
#include "bpcheck/layers/residual.hpp"
#include "bpcheck/products.hpp"

namespace bpcheck {

template <class T>
class MultiHeadAttention {
 public:
  using scalar_type = T;

  /// Throws input_error when a size is not positive or heads does not divide embed.
  MultiHeadAttention(Index embed, Index sequence, Index heads, bool causal);

  std::string type_name() const { return "multi_head_attention"; }
  Index embed() const { return E_; }
  Index sequence() const { return S_; }
  Index heads() const { return H_; }
  bool causal() const { return causal_; }
  Index input_size() const { return E_ * S_; }
  Index output_size() const { return E_ * S_; }
  std::vector<ParameterBlock> parameter_blocks() const;
  const Vector<T>& parameters() const { return theta_; }
  void set_parameters(const Vector<T>& theta);

  /// Y_s = W_o O_s + b_o 1ᵀ for every sample (see the file comment).
  Matrix<T> forward(const Matrix<T>& X) const;

  /// The VJP, per sample and head, from G = dY:
  ///   dW_o += G Oᵀ, db_o += G 1, dO = W_oᵀ G;
  ///   dV_h = dO_h P_h, dP_h = dO_hᵀ V_h, dA = P ⊙ (dP − rowsum(P ⊙ dP) 1ᵀ) (softmax, row by row);
  ///   dQ_h = K_h dAᵀ/√d, dK_h = Q_h dA/√d;
  ///   dW_{q,k,v} += d{Q,K,V} Xᵀ, db_{q,v} += d{Q,V} 1, db_k = 0 (softmax is shift invariant),
  ///   dX = W_qᵀ dQ + W_kᵀ dK + W_vᵀ dV.
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// Column by column from the forward-mode linearisation (tangents Ẋ, θ̇ of one input or parameter):
  ///   Q̇ = Ẇ_q X + W_q Ẋ + ḃ_q 1ᵀ (K̇, V̇ alike);  Ȧ_h = (Q̇_hᵀ K_h + Q_hᵀ K̇_h)/√d;
  ///   Ṗ = P ⊙ (Ȧ − rowsum(P ⊙ Ȧ) 1ᵀ);  Ȯ_h = V̇_h P_hᵀ + V_h Ṗ_hᵀ;  Ẏ = Ẇ_o O + W_o Ȯ + ḃ_o 1ᵀ.
  /// Sample independent: J_x is block diagonal on the batch.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

  /// [J_x J_θ] with the same linearisation in absolute values (|W|, |X|, and Ṗ = P ⊙ Ȧ + rowsum(P ⊙ Ȧ) P
  /// for Ȧ ≥ 0): the softmax terms that cancel in J are added here, so it bounds the rounding of backward
  /// and of the stated Jacobians. Computed values enter at the size of the terms they are computed from:
  /// Q, K, V as |W||X| + |b| 1ᵀ, and P as P ⊙ (1 + 4 max_j Â_ij) with Â = |Q|ᵀ|K|/√d, since each weight
  /// comes from scores rounded at that size (keys with a bias of 1e5 give scores of 1e5 whose O(1)
  /// differences set P); O as |V||P|ᵀ.
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const;

 private:
  struct Cache {
    Matrix<T> X, Q, K, V, O;
    std::vector<Matrix<T>> P;  ///< per head, S × S
  };
  Cache run(const Eigen::Ref<const Vector<T>>& x) const;
  /// Q, K, V = W_{q,k,v} X + b_{q,k,v} 1ᵀ of c.X, with the projections of the flat parameters `theta`.
  void project(const Vector<T>& theta, Cache& c) const;
  /// Ẏ (E × S) for tangents Ẋ (E × S) and θ̇ (all parameters) at a cached sample; `absolute`: the
  /// softmax tangent's two terms added instead of subtracted (for absolute_jacobian).
  Matrix<T> tangent(const Cache& c, const Matrix<T>& dX, const Vector<T>& dtheta, bool absolute = false) const;
  /// Blocks of a flat parameter-shaped vector.
  Eigen::Map<const Matrix<T>> w_in(const Vector<T>& v) const { return {v.data(), 3 * E_, E_}; }
  Eigen::Map<const Vector<T>> b_in(const Vector<T>& v) const { return {v.data() + 3 * E_ * E_, 3 * E_}; }
  Eigen::Map<const Matrix<T>> w_out(const Vector<T>& v) const { return {v.data() + 3 * E_ * E_ + 3 * E_, E_, E_}; }
  Eigen::Map<const Vector<T>> b_out(const Vector<T>& v) const { return {v.data() + 4 * E_ * E_ + 3 * E_, E_}; }
  bool masked(Index query, Index key) const { return causal_ && key > query; }

  Index E_, S_, H_, d_;
  bool causal_;
  T scale_;  ///< 1/√d
  Vector<T> theta_;
};

template <class T>
MultiHeadAttention<T>::MultiHeadAttention(Index embed, Index sequence, Index heads, bool causal)
    : E_(embed), S_(sequence), H_(heads), causal_(causal) {
  using std::sqrt;
  if (E_ <= 0 || S_ <= 0 || H_ <= 0)
    throw input_error("multi_head_attention: embed size, sequence length and heads must be positive");
  if (E_ % H_ != 0)
    throw input_error("multi_head_attention: heads = " + std::to_string(H_) + " does not divide the embed size " +
                      std::to_string(E_));
  d_ = E_ / H_;
  scale_ = T(1) / sqrt(T(d_));
  theta_ = zeros<T>(4 * E_ * E_ + 4 * E_);
}

template <class T>
std::vector<ParameterBlock> MultiHeadAttention<T>::parameter_blocks() const {
  return {{"in_proj_weight", 3 * E_, E_, 0, false},
          {"in_proj_bias", 3 * E_, 1, 3 * E_ * E_, true},
          {"out_proj.weight", E_, E_, 3 * E_ * E_ + 3 * E_, false},
          {"out_proj.bias", E_, 1, 4 * E_ * E_ + 3 * E_, true}};
}

template <class T>
void MultiHeadAttention<T>::set_parameters(const Vector<T>& theta) {
  if (theta.size() != theta_.size())
    throw input_error("multi_head_attention: expected " + std::to_string(theta_.size()) + " parameters, got " +
                      std::to_string(theta.size()));
  theta_ = theta;
}

template <class T>
void MultiHeadAttention<T>::project(const Vector<T>& theta, Cache& c) const {
  const auto W = w_in(theta);
  const auto b = b_in(theta);
  c.Q = product<T>(W.topRows(E_), c.X);
  c.Q.colwise() += b.head(E_);
  c.K = product<T>(W.middleRows(E_, E_), c.X);
  c.K.colwise() += b.segment(E_, E_);
  c.V = product<T>(W.bottomRows(E_), c.X);
  c.V.colwise() += b.tail(E_);
}

template <class T>
typename MultiHeadAttention<T>::Cache MultiHeadAttention<T>::run(const Eigen::Ref<const Vector<T>>& x) const {
  using std::exp;
  Cache c;
  c.X = Eigen::Map<const Matrix<T>>(x.data(), E_, S_);
  project(theta_, c);
  c.O.resize(E_, S_);
  for (Index h = 0; h < H_; ++h) {
    const Matrix<T> A = product_tn<T>(c.Q.middleRows(h * d_, d_), c.K.middleRows(h * d_, d_)) * scale_;
    Matrix<T> P = Matrix<T>::Zero(S_, S_);
    for (Index i = 0; i < S_; ++i) {
      // softmax over the unmasked keys, shifted by their maximum (no overflow of e^A).
      T top = A(i, 0);
      for (Index j = 1; j < S_; ++j)
        if (!masked(i, j) && A(i, j) > top) top = A(i, j);
      T sum(0);
      for (Index j = 0; j < S_; ++j)
        if (!masked(i, j)) sum += P(i, j) = exp(T(A(i, j) - top));
      P.row(i) /= sum;
    }
    c.O.middleRows(h * d_, d_) = product_nt<T>(c.V.middleRows(h * d_, d_), P);
    c.P.push_back(std::move(P));
  }
  return c;
}

template <class T>
Matrix<T> MultiHeadAttention<T>::forward(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "multi_head_attention");
  Matrix<T> Y(output_size(), X.cols());
  for (Index s = 0; s < X.cols(); ++s) {
    const Cache c = run(X.col(s));
    Matrix<T> Ys = product<T>(w_out(theta_), c.O);
    Ys.colwise() += b_out(theta_);
    Y.col(s) = Eigen::Map<const Vector<T>>(Ys.data(), Ys.size());
  }
  return Y;
}

template <class T>
Matrix<T> MultiHeadAttention<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                                          Eigen::Ref<Vector<T>> dtheta) const {
  Eigen::Map<Matrix<T>> dW_in(dtheta.data(), 3 * E_, E_);
  Eigen::Map<Vector<T>> db_in(dtheta.data() + 3 * E_ * E_, 3 * E_);
  Eigen::Map<Matrix<T>> dW_out(dtheta.data() + 3 * E_ * E_ + 3 * E_, E_, E_);
  Eigen::Map<Vector<T>> db_out(dtheta.data() + 4 * E_ * E_ + 3 * E_, E_);
  const auto W = w_in(theta_);
  Matrix<T> dX(X.rows(), X.cols());
  for (Index s = 0; s < X.cols(); ++s) {
    const Cache c = run(X.col(s));
    const Matrix<T> G = Eigen::Map<const Matrix<T>>(dY.col(s).data(), E_, S_);
    dW_out += product_nt<T>(G, c.O);
    db_out += G.rowwise().sum();
    const Matrix<T> dO = product_tn<T>(w_out(theta_), G);
    Matrix<T> dQ(E_, S_), dK(E_, S_), dV(E_, S_);
    for (Index h = 0; h < H_; ++h) {
      const Matrix<T>& P = c.P[std::size_t(h)];
      const auto dOh = dO.middleRows(h * d_, d_);
      dV.middleRows(h * d_, d_) = product<T>(dOh, P);
      const Matrix<T> dP = product_tn<T>(dOh, c.V.middleRows(h * d_, d_));
      const Matrix<T> PdP = P.cwiseProduct(dP);
      // row i: P(i, :) ⊙ dP(i, :) − P(i, :) Σ_j P(i, j) dP(i, j): the row sums scale the rows of P
      const Matrix<T> dA = PdP - Vector<T>(PdP.rowwise().sum()).asDiagonal() * P;
      dQ.middleRows(h * d_, d_) = product_nt<T>(c.K.middleRows(h * d_, d_), dA) * scale_;
      dK.middleRows(h * d_, d_) = product<T>(c.Q.middleRows(h * d_, d_), dA) * scale_;
    }
    dW_in.topRows(E_) += product_nt<T>(dQ, c.X);
    dW_in.middleRows(E_, E_) += product_nt<T>(dK, c.X);
    dW_in.bottomRows(E_) += product_nt<T>(dV, c.X);
    db_in.head(E_) += dQ.rowwise().sum();
    // db_k = dK 1 = Q_h dA 1/√d = 0: every row of dA sums to 0 (softmax ignores a constant added to a
    // row of scores, and q_i·b_k is one), so the key bias has an exactly zero gradient; summing dK would
    // give rounding noise instead of that 0.
    db_in.tail(E_) += dV.rowwise().sum();
    const Matrix<T> dXs = product_tn<T>(W.topRows(E_), dQ) + product_tn<T>(W.middleRows(E_, E_), dK) +
                          product_tn<T>(W.bottomRows(E_), dV);
    dX.col(s) = Eigen::Map<const Vector<T>>(dXs.data(), dXs.size());
  }
  return dX;
}

template <class T>
Matrix<T> MultiHeadAttention<T>::tangent(const Cache& c, const Matrix<T>& dX, const Vector<T>& dtheta,
                                         bool absolute) const {
  const auto W = w_in(theta_), dW = w_in(dtheta);
  const auto db = b_in(dtheta);
  Matrix<T> dQ = product<T>(dW.topRows(E_), c.X) + product<T>(W.topRows(E_), dX);
  dQ.colwise() += db.head(E_);
  // ḃ_k adds q_i·ḃ_k to every score of row i: softmax ignores it, so it is left out (an exact 0
  // rather than the rounding noise of P ⊙ Ȧ − rowsum(P ⊙ Ȧ) P for a constant row).
  const Matrix<T> dK = product<T>(dW.middleRows(E_, E_), c.X) + product<T>(W.middleRows(E_, E_), dX);
  Matrix<T> dV = product<T>(dW.bottomRows(E_), c.X) + product<T>(W.bottomRows(E_), dX);
  dV.colwise() += db.tail(E_);
  Matrix<T> dO(E_, S_);
  for (Index h = 0; h < H_; ++h) {
    const Matrix<T>& P = c.P[std::size_t(h)];
    const Matrix<T> dA = (product_tn<T>(dQ.middleRows(h * d_, d_), c.K.middleRows(h * d_, d_)) +
                          product_tn<T>(c.Q.middleRows(h * d_, d_), dK.middleRows(h * d_, d_))) *
                         scale_;
    // masked entries have P = 0, so Ṗ = 0 there whatever Ȧ is.
    const Matrix<T> PdA = P.cwiseProduct(dA);
    const Matrix<T> dP = absolute ? Matrix<T>(PdA + Vector<T>(PdA.rowwise().sum()).asDiagonal() * P)
                                  : Matrix<T>(PdA - Vector<T>(PdA.rowwise().sum()).asDiagonal() * P);
    dO.middleRows(h * d_, d_) = product_nt<T>(dV.middleRows(h * d_, d_), P) + product_nt<T>(c.V.middleRows(h * d_, d_), dP);
  }
  Matrix<T> dY = product<T>(w_out(dtheta), c.O) + product<T>(w_out(theta_), dO);
  dY.colwise() += b_out(dtheta);
  return dY;
}

template <class T>
Matrix<T> MultiHeadAttention<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "multi_head_attention");
  const Index n = input_size();
  const Vector<T> no_theta = Vector<T>::Zero(theta_.size());
  std::vector<Matrix<T>> blocks;
  for (Index s = 0; s < X.cols(); ++s) {
    const Cache c = run(X.col(s));
    Matrix<T> J(n, n);
    for (Index k = 0; k < n; ++k) {
      Matrix<T> dX = Matrix<T>::Zero(E_, S_);
      dX(k) = T(1);
      const Matrix<T> dY = tangent(c, dX, no_theta);
      J.col(k) = Eigen::Map<const Vector<T>>(dY.data(), n);
    }
    blocks.push_back(std::move(J));
  }
  return block_diagonal(blocks);
}

template <class T>
Matrix<T> MultiHeadAttention<T>::jacobian_parameters(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "multi_head_attention");
  const Index n = output_size(), P = theta_.size();
  const Matrix<T> no_dx = Matrix<T>::Zero(E_, S_);
  Matrix<T> J(n * X.cols(), P);
  for (Index s = 0; s < X.cols(); ++s) {
    const Cache c = run(X.col(s));
    for (Index k = 0; k < P; ++k) {
      Vector<T> dtheta = Vector<T>::Zero(P);
      dtheta(k) = T(1);
      const Matrix<T> dY = tangent(c, no_dx, dtheta);
      J.block(s * n, k, n, 1) = Eigen::Map<const Vector<T>>(dY.data(), n);
    }
  }
  return J;
}

template <class T>
Matrix<T> MultiHeadAttention<T>::absolute_jacobian(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "multi_head_attention");
  using std::abs;
  const auto magnitude = [](const Matrix<T>& M) { return Matrix<T>(M.unaryExpr([](const T& v) { return T(abs(v)); })); };
  MultiHeadAttention positive = *this;
  positive.theta_ = magnitude(theta_);
  const Index n = input_size(), P = theta_.size(), B = X.cols();
  Matrix<T> J = Matrix<T>::Zero(n * B, n * B + P);
  for (Index s = 0; s < B; ++s) {
    Cache c = run(X.col(s));
    c.X = magnitude(c.X);
    project(positive.theta_, c);
    for (Index h = 0; h < H_; ++h) {
      Matrix<T>& P = c.P[std::size_t(h)];
      const Matrix<T> A = product_tn<T>(c.Q.middleRows(h * d_, d_), c.K.middleRows(h * d_, d_)) * scale_;
      for (Index i = 0; i < S_; ++i) P.row(i) *= T(1) + T(4) * A.row(i).maxCoeff();
      c.O.middleRows(h * d_, d_) = product_nt<T>(c.V.middleRows(h * d_, d_), P);
    }
    for (Index k = 0; k < n + P; ++k) {
      Matrix<T> dX = Matrix<T>::Zero(E_, S_);
      Vector<T> dtheta = Vector<T>::Zero(P);
      if (k < n)
        dX(k) = T(1);
      else
        dtheta(k - n) = T(1);
      const Matrix<T> dY = positive.tangent(c, dX, dtheta, true);
      J.block(s * n, k < n ? s * n + k : n * B + k - n, n, 1) = Eigen::Map<const Vector<T>>(dY.data(), n);
    }
  }
  return J;
}

static_assert(LayerWithJacobians<MultiHeadAttention<double>>,
              "multi_head_attention must satisfy the Layer concept with Jacobians");

/// nn.TransformerEncoderLayer(E, heads, dim_feedforward, dropout=0, activation, layer_norm_eps,
/// batch_first=True, norm_first) on one sequence per sample (the layout of multi_head_attention), made
/// of the existing layers and run as a chain of stages:
///
///   post-LN (norm_first false):  x₁ = norm1(x + SA(x));          y = norm2(x₁ + FF(x₁))
///   pre-LN  (norm_first true):   x₁ = x + SA(norm1(x));          y = x₁ + FF(norm2(x₁))
///
/// with SA = multi_head_attention (not causal), FF = linear2 ∘ act ∘ linear1 applied to every token
/// (dense with tokens), act relu or exact gelu (erf), and norm1/norm2 layer_norm per token. The stages are
/// residual blocks and layer_norms: post-LN [residual(SA), norm1, residual(FF), norm2], pre-LN
/// [residual(norm1, SA), residual(norm2, FF)]. For a chain y = s_m ∘ … ∘ s_1:
///   backward: δ_m = dY, δ_{k−1} = J_kᵀ δ_k by each stage's backward, each adding its dθ;
///   J_x = J_m ⋯ J_1;  the columns of stage k's θ: J_m ⋯ J_{k+1} J_θ,k;
///   absolute_jacobian: the same products of the stages' absolute Jacobians.
/// Parameter blocks carry PyTorch's state-dict names (self_attn.in_proj_weight, …, linear1.weight,
/// norm2.bias); θ holds them in stage order.
template <class T>
class TransformerEncoderLayer {
 public:
  using scalar_type = T;

  /// Throws input_error when a size is not positive or heads does not divide embed.
  TransformerEncoderLayer(Index embed, Index sequence, Index heads, Index dim_feedforward, bool norm_first, bool gelu,
                          T eps);

  std::string type_name() const { return "transformer_encoder_layer"; }
  Index input_size() const { return stages_.front().input_size(); }
  Index output_size() const { return input_size(); }
  std::vector<ParameterBlock> parameter_blocks() const;
  Vector<T> parameters() const;
  void set_parameters(const Vector<T>& theta);

  Matrix<T> forward(const Matrix<T>& X) const { return activations(X).back(); }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;
  Matrix<T> jacobian_input(const Matrix<T>& X) const;
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const;

 private:
  /// x_0 = X, x_k = s_k(x_{k−1}).
  std::vector<Matrix<T>> activations(const Matrix<T>& X) const;
  std::vector<AnyLayer<T>> stages_;
  std::vector<Index> offsets_;      ///< start of stage k's parameters in θ
  std::vector<std::string> names_;  ///< PyTorch's name of each parameter block, in θ order
};

template <class T>
TransformerEncoderLayer<T>::TransformerEncoderLayer(Index embed, Index sequence, Index heads, Index dim_feedforward,
                                                    bool norm_first, bool gelu, T eps) {
  if (embed <= 0 || sequence <= 0 || heads <= 0 || dim_feedforward <= 0)
    throw input_error("transformer_encoder_layer: embed size, sequence, heads and dim_feedforward must be positive");
  const MultiHeadAttention<T> attention(embed, sequence, heads, false);
  const LayerNorm<T> norm(embed, eps, sequence);
  const Dense<T> linear1(embed, dim_feedforward, sequence), linear2(dim_feedforward, embed, sequence);
  const Index hidden = sequence * dim_feedforward;
  const AnyLayer<T> act = gelu ? AnyLayer<T>(Gelu<T>(hidden, GeluApproximation::none)) : AnyLayer<T>(Relu<T>(hidden));
  const std::array<std::string, 4> attn{"self_attn.in_proj_weight", "self_attn.in_proj_bias",
                                        "self_attn.out_proj.weight", "self_attn.out_proj.bias"};
  const std::array<std::string, 4> ff{"linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"};
  const auto add = [this](const auto& list) { names_.insert(names_.end(), list.begin(), list.end()); };
  if (norm_first) {
    stages_.push_back(Residual<T, true>({norm, attention}));
    stages_.push_back(Residual<T, true>({norm, linear1, act, linear2}));
    add(std::array<std::string, 2>{"norm1.weight", "norm1.bias"});
    add(attn);
    add(std::array<std::string, 2>{"norm2.weight", "norm2.bias"});
    add(ff);
  } else {
    stages_.push_back(Residual<T, true>({attention}));
    stages_.push_back(norm);
    stages_.push_back(Residual<T, true>({linear1, act, linear2}));
    stages_.push_back(norm);
    add(attn);
    add(std::array<std::string, 2>{"norm1.weight", "norm1.bias"});
    add(ff);
    add(std::array<std::string, 2>{"norm2.weight", "norm2.bias"});
  }
  Index at = 0;
  for (const auto& l : stages_) {
    offsets_.push_back(at);
    at += l.parameter_count();
  }
}

template <class T>
std::vector<ParameterBlock> TransformerEncoderLayer<T>::parameter_blocks() const {
  std::vector<ParameterBlock> blocks;
  for (std::size_t k = 0; k < stages_.size(); ++k)
    for (auto b : stages_[k].parameter_blocks()) {
      b.name = names_[blocks.size()];
      b.offset += offsets_[k];
      blocks.push_back(std::move(b));
    }
  return blocks;
}

template <class T>
Vector<T> TransformerEncoderLayer<T>::parameters() const {
  Vector<T> theta(offsets_.back() + stages_.back().parameter_count());
  for (std::size_t k = 0; k < stages_.size(); ++k)
    theta.segment(offsets_[k], stages_[k].parameter_count()) = stages_[k].parameters();
  return theta;
}

template <class T>
void TransformerEncoderLayer<T>::set_parameters(const Vector<T>& theta) {
  const Index P = offsets_.back() + stages_.back().parameter_count();
  if (theta.size() != P)
    throw input_error("transformer_encoder_layer: expected " + std::to_string(P) + " parameters, got " +
                      std::to_string(theta.size()));
  for (std::size_t k = 0; k < stages_.size(); ++k)
    stages_[k].set_parameters(theta.segment(offsets_[k], stages_[k].parameter_count()));
}

template <class T>
std::vector<Matrix<T>> TransformerEncoderLayer<T>::activations(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "transformer_encoder_layer");
  std::vector<Matrix<T>> xs{X};
  for (const auto& l : stages_) xs.push_back(l.forward(xs.back()));
  return xs;
}

template <class T>
Matrix<T> TransformerEncoderLayer<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                                               Eigen::Ref<Vector<T>> dtheta) const {
  const auto xs = activations(X);
  Matrix<T> delta = dY;
  for (std::size_t k = stages_.size(); k-- > 0;) {
    Eigen::Ref<Vector<T>> dk = dtheta.segment(offsets_[k], stages_[k].parameter_count());
    delta = stages_[k].backward(xs[k], xs[k + 1], delta, dk);
  }
  return delta;
}

template <class T>
Matrix<T> TransformerEncoderLayer<T>::jacobian_input(const Matrix<T>& X) const {
  const auto xs = activations(X);
  Matrix<T> J = stages_[0].jacobian_input(xs[0]);
  for (std::size_t k = 1; k < stages_.size(); ++k) J = (stages_[k].jacobian_input(xs[k]) * J).eval();
  return J;
}

template <class T>
Matrix<T> TransformerEncoderLayer<T>::jacobian_parameters(const Matrix<T>& X) const {
  const auto xs = activations(X);
  const Index rows = X.size();
  Matrix<T> J(rows, offsets_.back() + stages_.back().parameter_count());
  Matrix<T> P = Matrix<T>::Identity(rows, rows);  // J_m ⋯ J_{k+1}
  for (std::size_t k = stages_.size(); k-- > 0;) {
    J.middleCols(offsets_[k], stages_[k].parameter_count()) = P * stages_[k].jacobian_parameters(xs[k]);
    P = (P * stages_[k].jacobian_input(xs[k])).eval();
  }
  return J;
}

template <class T>
Matrix<T> TransformerEncoderLayer<T>::absolute_jacobian(const Matrix<T>& X) const {
  const auto xs = activations(X);
  const Index rows = X.size(), total = offsets_.back() + stages_.back().parameter_count();
  Matrix<T> J(rows, rows + total);
  Matrix<T> P = Matrix<T>::Identity(rows, rows);  // |J_m| ⋯ |J_{k+1}|
  for (std::size_t k = stages_.size(); k-- > 0;) {
    const Matrix<T> A = stages_[k].absolute_jacobian(xs[k]);  // every stage states its own
    const Index pk = stages_[k].parameter_count();
    J.middleCols(rows + offsets_[k], pk) = P * A.rightCols(pk);
    P = (P * A.leftCols(xs[k].size())).eval();
  }
  J.leftCols(rows) = P;
  return J;
}

static_assert(LayerWithJacobians<TransformerEncoderLayer<double>> &&
                  LayerWithAbsoluteJacobian<TransformerEncoderLayer<double>>,
              "transformer_encoder_layer must satisfy the Layer concept with Jacobians");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_ATTENTION_CLASSES(X, T) \
  X(MultiHeadAttention<T>)              \
  X(TransformerEncoderLayer<T>)
#define BPCHECK_EXTERN_ATTENTION(T) BPCHECK_ATTENTION_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_ATTENTION)
#undef BPCHECK_EXTERN_ATTENTION

}  // namespace bpcheck
