#pragma once
// Pooling (PyTorch's MaxPool1d/2d and AvgPool1d/2d: no ceil mode, zero padding counted by the average),
// adaptive average pooling (AdaptiveAvgPool2d) and flatten.
//
//   bpcheck::AdaptiveAvgPool2d<double> gap(8, 4, 4, 1, 1);   // 8 × 4 × 4 → 8 × 1 × 1 (global average)
//
//   auto g = bpcheck::WindowGeometry::make("max_pool2d", {2, 4, 4}, {2, 2}, {2, 2}, {0, 0}, {1, 1});
//   bpcheck::Pool<double> pool("max_pool2d", bpcheck::PoolKind::max, g);   // 2 × 4 × 4 → 2 × 2 × 2
//
// Layout as in conv.hpp: a sample is one column of C·H·W values, C, H, W row-major; each channel is
// pooled on its own. Max pooling is piecewise linear: where two entries of a window tie for the
// maximum, its one-sided derivatives differ and there is no gradient (the checker reports such a point
// as non-differentiable). Away from ties the gradient goes to the maximum; at a tie this code, like
// PyTorch, sends it to the first maximum in scan order.
#include <utility>

#include "bpcheck/layers/windows.hpp"

namespace bpcheck {

enum class PoolKind { max, average };

template <class T>
class Pool {
 public:
  using scalar_type = T;

  /// `name` is max_pool1d/2d or avg_pool1d/2d. Padding may be at most half the kernel (as PyTorch
  /// demands), so that every window holds at least one input.
  Pool(std::string name, PoolKind kind, WindowGeometry geometry);

  std::string type_name() const { return name_; }
  PoolKind kind() const { return kind_; }
  const WindowGeometry& geometry() const { return g_; }
  Index input_size() const { return g_.channels * g_.plane(); }
  Index output_size() const { return g_.channels * g_.out_plane(); }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return Vector<T>(0); }
  void set_parameters(const Vector<T>& theta) {
    if (theta.size() != 0) throw input_error(name_ + ": takes no parameters");
  }

  /// max: y(c, pos) = max_k x(c, tap(pos, k));  avg: y(c, pos) = Σ_k x(c, tap(pos, k)) / (kh·kw), padding
  /// counting as zeros.
  Matrix<T> forward(const Matrix<T>& X) const;

  /// dx = J_xᵀ dy: max sends dy(c, pos) to the (first) maximum of its window; avg spreads dy(c, pos)/(kh·kw)
  /// over the window's inputs.
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// max: ∂y(c, pos)/∂x(c, argmax) = 1;  avg: ∂y(c, pos)/∂x(c, tap(pos, k)) = 1/(kh·kw) per tap;
  /// block diagonal on the batch.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;

  /// No parameters: an out·B × 0 matrix.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

 private:
  /// The input index (within the sample) of the first maximum of window (c, pos).
  Index argmax(const Eigen::Ref<const Vector<T>>& x, Index c, Index pos) const;
  /// The Jacobian of one sample (output_size × input_size).
  Matrix<T> sample_jacobian(const Eigen::Ref<const Vector<T>>& x) const;
  std::string name_;
  PoolKind kind_;
  WindowGeometry g_;
};

/// flatten: the identity on a column. A sample is already one column in C, H, W row-major order, which is
/// what torch.flatten(x, 1) produces, so flatten only marks where a model goes from images to features.
template <class T>
class Flatten {
 public:
  using scalar_type = T;

  explicit Flatten(Index width) : n_(width) {
    if (n_ <= 0) throw input_error("flatten: width must be positive, got " + std::to_string(n_));
  }
  std::string type_name() const { return "flatten"; }
  Index input_size() const { return n_; }
  Index output_size() const { return n_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return Vector<T>(0); }
  void set_parameters(const Vector<T>& theta) {
    if (theta.size() != 0) throw input_error("flatten: takes no parameters");
  }
  /// Y = X
  Matrix<T> forward(const Matrix<T>& X) const {
    expect_rows(X, n_, "flatten");
    return X;
  }
  /// dX = dY
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const { return dY; }
  /// J_x = I
  Matrix<T> jacobian_input(const Matrix<T>& X) const {
    expect_rows(X, n_, "flatten");
    return Matrix<T>::Identity(X.size(), X.size());
  }
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const {
    expect_rows(X, n_, "flatten");
    return Matrix<T>(X.size(), 0);
  }

 private:
  Index n_;
};

/// adaptive_avg_pool2d: C × H × W → C × oh × ow, output (c, i, j) the mean of the bin of rows
/// ⌊iH/oh⌋ … ⌈(i+1)H/oh⌉ − 1 and columns ⌊jW/ow⌋ … ⌈(j+1)W/ow⌉ − 1 (PyTorch's bins; they may overlap and,
/// for oh > H, repeat rows). Linear without parameters: y = A x with A(c·oh·ow + i·ow + j, c·H·W + y·W + x)
/// = 1/|bin| on the bin, and J_x = A per sample, dx = Aᵀ dy.
template <class T>
class AdaptiveAvgPool2d {
 public:
  using scalar_type = T;

  AdaptiveAvgPool2d(Index channels, Index height, Index width, Index out_h, Index out_w);

  std::string type_name() const { return "adaptive_avg_pool2d"; }
  Index input_size() const { return c_ * h_ * w_; }
  Index output_size() const { return c_ * oh_ * ow_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return Vector<T>(0); }
  void set_parameters(const Vector<T>& theta) {
    if (theta.size() != 0) throw input_error("adaptive_avg_pool2d: takes no parameters");
  }

  /// y(c, i, j) = Σ_bin x(c, y, x) / |bin|
  Matrix<T> forward(const Matrix<T>& X) const;
  /// dx(c, y, x) += dy(c, i, j)/|bin| for every bin (i, j) that holds (y, x)
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const;
  /// J_x = A per sample, block diagonal on the batch.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

 private:
  /// PyTorch's bin [start, end) of output i of n along a length L.
  static std::pair<Index, Index> bin(Index i, Index n, Index L) { return {i * L / n, ((i + 1) * L + n - 1) / n}; }
  Index c_, h_, w_, oh_, ow_;
};

template <class T>
AdaptiveAvgPool2d<T>::AdaptiveAvgPool2d(Index channels, Index height, Index width, Index out_h, Index out_w)
    : c_(channels), h_(height), w_(width), oh_(out_h), ow_(out_w) {
  for (Index v : {c_, h_, w_, oh_, ow_})
    if (v <= 0) throw input_error("adaptive_avg_pool2d: channels, height, width and output_size must be positive");
}

template <class T>
Matrix<T> AdaptiveAvgPool2d<T>::forward(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "adaptive_avg_pool2d");
  Matrix<T> Y(output_size(), X.cols());
  for (Index s = 0; s < X.cols(); ++s)
    for (Index c = 0; c < c_; ++c)
      for (Index i = 0; i < oh_; ++i)
        for (Index j = 0; j < ow_; ++j) {
          const auto [y0, y1] = bin(i, oh_, h_);
          const auto [x0, x1] = bin(j, ow_, w_);
          T sum(0);
          for (Index y = y0; y < y1; ++y)
            for (Index x = x0; x < x1; ++x) sum += X(c * h_ * w_ + y * w_ + x, s);
          Y(c * oh_ * ow_ + i * ow_ + j, s) = sum / T((y1 - y0) * (x1 - x0));
        }
  return Y;
}

template <class T>
Matrix<T> AdaptiveAvgPool2d<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                                         Eigen::Ref<Vector<T>>) const {
  Matrix<T> dX = Matrix<T>::Zero(X.rows(), X.cols());
  for (Index s = 0; s < X.cols(); ++s)
    for (Index c = 0; c < c_; ++c)
      for (Index i = 0; i < oh_; ++i)
        for (Index j = 0; j < ow_; ++j) {
          const auto [y0, y1] = bin(i, oh_, h_);
          const auto [x0, x1] = bin(j, ow_, w_);
          const T d = dY(c * oh_ * ow_ + i * ow_ + j, s) / T((y1 - y0) * (x1 - x0));
          for (Index y = y0; y < y1; ++y)
            for (Index x = x0; x < x1; ++x) dX(c * h_ * w_ + y * w_ + x, s) += d;
        }
  return dX;
}

template <class T>
Matrix<T> AdaptiveAvgPool2d<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "adaptive_avg_pool2d");
  Matrix<T> A = Matrix<T>::Zero(output_size(), input_size());
  for (Index c = 0; c < c_; ++c)
    for (Index i = 0; i < oh_; ++i)
      for (Index j = 0; j < ow_; ++j) {
        const auto [y0, y1] = bin(i, oh_, h_);
        const auto [x0, x1] = bin(j, ow_, w_);
        for (Index y = y0; y < y1; ++y)
          for (Index x = x0; x < x1; ++x)
            A(c * oh_ * ow_ + i * ow_ + j, c * h_ * w_ + y * w_ + x) = T(1) / T((y1 - y0) * (x1 - x0));
      }
  return block_diagonal(std::vector<Matrix<T>>(X.cols(), A));
}

template <class T>
Matrix<T> AdaptiveAvgPool2d<T>::jacobian_parameters(const Matrix<T>& X) const {
  expect_rows(X, input_size(), "adaptive_avg_pool2d");
  return Matrix<T>(output_size() * X.cols(), 0);
}

template <class T>
Pool<T>::Pool(std::string name, PoolKind kind, WindowGeometry geometry)
    : name_(std::move(name)), kind_(kind), g_(std::move(geometry)) {
  if (2 * g_.pad_h > g_.kernel_h || 2 * g_.pad_w > g_.kernel_w)
    throw input_error(name_ + ": padding must be at most half the kernel size (PyTorch's rule), got padding " +
                      std::to_string(g_.pad_h) + "×" + std::to_string(g_.pad_w) + " for kernel " +
                      std::to_string(g_.kernel_h) + "×" + std::to_string(g_.kernel_w));
}

template <class T>
Index Pool<T>::argmax(const Eigen::Ref<const Vector<T>>& x, Index c, Index pos) const {
  Index best = -1;
  for (Index k = 0; k < g_.kernel_size(); ++k)
    if (const Index t = g_.tap(pos, k); t >= 0) {
      const Index i = c * g_.plane() + t;
      if (best < 0 || x(i) > x(best)) best = i;
    }
  return best;
}

template <class T>
Matrix<T> Pool<T>::forward(const Matrix<T>& X) const {
  expect_rows(X, input_size(), name_);
  const Index npos = g_.out_plane();
  const T count(g_.kernel_size());
  Matrix<T> Y(output_size(), X.cols());
  for (Index s = 0; s < X.cols(); ++s)
    for (Index c = 0; c < g_.channels; ++c)
      for (Index pos = 0; pos < npos; ++pos) {
        if (kind_ == PoolKind::max) {
          Y(c * npos + pos, s) = X(argmax(X.col(s), c, pos), s);
        } else {
          T sum(0);
          for (Index k = 0; k < g_.kernel_size(); ++k)
            if (const Index t = g_.tap(pos, k); t >= 0) sum += X(c * g_.plane() + t, s);
          Y(c * npos + pos, s) = sum / count;
        }
      }
  return Y;
}

template <class T>
Matrix<T> Pool<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
  const Index npos = g_.out_plane();
  const T count(g_.kernel_size());
  Matrix<T> dX = Matrix<T>::Zero(X.rows(), X.cols());
  for (Index s = 0; s < X.cols(); ++s)
    for (Index c = 0; c < g_.channels; ++c)
      for (Index pos = 0; pos < npos; ++pos) {
        const T& d = dY(c * npos + pos, s);
        if (kind_ == PoolKind::max) {
          dX(argmax(X.col(s), c, pos), s) += d;
        } else {
          for (Index k = 0; k < g_.kernel_size(); ++k)
            if (const Index t = g_.tap(pos, k); t >= 0) dX(c * g_.plane() + t, s) += d / count;
        }
      }
  return dX;
}

template <class T>
Matrix<T> Pool<T>::sample_jacobian(const Eigen::Ref<const Vector<T>>& x) const {
  const Index npos = g_.out_plane();
  const T count(g_.kernel_size());
  Matrix<T> J = Matrix<T>::Zero(output_size(), input_size());
  for (Index c = 0; c < g_.channels; ++c)
    for (Index pos = 0; pos < npos; ++pos) {
      if (kind_ == PoolKind::max) {
        J(c * npos + pos, argmax(x, c, pos)) = T(1);
      } else {
        for (Index k = 0; k < g_.kernel_size(); ++k)
          if (const Index t = g_.tap(pos, k); t >= 0) J(c * npos + pos, c * g_.plane() + t) += T(1) / count;
      }
    }
  return J;
}

template <class T>
Matrix<T> Pool<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, input_size(), name_);
  std::vector<Matrix<T>> blocks;
  for (Index s = 0; s < X.cols(); ++s) blocks.push_back(sample_jacobian(X.col(s)));
  return block_diagonal(blocks);
}

template <class T>
Matrix<T> Pool<T>::jacobian_parameters(const Matrix<T>& X) const {
  expect_rows(X, input_size(), name_);
  return Matrix<T>(output_size() * X.cols(), 0);
}

static_assert(LayerWithJacobians<Pool<double>>, "pooling must satisfy the Layer concept with Jacobians");
static_assert(LayerWithJacobians<Flatten<double>>, "flatten must satisfy the Layer concept with Jacobians");
static_assert(LayerWithJacobians<AdaptiveAvgPool2d<double>>,
              "adaptive_avg_pool2d must satisfy the Layer concept with Jacobians");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_POOL_CLASSES(X, T) \
  X(Pool<T>)                       \
  X(Flatten<T>)                    \
  X(AdaptiveAvgPool2d<T>)
#define BPCHECK_EXTERN_POOL(T) BPCHECK_POOL_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_POOL)
#undef BPCHECK_EXTERN_POOL

}  // namespace bpcheck
