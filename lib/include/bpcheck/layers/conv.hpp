#pragma once
// Convolution (PyTorch's Conv1d/Conv2d: cross-correlation, zero padding, stride, dilation, groups, bias).
//
//   auto g = bpcheck::WindowGeometry::make("conv2d", {2, 5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1});
//   bpcheck::Conv<double> conv("conv2d", g, 4);   // 2 → 4 channels, 3×3 kernel, padding 1: 5×5 out
//   bpcheck::Conv<double> dw("conv2d", g, 2, 2, false);   // depthwise (groups = channels), no bias
//
// A sample is one column of C·H·W inputs in C, H, W row-major order; the output column holds
// out·H_out·W_out values in the same order. θ = [vec(W); b] (b only with bias) with W the
// out × (C/G·kh·kw) matrix whose row o is PyTorch's weight[o] flattened in (in/G, kh, kw) order, i.e.
// weight.view(out, −1), so the params JSON gives W row by row as PyTorch's weight.reshape(out, −1).tolist().
//
// With P the C·K × positions patch matrix of a sample (im2col; K = kh·kw, zeros in the padding) and
// G groups, output channels g·out/G … (g+1)·out/G − 1 read input channels g·C/G … (g+1)·C/G − 1, i.e.
// the rows P_g = P[g·(C/G)·K, (g+1)·(C/G)·K): y_g = vec((W_g P_g)ᵀ) + b_g ⊗ 1 with W_g the group's rows
// of W. With G = 1 this is a dense layer applied to every position.
#include "bpcheck/layers/windows.hpp"

namespace bpcheck {

template <class T>
class Conv {
 public:
  using scalar_type = T;

  /// `name` is "conv1d" or "conv2d" (the geometry of a 1d layer has height 1). `groups` must divide
  /// the input and output channels; `bias` false drops b (PyTorch's bias=False).
  Conv(std::string name, WindowGeometry geometry, Index out_channels, Index groups = 1, bool bias = true);

  std::string type_name() const { return name_; }
  const WindowGeometry& geometry() const { return g_; }
  Index out_channels() const { return out_; }
  Index groups() const { return groups_; }
  bool has_bias() const { return bias_; }
  Index input_size() const { return g_.channels * g_.plane(); }
  Index output_size() const { return out_ * g_.out_plane(); }
  std::vector<ParameterBlock> parameter_blocks() const;
  const Vector<T>& parameters() const { return theta_; }
  void set_parameters(const Vector<T>& theta);

  Eigen::Map<const Matrix<T>> W() const { return {theta_.data(), out_, weight_cols()}; }

  /// The patch matrix P of one sample (C·K × H_out·W_out).
  Matrix<T> patches(const Eigen::Ref<const Vector<T>>& x) const;

  /// y_s = vec((W_g P_{s,g})ᵀ per group g) + b ⊗ 1 per sample s
  Matrix<T> forward(const Matrix<T>& X) const;

  /// With G_s the out × positions matrix of dy_s and G_{s,g} its group's rows: dW_g += G_{s,g} P_{s,g}ᵀ;
  /// db += G_s 1;  dx_s = col2im([W_gᵀ G_{s,g}]_g) (col2im adds every patch entry back onto the input
  /// it was copied from).
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY,
                     Eigen::Ref<Vector<T>> dtheta) const;

  /// ∂y(o, pos)/∂x(c, tap(pos, k)) = Σ W(o, (c − g·C/G)·K + k) over the taps that read that input, for
  /// c in o's group g (0 for other channels); block diagonal on the batch.
  Matrix<T> jacobian_input(const Matrix<T>& X) const;

  /// ∂y(o, pos)/∂W(o, j) = P_g(j, pos) (θ index j·out + o, g the group of o);  ∂y(o, pos)/∂b(o) = 1.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const;

 private:
  Index patch_rows() const { return g_.channels * g_.kernel_size(); }
  /// The patch rows one group reads: (C/G)·K.
  Index weight_cols() const { return g_.channels / groups_ * g_.kernel_size(); }
  Index group_out() const { return out_ / groups_; }
  Index bias_offset() const { return out_ * weight_cols(); }
  std::string name_;
  WindowGeometry g_;
  Index out_, groups_;
  bool bias_;
  Vector<T> theta_;
};

template <class T>
Conv<T>::Conv(std::string name, WindowGeometry geometry, Index out_channels, Index groups, bool bias)
    : name_(std::move(name)), g_(std::move(geometry)), out_(out_channels), groups_(groups), bias_(bias) {
  if (out_ <= 0) throw input_error(name_ + ": out_channels must be positive, got " + std::to_string(out_));
  if (groups_ <= 0) throw input_error(name_ + ": groups must be positive, got " + std::to_string(groups_));
  if (g_.channels % groups_ != 0 || out_ % groups_ != 0)
    throw input_error(name_ + ": groups = " + std::to_string(groups_) + " must divide channels (" +
                      std::to_string(g_.channels) + ") and out_channels (" + std::to_string(out_) + ")");
  theta_ = zeros<T>(bias_offset() + (bias_ ? out_ : 0));
}

template <class T>
std::vector<ParameterBlock> Conv<T>::parameter_blocks() const {
  std::vector<ParameterBlock> blocks{{"W", out_, weight_cols(), 0, false}};
  if (bias_) blocks.push_back({"b", out_, 1, bias_offset(), true});
  return blocks;
}

template <class T>
void Conv<T>::set_parameters(const Vector<T>& theta) {
  if (theta.size() != theta_.size())
    throw input_error(name_ + ": expected " + std::to_string(theta_.size()) + " parameters, got " +
                      std::to_string(theta.size()));
  theta_ = theta;
}

template <class T>
Matrix<T> Conv<T>::patches(const Eigen::Ref<const Vector<T>>& x) const {
  const Index K = g_.kernel_size();
  Matrix<T> P = Matrix<T>::Zero(patch_rows(), g_.out_plane());
  for (Index pos = 0; pos < g_.out_plane(); ++pos)
    for (Index k = 0; k < K; ++k)
      if (const Index t = g_.tap(pos, k); t >= 0)
        for (Index c = 0; c < g_.channels; ++c) P(c * K + k, pos) = x(c * g_.plane() + t);
  return P;
}

template <class T>
Matrix<T> Conv<T>::forward(const Matrix<T>& X) const {
  expect_rows(X, input_size(), name_);
  Matrix<T> Y(output_size(), X.cols());
  const Index go = group_out(), gc = weight_cols();
  for (Index s = 0; s < X.cols(); ++s) {
    const Matrix<T> P = patches(X.col(s));
    Matrix<T> Z(out_, g_.out_plane());  // out × positions
    for (Index g = 0; g < groups_; ++g) Z.middleRows(g * go, go) = W().middleRows(g * go, go) * P.middleRows(g * gc, gc);
    if (bias_) Z.colwise() += Eigen::Map<const Vector<T>>(theta_.data() + bias_offset(), out_);
    Y.col(s) = Eigen::Map<const Vector<T>>(Matrix<T>(Z.transpose()).data(), output_size());
  }
  return Y;
}

template <class T>
Matrix<T> Conv<T>::backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY,
                            Eigen::Ref<Vector<T>> dtheta) const {
  const Index K = g_.kernel_size(), go = group_out(), gc = weight_cols();
  Eigen::Map<Matrix<T>> dW(dtheta.data(), out_, gc);
  Matrix<T> dX = Matrix<T>::Zero(X.rows(), X.cols());
  for (Index s = 0; s < X.cols(); ++s) {
    // dy_s holds (o, pos) at o·positions + pos: the column-major positions × out matrix, transposed.
    const Matrix<T> G = Eigen::Map<const Matrix<T>>(dY.col(s).data(), g_.out_plane(), out_).transpose();
    const Matrix<T> P = patches(X.col(s));
    Matrix<T> dP(patch_rows(), g_.out_plane());
    for (Index g = 0; g < groups_; ++g) {
      dW.middleRows(g * go, go).noalias() += G.middleRows(g * go, go) * P.middleRows(g * gc, gc).transpose();
      dP.middleRows(g * gc, gc) = W().middleRows(g * go, go).transpose() * G.middleRows(g * go, go);
    }
    if (bias_) dtheta.segment(bias_offset(), out_) += G.rowwise().sum();
    for (Index pos = 0; pos < g_.out_plane(); ++pos)
      for (Index k = 0; k < K; ++k)
        if (const Index t = g_.tap(pos, k); t >= 0)
          for (Index c = 0; c < g_.channels; ++c) dX(c * g_.plane() + t, s) += dP(c * K + k, pos);
  }
  return dX;
}

template <class T>
Matrix<T> Conv<T>::jacobian_input(const Matrix<T>& X) const {
  expect_rows(X, input_size(), name_);
  const Index K = g_.kernel_size(), npos = g_.out_plane(), gin = g_.channels / groups_;
  Matrix<T> J = Matrix<T>::Zero(output_size(), input_size());
  for (Index o = 0; o < out_; ++o) {
    const Index first = o / group_out() * gin;  // the group's first input channel
    for (Index pos = 0; pos < npos; ++pos)
      for (Index k = 0; k < K; ++k)
        if (const Index t = g_.tap(pos, k); t >= 0)
          for (Index c = 0; c < gin; ++c) J(o * npos + pos, (first + c) * g_.plane() + t) += W()(o, c * K + k);
  }
  return block_diagonal(std::vector<Matrix<T>>(X.cols(), J));
}

template <class T>
Matrix<T> Conv<T>::jacobian_parameters(const Matrix<T>& X) const {
  expect_rows(X, input_size(), name_);
  const Index npos = g_.out_plane(), cols = weight_cols();
  Matrix<T> J = Matrix<T>::Zero(output_size() * X.cols(), theta_.size());
  for (Index s = 0; s < X.cols(); ++s) {
    const Matrix<T> P = patches(X.col(s));
    for (Index o = 0; o < out_; ++o) {
      const Index first = o / group_out() * cols;  // the group's first patch row
      for (Index pos = 0; pos < npos; ++pos) {
        const Index r = s * output_size() + o * npos + pos;
        for (Index j = 0; j < cols; ++j) J(r, j * out_ + o) = P(first + j, pos);
        if (bias_) J(r, bias_offset() + o) = T(1);
      }
    }
  }
  return J;
}

static_assert(LayerWithJacobians<Conv<double>>, "conv must satisfy the Layer concept with Jacobians");

/// The classes of this family the library instantiates on every rung: declared extern here, instantiated
/// once per rung group by lib/src/instantiations.hpp. A new layer of the family is one more line.
#define BPCHECK_CONV_CLASSES(X, T) \
  X(Conv<T>)
#define BPCHECK_EXTERN_CONV(T) BPCHECK_CONV_CLASSES(BPCHECK_EXTERN_TEMPLATE_CLASS, T)
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_CONV)
#undef BPCHECK_EXTERN_CONV

}  // namespace bpcheck
