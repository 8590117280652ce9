#pragma once
// Definitions behind network.hpp, included only by the instantiation units.
#include <cmath>

#include "bpcheck/random.hpp"

#include "bpcheck/network.hpp"

namespace bpcheck {

template <class T>
Network<T>::Network(ModelSpec spec) : spec_(std::move(spec)) {
  if (spec_.input_size <= 0)
    throw input_error("model: input_size must be positive, got " + std::to_string(spec_.input_size));
  if (spec_.layers.empty()) throw input_error("model: no layers");
  Index width = spec_.input_size;
  for (std::size_t k = 0; k < spec_.layers.size(); ++k) {
    try {
      layers_.push_back(make_layer<T>(spec_.layers[k], width));
    } catch (const input_error& e) {
      throw input_error("layer " + std::to_string(k) + ": " + e.what());
    }
    width = layers_.back().output_size();
  }
  loss_ = make_loss<T>(spec_.loss, spec_.loss_options);
}

template <class T>
Index Network<T>::output_size() const {
  return layers_.back().output_size();
}

template <class T>
Index Network<T>::parameter_count() const {
  Index n = 0;
  for (const auto& l : layers_) n += l.parameter_count();
  return n;
}

template <class T>
Vector<T> Network<T>::parameters() const {
  Vector<T> theta(parameter_count());
  Index at = 0;
  for (const auto& l : layers_) {
    const Vector<T> p = l.parameters();
    theta.segment(at, p.size()) = p;
    at += p.size();
  }
  return theta;
}

template <class T>
void Network<T>::set_parameters(const Vector<T>& theta) {
  if (theta.size() != parameter_count())
    throw input_error("model: expected " + std::to_string(parameter_count()) + " parameters, got " +
                      std::to_string(theta.size()));
  Index at = 0;
  for (auto& l : layers_) {
    const Index n = l.parameter_count();
    l.set_parameters(theta.segment(at, n));
    at += n;
  }
}

template <class T>
void Network<T>::initialize(std::uint64_t seed) {
  Random rng(seed);
  for (auto& l : layers_) {
    Vector<T> theta(l.parameter_count());
    const double bound = 1.0 / std::sqrt(double(l.input_size()));
    for (Index i = 0; i < theta.size(); ++i) theta(i) = scalar_cast<T>(bound * rng.symmetric());
    l.set_parameters(theta);
  }
}

template <class T>
void Network<T>::check_batch(const Matrix<T>& X, const Targets<T>* t) const {
  if (X.cols() == 0) throw input_error("data: empty batch (0 samples)");
  if (X.rows() != input_size())
    throw input_error("data: model takes " + std::to_string(input_size()) + " inputs per sample, got " +
                      std::to_string(X.rows()));
  if (t) loss_->check_targets(*t, output_size(), X.cols());
}

template <class T>
std::vector<Matrix<T>> Network<T>::activations(const Matrix<T>& X) const {
  check_batch(X, nullptr);
  std::vector<Matrix<T>> xs;
  xs.reserve(layers_.size() + 1);
  xs.push_back(X);
  for (const auto& l : layers_) xs.push_back(l.forward(xs.back()));
  return xs;
}

template <class T>
Matrix<T> Network<T>::forward(const Matrix<T>& X) const {
  return std::move(activations(X).back());
}

template <class T>
T Network<T>::loss_value(const Matrix<T>& X, const Targets<T>& t) const {
  check_batch(X, &t);
  return loss_->value(forward(X), t);
}

template <class T>
Gradient<T> Network<T>::gradient(const Matrix<T>& X, const Targets<T>& t, InputGradient input) const {
  Gradient<T> g;
  gradient(X, t, g, input);
  return g;
}

template <class T>
void Network<T>::gradient(const Matrix<T>& X, const Targets<T>& t, Gradient<T>& out, InputGradient input) const {
  check_batch(X, &t);
  // x_1 … x_L; x_0 is X itself, read in place rather than copied.
  std::vector<Matrix<T>> xs;
  xs.reserve(layers_.size());
  for (std::size_t k = 0; k < layers_.size(); ++k) xs.push_back(layers_[k].forward(k == 0 ? X : xs[k - 1]));
  out.loss = loss_->value(xs.back(), t);
  out.layers.resize(layers_.size());
  // Without dℓ/dX, backprop stops at the first layer with parameters, which adds its dθ only: the
  // layers before it have no dθ, and nothing needs their δ.
  std::size_t first = 0;
  if (input == InputGradient::skip)
    while (first + 1 < layers_.size() && layers_[first].parameter_count() == 0) ++first;
  Matrix<T> delta = loss_->gradient(xs.back(), t);
  for (std::size_t k = layers_.size(); k-- > 0;) {
    // backward accumulates into dθ_k: start from zero, in the storage the caller's `out` already has.
    const Index n = layers_[k].parameter_count();
    if (out.layers[k].size() != n) out.layers[k].resize(n);
    out.layers[k].setZero();
    if (input == InputGradient::skip && k <= first) {
      if (k == first) layers_[k].backward_parameters(k == 0 ? X : xs[k - 1], xs[k], delta, out.layers[k]);
      delta.resize(0, 0);
    } else {
      delta = layers_[k].backward(k == 0 ? X : xs[k - 1], xs[k], delta, out.layers[k]);
    }
  }
  out.input = std::move(delta);
}

template <class T>
Matrix<T> Network<T>::jacobian(const Matrix<T>& X) const {
  const auto xs = activations(X);
  Matrix<T> J = layers_[0].jacobian_input(xs[0]);
  for (std::size_t k = 1; k < layers_.size(); ++k) J = (layers_[k].jacobian_input(xs[k]) * J).eval();
  return J;
}

template <class T>
Gradient<T> Network<T>::explicit_gradient(const Matrix<T>& X, const Targets<T>& t) const {
  check_batch(X, &t);
  const auto xs = activations(X);
  Gradient<T> g;
  g.loss = loss_->value(xs.back(), t);
  g.layers.resize(layers_.size());
  const Matrix<T> dl = loss_->gradient(xs.back(), t);
  const Eigen::Map<const Vector<T>> grad_l(dl.data(), dl.size());  // ∇ℓ = vec(∂ℓ/∂x_L)
  // P = J_L ⋯ J_{k+1}, grown one factor to the right per step, starting from the identity.
  Matrix<T> P = Matrix<T>::Identity(dl.size(), dl.size());
  for (std::size_t k = layers_.size(); k-- > 0;) {
    const Matrix<T> PJ = P * layers_[k].jacobian_parameters(xs[k]);
    g.layers[k] = PJ.transpose() * grad_l;
    P = (P * layers_[k].jacobian_input(xs[k])).eval();
  }
  const Vector<T> dx = P.transpose() * grad_l;
  g.input = Eigen::Map<const Matrix<T>>(dx.data(), X.rows(), X.cols());
  return g;
}

#define BPCHECK_INSTANTIATE_NETWORK(T) template class Network<T>;

}  // namespace bpcheck
