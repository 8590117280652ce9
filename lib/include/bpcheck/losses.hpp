#pragma once
// Losses ℓ(Ŷ, t), reduced as PyTorch does by default, with their gradients ∇ℓ = ∂ℓ/∂Ŷ.
//
//   auto loss = bpcheck::make_loss<double>("cross_entropy");
//   bpcheck::Targets<double> t; t.classes = {2, 0};          // one class index per sample
//   double l = loss->value(logits, t);                         // mean over the batch
//   bpcheck::Matrix<double> g = loss->gradient(logits, t);     // same shape as logits
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpcheck/scalar.hpp"

namespace bpcheck {

/// What a loss compares the network output with: a matrix of the output's shape (mse,
/// bce_with_logits) or one class index per sample (cross_entropy).
template <class T>
struct Targets {
  Matrix<T> values;
  std::vector<Index> classes;
};

/// Which kind of targets a loss takes.
enum class TargetKind { values, classes };

template <class T>
class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  virtual TargetKind target_kind() const = 0;
  /// Throws input_error when the targets do not fit an output of `outputs` rows and `batch` columns.
  virtual void check_targets(const Targets<T>& t, Index outputs, Index batch) const = 0;
  virtual T value(const Matrix<T>& Y, const Targets<T>& t) const = 0;
  /// ∂ℓ/∂Y, the seed of backprop.
  virtual Matrix<T> gradient(const Matrix<T>& Y, const Targets<T>& t) const = 0;
  /// The size of the terms ∂ℓ/∂Y is computed from (|ŷ| + |t| for a difference ŷ − t): the scale of
  /// its rounding error, which the verifier's bounds start from.
  virtual Matrix<T> gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const = 0;
};

/// mse: ℓ = mean over all n entries of (ŷ − t)²;  ∇ℓ = 2(ŷ − t)/n
template <class T>
class MseLoss final : public Loss<T> {
 public:
  std::string name() const override { return "mse"; }
  TargetKind target_kind() const override { return TargetKind::values; }
  void check_targets(const Targets<T>& t, Index outputs, Index batch) const override;
  T value(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const override;
};

/// cross_entropy on logits z with class c per sample: ℓ = mean_b (logsumexp(z_b) − z_b[c_b]);
/// ∇ℓ = (softmax(z_b) − e_{c_b}) / B
template <class T>
class CrossEntropyLoss final : public Loss<T> {
 public:
  std::string name() const override { return "cross_entropy"; }
  TargetKind target_kind() const override { return TargetKind::classes; }
  void check_targets(const Targets<T>& t, Index outputs, Index batch) const override;
  T value(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const override;
};

/// bce_with_logits: ℓ = mean over all n entries of max(z, 0) − z t + log1p(e^{−|z|});
/// ∇ℓ = (σ(z) − t)/n
template <class T>
class BceWithLogitsLoss final : public Loss<T> {
 public:
  std::string name() const override { return "bce_with_logits"; }
  TargetKind target_kind() const override { return TargetKind::values; }
  void check_targets(const Targets<T>& t, Index outputs, Index batch) const override;
  T value(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const override;
};

/// huber with threshold δ > 0, d = ŷ − t: ℓ = mean over all n entries of h(d), h(d) = d²/2 for |d| < δ and
/// δ(|d| − δ/2) otherwise (PyTorch's HuberLoss, default δ = 1);  ∇ℓ = clamp(d, −δ, δ)/n
template <class T>
class HuberLoss final : public Loss<T> {
 public:
  explicit HuberLoss(T delta = T(1));
  std::string name() const override { return "huber"; }
  const T& delta() const { return delta_; }
  TargetKind target_kind() const override { return TargetKind::values; }
  void check_targets(const Targets<T>& t, Index outputs, Index batch) const override;
  T value(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const override;

 private:
  T delta_;
};

/// nll on log-probabilities x with class c per sample (PyTorch's NLLLoss, mean over the batch):
/// ℓ = −mean_b x_b[c_b];  ∇ℓ = −e_{c_b} / B
template <class T>
class NllLoss final : public Loss<T> {
 public:
  std::string name() const override { return "nll"; }
  TargetKind target_kind() const override { return TargetKind::classes; }
  void check_targets(const Targets<T>& t, Index outputs, Index batch) const override;
  T value(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const override;
};

/// kl_div on log-probabilities x with target probabilities t ≥ 0 (PyTorch's kl_div with its default
/// reduction "mean" over all n entries, log_target = false): ℓ = mean t (log t − x), a term with t = 0
/// counting 0;  ∇ℓ = −t/n
template <class T>
class KlDivLoss final : public Loss<T> {
 public:
  std::string name() const override { return "kl_div"; }
  TargetKind target_kind() const override { return TargetKind::values; }
  void check_targets(const Targets<T>& t, Index outputs, Index batch) const override;
  T value(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient(const Matrix<T>& Y, const Targets<T>& t) const override;
  Matrix<T> gradient_magnitude(const Matrix<T>& Y, const Targets<T>& t) const override;
};

/// The loss names make_loss knows.
const std::vector<std::string>& loss_names();

/// Builds a loss by name with its options, a JSON object (huber: {"delta": δ > 0}, default 1; the other
/// losses take none); throws input_error for an unknown name (listing the known ones), an unknown
/// option or a bad value.
template <class T>
std::unique_ptr<Loss<T>> make_loss(const std::string& name, const nlohmann::json& options = nlohmann::json::object());

#define BPCHECK_EXTERN_LOSSES(T)                 \
  extern template class MseLoss<T>;              \
  extern template class CrossEntropyLoss<T>;     \
  extern template class BceWithLogitsLoss<T>;    \
  extern template class HuberLoss<T>;            \
  extern template class NllLoss<T>;              \
  extern template class KlDivLoss<T>;            \
  extern template std::unique_ptr<Loss<T>> make_loss<T>(const std::string&, const nlohmann::json&);
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_LOSSES)  // kept defined: lib/src/quad.hpp declares quad's with it

}  // namespace bpcheck
