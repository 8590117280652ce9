#pragma once
// A user's layer: swish with a learnable slope per feature, y_i = x_i σ(β_i x_i).
#include <cmath>

#include <bpcheck/layer.hpp>

template <class T>
class LearnableSwish {
 public:
  using scalar_type = T;
  explicit LearnableSwish(bpcheck::Index width) : beta_(bpcheck::Vector<T>::Ones(width)) {}

  std::string type_name() const { return "learnable_swish"; }
  bpcheck::Index input_size() const { return beta_.size(); }
  bpcheck::Index output_size() const { return beta_.size(); }
  std::vector<bpcheck::ParameterBlock> parameter_blocks() const { return {{"beta", beta_.size(), 1, 0, true}}; }
  bpcheck::Vector<T> parameters() const { return beta_; }
  void set_parameters(const bpcheck::Vector<T>& theta) { beta_ = theta; }

  bpcheck::Matrix<T> forward(const bpcheck::Matrix<T>& X) const {
    bpcheck::Matrix<T> Y(X.rows(), X.cols());
    for (bpcheck::Index s = 0; s < X.cols(); ++s)
      for (bpcheck::Index i = 0; i < X.rows(); ++i) Y(i, s) = X(i, s) * sigmoid(beta_(i) * X(i, s));
    return Y;
  }

  // ∂y/∂x = σ + βxσ(1 − σ),  ∂y/∂β = x²σ(1 − σ), σ = σ(βx):  dX = dY ⊙ ∂y/∂x,  dβ += Σ_s dY ⊙ ∂y/∂β.
  // σ(1 − σ) is computed as σ(βx)σ(−βx): 1 − σ cancels once βx is large (the property suite's
  // saturated and wide-range points showed it).
  bpcheck::Matrix<T> backward(const bpcheck::Matrix<T>& X, const bpcheck::Matrix<T>&, const bpcheck::Matrix<T>& dY,
                              Eigen::Ref<bpcheck::Vector<T>> dbeta) const {
    bpcheck::Matrix<T> dX(X.rows(), X.cols());
    for (bpcheck::Index s = 0; s < X.cols(); ++s)
      for (bpcheck::Index i = 0; i < X.rows(); ++i) {
        const T x = X(i, s), sg = sigmoid(beta_(i) * x), ds = sg * sigmoid(-beta_(i) * x);
        dX(i, s) = dY(i, s) * (sg + beta_(i) * x * ds);
        dbeta(i) += dY(i, s) * x * x * ds;
      }
    return dX;
  }

 protected:
  static T sigmoid(const T& z) {
    using std::exp;
    return z >= T(0) ? T(1) / (T(1) + exp(-z)) : T(exp(z) / (T(1) + exp(z)));
  }
  bpcheck::Vector<T> beta_;
};

/// The same layer with a classic bug: the β-gradient misses a factor x (x·σ(1 − σ) instead of x²σ(1 − σ)).
template <class T>
class LearnableSwishMissingFactor : public LearnableSwish<T> {
 public:
  using LearnableSwish<T>::LearnableSwish;
  bpcheck::Matrix<T> backward(const bpcheck::Matrix<T>& X, const bpcheck::Matrix<T>&, const bpcheck::Matrix<T>& dY,
                              Eigen::Ref<bpcheck::Vector<T>> dbeta) const {
    bpcheck::Matrix<T> dX(X.rows(), X.cols());
    for (bpcheck::Index s = 0; s < X.cols(); ++s)
      for (bpcheck::Index i = 0; i < X.rows(); ++i) {
        const T x = X(i, s), sg = this->sigmoid(this->beta_(i) * x), ds = sg * this->sigmoid(-this->beta_(i) * x);
        dX(i, s) = dY(i, s) * (sg + this->beta_(i) * x * ds);
        dbeta(i) += dY(i, s) * x * ds;
      }
    return dX;
  }
};
