#pragma once
// Definitions behind losses.hpp, included only by the instantiation units.
#include <cmath>

#include "bpcheck/layers/activations.hpp"
#include "bpcheck/layers/softmax.hpp"
#include "bpcheck/io/json_scalar.hpp"
#include "bpcheck/losses.hpp"

namespace bpcheck {

namespace loss_detail {
template <class T>
void check_value_targets(const std::string& loss, const Targets<T>& t, Index outputs, Index batch) {
  if (t.values.rows() != outputs || t.values.cols() != batch)
    throw input_error(loss + ": targets must have " + std::to_string(outputs) + " values per sample for " +
                      std::to_string(batch) + " samples, got " + std::to_string(t.values.rows()) + " × " +
                      std::to_string(t.values.cols()));
}
}  // namespace loss_detail

template <class T>
void MseLoss<T>::check_targets(const Targets<T>& t, Index outputs, Index batch) const {
  loss_detail::check_value_targets(name(), t, outputs, batch);
}
template <class T>
T MseLoss<T>::value(const Matrix<T>& Y, const Targets<T>& t) const {
  const T plain = (Y - t.values).squaredNorm() / T(Y.size());
  using std::isfinite;
  if (isfinite(value_of(plain))) return plain;
  // Σ (y − t)² overflowed: Σ ((y − t)/√n)² has no term above the mean itself, so float gives the
  // mean at |y − t| ≈ 2e19 where it is below float's largest number (found by the nightly property
  // run). Only here: the division by √n rounds, and the plain form is exact on exact cases.
  using std::sqrt;
  return ((Y - t.values) / T(sqrt(T(Y.size())))).squaredNorm();
}
template <class T>
Matrix<T> MseLoss<T>::gradient(const Matrix<T>& Y, const Targets<T>& t) const {
  return (Y - t.values) * (T(2) / T(Y.size()));
}

template <class T>
Matrix<T> MseLoss<T>::gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const {
  return (Y.cwiseAbs() + t.values.cwiseAbs()) * (T(2) / T(Y.size()));
}

template <class T>
void CrossEntropyLoss<T>::check_targets(const Targets<T>& t, Index outputs, Index batch) const {
  if (Index(t.classes.size()) != batch)
    throw input_error("cross_entropy: expected one class index per sample (" + std::to_string(batch) +
                      "), got " + std::to_string(t.classes.size()));
  for (std::size_t b = 0; b < t.classes.size(); ++b)
    if (t.classes[b] < 0 || t.classes[b] >= outputs)
      throw input_error("cross_entropy: target of sample " + std::to_string(b) + " is class " +
                        std::to_string(t.classes[b]) + ", outside 0.." + std::to_string(outputs - 1));
}
template <class T>
T CrossEntropyLoss<T>::value(const Matrix<T>& Y, const Targets<T>& t) const {
  const Matrix<T> L = log_softmax_columns(Y);
  T sum(0);
  for (Index b = 0; b < Y.cols(); ++b) sum -= L(t.classes[b], b);
  return sum / T(Y.cols());
}
template <class T>
Matrix<T> CrossEntropyLoss<T>::gradient(const Matrix<T>& Y, const Targets<T>& t) const {
  // softmax − e_c; when c is the most probable class, s_c − 1 is computed as −Σ_{j≠c} s_j (no cancellation).
  Matrix<T> G = softmax_columns(Y);
  for (Index b = 0; b < Y.cols(); ++b) {
    Index k = 0;
    G.col(b).maxCoeff(&k);
    const Index c = t.classes[b];
    G(c, b) = c == k ? T(-softmax_detail::complement<T>(G.col(b), k)) : T(G(c, b) - T(1));
  }
  return G / T(Y.cols());
}

template <class T>
Matrix<T> CrossEntropyLoss<T>::gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const {
  Matrix<T> G = softmax_columns(Y);
  for (Index b = 0; b < Y.cols(); ++b) G(t.classes[b], b) += T(1);
  return G / T(Y.cols());
}

template <class T>
void BceWithLogitsLoss<T>::check_targets(const Targets<T>& t, Index outputs, Index batch) const {
  loss_detail::check_value_targets(name(), t, outputs, batch);
}
template <class T>
T BceWithLogitsLoss<T>::value(const Matrix<T>& Y, const Targets<T>& t) const {
  using std::exp;
  using std::log1p;
  T sum(0);
  for (Index i = 0; i < Y.size(); ++i) {
    const T& z = Y(i);
    // max(z, 0) + log1p(e^{−|z|}) as two branches, each smooth: at z = 0 the kinks of max and |·|
    // cancel in value but not on dual numbers, where they gave forward mode −1/2 for σ(0) = 1/2.
    sum += (z > T(0) ? T(z + log1p(exp(-z))) : T(log1p(exp(z)))) - z * t.values(i);
  }
  return sum / T(Y.size());
}
template <class T>
Matrix<T> BceWithLogitsLoss<T>::gradient(const Matrix<T>& Y, const Targets<T>& t) const {
  const T n(Y.size());
  return Y.binaryExpr(t.values, [&n](const T& z, const T& y) { return T((stable_sigmoid(z) - y) / n); });
}

template <class T>
Matrix<T> BceWithLogitsLoss<T>::gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const {
  const T n(Y.size());
  return Y.binaryExpr(t.values, [&n](const T& z, const T& y) {
    using std::abs;
    return T((stable_sigmoid(z) + abs(y)) / n);
  });
}

template <class T>
HuberLoss<T>::HuberLoss(T delta) : delta_(std::move(delta)) {
  if (!(delta_ > T(0))) throw input_error("huber: delta must be positive, got " + bpcheck::to_string(delta_));
}
template <class T>
void HuberLoss<T>::check_targets(const Targets<T>& t, Index outputs, Index batch) const {
  loss_detail::check_value_targets(name(), t, outputs, batch);
}
template <class T>
T HuberLoss<T>::value(const Matrix<T>& Y, const Targets<T>& t) const {
  using std::abs;
  T sum(0);
  for (Index i = 0; i < Y.size(); ++i) {
    const T d = Y(i) - t.values(i);
    const T a = abs(d);
    sum += a < delta_ ? T(d * d / T(2)) : T(delta_ * (a - delta_ / T(2)));
  }
  return sum / T(Y.size());
}
template <class T>
Matrix<T> HuberLoss<T>::gradient(const Matrix<T>& Y, const Targets<T>& t) const {
  const T n(Y.size());
  return Y.binaryExpr(t.values, [this, &n](const T& y, const T& target) {
    const T d = y - target;
    return T((d > delta_ ? delta_ : (d < T(-delta_) ? T(-delta_) : d)) / n);
  });
}
template <class T>
Matrix<T> HuberLoss<T>::gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const {
  return (Y.cwiseAbs() + t.values.cwiseAbs()) / T(Y.size());
}

template <class T>
void NllLoss<T>::check_targets(const Targets<T>& t, Index outputs, Index batch) const {
  if (Index(t.classes.size()) != batch)
    throw input_error("nll: expected one class index per sample (" + std::to_string(batch) + "), got " +
                      std::to_string(t.classes.size()));
  for (std::size_t b = 0; b < t.classes.size(); ++b)
    if (t.classes[b] < 0 || t.classes[b] >= outputs)
      throw input_error("nll: target of sample " + std::to_string(b) + " is class " + std::to_string(t.classes[b]) +
                        ", outside 0.." + std::to_string(outputs - 1));
}
template <class T>
T NllLoss<T>::value(const Matrix<T>& Y, const Targets<T>& t) const {
  T sum(0);
  for (Index b = 0; b < Y.cols(); ++b) sum -= Y(t.classes[b], b);
  return sum / T(Y.cols());
}
template <class T>
Matrix<T> NllLoss<T>::gradient(const Matrix<T>& Y, const Targets<T>& t) const {
  Matrix<T> G = Matrix<T>::Zero(Y.rows(), Y.cols());
  for (Index b = 0; b < Y.cols(); ++b) G(t.classes[b], b) = T(-1) / T(Y.cols());
  return G;
}
template <class T>
Matrix<T> NllLoss<T>::gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const {
  return -gradient(Y, t);
}

template <class T>
void KlDivLoss<T>::check_targets(const Targets<T>& t, Index outputs, Index batch) const {
  loss_detail::check_value_targets(name(), t, outputs, batch);
  for (Index i = 0; i < t.values.size(); ++i)
    if (!(t.values(i) >= T(0)))
      throw input_error("kl_div: targets are probabilities and must not be negative; target " +
                        std::to_string(i % outputs) + " of sample " + std::to_string(i / outputs) + " is " +
                        bpcheck::to_string(t.values(i)));
}
template <class T>
T KlDivLoss<T>::value(const Matrix<T>& Y, const Targets<T>& t) const {
  using std::log;
  T sum(0);
  for (Index i = 0; i < Y.size(); ++i)
    if (t.values(i) > T(0)) sum += t.values(i) * (log(t.values(i)) - Y(i));
  return sum / T(Y.size());
}
template <class T>
Matrix<T> KlDivLoss<T>::gradient(const Matrix<T>& Y, const Targets<T>& t) const {
  return t.values / T(-T(Y.size()));
}
template <class T>
Matrix<T> KlDivLoss<T>::gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const {
  return t.values.cwiseAbs() / T(Y.size());
}

template <class T>
std::unique_ptr<Loss<T>> make_loss(const std::string& name, const nlohmann::json& options) {
  if (!options.is_object()) throw input_error("loss '" + name + "': options must be a JSON object, got " + options.dump());
  for (const auto& [key, value] : options.items())
    if (!(name == "huber" && key == "delta"))
      throw input_error("loss '" + name + "': unknown option '" + key + "'" +
                        (name == "huber" ? " (known: delta)" : " (it takes no options)"));
  if (name == "huber")
    return std::make_unique<HuberLoss<T>>(
        options.contains("delta") ? scalar_from_json<T>(options.at("delta"), "loss 'huber': option 'delta'") : T(1));
  if (name == "mse") return std::make_unique<MseLoss<T>>();
  if (name == "cross_entropy") return std::make_unique<CrossEntropyLoss<T>>();
  if (name == "bce_with_logits") return std::make_unique<BceWithLogitsLoss<T>>();
  if (name == "nll") return std::make_unique<NllLoss<T>>();
  if (name == "kl_div") return std::make_unique<KlDivLoss<T>>();
  std::string known;
  for (const auto& n : loss_names()) known += (known.empty() ? "" : ", ") + n;
  throw input_error("unknown loss '" + name + "' (known: " + known + ")");
}

#define BPCHECK_INSTANTIATE_LOSSES(T)       \
  template class MseLoss<T>;                \
  template class CrossEntropyLoss<T>;       \
  template class BceWithLogitsLoss<T>;      \
  template class HuberLoss<T>;              \
  template class NllLoss<T>;                \
  template class KlDivLoss<T>;              \
  template std::unique_ptr<Loss<T>> make_loss<T>(const std::string&, const nlohmann::json&);

}  // namespace bpcheck
