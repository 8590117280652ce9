#pragma once
// Dropout in training mode with a fixed mask, deterministic from a seed (PyTorch's scaling: the kept
// entries are multiplied by 1/(1 − p), so the expected output equals the input).
//
//   bpcheck::Dropout<double> d(5, 0.25, 7);   // width 5, p = 0.25, seed 7
//   auto Y = d.forward(X);                    // Y = M ⊙ X / (1 − p), M(i, s) ∈ {0, 1}
//
// The mask entry of feature i in batch column s is a pure function of (seed, i, s): the same on every
// rung and for every call, so forward is a fixed linear map and can be differentiated. Because the
// mask depends on the column, a sample moved to another column of the batch meets another mask: the
// layer declares sample_independent = false and states its Jacobians on the whole batch.
#include <cstdint>

#include "bpcheck/layer.hpp"

namespace bpcheck {

template <class T>
class Dropout {
 public:
  using scalar_type = T;
  static constexpr bool sample_independent = false;

  /// p ∈ [0, 1): the probability that an entry is dropped.
  Dropout(Index width, T p, std::uint64_t seed);

  std::string type_name() const { return "dropout"; }
  Index input_size() const { return n_; }
  Index output_size() const { return n_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return Vector<T>(0); }
  void set_parameters(const Vector<T>& theta) {
    if (theta.size() != 0) throw input_error("dropout: takes no parameters");
  }
  const T& p() const { return p_; }
  std::uint64_t seed() const { return seed_; }

  /// Whether entry (i, s) is kept.
  bool kept(Index feature, Index column) const;
  /// The mask M scaled by 1/(1 − p), for a batch of `columns` samples.
  Matrix<T> scaled_mask(Index columns) const;

  /// Y = M ⊙ X / (1 − p)
  Matrix<T> forward(const Matrix<T>& X) const;

  /// dX = M ⊙ dY / (1 − p)   (J_x is diagonal and symmetric)
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// J_x = diag(vec M) / (1 − p) on the batch (out·B × in·B).
  Matrix<T> jacobian_input(const Matrix<T>& X) const;
  /// No parameters: an out·B × 0 matrix.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

 private:
  Index n_;
  T p_, scale_;
  double p_double_;  ///< the threshold of the mask, identical on every rung
  std::uint64_t seed_;
};

template <class T>
Dropout<T>::Dropout(Index width, T p, std::uint64_t seed) : n_(width), p_(std::move(p)), seed_(seed) {
  if (n_ <= 0) throw input_error("dropout: width must be positive, got " + std::to_string(n_));
  if (!(p_ >= T(0) && p_ < T(1)))
    throw input_error("dropout: p must be in [0, 1), got " + bpcheck::to_string(p_));
  scale_ = T(1) / (T(1) - p_);
  p_double_ = scalar_cast<double>(p_);
}

template <class T>
bool Dropout<T>::kept(Index feature, Index column) const {
  // A counter-based hash (SplitMix64's finaliser) of (seed, feature, column): the mask of an entry
  // must not depend on the order in which entries are visited, which a sequential engine would make it.
  std::uint64_t z = seed_ + 0x9e3779b97f4a7c15ULL * (std::uint64_t(feature) * 0x100000001b3ULL +
                                                     std::uint64_t(column) * 0xc2b2ae3d27d4eb4fULL + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const double unit = double(z >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  return unit >= p_double_;
}

template <class T>
Matrix<T> Dropout<T>::scaled_mask(Index columns) const {
  Matrix<T> M(n_, columns);
  for (Index s = 0; s < columns; ++s)
    for (Index i = 0; i < n_; ++i) M(i, s) = kept(i, s) ? scale_ : T(0);
  return M;
}

template <class T>
Matrix<T> Dropout<T>::forward(const Matrix<T>& X) const {
  expect_rows(X, n_, "dropout");
  return X.cwiseProduct(scaled_mask(X.cols()));
}

template <class T>
Matrix<T> Dropout<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                               Eigen::Ref<Vector<T>>) const {
  return dY.cwiseProduct(scaled_mask(X.cols()));
}

template <class T>
Matrix<T> Dropout<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, n_, "dropout");
  const Matrix<T> M = scaled_mask(X.cols());
  return Eigen::Map<const Vector<T>>(M.data(), M.size()).asDiagonal();
}

template <class T>
Matrix<T> Dropout<T>::jacobian_parameters(const Matrix<T>& X) const {
  expect_rows(X, n_, "dropout");
  return Matrix<T>(n_ * X.cols(), 0);
}

static_assert(LayerWithJacobians<Dropout<double>>, "dropout must satisfy the Layer concept with Jacobians");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_DROPOUT_CLASSES(X, T) \
  X(Dropout<T>)
#define BPCHECK_EXTERN_DROPOUT(T) BPCHECK_DROPOUT_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_DROPOUT)
#undef BPCHECK_EXTERN_DROPOUT

}  // namespace bpcheck
