#pragma once
// Parallel branches joined by a sum or a concatenation: the model format's graphs. Every branch is a
// sequence of layers reading the same input x (an empty sequence is x itself, a skip path):
//   add:     y = g_1(x) + g_2(x) + …        (every branch gives the same width)
//   concat:  y = [g_1(x); g_2(x); …]        (features stacked per sample, as torch.cat(…, dim=1))
//
//   std::vector<std::vector<bpcheck::AnyLayer<double>>> branches(2);
//   branches[0].push_back(bpcheck::Dense<double>(4, 3));
//   branches[1].push_back(bpcheck::Tanh<double>(4));
//   bpcheck::Branches<double> b(4, std::move(branches), bpcheck::Join::concat);   // 4 → 3 + 4 features
//
// The model spec is {"type": "concat", "branches": [[{"type": "dense", "units": 3}], [{"type": "tanh"}]]}
// (or "add"). θ is the branches' parameters in order, block names "<branch>.<layer>.<block>" ("0.0.W").
// `residual` is the special case add([], g). The block is sample independent when every inner layer is.
#include <vector>

#include "bpcheck/layer.hpp"

namespace bpcheck {

enum class Join { add, concat };

template <class T, bool Independent = true>
class Branches {
 public:
  using scalar_type = T;
  using Branch = std::vector<AnyLayer<T>>;
  static constexpr bool sample_independent = Independent;

  /// Throws input_error for fewer than two branches, a branch whose widths do not chain or that does
  /// not start at input_size, or (add) branches of different output widths.
  Branches(Index input_size, std::vector<Branch> branches, Join join);

  std::string type_name() const { return join_ == Join::add ? "add" : "concat"; }
  Index input_size() const { return input_size_; }
  Index output_size() const { return output_size_; }
  const std::vector<Branch>& branches() const { return branches_; }
  std::vector<ParameterBlock> parameter_blocks() const;
  Vector<T> parameters() const;
  void set_parameters(const Vector<T>& theta);

  /// add: Y = Σ_b g_b(X);  concat: rows [off_b, off_b + width_b) of Y are g_b(X)
  Matrix<T> forward(const Matrix<T>& X) const;

  /// dX = Σ_b J_bᵀ dY_b with dY_b = dY (add) or branch b's rows of dY (concat), each by backprop
  /// through its branch (an empty branch passes dY_b on); every inner layer adds J_θᵀ δ to its dθ.
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const;

  /// J_x = Σ_b J_b (add) or the J_b stacked per sample (concat), J_b = J_{b,m} ⋯ J_{b,1} on the batch
  /// (I for an empty branch).
  Matrix<T> jacobian_input(const Matrix<T>& X) const;

  /// The columns of layer k of branch b: J_{b,m} ⋯ J_{b,k+1} J_θ,{b,k}, in branch b's output rows.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

  /// [Σ_b |J_{b,m}|⋯|J_{b,1}| (stacked for concat), |J_{b,m}|⋯|J_{b,k+1}||J_θ,{b,k}| …] from the inner
  /// layers' absolute Jacobians: every path through every branch in absolute values, which |J|
  /// undercuts where paths cancel (the rounding scale of every route to J).
  Matrix<T> absolute_jacobian(const Matrix<T>& X) const;

 private:
  /// x_0 = X, x_k = g_{b,k}(x_{k−1}) for branch b.
  std::vector<Matrix<T>> activations(std::size_t b, const Matrix<T>& X) const;
  /// Adds a matrix whose rows are branch b's outputs on the batch (sample-major) into the rows of
  /// the joined output.
  void add_rows(std::size_t b, const Matrix<T>& from, Matrix<T>& to, Index batch) const;

  Index input_size_ = 0, output_size_ = 0;
  std::vector<Branch> branches_;
  Join join_;
  std::vector<Index> widths_;                ///< output width of each branch
  std::vector<Index> row_offsets_;           ///< concat: first feature of each branch's output
  std::vector<std::vector<Index>> offsets_;  ///< start of layer k of branch b in θ
  Index parameter_count_ = 0;
};

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_BRANCHES_CLASSES(X, T) \
  X(Branches<T, true>)                 \
  X(Branches<T, false>)
#define BPCHECK_EXTERN_BRANCHES(T) BPCHECK_BRANCHES_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_BRANCHES)
#undef BPCHECK_EXTERN_BRANCHES

}  // namespace bpcheck
