#pragma once
// A network with its loss and fixed targets, seen as one layer: X ↦ ℓ(f(X), t), a 1 × 1 output.
// The checker verifies it like any layer: backward is backprop (Network::gradient) and the stated
// Jacobians are the paper's explicit product (Network::explicit_gradient), so one verification
// covers both routes against the oracles.
//
//   bpcheck::LossLayer<double> l(net, targets);
//   auto loss = l.forward(X);                          // 1 × 1
#include "bpcheck/network.hpp"

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

  /// The same backprop sweep in absolute values, |J_1|ᵀ⋯|J_L|ᵀ|∇ℓ|·|dy| (and |J_θ,k|ᵀ|δ_k| for the
  /// parameters), as one vector over [vec X; θ], with |∇ℓ| the size of the terms the loss gradient is
  /// computed from. Rounding in every layer is bounded relative to it, so the verifier's bound for a
  /// whole network starts here rather than at |J|ᵀ|u|, which cancellations inside backprop undercut.
  Vector<T> absolute_sweep(const Matrix<T>& X, const Matrix<T>& dY) const {
    using std::abs;
    const auto xs = net_.activations(X);
    const Matrix<T> m = net_.loss().gradient_magnitude(xs.back(), targets_);
    Vector<T> delta = Eigen::Map<const Vector<T>>(m.data(), m.size()) * T(abs(dY(0, 0)));
    Vector<T> theta_scale(net_.parameter_count());
    Index at = theta_scale.size();
    for (std::size_t k = net_.depth(); k-- > 0;) {
      const auto& layer = net_.layer(k);
      const Index pk = layer.parameter_count();
      at -= pk;
      theta_scale.segment(at, pk) = layer.jacobian_parameters(xs[k]).cwiseAbs().transpose() * delta;
      delta = layer.jacobian_input(xs[k]).cwiseAbs().transpose() * delta;
    }
    Vector<T> z(delta.size() + theta_scale.size());
    z << delta, theta_scale;
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
  Network<T> net_;
  Targets<T> targets_;
};

static_assert(LayerWithJacobians<LossLayer<double>>, "LossLayer must satisfy the Layer concept");

}  // namespace bpcheck
