#pragma once
// A sequential network f = f_L ∘ … ∘ f_1 with a loss, on any rung, and the two ways of getting its
// gradient: backprop (VJPs right to left, no matrix formed) and the explicit Jacobian product.
//
//   bpcheck::ModelSpec spec{4, {{"dense", {{"units", 8}}}, {"tanh"}, {"dense", {{"units", 3}}}},
//                           "cross_entropy"};
//   bpcheck::Network<double> net(spec);
//   net.initialize(42);                                    // same numbers on every rung
//   auto g = net.gradient(X, targets);                     // backprop: loss and dθ per layer
//   net.gradient(X, targets, g);                           // the same, reusing g's storage
//   net.gradient(X, targets, g, bpcheck::InputGradient::skip);  // dθ only, as a training step needs
//   auto e = net.explicit_gradient(X, targets);            // ∇ℓᵀ·J_L⋯J_{k+1}·J_θ,k, formed
//   bpcheck::Network<bpcheck::mp100> truth = net.rebind<bpcheck::mp100>();
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bpcheck/layer.hpp"
#include "bpcheck/losses.hpp"

namespace bpcheck {

/// A model as the JSON spec names it.
struct ModelSpec {
  Index input_size = 0;
  std::vector<LayerSpec> layers;
  std::string loss;
  /// The loss's options ({} for none; huber: {"delta": δ}). In the JSON spec the loss is then an
  /// object, {"type": "huber", "delta": 0.5}.
  nlohmann::json loss_options = nlohmann::json::object();
};

/// The loss, per layer its parameter gradient dℓ/dθ_k (flat, in the layer's block order), and the
/// gradient with respect to the inputs dℓ/dX (the shape of X).
template <class T>
struct Gradient {
  T loss{};
  std::vector<Vector<T>> layers;
  Matrix<T> input;
};

/// Whether backprop forms dℓ/dX. A training step needs only dℓ/dθ: with `skip`, Gradient::input is left
/// empty (0 × 0) and the first layer adds its dθ without forming its dX (LayerWithParameterBackward: for a
/// dense first layer, one matrix product less). PyTorch does the same for an input that needs no gradient.
enum class InputGradient { compute, skip };

template <class T>
class Network {
 public:
  using scalar_type = T;

  /// Builds every layer with zero parameters; throws input_error for an unknown layer or loss, or a
  /// layer whose sizes do not fit.
  explicit Network(ModelSpec spec);

  const ModelSpec& spec() const { return spec_; }
  Index input_size() const { return spec_.input_size; }
  Index output_size() const;
  std::size_t depth() const { return layers_.size(); }
  const AnyLayer<T>& layer(std::size_t k) const { return layers_.at(k); }
  AnyLayer<T>& layer(std::size_t k) { return layers_.at(k); }
  const Loss<T>& loss() const { return *loss_; }

  Index parameter_count() const;
  /// All layers' parameters, concatenated in layer order.
  Vector<T> parameters() const;
  void set_parameters(const Vector<T>& theta);

  /// Deterministic initialisation from a seed, identical on every rung: W and b uniform in
  /// ±1/√fan_in (PyTorch's Linear default), drawn in double by a fixed algorithm.
  void initialize(std::uint64_t seed);

  /// x_0 = X, x_k = f_k(x_{k−1}): L + 1 matrices.
  std::vector<Matrix<T>> activations(const Matrix<T>& X) const;
  Matrix<T> forward(const Matrix<T>& X) const;
  T loss_value(const Matrix<T>& X, const Targets<T>& t) const;

  /// Backprop: δ_L = ∇ℓ, then per layer from the last, dθ_k = J_θ,kᵀ δ_k and δ_{k−1} = J_x,kᵀ δ_k,
  /// each as the layer's `backward` (a VJP), never forming a Jacobian.
  Gradient<T> gradient(const Matrix<T>& X, const Targets<T>& t,
                       InputGradient input = InputGradient::compute) const;

  /// The same backprop, written into `out`: its per-layer vectors keep their storage when their sizes
  /// already fit (they are resized otherwise), so a training loop that passes the same `out` each step
  /// does not allocate and fault in the parameter gradient again (3.2 MB for a 784×512 dense layer in
  /// double). The result is bit for bit that of gradient(X, t). Throws input_error, like gradient(X, t),
  /// for a batch or targets that do not fit the model, before `out` is touched.
  void gradient(const Matrix<T>& X, const Targets<T>& t, Gradient<T>& out,
                InputGradient input = InputGradient::compute) const;

  /// The network Jacobian J = J_L ⋯ J_1 on the batch (out·B × in·B), formed as a matrix product.
  Matrix<T> jacobian(const Matrix<T>& X) const;

  /// The paper's theorem evaluated literally: with P_k = J_L ⋯ J_{k+1} formed as matrices,
  /// dℓ/dθ_k = ∇ℓᵀ · P_k · J_θ,k for every k, and dℓ/dvec(X) = ∇ℓᵀ · P_0.
  Gradient<T> explicit_gradient(const Matrix<T>& X, const Targets<T>& t) const;

  /// The same network, same parameters, on another rung.
  template <class U>
  Network<U> rebind() const {
    Network<U> other(spec_);
    other.set_parameters(vector_cast<U>(parameters()));
    return other;
  }

 private:
  void check_batch(const Matrix<T>& X, const Targets<T>* t) const;
  ModelSpec spec_;
  std::vector<AnyLayer<T>> layers_;
  std::shared_ptr<const Loss<T>> loss_;
};

#define BPCHECK_EXTERN_NETWORK(T) extern template class Network<T>;
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_NETWORK)
#undef BPCHECK_EXTERN_NETWORK

}  // namespace bpcheck
