#pragma once
// A residual block y = x + g(x), g = g_m ∘ … ∘ g_1 an inner sequence of layers whose output has the
// input's width: the first layer that is not a plain chain (x reaches y along two paths).
//
//   std::vector<bpcheck::AnyLayer<double>> inner{bpcheck::Dense<double>(4, 8), bpcheck::Tanh<double>(8),
//                                                bpcheck::Dense<double>(8, 4)};
//   bpcheck::Residual<double> r(std::move(inner));        // y = x + W₂ tanh(W₁x + b₁) + b₂
//
// θ is the inner layers' parameters concatenated in order; block names carry the inner index
// ("0.W", "0.b", "2.W", …), as in a PyTorch state dict of a Sequential. The model spec is
// {"type": "residual", "layers": [{"type": "dense", "units": 8}, {"type": "tanh"}, {"type": "dense", "units": 4}]}.
// The block is sample independent when every inner layer is: Independent says which (the registry
// picks it from the inner layers).
#include <vector>

#include "bpcheck/layer.hpp"

namespace bpcheck {

template <class T, bool Independent = true>
class Residual {
 public:
  using scalar_type = T;
  static constexpr bool sample_independent = Independent;

  /// Throws input_error for an empty sequence, inner widths that do not chain, or an output width
  /// other than the input width.
  explicit Residual(std::vector<AnyLayer<T>> inner);

  std::string type_name() const { return "residual"; }
  Index input_size() const { return inner_.front().input_size(); }
  Index output_size() const { return input_size(); }
  const std::vector<AnyLayer<T>>& inner() const { return inner_; }
  std::vector<ParameterBlock> parameter_blocks() const;
  Vector<T> parameters() const;
  void set_parameters(const Vector<T>& theta);

  /// Y = X + g(X)
  Matrix<T> forward(const Matrix<T>& X) const;

  /// dX = dY + J_gᵀ dY, the inner VJPs from the last layer to the first (backprop through g); each
  /// inner layer adds its J_θ,kᵀ δ_k to its segment of dθ.
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// J_x = I + J_m ⋯ J_1 (the inner batch Jacobians), on the batch.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;

  /// The columns of inner layer k: J_m ⋯ J_{k+1} J_θ,k (the skip path carries no parameters).
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

  /// [I + |J_m|⋯|J_1|, |J_m|⋯|J_{k+1}||J_θ,k| …] with |J_k| the inner layers' absolute Jacobians: the
  /// paths of backprop through g in absolute values, which |J| undercuts where paths cancel.
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const;

 private:
  /// x_0 = X, x_k = g_k(x_{k−1}): m + 1 matrices.
  std::vector<Matrix<T>> activations(const Matrix<T>& X) const;
  /// Inner layer k's absolute Jacobian; for a layer that states none (normalisations, whose entries
  /// (δ_ij − 1/n − x̂_i x̂_j / n)/σ cancel), each entry is raised to its row's largest |J_ij|, a
  /// conservative size for the terms an entry of that row is formed from.
  Matrix<T> absolute_inner(std::size_t k, const Matrix<T>& x) const;
  std::vector<AnyLayer<T>> inner_;
  std::vector<Index> offsets_;  ///< start of inner layer k's parameters in θ
};

template <class T, bool Independent>
Residual<T, Independent>::Residual(std::vector<AnyLayer<T>> inner) : inner_(std::move(inner)) {
  if (inner_.empty()) throw input_error("residual: the inner sequence 'layers' is empty");
  for (std::size_t k = 1; k < inner_.size(); ++k)
    if (inner_[k].input_size() != inner_[k - 1].output_size())
      throw input_error("residual: inner layer " + std::to_string(k) + " takes " +
                        std::to_string(inner_[k].input_size()) + " inputs but layer " + std::to_string(k - 1) +
                        " gives " + std::to_string(inner_[k - 1].output_size()));
  if (inner_.back().output_size() != input_size())
    throw input_error("residual: the inner sequence maps " + std::to_string(input_size()) + " features to " +
                      std::to_string(inner_.back().output_size()) + "; x + g(x) needs the same width");
  Index at = 0;
  for (const auto& l : inner_) {
    offsets_.push_back(at);
    at += l.parameter_count();
  }
}

template <class T, bool Independent>
std::vector<ParameterBlock> Residual<T, Independent>::parameter_blocks() const {
  std::vector<ParameterBlock> blocks;
  for (std::size_t k = 0; k < inner_.size(); ++k)
    for (auto b : inner_[k].parameter_blocks()) {
      b.name = std::to_string(k) + "." + b.name;
      b.offset += offsets_[k];
      blocks.push_back(std::move(b));
    }
  return blocks;
}

template <class T, bool Independent>
Vector<T> Residual<T, Independent>::parameters() const {
  Vector<T> theta(parameter_count(parameter_blocks()));
  for (std::size_t k = 0; k < inner_.size(); ++k)
    theta.segment(offsets_[k], inner_[k].parameter_count()) = inner_[k].parameters();
  return theta;
}

template <class T, bool Independent>
void Residual<T, Independent>::set_parameters(const Vector<T>& theta) {
  const Index P = parameter_count(parameter_blocks());
  if (theta.size() != P)
    throw input_error("residual: expected " + std::to_string(P) + " parameters, got " + std::to_string(theta.size()));
  for (std::size_t k = 0; k < inner_.size(); ++k)
    inner_[k].set_parameters(theta.segment(offsets_[k], inner_[k].parameter_count()));
}

template <class T, bool Independent>
std::vector<Matrix<T>> Residual<T, Independent>::activations(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "residual");
  std::vector<Matrix<T>> xs{X};
  for (const auto& l : inner_) xs.push_back(l.forward(xs.back()));
  return xs;
}

template <class T, bool Independent>
Matrix<T> Residual<T, Independent>::forward(const Matrix<T>& X) const {
  return X + activations(X).back();
}

template <class T, bool Independent>
Matrix<T> Residual<T, Independent>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                                             Eigen::Ref<Vector<T>> dtheta) const {
  const auto xs = activations(X);
  Matrix<T> delta = dY;
  for (std::size_t k = inner_.size(); k-- > 0;) {
    Eigen::Ref<Vector<T>> dk = dtheta.segment(offsets_[k], inner_[k].parameter_count());
    delta = inner_[k].backward(xs[k], xs[k + 1], delta, dk);
  }
  return dY + delta;
}

template <class T, bool Independent>
Matrix<T> Residual<T, Independent>::jacobian_input(const Matrix<T>& X) const {
  const auto xs = activations(X);
  Matrix<T> J = inner_[0].jacobian_input(xs[0]);
  for (std::size_t k = 1; k < inner_.size(); ++k) J = (inner_[k].jacobian_input(xs[k]) * J).eval();
  J += Matrix<T>::Identity(J.rows(), J.cols());
  return J;
}

template <class T, bool Independent>
Matrix<T> Residual<T, Independent>::jacobian_parameters(const Matrix<T>& X) const {
  const auto xs = activations(X);
  const Index rows = X.size();
  Matrix<T> J(rows, parameter_count(parameter_blocks()));
  // P = J_m ⋯ J_{k+1}, grown one factor to the right per step from the identity.
  Matrix<T> P = Matrix<T>::Identity(rows, rows);
  for (std::size_t k = inner_.size(); k-- > 0;) {
    J.middleCols(offsets_[k], inner_[k].parameter_count()) = P * inner_[k].jacobian_parameters(xs[k]);
    P = (P * inner_[k].jacobian_input(xs[k])).eval();
  }
  return J;
}

template <class T, bool Independent>
Matrix<T> Residual<T, Independent>::absolute_inner(std::size_t k, const Matrix<T>& x) const {
  Matrix<T> A = inner_[k].absolute_jacobian(x);
  if (inner_[k].has_absolute_jacobian()) return A;
  for (Index r = 0; r < A.rows(); ++r) {
    T top(0);
    for (Index c = 0; c < A.cols(); ++c)
      if (A(r, c) > top) top = A(r, c);
    // Only entries that are not exact zeros of the structure (other samples, parameters that do not
    // reach this output) are raised.
    for (Index c = 0; c < A.cols(); ++c)
      if (A(r, c) != T(0)) A(r, c) = top;
  }
  return A;
}

template <class T, bool Independent>
Matrix<T> Residual<T, Independent>::absolute_jacobian(const Matrix<T>& X) const {
  const auto xs = activations(X);
  const Index rows = X.size();
  Matrix<T> J(rows, rows + parameter_count(parameter_blocks()));
  // P = |J_m| ⋯ |J_{k+1}|, grown one factor to the right per step from the identity.
  Matrix<T> P = Matrix<T>::Identity(rows, rows);
  for (std::size_t k = inner_.size(); k-- > 0;) {
    const Matrix<T> A = absolute_inner(k, xs[k]);
    const Index nk = xs[k].size(), pk = inner_[k].parameter_count();
    J.middleCols(rows + offsets_[k], pk) = P * A.rightCols(pk);
    P = (P * A.leftCols(nk)).eval();
  }
  J.leftCols(rows) = P + Matrix<T>::Identity(rows, rows);
  return J;
}

static_assert(LayerWithJacobians<Residual<double>>, "residual must satisfy the Layer concept with Jacobians");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_RESIDUAL_CLASSES(X, T) \
  X(Residual<T, true>)                 \
  X(Residual<T, false>)
#define BPCHECK_EXTERN_RESIDUAL(T) BPCHECK_RESIDUAL_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_RESIDUAL)
#undef BPCHECK_EXTERN_RESIDUAL

}  // namespace bpcheck
