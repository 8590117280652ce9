#pragma once
// A network with its loss and fixed targets, seen as one layer: X ↦ ℓ(f(X), t), a 1 × 1 output.
// The checker verifies it like any layer: backward is backprop (Network::gradient) and the stated
// Jacobians are the paper's explicit product (Network::explicit_gradient), so one verification
// covers both routes against the oracles.
//
//   bpcheck::LossLayer<double> l(net, targets);
//   auto loss = l.forward(X);                          // 1 × 1
#include "bpcheck/network.hpp"
#include "bpcheck/random.hpp"

namespace bpcheck {

template <class T>
class LossLayer {
 public:
  using scalar_type = T;
  static constexpr bool sample_independent = false;  // the loss averages over the batch

  LossLayer(Network<T> net, Targets<T> targets) : net_(std::move(net)), targets_(std::move(targets)) {}

  std::string type_name() const { return "network+" + net_.loss().name(); }
  Index input_size() const { return net_.input_size(); }
  Index output_size() const { return 1; }
  std::vector<ParameterBlock> parameter_blocks() const {
    std::vector<ParameterBlock> blocks;
    Index offset = 0;
    for (std::size_t k = 0; k < net_.depth(); ++k) {
      for (auto b : net_.layer(k).parameter_blocks()) {
        b.name = "layer" + std::to_string(k) + "." + b.name;
        b.offset += offset;
        blocks.push_back(b);
      }
      offset += net_.layer(k).parameter_count();
    }
    return blocks;
  }
  Vector<T> parameters() const { return net_.parameters(); }
  void set_parameters(const Vector<T>& theta) { net_.set_parameters(theta); }
  const Network<T>& network() const { return net_; }
  /// A model that starts with an embedding takes integer indices: the checker holds them fixed.
  bool input_is_index() const { return net_.depth() > 0 && net_.layer(0).input_is_index(); }
  Index index_count() const { return net_.depth() > 0 ? net_.layer(0).index_count() : 0; }
  const Targets<T>& targets() const { return targets_; }

  /// [ℓ(f(X), t)]
  Matrix<T> forward(const Matrix<T>& X) const { return Matrix<T>::Constant(1, 1, net_.loss_value(X, targets_)); }

  /// Backprop: dX = dy · dℓ/dX, dθ += dy · dℓ/dθ.
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Gradient<T> g = net_.gradient(X, targets_);
    Index at = 0;
    for (const auto& gl : g.layers) {
      dtheta.segment(at, gl.size()) += dY(0, 0) * gl;
      at += gl.size();
    }
    return dY(0, 0) * g.input;
  }

  /// The same backprop sweep in absolute values, A_1ᵀ⋯A_Lᵀ|∇ℓ|·|dy| (and A_θ,kᵀ|δ_k| for the
  /// parameters), as one vector over [vec X; θ], with A_k each layer's absolute Jacobian as it computes it
  /// (AnyLayer::absolute_jacobian: |J_k| unless the layer states more) and |∇ℓ| the size of the terms the
  /// loss gradient is computed from, plus |H_ℓ| F: the change of ∇ℓ over the rounding the forward pass
  /// leaves in the output, F being the same forward sweep in absolute values. Rounding in every layer is
  /// bounded relative to it, so the verifier's bound for a whole network starts here rather than at
  /// |J|ᵀ|u|, which cancellations inside backprop undercut.
  Vector<T> absolute_sweep(const Matrix<T>& X, const Matrix<T>& dY) const {
    using std::abs;
    const auto xs = net_.activations(X);
    const std::size_t depth = net_.depth();
    const std::vector<Matrix<T>> A = absolute_jacobians(xs);
    const Vector<T> F = forward_sweep(xs, A);
    const Matrix<T> m = net_.loss().gradient_magnitude(xs.back(), targets_);
    Vector<T> delta = (Eigen::Map<const Vector<T>>(m.data(), m.size()) + loss_hessian_magnitude(xs.back(), F)) *
                      T(abs(dY(0, 0)));
    Vector<T> theta_scale(net_.parameter_count());
    Index at = theta_scale.size();
    for (std::size_t k = depth; k-- > 0;) {
      const Index pk = net_.layer(k).parameter_count();
      at -= pk;
      theta_scale.segment(at, pk) = A[k].rightCols(pk).transpose() * delta;
      delta = A[k].leftCols(A[k].cols() - pk).transpose() * delta;
    }
    Vector<T> z(delta.size() + theta_scale.size());
    z << delta, theta_scale;
    return z;
  }
  /// What the loss value rounds relative to: |ℓ| + |∇ℓ|ᵀF, F the forward sweep in absolute values (what
  /// the output's rounding is relative to), so the output's rounding enters to first order. Not ℓ alone:
  /// an nll of tanh outputs −(1 + 1.6e-6 − 1)/3 is 5e-7 formed from terms of 1, and the saturated tanh
  /// leaves nothing of them in the sweep of derivatives. |∇ℓ|, not the size of its terms, so that an mse
  /// at y ≈ t (whose rounding is second order there) is still held to |ℓ|.
  /// F is the output's forward sweep, activation_sweeps(X).back().
  T absolute_value(const Matrix<T>& X, const Vector<T>& F) const {
    using std::abs;
    const Matrix<T> Y = net_.forward(X);
    const Matrix<T> g = net_.loss().gradient(Y, targets_);
    if (F.size() != g.size()) throw error("absolute_value: the sweep must have one entry per output");
    return T(abs(net_.loss().value(Y, targets_))) + abs_vector(g).dot(F);
  }
  /// F_0 … F_L: per activation x_k, the forward sweep in absolute values, what its rounding is relative
  /// to (F_0 = |X|, F_k = A_x,k F_{k−1} + A_θ,k |θ_k| + |x_k|, A_k each layer's absolute Jacobian).
  std::vector<Vector<T>> activation_sweeps(const Matrix<T>& X) const {
    const auto xs = net_.activations(X);
    return forward_sweeps(xs, absolute_jacobians(xs));
  }
  /// Backprop, for the cotangent dy = 1, taken at activations each moved by ±r F_k (signs drawn from
  /// `seed`; F from activation_sweeps): the gradient as a rung with unit roundoff r may leave it when its
  /// forward pass rounds the points backprop is taken at. No move of the inputs by a relative r shows
  /// that where an activation crosses a tie (float's softmax outputs 1e-9 apart before a max pool) or
  /// cancels before it feeds a parameter gradient (x + tanh(…) at 1 − 1 before a dense layer).
  /// Returns [vec dX; dθ].
  Vector<T> gradient_at_rounded_activations(const Matrix<T>& X, const std::vector<Vector<T>>& F, const T& r,
                                            std::uint64_t seed) const {
    auto xs = net_.activations(X);
    if (F.size() != xs.size()) throw error("gradient_at_rounded_activations: one sweep per activation expected");
    Random rng(seed);
    for (std::size_t k = 1; k < xs.size(); ++k)
      for (Index i = 0; i < xs[k].size(); ++i) xs[k](i) += (rng.symmetric() < 0 ? -r : r) * F[k](i);
    return gradient_at_activations(xs);
  }
  /// x_0 = X, x_1 … x_L as forward computes them (another rung's, cast, for gradient_at_activations).
  std::vector<Matrix<T>> activations(const Matrix<T>& X) const { return net_.activations(X); }
  /// Backprop, for the cotangent dy = 1, taken at the given activations x_0 … x_L rather than at those
  /// forward computes: at a lower rung's activations (cast), the exact backward follows the branches
  /// that rung's rounding took (float's gelu and tanh tie inputs a few ulps apart before a max pool).
  /// Returns [vec dX; dθ].
  Vector<T> gradient_at_activations(const std::vector<Matrix<T>>& xs) const {
    if (xs.size() != net_.depth() + 1) throw error("gradient_at_activations: one matrix per activation expected");
    Matrix<T> delta = net_.loss().gradient(xs.back(), targets_);
    const Index P = net_.parameter_count(), nx = xs[0].size();
    Vector<T> z(nx + P);
    Index at = P;
    for (std::size_t k = net_.depth(); k-- > 0;) {
      const Index pk = net_.layer(k).parameter_count();
      at -= pk;
      Vector<T> dtheta = Vector<T>::Zero(pk);
      delta = net_.layer(k).backward(xs[k], xs[k + 1], delta, dtheta);
      z.segment(nx + at, pk) = dtheta;
    }
    z.head(xs[0].size()) = Eigen::Map<const Vector<T>>(delta.data(), delta.size());
    return z;
  }
  /// How many roundings a value of backprop accumulates at most: the widths summed along the network.
  Index rounding_terms() const {
    Index n = net_.output_size();
    for (std::size_t k = 0; k < net_.depth(); ++k) n += net_.layer(k).input_size() + net_.layer(k).output_size();
    return n;
  }

  /// ∂ℓ/∂vec(X) = ∇ℓᵀ · J_L ⋯ J_1, formed.
  Matrix<T> jacobian_input(const Matrix<T>& X) const {
    const Matrix<T> d = net_.explicit_gradient(X, targets_).input;
    return Eigen::Map<const Matrix<T>>(d.data(), 1, d.size());
  }
  /// ∂ℓ/∂θ_k = ∇ℓᵀ · J_L ⋯ J_{k+1} · J_θ,k, formed, for every k.
  Matrix<T> jacobian_parameters(const Matrix<T>& X) const {
    const Gradient<T> g = net_.explicit_gradient(X, targets_);
    Matrix<T> row(1, net_.parameter_count());
    Index at = 0;
    for (const auto& gl : g.layers) {
      row.block(0, at, 1, gl.size()) = gl.transpose();
      at += gl.size();
    }
    return row;
  }

 private:
  static Vector<T> abs_vector(const Matrix<T>& M) {
    using std::abs;
    return Eigen::Map<const Vector<T>>(M.data(), M.size()).unaryExpr([](const T& v) { return T(abs(v)); });
  }
  /// F_0 = |X|, F_k = A_x,k F_{k−1} + A_θ,k |θ_k| + |x_k|: what each activation's rounding is relative to.
  std::vector<Vector<T>> forward_sweeps(const std::vector<Matrix<T>>& xs, const std::vector<Matrix<T>>& A) const {
    std::vector<Vector<T>> F{abs_vector(xs[0])};
    for (std::size_t k = 0; k < net_.depth(); ++k) {
      const Index pk = net_.layer(k).parameter_count();
      const Vector<T> theta_abs = abs_vector(net_.layer(k).parameters());
      F.push_back(A[k].leftCols(A[k].cols() - pk) * F.back() + A[k].rightCols(pk) * theta_abs + abs_vector(xs[k + 1]));
    }
    return F;
  }
  Vector<T> forward_sweep(const std::vector<Matrix<T>>& xs, const std::vector<Matrix<T>>& A) const {
    return forward_sweeps(xs, A).back();
  }
  std::vector<Matrix<T>> absolute_jacobians(const std::vector<Matrix<T>>& xs) const {
    std::vector<Matrix<T>> A(net_.depth());
    for (std::size_t k = 0; k < net_.depth(); ++k) A[k] = net_.layer(k).absolute_jacobian(xs[k]);
    return A;
  }
  /// |H_ℓ| F for the loss's Hessian H_ℓ at Y (over vec Y), by central differences of the loss gradient
  /// with steps ε^(1/3) max(1, |y_i|): only a magnitude is wanted, and the losses are piecewise smooth.
  Vector<T> loss_hessian_magnitude(const Matrix<T>& Y, const Vector<T>& F) const {
    using std::abs;
    using std::cbrt;
    const T step = T(cbrt(scalar_traits<T>::epsilon()));
    Vector<T> out = Vector<T>::Zero(Y.size());
    Matrix<T> Yp = Y, Ym = Y;
    for (Index i = 0; i < Y.size(); ++i) {
      if (F(i) == T(0)) continue;
      const T h = step * std::max(T(1), T(abs(Y(i))));
      Yp(i) = Y(i) + h;
      Ym(i) = Y(i) - h;
      const Matrix<T> column = (net_.loss().gradient(Yp, targets_) - net_.loss().gradient(Ym, targets_)) / T(2 * h);
      out += abs_vector(column) * F(i);
      Yp(i) = Ym(i) = Y(i);
    }
    return out;
  }

  Network<T> net_;
  Targets<T> targets_;
};

static_assert(LayerWithJacobians<LossLayer<double>>, "LossLayer must satisfy the Layer concept");

}  // namespace bpcheck
