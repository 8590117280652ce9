#pragma once
// Correct layers made at random, written the ways users write them: a composition of elementary
// operations (depth 2–6, 1–8 features, at most three parameters) whose backward applies the chain
// rule in T in one of three styles. The layer is one class template over T, described at run time by
// an op list, so that one instantiation per rung serves every generated layer.
//
//   Description d = interpret(3, Style::read_y, {{int(Op::tanh)}, {int(Op::softmax)}});  // softmax(tanh(x))
//   auto make = [d = std::make_shared<const Description>(d)]<class T>(bpcheck::rung<T>) {
//     return GeneratedLayer<T>(d);
//   };
//   bpcheck::verify_layer(make, options);
//
// Styles: `recompute` recomputes every intermediate from X and takes each derivative from the op's
// input (t = tanh(a), 1 − t²); `read_y` takes each derivative from the op's output where that gives it
// (erf's from its input) and the last op's output from the Y that backward is given (1 − y², y(1 − y), 1 − e^(−y) for softplus); `log_space`
// forms each derivative as the exponential of a sum of logarithms (σ′ = e^(−softplus(a) −
// softplus(−a)), s = e^(log_softmax(a))). A Mutation makes the backward of one op wrong on purpose.
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bpcheck/layer.hpp"
#include "bpcheck/scalar.hpp"

namespace bpcheck::generated {

/// The elementary operations. The first ones are the simplest: a shrinking generator moves toward them.
enum class Op : int {
  add_c,        ///< a + c
  mul_c,        ///< a · c
  tanh,
  sigmoid,
  exp,
  softplus,     ///< log(1 + eᵃ), in a form that never overflows
  erf,
  log1p,        ///< of a positive value
  sqrt,         ///< of a positive value
  div_c,        ///< a / c, |c| ≥ 1/2
  softmax,      ///< over the features, max-shifted
  log_softmax,  ///< over the features, max-shifted
  sum,          ///< over the features: width 1
  mean,         ///< over the features: width 1
  mix,          ///< M a with a fixed square matrix
  add_p,        ///< a + θ_j
  mul_p,        ///< a · θ_j
  add,          ///< a + b
  sub,          ///< a − b
  mul,          ///< a ⊙ b
  div,          ///< a / b, b ≥ 1/2 by construction
  count,
};

enum class Style : int { recompute, read_y, log_space };

enum class Mutation : int {
  none,
  drop_factor,  ///< the op's local derivative factor left out (the incoming gradient passed on as is)
  flip_sign,    ///< the op's contributions negated
  transpose,    ///< M g instead of Mᵀ g (mix only)
  offset,       ///< the op's contributions times 1 + 1e-6
};

/// One step: value k + 1 = op(value a[, value b]).
struct Step {
  Op op = Op::add_c;
  int a = 0;
  int b = -1;
  double c = 0;               ///< the constant of add_c, mul_c, div_c
  int param = -1;             ///< θ's entry for add_p, mul_p
  std::vector<double> matrix;  ///< mix: width × width, column-major
};

/// What a generated layer computes: value 0 is X, value k + 1 the result of step k, the output the last.
struct Description {
  Index width = 1;
  Style style = Style::recompute;
  std::vector<Step> steps;
  std::vector<double> theta;
  std::vector<Index> widths;  ///< of every value
  Mutation mutation = Mutation::none;
  int mutated_step = -1;
};

/// A step as the generator draws it: small integers that interpret() turns into a valid step, so that
/// any sublist of a list is again a valid layer (RapidCheck shrinks by removing steps).
struct RawStep {
  int op = 0;
  int pick = 0;      ///< operand a: 0 the latest value, 1 the one before, …
  int pick2 = 0;     ///< operand b among the values that fit
  int constant = 0;  ///< the constant, parameter or matrix
};

std::string op_name(Op op);
std::string style_name(Style s);
std::string mutation_name(Mutation m);

/// Turns drawn steps into a valid layer on `width` features: log1p and sqrt read a positive value (the
/// latest one; exp where there is none), ÷ a value ≥ 1/2 (÷ a constant where there is none), binary ops
/// two values of one width, at most three parameters.
Description interpret(Index width, Style style, const std::vector<RawStep>& raw);

/// The op list, one line per step, for people: "v2 = softmax(v1)".
std::string describe(const Description& d);

/// The (step, mutation) pairs that change the backward's formula for this layer.
std::vector<std::pair<int, Mutation>> applicable_mutations(const Description& d);

// ---- the layer -------------------------------------------------------------------------------------

namespace detail {
template <class T>
T sigmoid(const T& x) {
  using std::exp;
  return x >= T(0) ? T(T(1) / (T(1) + T(exp(T(-x))))) : T(T(exp(x)) / (T(1) + T(exp(x))));
}
/// log(1 + eˣ) by the branch that never overflows (both branches are smooth at 0).
template <class T>
T softplus(const T& x) {
  using std::exp;
  using std::log1p;
  return x >= T(0) ? T(x + T(log1p(T(exp(T(-x)))))) : T(log1p(T(exp(x))));
}
}  // namespace detail

template <class T>
class GeneratedLayer {
 public:
  using scalar_type = T;
  explicit GeneratedLayer(std::shared_ptr<const Description> d) : d_(std::move(d)) {
    theta_.resize(Index(d_->theta.size()));
    for (Index j = 0; j < theta_.size(); ++j) theta_(j) = T(d_->theta[std::size_t(j)]);
  }
  std::string type_name() const { return "generated layer"; }
  Index input_size() const { return d_->width; }
  Index output_size() const { return d_->widths.back(); }
  std::vector<ParameterBlock> parameter_blocks() const {
    if (theta_.size() == 0) return {};
    return {{"theta", theta_.size(), 1, 0, true}};
  }
  Vector<T> parameters() const { return theta_; }
  void set_parameters(const Vector<T>& p) { theta_ = p; }

  Matrix<T> forward(const Matrix<T>& X) const { return values(X).back(); }

  /// Every value, X first.
  std::vector<Matrix<T>> values(const Matrix<T>& X) const {
    std::vector<Matrix<T>> v{X};
    v.reserve(d_->steps.size() + 1);
    for (const Step& s : d_->steps) v.push_back(apply(s, v));
    return v;
  }

  Matrix<T> backward(const Matrix<T>& X, const Matrix<T>& Y, const Matrix<T>& dY, Eigen::Ref<Vector<T>> dtheta) const {
    std::vector<Matrix<T>> v = values(X);
    if (d_->style == Style::read_y) v.back() = Y;
    std::vector<Matrix<T>> g;
    g.reserve(v.size());
    for (const auto& m : v) g.push_back(Matrix<T>::Zero(m.rows(), m.cols()));
    g.back() = dY;
    for (int k = int(d_->steps.size()) - 1; k >= 0; --k) {
      const Step& s = d_->steps[std::size_t(k)];
      const Mutation m = k == d_->mutated_step ? d_->mutation : Mutation::none;
      Contribution c = local_backward(s, v, v[std::size_t(k) + 1], g[std::size_t(k) + 1], m);
      if (m == Mutation::flip_sign || m == Mutation::offset) {
        const T f = m == Mutation::flip_sign ? T(-1) : T(1) + T(1e-6);
        c.da *= f;
        if (c.db.size()) c.db *= f;
        c.dtheta = c.dtheta * f;
      }
      g[std::size_t(s.a)] += c.da;
      if (s.b >= 0) g[std::size_t(s.b)] += c.db;
      if (s.param >= 0) dtheta(s.param) += c.dtheta;
    }
    return g.front();
  }

 private:
  struct Contribution {
    Matrix<T> da, db;
    T dtheta = T(0);
  };

  static T elementwise(Op op, const T& a) {
    using std::erf;
    using std::exp;
    using std::log1p;
    using std::sqrt;
    using std::tanh;
    switch (op) {
      case Op::tanh: return T(tanh(a));
      case Op::sigmoid: return detail::sigmoid(a);
      case Op::exp: return T(exp(a));
      case Op::softplus: return detail::softplus(a);
      case Op::erf: return T(erf(a));
      case Op::log1p: return T(log1p(a));
      case Op::sqrt: return T(sqrt(a));
      default: return a;
    }
  }

  /// f′(a) in the layer's style; y = f(a) as backward has it (Y itself for the last op in read_y).
  T derivative(Op op, const T& a, const T& y) const {
    using std::exp;
    using std::log;
    using std::log1p;
    using std::sqrt;
    using std::tanh;
    const Style style = d_->style;
    switch (op) {
      case Op::tanh:
        if (style == Style::read_y) return T(1) - y * y;
        if (style == Style::log_space)
          return T(4) * T(exp(T(-(detail::softplus(T(T(2) * a)) + detail::softplus(T(T(-2) * a))))));
        {
          const T t = tanh(a);
          return T(1) - t * t;
        }
      case Op::sigmoid:
        if (style == Style::read_y) return y * (T(1) - y);
        if (style == Style::log_space) return T(exp(T(-(detail::softplus(a) + detail::softplus(T(-a))))));
        {
          const T s = detail::sigmoid(a);
          return s * (T(1) - s);
        }
      case Op::exp: return style == Style::read_y ? y : T(exp(a));
      case Op::softplus:
        if (style == Style::read_y) return T(1) - T(exp(T(-y)));
        if (style == Style::log_space) return T(exp(T(-detail::softplus(T(-a)))));
        return detail::sigmoid(a);
      case Op::erf:
        if (style == Style::log_space) return T(exp(T(T(log(T(2))) - T(T(0.5) * T(log(pi<T>()))) - a * a)));
        return T(T(2) / T(sqrt(pi<T>()))) * T(exp(T(-(a * a))));
      case Op::log1p:
        if (style == Style::read_y) return T(exp(T(-y)));
        if (style == Style::log_space) return T(exp(T(-T(log1p(a)))));
        return T(1) / (T(1) + a);
      case Op::sqrt:
        if (style == Style::read_y) return T(0.5) / y;
        if (style == Style::log_space) return T(0.5) * T(exp(T(T(-0.5) * T(log(a)))));
        return T(0.5) / T(sqrt(a));
      default: return T(1);
    }
  }

  /// softmax of one column, max-shifted; with `log`, log_softmax.
  static Vector<T> softmax_column(const Matrix<T>& A, Index col, bool log_form) {
    using std::exp;
    using std::log;
    const Index n = A.rows();
    T m = A(0, col);
    for (Index i = 1; i < n; ++i)
      if (A(i, col) > m) m = A(i, col);
    Vector<T> e(n);
    T sum(0);
    for (Index i = 0; i < n; ++i) {
      e(i) = T(exp(T(A(i, col) - m)));
      sum += e(i);
    }
    if (log_form) {
      const T shift = m + T(log(sum));
      for (Index i = 0; i < n; ++i) e(i) = A(i, col) - shift;
      return e;
    }
    for (Index i = 0; i < n; ++i) e(i) = e(i) / sum;
    return e;
  }

  Matrix<T> apply(const Step& s, const std::vector<Matrix<T>>& v) const {
    const Matrix<T>& A = v[std::size_t(s.a)];
    const Index n = A.rows(), B = A.cols();
    Matrix<T> Y(n, B);
    switch (s.op) {
      case Op::add_c: return A.unaryExpr([c = T(s.c)](const T& x) { return T(x + c); });
      case Op::mul_c: return A.unaryExpr([c = T(s.c)](const T& x) { return T(x * c); });
      case Op::div_c: return A.unaryExpr([c = T(s.c)](const T& x) { return T(x / c); });
      case Op::softmax:
      case Op::log_softmax:
        for (Index col = 0; col < B; ++col) Y.col(col) = softmax_column(A, col, s.op == Op::log_softmax);
        return Y;
      case Op::sum:
      case Op::mean: {
        Matrix<T> S(1, B);
        for (Index col = 0; col < B; ++col) {
          T sum(0);
          for (Index i = 0; i < n; ++i) sum += A(i, col);
          S(0, col) = s.op == Op::mean ? T(sum / T(double(n))) : sum;
        }
        return S;
      }
      case Op::mix:
        for (Index col = 0; col < B; ++col)
          for (Index i = 0; i < n; ++i) {
            T sum(0);
            for (Index j = 0; j < n; ++j) sum += T(s.matrix[std::size_t(i + j * n)]) * A(j, col);
            Y(i, col) = sum;
          }
        return Y;
      case Op::add_p: return A.unaryExpr([t = theta_(s.param)](const T& x) { return T(x + t); });
      case Op::mul_p: return A.unaryExpr([t = theta_(s.param)](const T& x) { return T(x * t); });
      case Op::add:
      case Op::sub:
      case Op::mul:
      case Op::div: {
        const Matrix<T>& Bv = v[std::size_t(s.b)];
        for (Index i = 0; i < Y.size(); ++i) {
          const T& x = A(i);
          const T& z = Bv(i);
          Y(i) = s.op == Op::add ? T(x + z) : s.op == Op::sub ? T(x - z) : s.op == Op::mul ? T(x * z) : T(x / z);
        }
        return Y;
      }
      default: return A.unaryExpr([op = s.op](const T& x) { return elementwise(op, x); });
    }
  }

  /// The step's vector–Jacobian product at incoming gradient G (out = the step's output as backward has it).
  Contribution local_backward(const Step& s, const std::vector<Matrix<T>>& v, const Matrix<T>& out,
                              const Matrix<T>& G, Mutation m) const {
    using std::exp;
    const bool drop = m == Mutation::drop_factor;
    const Matrix<T>& A = v[std::size_t(s.a)];
    const Index n = A.rows(), B = A.cols();
    Contribution c;
    c.da = Matrix<T>(n, B);
    switch (s.op) {
      case Op::add_c: c.da = G; break;
      case Op::mul_c: c.da = drop ? G : Matrix<T>(G * T(s.c)); break;
      case Op::div_c: c.da = drop ? G : Matrix<T>(G / T(s.c)); break;
      case Op::softmax:
      case Op::log_softmax:
        for (Index col = 0; col < B; ++col) {
          // the probabilities: recomputed from the input, or read from the output
          Vector<T> p;
          if (d_->style == Style::recompute)
            p = softmax_column(A, col, false);
          else if (s.op == Op::softmax && d_->style == Style::read_y)
            p = out.col(col);
          else if (s.op == Op::log_softmax && d_->style == Style::read_y)
            p = out.col(col).unaryExpr([](const T& l) { return T(exp(l)); });
          else
            p = softmax_column(A, col, true).unaryExpr([](const T& l) { return T(exp(l)); });
          if (s.op == Op::softmax) {
            T sg(0);
            for (Index i = 0; i < n; ++i) sg += p(i) * G(i, col);
            for (Index i = 0; i < n; ++i) c.da(i, col) = drop ? T(G(i, col) - sg) : T(p(i) * T(G(i, col) - sg));
          } else {
            T gsum(0);
            for (Index i = 0; i < n; ++i) gsum += G(i, col);
            for (Index i = 0; i < n; ++i) c.da(i, col) = drop ? G(i, col) : T(G(i, col) - p(i) * gsum);
          }
        }
        break;
      case Op::sum:
      case Op::mean:
        for (Index col = 0; col < B; ++col)
          for (Index i = 0; i < n; ++i)
            c.da(i, col) = s.op == Op::mean && !drop ? T(G(0, col) / T(double(n))) : G(0, col);
        break;
      case Op::mix:
        for (Index col = 0; col < B; ++col)
          for (Index j = 0; j < n; ++j) {
            if (drop) {
              c.da(j, col) = G(j, col);
              continue;
            }
            T sum(0);  // (Mᵀ g)_j = Σ_i M_ij g_i; transposed: Σ_i M_ji g_i
            for (Index i = 0; i < n; ++i)
              sum += T(m == Mutation::transpose ? s.matrix[std::size_t(j + i * n)] : s.matrix[std::size_t(i + j * n)]) *
                     G(i, col);
            c.da(j, col) = sum;
          }
        break;
      case Op::add_p:
        c.da = G;
        for (Index i = 0; i < G.size(); ++i) c.dtheta += G(i);
        break;
      case Op::mul_p:
        c.da = drop ? G : Matrix<T>(G * theta_(s.param));
        for (Index i = 0; i < G.size(); ++i) c.dtheta += drop ? G(i) : T(G(i) * A(i));
        break;
      case Op::add:
      case Op::sub:
      case Op::mul:
      case Op::div: {
        const Matrix<T>& Bv = v[std::size_t(s.b)];
        c.db = Matrix<T>(n, B);
        for (Index i = 0; i < G.size(); ++i) {
          const T& g = G(i);
          switch (s.op) {
            case Op::add: c.da(i) = g, c.db(i) = g; break;
            case Op::sub: c.da(i) = g, c.db(i) = T(-g); break;
            case Op::mul: c.da(i) = drop ? g : T(g * Bv(i)), c.db(i) = T(g * A(i)); break;
            default: {
              // d(a/b) = g/b, −g a/b² (read_y: −g y/b)
              const T q = g / Bv(i);
              c.da(i) = drop ? g : q;
              c.db(i) = d_->style == Style::read_y ? T(-(q * out(i))) : T(-(q * A(i) / Bv(i)));
            }
          }
        }
        break;
      }
      default:
        for (Index i = 0; i < G.size(); ++i) c.da(i) = drop ? G(i) : T(G(i) * derivative(s.op, A(i), out(i)));
    }
    return c;
  }

  std::shared_ptr<const Description> d_;
  Vector<T> theta_;
};

}  // namespace bpcheck::generated
