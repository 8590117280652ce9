// The Hessian-vector product of a network's loss (bpcheck/verify/hvp.hpp): forward over reverse.
#include "bpcheck/verify/hvp.hpp"

#include <algorithm>
#include <new>
#include <set>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
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

std::string shape_text(const ParameterBlock& b) {
  return b.is_vector ? fmt::format("[{}]", b.rows) : fmt::format("[{}, {}]", b.rows, b.cols);
}

ReadValue read_value(const nlohmann::json& j, const std::string& where) {
  ReadValue r;
  if (j.is_string()) {
    r.text = j.get<std::string>();
    std::string t = r.text;
    for (auto& c : t) c = char(std::tolower((unsigned char)c));
    if (!t.empty() && (t[0] == '+' || t[0] == '-')) t.erase(0, 1);
    if (t == "nan" || t == "inf" || t == "infinity") {
      r.finite = false;
      return r;
    }
  } else if (j.is_number()) {
    r.text = j.dump();
  } else {
    throw input_error(where + ": expected a number or a decimal string, got " + std::string(j.type_name()));
  }
  try {
    r.value = from_string<mp100>(r.text);
  } catch (const input_error&) {
    throw input_error(where + ": '" + text_excerpt(r.text) + "' is not a number");
  }
  using boost::multiprecision::isfinite;
  r.finite = isfinite(r.value);
  return r;
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

template <class T>
std::vector<ReadValue> read_blocks(const Network<T>& net, const nlohmann::json& doc, const std::string& where,
                                   const std::string& key) {
  const std::string layout = "{\"precision\", \"loss\", \"" + key + "\": [...]}";
  if (!doc.is_object()) throw input_error(where + ": expected a JSON object " + layout + ", got " + doc.type_name());
  for (const auto& [k, value] : doc.items())
    if (k != "precision" && k != "loss" && k != key)
      throw input_error(where + ": unknown key '" + text_excerpt(k) + "' (known: precision, loss, " + key + ")");
  if (!doc.contains(key) || !doc.at(key).is_array())
    throw input_error(where + ": no '" + key + "' list (one entry per parameter block, as in " + layout + ")");
  std::vector<Index> layer_offset(net.depth(), 0);
  for (std::size_t k = 1; k < net.depth(); ++k) layer_offset[k] = layer_offset[k - 1] + net.layer(k - 1).parameter_count();
  std::vector<ReadValue> out(std::size_t(net.parameter_count()));
  std::set<std::pair<std::size_t, std::string>> seen;
  const auto& entries = doc.at(key);
  for (std::size_t e = 0; e < entries.size(); ++e) {
    const auto& entry = entries[e];
    std::string at = fmt::format("{}: {}[{}]", where, key, e);
    if (!entry.is_object()) throw input_error(at + ": expected an object {\"layer\", \"name\", \"shape\", \"values\"}");
    for (const auto& [k, value] : entry.items())
      if (k != "layer" && k != "name" && k != "shape" && k != "values")
        throw input_error(at + ": unknown key '" + text_excerpt(k) + "' (known: layer, name, shape, values)");
    if (!entry.contains("layer") || !entry.at("layer").is_number_integer())
      throw input_error(at + ": 'layer' must be an integer layer index");
    if (!entry.contains("name") || !entry.at("name").is_string())
      throw input_error(at + ": 'name' must be the name of a parameter block");
    const long long k = entry.at("layer").get<long long>();
    const std::string name = entry.at("name").get<std::string>();
    if (k < 0 || std::size_t(k) >= net.depth())
      throw input_error(fmt::format("{}: layer {} does not exist (the model has {} layers)", at, k, net.depth()));
    const auto& layer = net.layer(std::size_t(k));
    const auto blocks = layer.parameter_blocks();
    const auto b = std::find_if(blocks.begin(), blocks.end(), [&](const ParameterBlock& p) { return p.name == name; });
    if (b == blocks.end())
      throw input_error(fmt::format("{}: layer {} ({}) has no block '{}'", at, k, layer.type_name(), text_excerpt(name)));
    if (!seen.insert({std::size_t(k), name}).second)
      throw input_error(fmt::format("{}: block '{}' of layer {} is given twice", at, text_excerpt(name), k));
    at += fmt::format(" (layer {} {}, {})", k, layer.type_name(), name);
    const std::vector<Index> want = b->is_vector ? std::vector<Index>{b->rows} : std::vector<Index>{b->rows, b->cols};
    const auto& shape = entry.contains("shape") ? entry.at("shape") : nlohmann::json();
    bool same = shape.is_array() && shape.size() == want.size();
    for (std::size_t i = 0; same && i < want.size(); ++i)
      same = shape[i].is_number_integer() && shape[i].get<long long>() == want[i];
    if (!same)
      throw input_error(at + ": shape " + json_excerpt(shape) + " does not match the model's " + shape_text(*b));
    if (!entry.contains("values")) throw input_error(at + ": no 'values'");
    const auto& values = entry.at("values");
    const auto expect_list = [&](const nlohmann::json& j, Index n, const std::string& w) {
      if (!j.is_array() || Index(j.size()) != n)
        throw input_error(fmt::format("{}: expected a list of {} entries, got {}", w, n,
                                      j.is_array() ? std::to_string(j.size()) : std::string(j.type_name())));
    };
    expect_list(values, b->rows, at + ": values");
    const std::size_t base = std::size_t(layer_offset[std::size_t(k)] + b->offset);
    for (Index r = 0; r < b->rows; ++r) {
      const std::string row_at = fmt::format("{}: values[{}]", at, r);
      if (b->is_vector) {
        out[base + std::size_t(r)] = read_value(values[std::size_t(r)], row_at);
        continue;
      }
      expect_list(values[std::size_t(r)], b->cols, row_at);
      for (Index c = 0; c < b->cols; ++c)  // column-major, as the layer holds a matrix block
        out[base + std::size_t(r + c * b->rows)] =
            read_value(values[std::size_t(r)][std::size_t(c)], fmt::format("{}[{}]", row_at, c));
    }
  }
  for (std::size_t k = 0; k < net.depth(); ++k)
    for (const auto& b : net.layer(k).parameter_blocks())
      if (!seen.count({k, b.name}))
        throw input_error(fmt::format("{}: no block '{}' of layer {} ({}, shape {})", where, b.name, k,
                                      net.layer(k).type_name(), shape_text(b)));
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
  const auto values = hvp_detail::read_blocks(net, doc, where, key);
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
  template std::vector<hvp_detail::ReadValue> hvp_detail::read_blocks<T>(const Network<T>&, const nlohmann::json&, \
                                                                         const std::string&, const std::string&);  \
  template Gradient<T> hessian_vector_product<T>(const Network<T>&, const Matrix<T>&, const Targets<T>&,         \
                                                 const Vector<T>&);                                              \
  template Vector<T> parameter_vector_from_json<T>(const Network<T>&, const nlohmann::json&, const std::string&, \
                                                   const std::string&);                                          \
  template nlohmann::ordered_json hvp_to_json<T>(const Network<T>&, const Gradient<T>&);
BPCHECK_INSTANTIATE_HVP(float)
BPCHECK_INSTANTIATE_HVP(double)
BPCHECK_INSTANTIATE_HVP(mp100)

}  // namespace bpcheck
