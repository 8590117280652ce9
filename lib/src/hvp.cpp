// The Hessian-vector product of a network's loss (bpcheck/verify/hvp.hpp): forward over reverse.
#include "bpcheck/verify/hvp.hpp"

#include <algorithm>
#include <new>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "compare_shared.hpp"
#include "hvp_impl.hpp"

namespace bpcheck {

namespace hvp_detail {

namespace {

[[noreturn]] void cannot_run(const std::string& who, const std::string& what, const std::exception& e) {
  // The same code runs on the real rung first only in gradient: here a failure is the layer's on dual<T>,
  // whether dual numbers or the batch caused it, and the message names the layer either way.
  throw input_error(who + ": its " + what + " on dual numbers failed, so there is no Hessian-vector product "
                    "(forward over reverse runs every layer's backward on dual<T>): " + e.what());
}

}  // namespace

template <class T>
Vector<dual<T>> dual_backprop(const Network<T>& net, const Matrix<T>& X, const Targets<T>& targets,
                              const Matrix<T>& D, const ActivationMove<T>& move, T* loss) {
  using Dl = dual<T>;
  const Index P = net.parameter_count();
  if (D.rows() != P)
    throw input_error(fmt::format("vector: {} entries, the model has {} parameters", D.rows(), P));
  if (D.cols() < 1 || D.cols() > dual_width) throw error("dual_backprop: 1 to 8 directions at once");
  if (X.cols() == 0) throw input_error("data: empty batch (0 samples)");
  if (X.rows() != net.input_size())
    throw input_error(fmt::format("data: model takes {} inputs per sample, got {}", net.input_size(), X.rows()));
  net.loss().check_targets(targets, net.output_size(), X.cols());
  const ActiveLanes active{int(D.cols())};
  Network<Dl> nd(net.spec());
  Vector<Dl> theta = vector_cast<Dl>(net.parameters());
  for (Index i = 0; i < P; ++i)
    for (Index l = 0; l < D.cols(); ++l) theta(i).d[std::size_t(l)] = D(i, l);
  nd.set_parameters(theta);
  const auto named = [&](std::size_t k) { return fmt::format("layer {} ({})", k, nd.layer(k).type_name()); };
  const std::size_t L = nd.depth();
  std::vector<Matrix<Dl>> xs;
  xs.reserve(L + 1);
  xs.push_back(matrix_cast<Dl>(X));
  if (move) move(0, xs.back());
  for (std::size_t k = 0; k < L; ++k) {
    try {
      xs.push_back(nd.layer(k).forward(xs[k]));
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      cannot_run(named(k), "forward", e);
    }
    if (move) move(k + 1, xs.back());
  }
  const Targets<Dl> td{matrix_cast<Dl>(targets.values), targets.classes};
  Matrix<Dl> delta;
  try {
    if (loss) *loss = nd.loss().value(xs.back(), td).v;
    delta = nd.loss().gradient(xs.back(), td);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    cannot_run("loss " + nd.loss().name(), "gradient", e);
  }
  Vector<Dl> out(P);
  Index at = P;
  for (std::size_t k = L; k-- > 0;) {
    const Index pk = nd.layer(k).parameter_count();
    at -= pk;
    Vector<Dl> dtheta = Vector<Dl>::Zero(pk);
    try {
      if (k > 0)
        delta = nd.layer(k).backward(xs[k], xs[k + 1], delta, dtheta);
      else if (pk > 0)
        nd.layer(0).backward_parameters(xs[0], xs[1], delta, dtheta);  // no dX: the inputs may be indices
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      cannot_run(named(k), "backward", e);
    }
    out.segment(at, pk) = dtheta;
  }
  return out;
}

}  // namespace hvp_detail

template <class T>
Gradient<T> hessian_vector_product(const Network<T>& net, const Matrix<T>& X, const Targets<T>& targets,
                                   const Vector<T>& v) {
  Gradient<T> out;
  const Vector<dual<T>> g = hvp_detail::dual_backprop(net, X, targets, Matrix<T>(v), {}, &out.loss);
  Index at = 0;
  for (std::size_t k = 0; k < net.depth(); ++k) {
    const Index n = net.layer(k).parameter_count();
    Vector<T> h(n);
    for (Index i = 0; i < n; ++i) h(i) = g(at + i).d[0];
    out.layers.push_back(std::move(h));
    at += n;
  }
  return out;
}

template <class T>
Vector<T> parameter_vector_from_json(const Network<T>& net, const nlohmann::json& doc, const std::string& where,
                                     const std::string& key) {
  if (!doc.is_object())
    throw input_error(where + ": expected a JSON object {\"precision\", \"loss\", \"" + key + "\": [...]}, got " +
                      doc.type_name());
  const auto values =
      compare_detail::read_parameter_blocks(net, doc, where, {key, "no '" + key + "' list", "no"});
  Vector<T> out(Index(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!values[i].finite)
      throw input_error(fmt::format("{}: entry {} of the parameters is '{}': the vector must be finite", where, i,
                                    text_excerpt(values[i].text)));
    out(Index(i)) = scalar_cast<T>(values[i].value);
    using std::isfinite;
    if (!isfinite(out(Index(i))))
      throw input_error(fmt::format("{}: entry {} ({}) is beyond the range of {}", where, i,
                                    text_excerpt(values[i].text), scalar_name<T>()));
  }
  return out;
}

template <class T>
nlohmann::ordered_json hvp_to_json(const Network<T>& net, const Gradient<T>& hv) {
  nlohmann::ordered_json j = gradient_to_json(net, hv);
  nlohmann::ordered_json blocks = std::move(j["gradients"]);
  j.erase("gradients");
  j["hvp"] = std::move(blocks);
  return j;
}

#define BPCHECK_INSTANTIATE_HVP(T)                                                                               \
  template Vector<dual<T>> hvp_detail::dual_backprop<T>(const Network<T>&, const Matrix<T>&, const Targets<T>&,  \
                                                        const Matrix<T>&, const hvp_detail::ActivationMove<T>&, T*); \
  template Gradient<T> hessian_vector_product<T>(const Network<T>&, const Matrix<T>&, const Targets<T>&,         \
                                                 const Vector<T>&);                                              \
  template Vector<T> parameter_vector_from_json<T>(const Network<T>&, const nlohmann::json&, const std::string&, \
                                                   const std::string&);                                          \
  template nlohmann::ordered_json hvp_to_json<T>(const Network<T>&, const Gradient<T>&);
BPCHECK_INSTANTIATE_HVP(float)
BPCHECK_INSTANTIATE_HVP(double)
BPCHECK_INSTANTIATE_HVP(mp100)

}  // namespace bpcheck
