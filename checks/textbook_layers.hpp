#pragma once
// Layers written the way textbooks and PyTorch's own backward formulas write them, as a user would
// write them against bpcheck's API: correct code whose backward consumes the rounded forward output
// (1 − y², y(1 − y), s ⊙ (g − sᵀg)) or rounded intermediates (1 + erf), and the same layers whose
// backward recomputes from X what it needs (t = tanh x, σ(x), the softmax, mean and variance). The
// verifier must never call them wrong. Beside each, a twin with a classic bug that it must still catch.
//
//   auto report = bpcheck::verify_layer(textbook::factory<textbook::Tanh>(4));
#include <cmath>
#include <string>
#include <vector>

#include "bpcheck/layer.hpp"
#include "bpcheck/scalar.hpp"
#include "bpcheck/verify/verify.hpp"

namespace textbook {

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::ParameterBlock;
using bpcheck::Vector;

/// What the textbook layers share: sizes, and no parameters unless a layer declares them.
template <class T>
class Elementwise {
 public:
  using scalar_type = T;
  explicit Elementwise(Index width) : width_(width) {}
  Index input_size() const { return width_; }
  Index output_size() const { return width_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return {}; }
  void set_parameters(const Vector<T>&) {}

 protected:
  Index width_;
};

/// The logistic function, as PyTorch evaluates it: never exp of a large positive number.
template <class T>
T sigmoid(const T& x) {
  using std::exp;
  return x >= T(0) ? T(T(1) / (T(1) + exp(-x))) : T(exp(x) / (T(1) + exp(x)));
}

/// y = tanh x.   dX = dY ⊙ (1 − y²)   (PyTorch's tanh_backward)
template <class T>
class Tanh : public Elementwise<T> {
 public:
  using Elementwise<T>::Elementwise;
  std::string type_name() const { return "textbook tanh (1 − y²)"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    return X.unaryExpr([](const T& x) {
      using std::tanh;
      return T(tanh(x));
    });
  }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(Y.unaryExpr([](const T& y) { return T(T(1) - y * y); }));
  }
};

/// y = σ(x).   dX = dY ⊙ y(1 − y)   (PyTorch's sigmoid_backward)
template <class T>
class Sigmoid : public Elementwise<T> {
 public:
  using Elementwise<T>::Elementwise;
  std::string type_name() const { return "textbook sigmoid (y(1 − y))"; }
  Matrix<T> forward(const Matrix<T>& X) const { return X.unaryExpr([](const T& x) { return sigmoid(x); }); }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(Y.unaryExpr([](const T& y) { return T(y * (T(1) - y)); }));
  }
};

/// y = softmax(x) per sample, with the max shift.   dX = s ⊙ (g − sᵀg), s = y, g = dY
template <class T>
class Softmax : public Elementwise<T> {
 public:
  using Elementwise<T>::Elementwise;
  std::string type_name() const { return "textbook softmax (s ⊙ (g − sᵀg))"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    Matrix<T> Y(X.rows(), X.cols());
    for (Index s = 0; s < X.cols(); ++s) {
      const T m = X.col(s).maxCoeff();
      Y.col(s) = (X.col(s).array() - m).unaryExpr([](const T& x) {
        using std::exp;
        return T(exp(x));
      });
      Y.col(s) /= T(Y.col(s).sum());
    }
    return Y;
  }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    Matrix<T> dX(Y.rows(), Y.cols());
    for (Index s = 0; s < Y.cols(); ++s) {
      const T sg = Y.col(s).dot(dY.col(s));
      dX.col(s) = Y.col(s).cwiseProduct(Vector<T>(dY.col(s).array() - sg));
    }
    return dX;
  }
};

/// y = x − max − log Σ exp(x − max) per sample.   dX = g − s Σg, s = exp(y)   (PyTorch's formula)
template <class T>
class LogSoftmax : public Elementwise<T> {
 public:
  using Elementwise<T>::Elementwise;
  std::string type_name() const { return "textbook log_softmax (g − s Σg)"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    Matrix<T> Y(X.rows(), X.cols());
    for (Index s = 0; s < X.cols(); ++s) {
      using std::exp;
      using std::log;
      const T m = X.col(s).maxCoeff();
      T sum(0);
      for (Index i = 0; i < X.rows(); ++i) sum += exp(X(i, s) - m);
      const T shift = m + T(log(sum));
      Y.col(s) = X.col(s).array() - shift;
    }
    return Y;
  }
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    Matrix<T> dX(Y.rows(), Y.cols());
    for (Index s = 0; s < Y.cols(); ++s) {
      const T g_sum = dY.col(s).sum();
      for (Index i = 0; i < Y.rows(); ++i) {
        using std::exp;
        dX(i, s) = dY(i, s) - T(exp(Y(i, s))) * g_sum;
      }
    }
    return dX;
  }
};

/// y = x Φ(x), Φ(x) = ½(1 + erf(x/√2)).   dX = dY ⊙ (Φ(x) + x φ(x))   (PyTorch's exact gelu backward)
template <class T>
class Gelu : public Elementwise<T> {
 public:
  using Elementwise<T>::Elementwise;
  std::string type_name() const { return "textbook gelu (½(1 + erf) + x φ)"; }
  Matrix<T> forward(const Matrix<T>& X) const { return X.unaryExpr([](const T& x) { return T(x * cdf(x)); }); }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(X.unaryExpr([](const T& x) {
      using std::exp;
      using std::sqrt;
      const T pdf = T(exp(-x * x / T(2))) / T(sqrt(T(2) * bpcheck::pi<T>()));
      return T(cdf(x) + x * pdf);
    }));
  }

 private:
  static T cdf(const T& x) {
    using std::erf;
    using std::sqrt;
    return T(T(0.5) * (T(1) + T(erf(x / T(sqrt(T(2)))))));
  }
};

/// y = log(1 + eˣ), linear beyond 20 as PyTorch's threshold.   dX = dY ⊙ eˣ/(1 + eˣ)
template <class T>
class Softplus : public Elementwise<T> {
 public:
  using Elementwise<T>::Elementwise;
  std::string type_name() const { return "textbook softplus (log(1 + eˣ))"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    return X.unaryExpr([](const T& x) {
      using std::exp;
      using std::log1p;
      return x > T(20) ? x : T(log1p(exp(x)));
    });
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(X.unaryExpr([](const T& x) {
      using std::exp;
      const T z = exp(x);
      return x > T(20) ? T(1) : T(z / (z + T(1)));
    }));
  }
};

/// Normalisation over `rows` values of one group: x̂ = (x − μ)/√(σ² + ε) (biased σ²), y = γ x̂ + β; the
/// backward of PyTorch's docs: dx = (dx̂ − mean(dx̂) − x̂ mean(dx̂ ⊙ x̂)) / √(σ² + ε), dx̂ = γ dy.
template <class T>
struct Normalised {
  Vector<T> xhat;
  T inv_std;
};
template <class T>
Normalised<T> normalise(const Vector<T>& x, const T& eps) {
  using std::sqrt;
  const T n(static_cast<double>(x.size()));
  const T mean = x.sum() / n;
  const Vector<T> centred = x.array() - mean;
  const T var = centred.squaredNorm() / n;
  const T inv_std = T(1) / T(sqrt(var + eps));
  return {centred * inv_std, inv_std};
}
template <class T>
Vector<T> normalise_backward(const Normalised<T>& z, const Vector<T>& dxhat) {
  const T n(static_cast<double>(dxhat.size()));
  const T mean_d = dxhat.sum() / n;
  const T mean_dx = dxhat.dot(z.xhat) / n;
  return (dxhat.array() - mean_d - z.xhat.array() * mean_dx) * z.inv_std;
}

/// layer_norm over each sample's features, γ and β per feature (PyTorch's LayerNorm).
template <class T>
class LayerNorm {
 public:
  using scalar_type = T;
  explicit LayerNorm(Index width) : gamma_(Vector<T>::Ones(width)), beta_(Vector<T>::Zero(width)) {}
  std::string type_name() const { return "textbook layer_norm"; }
  Index input_size() const { return gamma_.size(); }
  Index output_size() const { return gamma_.size(); }
  std::vector<ParameterBlock> parameter_blocks() const {
    const Index n = gamma_.size();
    return {{"gamma", n, 1, 0, true}, {"beta", n, 1, n, true}};
  }
  Vector<T> parameters() const {
    Vector<T> p(2 * gamma_.size());
    p << gamma_, beta_;
    return p;
  }
  void set_parameters(const Vector<T>& p) {
    const Index n = gamma_.size();
    gamma_ = p.head(n), beta_ = p.tail(n);
  }
  Matrix<T> forward(const Matrix<T>& X) const {
    Matrix<T> Y(X.rows(), X.cols());
    for (Index s = 0; s < X.cols(); ++s)
      Y.col(s) = gamma_.cwiseProduct(normalise<T>(X.col(s), eps()).xhat) + beta_;
    return Y;
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Index n = gamma_.size();
    Matrix<T> dX(X.rows(), X.cols());
    for (Index s = 0; s < X.cols(); ++s) {
      const Normalised<T> z = normalise<T>(X.col(s), eps());
      dtheta.head(n) += dY.col(s).cwiseProduct(z.xhat);
      dtheta.tail(n) += dY.col(s);
      dX.col(s) = normalise_backward<T>(z, Vector<T>(dY.col(s).cwiseProduct(gamma_)));
    }
    return dX;
  }

 private:
  static T eps() { return T(1e-5); }
  Vector<T> gamma_, beta_;
};

/// batch_norm in training mode: each feature normalised over the batch (PyTorch's BatchNorm1d).
template <class T>
class BatchNorm : public LayerNorm<T> {
 public:
  static constexpr bool sample_independent = false;  // statistics over the batch couple the samples
  using LayerNorm<T>::LayerNorm;
  std::string type_name() const { return "textbook batch_norm"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    const Vector<T> gamma = this->parameters().head(X.rows()), beta = this->parameters().tail(X.rows());
    Matrix<T> Y(X.rows(), X.cols());
    for (Index i = 0; i < X.rows(); ++i)
      Y.row(i) = (normalise<T>(Vector<T>(X.row(i).transpose()), eps()).xhat * gamma(i)).array() + beta(i);
    return Y;
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Index n = X.rows();
    const Vector<T> gamma = this->parameters().head(n);
    Matrix<T> dX(X.rows(), X.cols());
    for (Index i = 0; i < n; ++i) {
      const Normalised<T> z = normalise<T>(Vector<T>(X.row(i).transpose()), eps());
      const Vector<T> dy = dY.row(i).transpose();
      dtheta(i) += dy.dot(z.xhat);
      dtheta(n + i) += dy.sum();
      dX.row(i) = normalise_backward<T>(z, Vector<T>(dy * gamma(i))).transpose();
    }
    return dX;
  }

 private:
  static T eps() { return T(1e-5); }
};

/// A loss as a layer with fixed targets: logits X (features × batch) ↦ the batch mean, 1 × 1.
template <class T>
class LossOfBatch : public Elementwise<T> {
 public:
  static constexpr bool sample_independent = false;  // one value for the whole batch
  explicit LossOfBatch(Index width) : Elementwise<T>(width) {}
  Index output_size() const { return 1; }
};

/// cross_entropy through log_softmax: ℓ = −(1/B) Σ_s log_softmax(x_s)[t_s], t_s = s mod classes.
/// dX = dℓ (softmax(x) − onehot(t)) / B, softmax as exp(log_softmax)
template <class T>
class CrossEntropy : public LossOfBatch<T> {
 public:
  using LossOfBatch<T>::LossOfBatch;
  std::string type_name() const { return "textbook cross_entropy (log_softmax)"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    const Matrix<T> L = LogSoftmax<T>(X.rows()).forward(X);
    T sum(0);
    for (Index s = 0; s < X.cols(); ++s) sum -= L(s % X.rows(), s);
    return Matrix<T>::Constant(1, 1, sum / T(static_cast<double>(X.cols())));
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    Matrix<T> dX = LogSoftmax<T>(X.rows()).forward(X).unaryExpr([](const T& l) {
      using std::exp;
      return T(exp(l));
    });
    for (Index s = 0; s < X.cols(); ++s) dX(s % X.rows(), s) -= T(1);
    return dX * T(dY(0, 0) / T(static_cast<double>(X.cols())));
  }
};

/// mse against targets t_is = (i − s)/4: ℓ = Σ (x − t)² / (n B).   dX = dℓ · 2 (x − t) / (n B)
template <class T>
class Mse : public LossOfBatch<T> {
 public:
  using LossOfBatch<T>::LossOfBatch;
  std::string type_name() const { return "textbook mse"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    return Matrix<T>::Constant(1, 1, T((X - targets(X)).squaredNorm() / T(static_cast<double>(X.size()))));
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return (X - targets(X)) * T(T(2) * dY(0, 0) / T(static_cast<double>(X.size())));
  }

 private:
  static Matrix<T> targets(const Matrix<T>& X) {
    Matrix<T> t(X.rows(), X.cols());
    for (Index s = 0; s < X.cols(); ++s)
      for (Index i = 0; i < X.rows(); ++i) t(i, s) = T(static_cast<double>(i - s) / 4);
    return t;
  }
};

// ---- the same layers with backward recomputing from X, as users write them without a cache -------

/// y = tanh x.   t = tanh(x) recomputed, dX = dY ⊙ (1 − t²)
template <class T>
class TanhFromX : public Tanh<T> {
 public:
  using Tanh<T>::Tanh;
  std::string type_name() const { return "textbook tanh (t = tanh x, 1 − t²)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(X.unaryExpr([](const T& x) {
      using std::tanh;
      const T t = tanh(x);
      return T(T(1) - t * t);
    }));
  }
};

/// y = σ(x).   s = σ(x) recomputed, dX = dY ⊙ s(1 − s)
template <class T>
class SigmoidFromX : public Sigmoid<T> {
 public:
  using Sigmoid<T>::Sigmoid;
  std::string type_name() const { return "textbook sigmoid (s = σ(x), s(1 − s))"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(X.unaryExpr([](const T& x) {
      const T s = sigmoid(x);
      return T(s * (T(1) - s));
    }));
  }
};

/// y = x/(1 + e^(−x)) (silu as users write it).   s = 1/(1 + e^(−x)), dX = dY ⊙ (s + x s(1 − s))
template <class T>
class SiluFromX : public Elementwise<T> {
 public:
  using Elementwise<T>::Elementwise;
  std::string type_name() const { return "textbook silu (x/(1 + e^(−x)))"; }
  Matrix<T> forward(const Matrix<T>& X) const {
    return X.unaryExpr([](const T& x) {
      using std::exp;
      return T(x / T(T(1) + T(exp(T(-x)))));
    });
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(X.unaryExpr([](const T& x) {
      using std::exp;
      const T s = T(1) / T(T(1) + T(exp(T(-x))));
      return T(s + x * s * (T(1) - s));
    }));
  }
};

/// y = softmax(x) with the max shift.   s recomputed from X the same way, dX = s ⊙ (g − sᵀg)
template <class T>
class SoftmaxFromX : public Softmax<T> {
 public:
  using Softmax<T>::Softmax;
  std::string type_name() const { return "textbook softmax (s recomputed, s ⊙ (g − sᵀg))"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    const Matrix<T> S = this->forward(X);
    return Softmax<T>::backward(X, S, dY, dtheta);
  }
};

/// layer_norm whose backward recomputes mean and variance from X in its own loop and applies
/// dx = (n dx̂ − Σdx̂ − x̂ Σ(dx̂ ⊙ x̂)) / (n √(σ² + ε)), dx̂ = γ dy.
template <class T>
class LayerNormFromX : public LayerNorm<T> {
 public:
  using LayerNorm<T>::LayerNorm;
  std::string type_name() const { return "textbook layer_norm (mean, variance recomputed)"; }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    using std::sqrt;
    const Index n = X.rows();
    const Vector<T> gamma = this->parameters().head(n);
    const T nn(static_cast<double>(n));
    Matrix<T> dX(X.rows(), X.cols());
    for (Index s = 0; s < X.cols(); ++s) {
      T mean(0), var(0);
      for (Index i = 0; i < n; ++i) mean += X(i, s);
      mean /= nn;
      for (Index i = 0; i < n; ++i) var += (X(i, s) - mean) * (X(i, s) - mean);
      var /= nn;
      const T rstd = T(1) / T(sqrt(T(var + T(1e-5))));
      T sum_d(0), sum_dx(0);
      for (Index i = 0; i < n; ++i) {
        const T xhat = (X(i, s) - mean) * rstd;
        const T d = gamma(i) * dY(i, s);
        dtheta(i) += dY(i, s) * xhat;
        dtheta(n + i) += dY(i, s);
        sum_d += d;
        sum_dx += d * xhat;
      }
      for (Index i = 0; i < n; ++i) {
        const T xhat = (X(i, s) - mean) * rstd;
        dX(i, s) = (nn * gamma(i) * dY(i, s) - sum_d - xhat * sum_dx) * rstd / nn;
      }
    }
    return dX;
  }
};

// ---- the same formulas with a classic bug each: the verifier must call these wrong ----------------

/// tanh′ as 1 − y instead of 1 − y².
template <class T>
class TanhMissingSquare : public Tanh<T> {
 public:
  using Tanh<T>::Tanh;
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(Y.unaryExpr([](const T& y) { return T(T(1) - y); }));
  }
};

/// σ′ taken as 0 beyond |x| > 4: a saturation shortcut that is wrong (σ′(5) ≈ 0.0066).
template <class T>
class SigmoidSaturationShortcut : public Sigmoid<T> {
 public:
  using Sigmoid<T>::Sigmoid;
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    Matrix<T> dX = dY.cwiseProduct(Y.unaryExpr([](const T& y) { return T(y * (T(1) - y)); }));
    for (Index i = 0; i < X.size(); ++i) {
      using std::abs;
      if (abs(X(i)) > T(4)) dX(i) = T(0);
    }
    return dX;
  }
};

/// softmax backward with the diagonal only: s ⊙ (1 − s) ⊙ g.
template <class T>
class SoftmaxDiagonalOnly : public Softmax<T> {
 public:
  using Softmax<T>::Softmax;
  Matrix<T> backward(const Matrix<T>&, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return Y.cwiseProduct((Matrix<T>::Ones(Y.rows(), Y.cols()) - Y)).cwiseProduct(dY);
  }
};

/// gelu′ without the x φ(x) term.
template <class T>
class GeluMissingTerm : public Gelu<T> {
 public:
  using Gelu<T>::Gelu;
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    return dY.cwiseProduct(X.unaryExpr([](const T& x) {
      using std::erf;
      using std::sqrt;
      return T(T(0.5) * (T(1) + T(erf(x / T(sqrt(T(2)))))));
    }));
  }
};

/// layer_norm backward without the x̂ mean(dx̂ ⊙ x̂) term.
template <class T>
class LayerNormMissingTerm : public LayerNorm<T> {
 public:
  using LayerNorm<T>::LayerNorm;
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    Matrix<T> dX = LayerNorm<T>::backward(X, Y, dY, dtheta);
    const Vector<T> gamma = this->parameters().head(X.rows());
    for (Index s = 0; s < X.cols(); ++s) {
      // add back x̂ mean(dx̂ ⊙ x̂) / σ: what the right backward subtracted
      const auto z = normalise<T>(X.col(s), T(1e-5));
      const Vector<T> dxhat = dY.col(s).cwiseProduct(gamma);
      const T n(static_cast<double>(X.rows()));
      dX.col(s) += z.xhat * T(dxhat.dot(z.xhat) / n * z.inv_std);
    }
    return dX;
  }
};

/// A factory for verify_layer: Layer<T>(width) on every rung.
template <template <class> class Layer>
auto factory(Index width) {
  return [width]<class T>(bpcheck::rung<T>) { return Layer<T>(width); };
}

}  // namespace textbook
