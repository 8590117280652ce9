#pragma once
// Definitions for bpcheck/properties/cases.hpp; instantiated per rung in cases_fast.cpp and
// cases_mp100.cpp.
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bpcheck/properties/cases.hpp"
#include "bpcheck/verify/network_layer.hpp"
#include "identities_impl.hpp"

namespace bpcheck::properties {

namespace cases_detail {

template <class T>
Network<T> network_on(const NetworkCase& c) {
  Network<T> net(c.spec);
  net.set_parameters(detail::to_vector<T>(c.parameters));
  return net;
}

template <class T>
Targets<T> targets_on(const NetworkCase& c, Index outputs) {
  Targets<T> t;
  if (!c.classes.empty())
    t.classes = c.classes;
  else
    t.values = detail::to_matrix<T>(c.targets, outputs, c.batch);
  return t;
}

template <class T>
Matrix<T> network_inputs(const NetworkCase& c) {
  return detail::to_matrix<T>(c.inputs, c.spec.input_size, c.batch);
}

/// [J_L⋯J_1, J_L⋯J_2·J_θ,1, …, J_θ,L], formed from the layers' stated Jacobians (from their absolute
/// Jacobians when `absolute`: the magnitudes of the terms): the product accumulated from the output
/// end, as the theorem writes it.
template <class T>
Matrix<T> explicit_product(Network<T> net, const Matrix<T>& X, const Vector<T>& theta, bool absolute) {
  net.set_parameters(theta);
  const auto xs = net.activations(X);
  Matrix<T> P = Matrix<T>::Identity(xs.back().size(), xs.back().size());
  std::vector<Matrix<T>> Jt(net.depth());
  for (std::size_t k = net.depth(); k-- > 0;) {
    if (absolute) {
      const Matrix<T> A = net.layer(k).absolute_jacobian(xs[k]);  // [|J_x| |J_θ|] or the stated bound
      const Index nx = xs[k].size();
      Jt[k] = P * A.rightCols(A.cols() - nx);
      P = P * A.leftCols(nx);
    } else {
      Jt[k] = P * net.layer(k).jacobian_parameters(xs[k]);
      P = P * net.layer(k).jacobian_input(xs[k]);
    }
  }
  Matrix<T> J(P.rows(), P.cols() + net.parameter_count());
  J.leftCols(P.cols()) = P;
  Index at = P.cols();
  for (const auto& block : Jt) {
    J.middleCols(at, block.cols()) = block;
    at += block.cols();
  }
  return J;
}

template <class T>
Index widths(const Network<T>& net) {
  Index n = net.output_size();
  for (std::size_t k = 0; k < net.depth(); ++k) n += net.layer(k).input_size() + net.layer(k).output_size();
  return n;
}

}  // namespace cases_detail

namespace cases_detail {
/// The mp100 twin's dual-number J, rounded to T: the case's values are exact in every rung, so the
/// twin sits at the very same point (see LayerAtPoint::reference_jacobian).
template <class T, class Case, class At>
void refer_to_mp100(LayerAtPoint<T>& p, const Case& c, At at_mp100) {
  if constexpr (!std::is_same_v<T, mp100>)
    p.reference_jacobian = [c, at_mp100] { return matrix_cast<T>(jacobian_by_jvp(at_mp100(c))); };
}
}  // namespace cases_detail

template <class T>
LayerAtPoint<T> layer_case_at(const LayerCase& c) {
  AnyLayer<T> layer = make_layer<T>(c.spec, c.input_size);
  AnyLayer<dual<T>> on_dual = make_layer<dual<T>>(c.spec, c.input_size);
  LayerAtPoint<T> p =
      layer_at_point(layer, on_dual, inputs_on<T>(c), parameters_on<T>(c), cotangent_on<T>(c), direction_on<T>(c));
  cases_detail::refer_to_mp100(p, c, [](const LayerCase& k) { return layer_case_at<mp100>(k); });
  return p;
}

template <class T>
LayerAtPoint<T> network_at(const NetworkCase& c) {
  using namespace cases_detail;
  const Network<T> net = network_on<T>(c);
  LayerAtPoint<T> p;
  p.name = "network";
  p.forward = [net](const Matrix<T>& X, const Vector<T>& theta) {
    Network<T> n = net;
    n.set_parameters(theta);
    return n.forward(X);
  };
  // backprop without the loss: δ_L = U, then dθ_k += J_θ,kᵀ δ_k and δ_{k−1} = J_x,kᵀ δ_k per layer
  p.backward = [net](const Matrix<T>& X, const Vector<T>& theta, const Matrix<T>& U, Vector<T>& dtheta) {
    Network<T> n = net;
    n.set_parameters(theta);
    const auto xs = n.activations(X);
    Matrix<T> delta = U;
    Index at = n.parameter_count();
    for (std::size_t k = n.depth(); k-- > 0;) {
      const Index pk = n.layer(k).parameter_count();
      at -= pk;
      Eigen::Ref<Vector<T>> block = dtheta.segment(at, pk);
      delta = n.layer(k).backward(xs[k], xs[k + 1], delta, block);
    }
    return delta;
  };
  const ModelSpec spec = c.spec;
  p.dual = [spec](const Matrix<dual<T>>& X, const Vector<dual<T>>& theta) {
    Network<dual<T>> n(spec);
    n.set_parameters(theta);
    return n.forward(X);
  };
  p.jacobian = [net](const Matrix<T>& X, const Vector<T>& theta) { return explicit_product(net, X, theta, false); };
  p.magnitude = [net](const Matrix<T>& X, const Vector<T>& theta) { return explicit_product(net, X, theta, true); };
  p.X = network_inputs<T>(c);
  p.theta = net.parameters();
  p.U = detail::to_matrix<T>(c.cotangent, net.output_size(), c.batch);
  // a fixed direction in z = [vec X; θ]: entries in [−1, 1] that are multiples of 1/8
  Vector<T> v(p.X.size() + p.theta.size());
  for (Index i = 0; i < v.size(); ++i) v(i) = T(int((i * 37) % 17) - 8) / T(8);
  p.index_input = net.layer(0).input_is_index();
  if (p.index_input) v.head(p.X.size()).setZero();  // indices stay where they are
  p.v = v;
  p.rounding_terms = widths(net);
  refer_to_mp100(p, c, [](const NetworkCase& k) { return network_at<mp100>(k); });
  return p;
}

template <class T>
LayerAtPoint<T> network_loss_at(const NetworkCase& c) {
  using namespace cases_detail;
  Network<T> net = network_on<T>(c);
  const Index out = net.output_size();
  LossLayer<T> loss(net, targets_on<T>(c, out));
  LossLayer<dual<T>> loss_on_dual(network_on<dual<T>>(c), targets_on<dual<T>>(c, out));
  const Matrix<T> X = network_inputs<T>(c);
  Matrix<T> U(1, 1);
  U << detail::to_vector<T>(c.cotangent)(0);
  Vector<T> v(X.size() + net.parameter_count());
  for (Index i = 0; i < v.size(); ++i) v(i) = T(int((i * 37) % 17) - 8) / T(8);
  const bool index_input = net.layer(0).input_is_index();
  if (index_input) v.head(X.size()).setZero();  // indices stay where they are
  LayerAtPoint<T> p = layer_at_point(loss, loss_on_dual, X, net.parameters(), U, v);
  p.index_input = index_input;
  refer_to_mp100(p, c, [](const NetworkCase& k) { return network_loss_at<mp100>(k); });
  p.magnitude = [loss](const Matrix<T>& x, const Vector<T>& theta) {
    LossLayer<T> l = loss;
    l.set_parameters(theta);
    const Vector<T> sweep = l.absolute_sweep(x, Matrix<T>::Ones(1, 1));
    return Matrix<T>(sweep.transpose());
  };
  p.rounding_terms = loss.rounding_terms();
  return p;
}

// J_{f∘g}(x) = J_f(g(x)) · J_g(x), in the input and in g's parameters
template <class T>
Outcome chain_rule(const NetworkCase& c) {
  using namespace cases_detail;
  using namespace identities_detail;
  Outcome o;
  const Network<T> net = network_on<T>(c);
  const Network<dual<T>> net_on_dual = network_on<dual<T>>(c);
  if (net.depth() < 2) {
    o.vacuous = true;
    return o;
  }
  const auto xs = net.activations(network_inputs<T>(c));
  const Index terms = widths(net);
  for (std::size_t k = 0; k + 1 < net.depth(); ++k) {
    const Vector<T> theta_g = net.layer(k).parameters(), theta_f = net.layer(k + 1).parameters();
    const DualForward<T> g = dual_forward(net_on_dual.layer(k));
    const DualForward<T> f = dual_forward(net_on_dual.layer(k + 1));
    const AnyLayer<dual<T>> g_layer = net_on_dual.layer(k), f_layer = net_on_dual.layer(k + 1);
    const Vector<dual<T>> f_theta = vector_cast<dual<T>>(theta_f);
    const DualForward<T> fg = [g_layer, f_layer, f_theta](const Matrix<dual<T>>& X, const Vector<dual<T>>& th) {
      AnyLayer<dual<T>> gg = g_layer, ff = f_layer;
      gg.set_parameters(th);
      ff.set_parameters(f_theta);
      return ff.forward(gg.forward(X));
    };
    const Matrix<T> Jg = jacobian_input_jvp<T>(g, xs[k], theta_g);
    // J_f at g(x) as the composition's forward mode computes it: the real forward may round g(x)
    // differently (tanh by another kernel) and break a max-pool tie the other way.
    AnyLayer<dual<T>> g_at = g_layer;
    g_at.set_parameters(vector_cast<dual<T>>(theta_g));
    const Matrix<dual<T>> gx_dual = g_at.forward(matrix_cast<dual<T>>(xs[k]));
    Matrix<T> gx(gx_dual.rows(), gx_dual.cols());
    for (Index i = 0; i < gx.size(); ++i) gx(i) = value_of(gx_dual(i));
    const Matrix<T> Jf = jacobian_input_jvp<T>(f, gx, theta_f);
    const Matrix<T> Jfg = jacobian_input_jvp<T>(fg, xs[k], theta_g);
    const std::string what = fmt::format("chain rule at layers {}∘{} ({}∘{})", k + 1, k,
                                         net.layer(k + 1).type_name(), net.layer(k).type_name());
    agree(o, what + " in x", "J_{f∘g}", Jfg, "J_f·J_g", Matrix<T>(Jf * Jg), Matrix<T>(Jf.cwiseAbs() * Jg.cwiseAbs()),
          tolerance<T>(terms));
    if (theta_g.size() > 0) {
      const Matrix<T> Jg_theta = jacobian_parameters_jvp<T>(g, xs[k], theta_g);
      const Matrix<T> Jfg_theta = jacobian_parameters_jvp<T>(fg, xs[k], theta_g);
      agree(o, what + " in θ_" + std::to_string(k), "∂(f∘g)/∂θ_g", Jfg_theta, "J_f·∂g/∂θ_g",
            Matrix<T>(Jf * Jg_theta), Matrix<T>(Jf.cwiseAbs() * Jg_theta.cwiseAbs()), tolerance<T>(terms));
    }
  }
  return o;
}

// J_L(J_{L−1}(⋯(J_2 J_1))) = (((J_L J_{L−1})⋯)J_2)J_1
template <class T>
Outcome accumulation_orders(const NetworkCase& c) {
  using namespace cases_detail;
  using namespace identities_detail;
  Outcome o;
  const Network<T> net = network_on<T>(c);
  if (net.depth() < 2) o.vacuous = true;
  const auto xs = net.activations(network_inputs<T>(c));
  std::vector<Matrix<T>> J;
  for (std::size_t k = 0; k < net.depth(); ++k) J.push_back(net.layer(k).jacobian_input(xs[k]));
  Matrix<T> forward = J.front(), reverse = J.back(), magnitude = J.front().cwiseAbs();
  for (std::size_t k = 1; k < J.size(); ++k) {
    forward = J[k] * forward;
    magnitude = J[k].cwiseAbs() * magnitude;
  }
  for (std::size_t k = J.size() - 1; k-- > 0;) reverse = reverse * J[k];
  agree(o, "forward vs reverse accumulation", "J_L(⋯(J_2 J_1))", forward, "((J_L J_{L−1})⋯)J_1", reverse, magnitude,
        tolerance<T>(widths(net)));
  return o;
}

template <class T>
Outcome closed_form(const LayerCase& c) {
  using namespace cases_detail;
  using namespace identities_detail;
  using std::exp;
  Outcome o;
  const LayerAtPoint<T> p = layer_case_at<T>(c);
  const Matrix<T> J = jacobian_by_jvp(p);
  const Index in = c.input_size, out = c.output_size, B = c.batch, nx = in * B;
  const Matrix<T> Jx = J.leftCols(nx), Jt = J.rightCols(J.cols() - nx);
  const std::string& type = c.spec.type;
  if (type == "dense") {
    // J_x = I_B ⊗ W;  per sample ∂y/∂vec(W) = xᵀ ⊗ I_out, ∂y/∂b = I_out: exact, a dual product adds zeros.
    // With tokens, every token of every sample is such a column.
    const Index tokens = c.spec.options.value("tokens", Index(1)), fi = in / tokens, fo = out / tokens;
    const Matrix<T> W = Eigen::Map<const Matrix<T>>(p.theta.data(), fo, fi);
    Matrix<T> ex = Matrix<T>::Zero(out * B, nx), et = Matrix<T>::Zero(out * B, fo * fi + fo);
    for (Index s = 0; s < B * tokens; ++s) {
      ex.block(s * fo, s * fi, fo, fi) = W;
      for (Index j = 0; j < fi; ++j)
        for (Index i = 0; i < fo; ++i) et(s * fo + i, j * fo + i) = p.X(s % tokens * fi + j, s / tokens);
      for (Index i = 0; i < fo; ++i) et(s * fo + i, fo * fi + i) = T(1);
    }
    agree(o, "dense J_x = I ⊗ W", "dual-number J_x", Jx, "I_B ⊗ W", ex, ex, T(0));
    agree(o, "dense J_θ = [xᵀ ⊗ I, I]", "dual-number J_θ", Jt, "[xᵀ ⊗ I, I]", et, et, T(0));
  } else if (type == "softmax" || type == "log_softmax") {
    // softmax: J = diag(s) − s sᵀ;  log_softmax: J = I − 1 sᵀ  (s = softmax(x), per sample)
    const Matrix<T> Y = p.forward(p.X, p.theta);
    Matrix<T> ex = Matrix<T>::Zero(nx, nx), mag = Matrix<T>::Zero(nx, nx);
    for (Index s = 0; s < B; ++s) {
      const Vector<T> sm = type == "softmax" ? Vector<T>(Y.col(s)) : Vector<T>(Y.col(s).unaryExpr([](const T& y) { return T(exp(y)); }));
      Matrix<T> block, size;
      if (type == "softmax") {
        block = Matrix<T>(sm.asDiagonal()) - sm * sm.transpose();
        size = Matrix<T>(sm.cwiseAbs().asDiagonal()) + sm.cwiseAbs() * sm.cwiseAbs().transpose();
      } else {
        block = Matrix<T>::Identity(in, in) - Vector<T>::Ones(in) * sm.transpose();
        size = Matrix<T>::Identity(in, in) + Vector<T>::Ones(in) * sm.cwiseAbs().transpose();
      }
      ex.block(s * in, s * in, in, in) = block;
      mag.block(s * in, s * in, in, in) = size;
    }
    agree(o, type + " closed form", "dual-number J", Jx, type == "softmax" ? "diag(s) − s sᵀ" : "I − 1 sᵀ", ex, mag,
          tolerance<T>(in + 4));
  } else if (type == "flatten" || type == "embedding") {
    // flatten: J_x = I, exactly; embedding: no gradient with respect to its indices, J_x = 0 exactly
    const Matrix<T> ex = type == "flatten" ? Matrix<T>(Matrix<T>::Identity(Jx.rows(), Jx.cols()))
                                           : Matrix<T>(Matrix<T>::Zero(Jx.rows(), Jx.cols()));
    agree(o, type == "flatten" ? "flatten J = I" : "embedding J_x = 0", "dual-number J_x", Jx,
          type == "flatten" ? "I" : "0", ex, ex, T(0));
  } else if (layer_type(type).shape == LayerShape::elementwise) {
    // elementwise: J_x diagonal, exactly (no other entry receives a tangent)
    Matrix<T> off = Jx;
    off.diagonal().setZero();
    Matrix<T> zero = Matrix<T>::Zero(off.rows(), off.cols());
    agree(o, type + " J is diagonal", "off-diagonal of the dual-number J", off, "0", zero, zero, T(0));
  } else {
    o.vacuous = true;  // no closed form known here
  }
  return o;
}

}  // namespace bpcheck::properties
