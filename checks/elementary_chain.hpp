#pragma once
// A small correct layer built from elementary functions: y = f_k(…f_1(x)) elementwise, its backward
// recomputing every intermediate from X by the chain rule in T. The liveness tests and the chain fuzz
// target build layers from it whose exact forward leaves double's range, meets a periodic function at
// a huge argument, or overflows an oracle while the layer's own values stay finite.
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "bpcheck/layer.hpp"
#include "bpcheck/scalar.hpp"

namespace elementary {

using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::ParameterBlock;
using bpcheck::Vector;

enum class Op { exp, cos, square, sqrt_one_plus_square, affine, log1p_square, silu, log, sin, tanh };
inline constexpr int op_count = 10;

/// y = f_k(…f_1(x)) elementwise; backward recomputes every intermediate from X (the chain rule in T).
template <class T>
class Chain {
 public:
  using scalar_type = T;
  Chain(Index width, std::vector<Op> ops, int sleep_ms = 0) : width_(width), ops_(std::move(ops)), sleep_ms_(sleep_ms) {}
  std::string type_name() const { return "elementary chain"; }
  Index input_size() const { return width_; }
  Index output_size() const { return width_; }
  std::vector<ParameterBlock> parameter_blocks() const { return {}; }
  Vector<T> parameters() const { return {}; }
  void set_parameters(const Vector<T>&) {}

  Matrix<T> forward(const Matrix<T>& X) const {
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    return X.unaryExpr([this](const T& x) { return value(x); });
  }
  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>&, const Matrix<T>& dY, Eigen::Ref<Vector<T>>) const {
    Matrix<T> dX(X.rows(), X.cols());
    for (Index i = 0; i < X.size(); ++i) dX(i) = dY(i) * derivative(X(i));
    return dX;
  }

 private:
  static T apply(Op op, const T& x) {
    using std::cos, std::exp, std::log, std::log1p, std::sin, std::sqrt, std::tanh;
    switch (op) {
      case Op::exp: return T(exp(x));
      case Op::cos: return T(cos(x));
      case Op::square: return T(x * x);
      case Op::sqrt_one_plus_square: return T(sqrt(T(1) + x * x));
      case Op::affine: return T(T(3) * x - T(1));
      case Op::log1p_square: return T(log1p(x * x));
      case Op::silu: return T(x / (T(1) + exp(-x)));
      case Op::log: return T(log(x));
      case Op::sin: return T(sin(x));
      case Op::tanh: return T(tanh(x));
    }
    return x;
  }
  static T slope(Op op, const T& x) {
    using std::cos, std::exp, std::sin, std::sqrt, std::tanh;
    switch (op) {
      case Op::exp: return T(exp(x));
      case Op::cos: return T(-sin(x));
      case Op::square: return T(T(2) * x);
      case Op::sqrt_one_plus_square: return T(x / sqrt(T(1) + x * x));
      case Op::affine: return T(3);
      case Op::log1p_square: return T(T(2) * x / (T(1) + x * x));
      case Op::silu: {
        const T s = T(T(1) / (T(1) + exp(-x)));
        return T(s + x * s * (T(1) - s));
      }
      case Op::log: return T(T(1) / x);
      case Op::sin: return T(cos(x));
      case Op::tanh: {
        const T t = T(tanh(x));
        return T(T(1) - t * t);
      }
    }
    return T(1);
  }
  T value(T x) const {
    for (Op op : ops_) x = apply(op, x);
    return x;
  }
  T derivative(T x) const {
    T d(1);
    for (Op op : ops_) {
      d = T(d * slope(op, x));
      x = apply(op, x);
    }
    return d;
  }

  Index width_;
  std::vector<Op> ops_;
  int sleep_ms_ = 0;
};

}  // namespace elementary
