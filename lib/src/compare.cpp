// compare_gradient: another program's gradient against the truth in quad or mp100 (bpcheck/verify/compare.hpp).
#include "bpcheck/verify/compare.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/parallel.hpp"
#include "bpcheck/random.hpp"
#include "bpcheck/verify/network_layer.hpp"
#include "quad.hpp"
#include "rounding_bound.hpp"
#include "compare_shared.hpp"
#include "verdict.hpp"

namespace bpcheck {

namespace {

constexpr double infinity = std::numeric_limits<double>::infinity();

double to_double(const mp100& x) { return x.convert_to<double>(); }

using Given = compare_detail::GivenValue;

/// Between mp100 and the rung R the truth is computed on (mp100 or quad): exact from R, rounded to R.
template <class R>
R to_rung(const mp100& x) {
  if constexpr (std::is_same_v<R, quad>)
    return to_quad(x);
  else
    return scalar_cast<R>(x);
}
template <class R>
mp100 to_mp(const R& x) {
  if constexpr (std::is_same_v<R, quad>)
    return from_quad(x);
  else
    return scalar_cast<mp100>(x);
}
template <class R>
Vector<mp100> to_mp(const Vector<R>& v) {
  return v.unaryExpr([](const R& x) { return to_mp(x); });
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower((unsigned char)c));
  return s;
}

/// A JSON number or decimal string; "nan", "inf", "-inf" (and "infinity") as strings are read as not
/// finite, since JSON has no such numbers and a gradient that holds them is a verdict, not bad input.
Given read_given(const nlohmann::json& j, const std::string& where) {
  Given g;
  if (j.is_string()) {
    g.text = j.get<std::string>();
    const std::string t = lower(g.text);
    if (t == "nan" || t == "+nan" || t == "-nan" || t == "inf" || t == "+inf" || t == "-inf" || t == "infinity" ||
        t == "+infinity" || t == "-infinity") {
      g.finite = false;
      return g;
    }
  } else if (j.is_number()) {
    g.text = j.dump();
  } else {
    throw input_error(where + ": expected a number or a decimal string (\"nan\", \"inf\" for values that are not "
                              "finite), got " +
                      std::string(j.type_name()));
  }
  try {
    g.value = from_string<mp100>(g.text);
  } catch (const input_error&) {
    throw input_error(where + ": '" + text_excerpt(g.text) + "' is not a number");
  }
  using boost::multiprecision::isfinite;
  g.finite = isfinite(g.value);
  return g;
}

std::string shape_text(const ParameterBlock& b) {
  return b.is_vector ? fmt::format("[{}]", b.rows) : fmt::format("[{}, {}]", b.rows, b.cols);
}

/// The given values of one block in θ's order (column-major for a matrix block, as the network holds it),
/// after checking the entry's shape against the block's.
std::vector<Given> read_block(const nlohmann::json& entry, const ParameterBlock& b, const std::string& at) {
  if (!entry.contains("shape")) throw input_error(at + ": no 'shape' (expected " + shape_text(b) + ")");
  const auto& shape = entry.at("shape");
  const std::vector<Index> want = b.is_vector ? std::vector<Index>{b.rows} : std::vector<Index>{b.rows, b.cols};
  bool same = shape.is_array() && shape.size() == want.size();
  for (std::size_t i = 0; same && i < want.size(); ++i)
    same = shape[i].is_number_integer() && shape[i].get<long long>() == want[i];
  if (!same)
    throw input_error(at + ": shape " + text_excerpt(shape.dump()) + " does not match the model's " + shape_text(b));
  if (!entry.contains("values")) throw input_error(at + ": no 'values'");
  const auto& values = entry.at("values");
  std::vector<Given> out(std::size_t(b.size()));
  const auto expect_list = [&](const nlohmann::json& j, Index n, const std::string& where) {
    if (!j.is_array() || Index(j.size()) != n)
      throw input_error(where + ": expected a list of " + std::to_string(n) + " " +
                        (where == at + ": values" && !b.is_vector ? "rows" : "numbers") + ", got " +
                        (j.is_array() ? std::to_string(j.size()) + " entries" : std::string(j.type_name())));
  };
  expect_list(values, b.rows, at + ": values");
  for (Index r = 0; r < b.rows; ++r) {
    const std::string row_at = fmt::format("{}: values[{}]", at, r);
    if (b.is_vector) {
      out[std::size_t(r)] = read_given(values[std::size_t(r)], row_at);
      continue;
    }
    const auto& row = values[std::size_t(r)];
    expect_list(row, b.cols, row_at);
    for (Index c = 0; c < b.cols; ++c)
      out[std::size_t(r + c * b.rows)] = read_given(row[std::size_t(c)], fmt::format("{}[{}]", row_at, c));
  }
  return out;
}

/// Every block of the network once, in θ's order, from the document's "gradients".
std::vector<Given> read_gradient(const Network<mp100>& net, const nlohmann::json& doc, const std::string& where) {
  if (!doc.is_object())
    throw input_error(where + ": a gradient is a JSON object {\"precision\", \"loss\", \"gradients\": [...]}, got " +
                      std::string(doc.type_name()));
  return compare_detail::read_parameter_blocks(
      net, doc, where, {"gradients", "a gradient needs a 'gradients' list", "no gradient for"});
}

}  // namespace

template <class T>
std::vector<compare_detail::GivenValue> compare_detail::read_parameter_blocks(const Network<T>& net,
                                                                              const nlohmann::json& doc,
                                                                              const std::string& where,
                                                                              const BlockListWords& words) {
  const std::string& list_key = words.key;
  for (const auto& [key, value] : doc.items())
    if (key != "precision" && key != "loss" && key != list_key)
      throw input_error(where + ": unknown key '" + text_excerpt(key) + "' (known: precision, loss, " + list_key + ")");
  if (!doc.contains(list_key) || !doc.at(list_key).is_array())
    throw input_error(where + ": " + words.needs_list + ", one entry per parameter block");
  std::vector<std::size_t> layer_offset(net.depth(), 0);
  for (std::size_t k = 1; k < net.depth(); ++k)
    layer_offset[k] = layer_offset[k - 1] + std::size_t(net.layer(k - 1).parameter_count());
  std::vector<Given> out(std::size_t(net.parameter_count()));
  std::set<std::pair<std::size_t, std::string>> seen;
  const auto& entries = doc.at(list_key);
  for (std::size_t e = 0; e < entries.size(); ++e) {
    const auto& entry = entries[e];
    std::string at = fmt::format("{}: {}[{}]", where, list_key, e);
    if (!entry.is_object())
      throw input_error(at + ": expected an object {\"layer\", \"name\", \"shape\", \"values\"}, got " +
                        std::string(entry.type_name()));
    for (const auto& [key, value] : entry.items())
      if (key != "layer" && key != "name" && key != "shape" && key != "values")
        throw input_error(at + ": unknown key '" + text_excerpt(key) + "' (known: layer, name, shape, values)");
    if (!entry.contains("layer") || !entry.at("layer").is_number_integer())
      throw input_error(at + ": 'layer' must be an integer layer index");
    if (!entry.contains("name") || !entry.at("name").is_string())
      throw input_error(at + ": 'name' must be the name of a parameter block");
    const long long k = entry.at("layer").get<long long>();
    const std::string name = entry.at("name").get<std::string>();
    if (k < 0 || std::size_t(k) >= net.depth())
      throw input_error(at + ": layer " + std::to_string(k) + " does not exist (the model has " +
                        std::to_string(net.depth()) + " layers)");
    const auto& layer = net.layer(std::size_t(k));
    const auto blocks = layer.parameter_blocks();
    const auto b = std::find_if(blocks.begin(), blocks.end(), [&](const ParameterBlock& p) { return p.name == name; });
    if (b == blocks.end()) {
      std::string list;
      for (const auto& p : blocks) list += (list.empty() ? "" : ", ") + p.name;
      throw input_error(at + ": layer " + std::to_string(k) + " (" + layer.type_name() + ") has no block '" +
                        text_excerpt(name) + "'" + (list.empty() ? " (it has no parameters)" : " (it has: " + list + ")"));
    }
    if (!seen.insert({std::size_t(k), name}).second)
      throw input_error(at + ": block '" + text_excerpt(name) + "' of layer " + std::to_string(k) + " is given twice");
    at += fmt::format(" (layer {} {}, {})", k, layer.type_name(), name);
    auto values = read_block(entry, *b, at);
    for (Index i = 0; i < b->size(); ++i)
      out[layer_offset[std::size_t(k)] + std::size_t(b->offset + i)] = std::move(values[std::size_t(i)]);
  }
  for (std::size_t k = 0; k < net.depth(); ++k)
    for (const auto& b : net.layer(k).parameter_blocks())
      if (!seen.count({k, b.name}))
        throw input_error(fmt::format("{}: {} block '{}' of layer {} ({}, shape {})", where, words.missing, b.name, k,
                                      net.layer(k).type_name(), shape_text(b)));
  return out;
}

template std::vector<compare_detail::GivenValue> compare_detail::read_parameter_blocks<float>(
    const Network<float>&, const nlohmann::json&, const std::string&, const BlockListWords&);
template std::vector<compare_detail::GivenValue> compare_detail::read_parameter_blocks<double>(
    const Network<double>&, const nlohmann::json&, const std::string&, const BlockListWords&);
template std::vector<compare_detail::GivenValue> compare_detail::read_parameter_blocks<mp100>(
    const Network<mp100>&, const nlohmann::json&, const std::string&, const BlockListWords&);

namespace {

template <class R>
std::pair<Network<R>, Batch<R>> network_on(const NetworkSubject& s) {
  Network<R> net(s.spec);
  parameters_from_json(net, *s.parameters, s.parameters_file);
  Batch<R> batch = batch_from_json(net, *s.data, s.data_file);
  return {std::move(net), std::move(batch)};
}

Vector<mp100> flat(const Gradient<mp100>& g) {
  Index n = 0;
  for (const auto& l : g.layers) n += l.size();
  Vector<mp100> out(n);
  Index at = 0;
  for (const auto& l : g.layers) out.segment(at, l.size()) = l, at += l.size();
  return out;
}

std::string short_text(const mp100& x, int digits) { return x.str(digits, std::ios_base::scientific); }

/// Backprop in mp100 for the cotangent 1 at the activations x_0 … x_L: the parameter gradient, and δ_k
/// (the gradient of the loss with respect to layer k's output) when `deltas` is given.
template <class R>
Vector<R> backprop_at(const Network<R>& net, const Targets<R>& targets, const std::vector<Matrix<R>>& xs,
                      std::vector<Matrix<R>>* deltas = nullptr) {
  Matrix<R> delta = net.loss().gradient(xs.back(), targets);
  const Index P = net.parameter_count();
  Vector<R> out(P);
  if (deltas) deltas->assign(net.depth(), Matrix<R>());
  Index at = P;
  for (std::size_t k = net.depth(); k-- > 0;) {
    const Index pk = net.layer(k).parameter_count();
    at -= pk;
    if (deltas) (*deltas)[k] = delta;
    Vector<R> dtheta = Vector<R>::Zero(pk);
    if (k > 0)
      delta = net.layer(k).backward(xs[k], xs[k + 1], delta, dtheta);
    else if (pk > 0)
      net.layer(0).backward_parameters(xs[0], xs[1], delta, dtheta);  // no dX: the inputs may be indices
    out.segment(at, pk) = dtheta;
  }
  return out;
}

/// What each parameter entry is summed from, in absolute values, where the signs of δ cancel: layer k's
/// parameter backward with |δ_k| (and |x_k| for layers whose parameter gradient is a product of δ and
/// the input: dense, convolutions, embedding). A bias before a training-mode batch norm has the exact
/// gradient Σ_s δ_s = 0 while Σ_s |δ_s| is the size of the terms another program's sum leaves a residue of.
/// δ_k may itself be nearly 0, formed from terms that cancel (below a training-mode batch norm on 2
/// samples, whose backward leaves eps/(2 var) of its terms). Another program's rounding of those terms
/// is then far above |δ_k| and reaches every layer below. Two measures of it join |δ_k|:
/// - with the absolute sweep (`full`), the terms each backward sums: where layer j's |J_x|ᵀ|δ_j| exceeds
///   √n |δ_{j−1}| (n: `rounds`, the roundings along the network), those terms are what δ_{j−1}'s rounding
///   is relative to; carried down through the absolute Jacobians below and into each layer's |J_θ|ᵀ;
/// - where bpcheck's own δ_k in T (`deltas_T`, when T's backprop ran) lost more than √n u_T of itself,
///   twice its error over u_T (one draw of a rounding error measures its spread roughly). bpcheck's own
///   form may not cancel where another program's does (its batch norm on 2 samples does not): hence the
///   first.
/// A magnitude needs no digits: in double, from the exact activations and δs.
template <class T, class R>
Vector<mp100> cancelled_magnitudes(const Network<double>& net, const std::vector<Matrix<R>>& xs_exact,
                                   const std::vector<Matrix<R>>& deltas, const std::vector<Matrix<T>>* deltas_T,
                                   const mp100& u_T, Index rounds, bool full, Vector<mp100>& backward_rounding) {
  const std::size_t L = net.depth();
  const double root_n = std::sqrt(double(rounds));
  const auto abs_vec = [](const Matrix<double>& M) {
    return Vector<double>(Eigen::Map<const Vector<double>>(M.data(), M.size()).cwiseAbs());
  };
  // The rounding of the terms a backward cancels, carried to the parameter blocks below by the exact
  // backward (signed: absolute Jacobians compound over depth), in `draws` draws of its signs; per
  // parameter the largest. Only with `full` (the absolute Jacobians on the batch).
  Vector<double> carried = Vector<double>::Zero(net.parameter_count());
  if (full && L > 1) {
    std::vector<Matrix<double>> xs(L + 1);
    for (std::size_t k = 0; k <= L; ++k) xs[k] = matrix_cast<double>(xs_exact[k]);
    // injected[k]: the terms of layer k's dX where they exceed √n |dX| (0 elsewhere)
    std::vector<Vector<double>> injected(L);
    bool any = false;
    for (std::size_t k = L - 1; k > 0; --k) {
      const Index m = deltas[k - 1].size();
      const Vector<double> terms =
          net.layer(k).absolute_jacobian(xs[k]).leftCols(m).transpose() * abs_vec(matrix_cast<double>(deltas[k]));
      const Vector<double> below = abs_vec(matrix_cast<double>(deltas[k - 1]));
      injected[k] = Vector<double>::Zero(m);
      for (Index i = 0; i < m; ++i)
        if (terms(i) > root_n * below(i)) injected[k](i) = 2 * terms(i), any = true;
    }
    constexpr int draws = 16;
    Random rng(0x5eed ^ std::uint64_t(rounds));
    for (int d = 0; d < draws && any; ++d) {
      Matrix<double> e = Matrix<double>::Zero(deltas[L - 1].rows(), deltas[L - 1].cols());
      Index at = net.parameter_count();
      for (std::size_t k = L; k-- > 0;) {
        const Index pk = net.layer(k).parameter_count();
        at -= pk;
        Vector<double> dtheta = Vector<double>::Zero(pk);
        if (k > 0) {
          Matrix<double> below = net.layer(k).backward(xs[k], xs[k + 1], e, dtheta);
          for (Index i = 0; i < below.size(); ++i)
            if (injected[k](i) != 0) below(i) += (rng.symmetric() < 0 ? -1 : 1) * injected[k](i);
          e = std::move(below);
        } else if (pk > 0) {
          net.layer(0).backward_parameters(xs[0], xs[1], e, dtheta);
        }
        carried.segment(at, pk) = carried.segment(at, pk).cwiseMax(dtheta.cwiseAbs());
      }
    }
  }
  backward_rounding = u_T * matrix_cast<mp100>(Matrix<double>(carried));
  Vector<mp100> out(net.parameter_count());
  Index at = 0;
  for (std::size_t k = 0; k < L; ++k) {
    const auto& layer = net.layer(k);
    const Index pk = layer.parameter_count();
    if (pk == 0) continue;
    const std::string type = layer.type_name();
    const bool bilinear = type == "dense" || type == "conv1d" || type == "conv2d" || type == "embedding";
    const Matrix<double> xk = matrix_cast<double>(xs_exact[k]);
    const Matrix<double> x = bilinear ? Matrix<double>(xk.cwiseAbs()) : xk;
    Vector<double> dtheta = Vector<double>::Zero(pk);
    Matrix<double> delta = matrix_cast<double>(deltas[k]).cwiseAbs();
    if (deltas_T) {
      const Matrix<double> lost =
          matrix_cast<double>(Matrix<R>((matrix_cast<R>((*deltas_T)[k]) - deltas[k]).cwiseAbs()));
      const double u = to_double(u_T);
      const double cancels = root_n * u;
      for (Index i = 0; i < delta.size(); ++i)
        if (lost(i) > cancels * delta(i)) delta(i) += 2 * lost(i) / u;
    }
    layer.backward_parameters(x, matrix_cast<double>(xs_exact[k + 1]), delta, dtheta);
    out.segment(at, pk) = matrix_cast<mp100>(Matrix<double>(dtheta.cwiseAbs()));
    at += pk;
  }
  return out;
}

/// The bound of one entry and its formula, built in one place:
///   λ √n u_T A + K cond + M e_b + floor.
struct EntryBound {
  mp100 rounding;  ///< λ √n u_T
  mp100 K, M, floor;
  mp100 operator()(const mp100& A, const mp100& cond, const mp100& measured) const {
    return rounding * A + K * cond + M * measured + floor;
  }
  static std::string formula() { return "λ √n u A + K cond + M e + floor"; }
};

/// The evidence on one entry beyond which the verdict is decided.
struct EntryEvidence {
  bool finite = true;
  mp100 error, bound, magnitude;  ///< |g_T − g|, its bound in T, A
};

/// A block's evidence for the verdict rule (verdict.hpp's judge(), verify's one rule, for another
/// program's result): the largest error/bound over its entries, whether a value is not finite, and
/// whether an entry beyond its bound is gross by verify's predicate (a tenth of the block's largest
/// exact value and above √u_T A). Then the verdict, and for a double block beyond its bound whether
/// float's bound (the same bound with u_float and float's floor) holds it.
void decide_block(BlockComparison& bc, const std::vector<EntryEvidence>& entries, const mp100& max_exact,
                  bool exact_zero, const std::string& precision, const mp100& u_T, const mp100& floor_T,
                  const mp100& floor_float, const verify_detail::Tolerances& t) {
  using boost::multiprecision::sqrt;
  const mp100 to_float = scalar_cast<mp100>(unit_roundoff<float>()) / u_T;
  const mp100 sqrt_u = sqrt(u_T);
  verify_detail::Evidence ev;
  ev.what = fmt::format("layer {} {} {}", bc.layer, bc.layer_type, bc.name);
  ev.precision = precision;
  ev.external = true;
  ev.digits = bc.digits;
  ev.rung_digits = -std::log10(to_double(u_T));
  double float_ratio = 0;
  for (const auto& e : entries) {
    if (!e.finite) {
      ev.value_finite = false;
      continue;
    }
    if (e.error == 0) continue;
    const double r = to_double(e.error / e.bound);
    ev.ratio = std::max(ev.ratio, r);
    float_ratio = std::max(float_ratio, to_double(e.error / ((e.bound - floor_T) * to_float + floor_float)));
    if (!ev.gross && r > 1) {
      const mp100 floor = sqrt_u * e.magnitude;
      ev.gross = verify_detail::gross_error(e.error, max_exact, &floor, t.gross_fraction);
    }
  }
  if (!ev.value_finite) ev.ratio = infinity;
  const verify_detail::Judgement j = verify_detail::judge(ev, t);
  bc.ratio = ev.ratio;
  bc.float_ratio = precision == "double" ? (ev.value_finite ? float_ratio : infinity) : bc.ratio;
  bc.exact_zero = exact_zero;
  compare_detail::set_block_verdict(bc, j, precision, "a wrong formula", true);
}

/// cond: the largest change of the gradient over the moves T's rounding makes, computed on rung R (mp100
/// for a double gradient; double for a float one: float's moves of 6e-8 are far above double's
/// rounding). Three moves: backprop at bpcheck's own forward activations in T (xs_T, when given; the
/// exact backward then takes the branches T's rounding took, a near-tie in a max pool), and two draws
/// of the parameters and inputs (unless they are indices) moved by a relative ±u_T and every activation
/// by ±u_T F_k (F_k its forward sweep in absolute values, or its own size beyond the sweep limit). Each
/// against backprop at the unmoved point: `base` when given (read after `beside` ran), else computed.
/// The moves run on `jobs` threads with `beside` as one more item.
template <class R>
Vector<mp100> rounding_changes(const Network<R>& net, const Batch<R>& batch, bool full_sweep,
                               const std::vector<Matrix<R>>* xs_T, const mp100& u, std::uint64_t seed, int jobs,
                               const Vector<R>* base, const std::function<void()>& beside) {
  using std::abs;
  const R r = to_rung<R>(u);
  const Index P = net.parameter_count();
  const auto abs_vec = [](const Matrix<R>& M) {
    return Vector<R>(Eigen::Map<const Vector<R>>(M.data(), M.size()).unaryExpr([](const R& v) { return R(abs(v)); }));
  };
  // local[k]: what layer k's output rounds relative to, the terms it sums from its own input and
  // parameters (A_x,k |x_{k−1}| + A_θ,k |θ_k| + |x_k|, A_k its absolute Jacobian); beyond the sweep
  // limit |x_k|. The moved forward then carries each layer's rounding on through the layers above.
  std::vector<Vector<R>> local;
  if (full_sweep) {
    const auto xs = net.activations(batch.inputs);
    local.resize(xs.size());
    for (std::size_t k = 0; k < net.depth(); ++k) {
      const Matrix<R> A = net.layer(k).absolute_jacobian(xs[k]);
      const Index pk = net.layer(k).parameter_count();
      local[k + 1] = A.leftCols(A.cols() - pk) * abs_vec(xs[k]) + A.rightCols(pk) * abs_vec(net.layer(k).parameters()) +
                     abs_vec(xs[k + 1]);
      // An attention's absolute Jacobian multiplies its stages' terms (the softmax's 1 + 4 max|A| times
      // the scores' own): thousands of times the output where its rounding is tens. There the output
      // rounds relative to its size plus 8 times bpcheck's own rounding of the layer in T, over u_T
      // (at T's input, against the same layer on R: one draw of that rounding), when that is smaller.
      const std::string type = net.layer(k).type_name();
      if (xs_T && (type == "multi_head_attention" || type == "transformer_encoder_layer")) {
        const Matrix<R> own = net.layer(k).forward((*xs_T)[k]) - (*xs_T)[k + 1];
        const Vector<R> measured = abs_vec(xs[k + 1]) + abs_vec(own) * R(8) / r;
        local[k + 1] = local[k + 1].cwiseMin(measured);
      }
    }
  }
  const bool index_input = net.depth() > 0 && net.layer(0).input_is_index();
  std::vector<Vector<R>> grads(4);  // the unmoved point, T's activations, two draws
  parallel_for(5, jobs, [&](std::size_t job) {
    if (job == 0) {
      if (!base) grads[0] = backprop_at(net, batch.targets, net.activations(batch.inputs));
    } else if (job == 1) {
      if (xs_T) grads[1] = backprop_at(net, batch.targets, *xs_T);
    } else if (job < 4) {
      Random rng((seed ^ 0x9e3779b97f4a7c15ULL) + job);
      const auto sign = [&rng] { return rng.symmetric() < 0 ? -1 : 1; };
      Network<R> moved = net;
      Vector<R> theta = net.parameters();
      for (Index i = 0; i < P; ++i) theta(i) *= R(1) + R(sign()) * r;
      moved.set_parameters(theta);
      Matrix<R> X = batch.inputs;
      if (!index_input)
        for (Index i = 0; i < X.size(); ++i) X(i) *= R(1) + R(sign()) * r;
      std::vector<Matrix<R>> xs{X};
      for (std::size_t k = 0; k < moved.depth(); ++k) {
        Matrix<R> y = moved.layer(k).forward(xs.back());
        for (Index i = 0; i < y.size(); ++i) y(i) += R(sign()) * r * (full_sweep ? local[k + 1](i) : R(abs(y(i))));
        xs.push_back(std::move(y));
      }
      grads[job] = backprop_at(moved, batch.targets, xs);
    } else {
      beside();
    }
  });
  const Vector<R>& at = base ? *base : grads[0];
  Vector<mp100> cond = Vector<mp100>::Zero(P);
  for (std::size_t j = 1; j < grads.size(); ++j)
    if (grads[j].size() == P) cond = cond.cwiseMax(to_mp(Vector<R>((grads[j] - at).cwiseAbs())));
  return cond;
}

/// n for each layer's blocks: how many roundings backprop makes on its way from the loss to them,
/// as the lengths of the sums it forms. The loss's gradient counts the network's output width. A layer
/// above the block adds the longest sum in one entry of its dX = J_xᵀ δ: 1 for an elementwise layer
/// (a product), its units for dense (Wᵀδ), its width for layer norm, softmax and the other layers that
/// keep the width, and for any other layer its input and output widths (an upper bound for its
/// stages), the batch's samples times its width more when it couples samples (batch norm in training
/// mode sums over the batch). The block's own layer adds its sum over the samples: the samples times the
/// tokens for dense, layer norm and embedding, and otherwise the samples plus its input and output
/// widths (a convolution's positions, an attention's internal sums). Layer k's input width is not
/// counted for layer k's blocks: its rounding is the forward pass's, which cond measures.
template <class R>
std::vector<Index> rounding_lengths(const Network<R>& net, const ModelSpec& spec, Index samples) {
  const std::size_t L = net.depth();
  const auto option = [&](std::size_t k, const char* key, Index fallback) {
    const auto& o = spec.layers[k].options;
    return o.contains(key) && o.at(key).is_number_integer() ? Index(o.at(key).template get<long long>()) : fallback;
  };
  const auto backward_sum = [&](std::size_t k) -> Index {
    const auto& l = net.layer(k);
    const std::string type = l.type_name();
    Index n = 0;
    if (type == "dense")
      n = option(k, "units", l.output_size());
    else if (type == "layer_norm" || layer_type(type).shape == LayerShape::same_width)
      n = l.output_size();
    else if (layer_type(type).shape == LayerShape::elementwise)
      n = 1;
    else
      n = l.input_size() + l.output_size();
    return l.sample_independent() ? n : n + samples * l.output_size();
  };
  std::vector<Index> n_from(L + 1, net.output_size());
  Index above = net.output_size();  // the loss's gradient, then each layer's backward
  for (std::size_t k = L; k-- > 0;) {
    const auto& l = net.layer(k);
    const std::string type = l.type_name();
    Index own = samples + l.input_size() + l.output_size();
    if (type == "dense" || type == "layer_norm" || type == "embedding")
      own = samples * (type == "embedding" ? l.input_size() : option(k, "tokens", 1));
    if (!l.sample_independent()) own += samples * l.output_size();
    if (l.parameter_count() == 0) own = 0;  // no blocks of its own
    n_from[k] = above + own;
    above += backward_sum(k);
  }
  return n_from;
}

/// Whether quad resolves T's rounding: the truth on quad errs by the bound's own terms with quad's
/// unit roundoff for u_T (the same sums, rounded by quad), and that is 2^-104 at worst (its matrix products
/// run in double-double, quad.hpp): 2^-40 of T's bound or less, which a verdict cannot tell from mp100's
/// truth, for a rung of at most 64 bits (float: 2^-80, double: 2^-51), not for mp100.
template <class T>
constexpr bool quad_resolves() {
  constexpr int truth_bits = 104;
  return std::numeric_limits<T>::digits + 40 <= truth_bits;
}

/// What truth_parts needs of bpcheck's own pass in T.
template <class T>
struct TruthInputs {
  const Network<T>* net_T;
  const std::vector<Matrix<T>>* deltas_T;
  mp100 u_T;
  Index n;
  bool full_sweep, have_g_T;
};

/// The truth (the gradient and loss at the given numbers) and the bound's terms measured against it:
/// cond (rounding_changes), the magnitudes of terms that cancel and the rounding such a backward carries.
struct TruthParts {
  std::string rung;
  Vector<mp100> g, cond, cancelled;
  mp100 loss;
  mp100 zero_tolerance;  ///< below it (relative to the terms) an exact block counts as 0
  bool finite = true;
};

/// truth_parts on rung R: mp100, or quad (a double gradient's truth and its three rounding moves in a
/// third to half of mp100's time). The parameters and inputs are rounded to R once: a move of u_R.
template <class T, class R>
TruthParts truth_parts(const NetworkSubject& subject, const Network<mp100>& net_mp, const Batch<mp100>& batch_mp,
                       const std::optional<std::vector<Matrix<T>>>& xs_T, const TruthInputs<T>& in,
                       const CompareOptions& o) {
  using boost::multiprecision::isfinite;
  std::optional<Network<R>> own_net;
  std::optional<Batch<R>> own_batch;
  if constexpr (!std::is_same_v<R, mp100>) {
    own_net.emplace(net_mp.spec());
    own_net->set_parameters(net_mp.parameters().unaryExpr([](const mp100& x) { return to_rung<R>(x); }));
    own_batch.emplace();
    own_batch->inputs = batch_mp.inputs.unaryExpr([](const mp100& x) { return to_rung<R>(x); });
    own_batch->targets.values = batch_mp.targets.values.unaryExpr([](const mp100& x) { return to_rung<R>(x); });
    own_batch->targets.classes = batch_mp.targets.classes;
  }
  const Network<R>& net = [&]() -> const Network<R>& {
    if constexpr (std::is_same_v<R, mp100>) return net_mp; else return *own_net;
  }();
  const Batch<R>& batch = [&]() -> const Batch<R>& {
    if constexpr (std::is_same_v<R, mp100>) return batch_mp; else return *own_batch;
  }();
  // The truth, with every layer's δ (one forward and one backward on R), beside cond's moves.
  std::vector<Matrix<R>> xs, deltas;
  Vector<R> g;
  const auto exact = [&] {
    xs = net.activations(batch.inputs);
    g = backprop_at(net, batch.targets, xs, &deltas);
  };
  TruthParts t;
  t.rung = scalar_name<R>();
  Vector<mp100> backward_rounding;
  const std::vector<Matrix<T>>* deltas_T = in.have_g_T ? in.deltas_T : nullptr;
  if constexpr (std::is_same_v<T, double>) {
    std::vector<Matrix<R>> xs_R;
    if (xs_T)
      for (const auto& x : *xs_T) xs_R.push_back(matrix_cast<R>(x));
    t.cond = rounding_changes<R>(net, batch, in.full_sweep, xs_T ? &xs_R : nullptr, in.u_T, o.seed, o.jobs, &g, exact);
    t.cancelled = cancelled_magnitudes<T, R>(*in.net_T, xs, deltas, deltas_T, in.u_T, in.n, in.full_sweep,
                                             backward_rounding);
  } else {
    exact();
    auto [net_d, batch_d] = network_on<double>(subject);
    std::vector<Matrix<double>> xs_d;
    if (xs_T)
      for (const auto& x : *xs_T) xs_d.push_back(matrix_cast<double>(x));
    t.cond = rounding_changes<double>(net_d, batch_d, in.full_sweep, xs_T ? &xs_d : nullptr, in.u_T, o.seed, o.jobs,
                                      nullptr, [] {});
    t.cancelled = cancelled_magnitudes<T, R>(net_d, xs, deltas, deltas_T, in.u_T, in.n, in.full_sweep, backward_rounding);
  }
  // the rounding of a backward that cancels, carried below: one more move of the gradient (K on cond)
  if (backward_rounding.size() == t.cond.size()) t.cond = t.cond.cwiseMax(backward_rounding);
  t.g = to_mp(g);
  t.loss = to_mp(net.loss().value(xs.back(), batch.targets));
  t.finite = isfinite(t.loss) && std::all_of(t.g.begin(), t.g.end(), [](const mp100& x) { return isfinite(x); });
  // mp100's tolerance (1e-40), or for quad 2^-80 ≈ 8e-25: 2^-33 of u_double, 2^33 of u_quad (room
  // for the sums' growth).
  t.zero_tolerance = std::is_same_v<R, mp100> ? mp100_tolerance() : mp100(boost::multiprecision::ldexp(mp100(1), -80));
  return t;
}

template <class T>
GradientComparison compare_on(const NetworkSubject& subject, const std::vector<Given>& given,
                              const std::optional<std::string>& given_loss, const CompareOptions& o) {
  using std::abs;
  using boost::multiprecision::sqrt;
  const std::string prec = scalar_name<T>();
  const verify_detail::Tolerances tol = verify_detail::Tolerances::from(o);
  const CompareThresholds& th = tol.compare;
  auto [net, batch] = network_on<mp100>(subject);
  const Matrix<mp100>& X = batch.inputs;
  const Index P = net.parameter_count(), nx = X.size();
  const mp100 u_T = scalar_cast<mp100>(unit_roundoff<T>());

  // bpcheck's own forward and backprop in T, at the same numbers: T's activations for cond, and e, how
  // far a correct implementation's rounding goes.
  std::optional<std::vector<Matrix<T>>> xs_T;
  std::optional<Vector<T>> g_T;
  std::vector<Matrix<T>> deltas_T;
  auto [net_T, batch_T] = network_on<T>(subject);  // input_error: the numbers do not fit T
  try {
    xs_T = net_T.activations(batch_T.inputs);
    for (const auto& x : *xs_T) {
      using std::isfinite;
      if (!std::all_of(x.data(), x.data() + x.size(), [](const T& v) { return isfinite(v); })) xs_T.reset();
      if (!xs_T) break;
    }
    if (xs_T) {
      g_T = backprop_at(net_T, batch_T.targets, *xs_T, &deltas_T);
      for (const auto& d : deltas_T) {
        using std::isfinite;
        if (!std::all_of(d.data(), d.data() + d.size(), [](const T& v) { return isfinite(v); })) g_T.reset();
      }
    }
  } catch (const std::exception&) {
    // T's forward or backprop throws: the bound stands on its other terms
  }
  // The forward sweep in absolute values (what each activation's rounding is relative to) forms every
  // layer's absolute Jacobian on the batch: O(Jacobian) work and memory. Beyond sweep_limit each
  // activation rounds relative to its own size.
  Index jacobian_entries = 0;
  for (std::size_t k = 0; k < net.depth(); ++k) {
    const Index rows = net.layer(k).output_size() * X.cols();
    const Index cols = net.layer(k).input_size() * X.cols() + net.layer(k).parameter_count();
    jacobian_entries += rows * cols;
  }
  const bool full_sweep = jacobian_entries <= o.sweep_limit;
  // n: the roundings on backprop's way from the loss down to a block (rounding_lengths): the loss's
  // gradient, each layer above the block's own, and the block's own sum over the samples.
  const std::vector<Index> n_from = rounding_lengths(net, subject.spec, X.cols());
  const Index n = *std::max_element(n_from.begin(), n_from.end());  // the first layer's, as a rule

  // The truth and cond's moves on quad where its rounding is far below T's (truth_parts), else in mp100.
  const TruthInputs<T> in{&net_T, &deltas_T, u_T, n, full_sweep, bool(g_T)};
  std::optional<TruthParts> truth;
  if constexpr (quad_resolves<T>()) {
    if (!o.mp100_truth) {
      truth = truth_parts<T, quad>(subject, net, batch, xs_T, in, o);
      if (!truth->finite) truth.reset();  // beyond quad's range: mp100's is wider still
    }
  }
  if (!truth) truth = truth_parts<T, mp100>(subject, net, batch, xs_T, in, o);
  const Vector<mp100>& g = truth->g;
  const Vector<mp100>& cond = truth->cond;
  const Vector<mp100>& cancelled = truth->cancelled;
  const mp100& exact_loss = truth->loss;
  const mp100 zero_tolerance = truth->zero_tolerance;
  Vector<mp100> own_error = Vector<mp100>::Zero(P);
  if (g_T) {
    bool finite = true;
    for (Index i = 0; i < P; ++i) {
      using std::isfinite;
      finite = finite && isfinite((*g_T)(i));
      own_error(i) = abs(scalar_cast<mp100>((*g_T)(i)) - g(i));
    }
    if (!finite) own_error.setZero();
  }

  const mp100 floor_T = underflow_floor<T>(mp100(nx + P + 1), mp100(2));
  const mp100 floor_float = underflow_floor<float>(mp100(nx + P + 1), mp100(2));
  const EntryBound bound_of{mp100(th.lambda) * sqrt(mp100(n)) * u_T, mp100(th.cond_factor),
                            mp100(th.measured_factor), floor_T};

  GradientComparison c;
  c.subject = fmt::format("network ({} layers, {})", subject.spec.layers.size(), net.loss().name());
  c.precision = prec;
  c.samples = X.cols();
  c.exact_loss = short_text(exact_loss, 20);
  c.given_loss = given_loss;
  c.unit_roundoff = to_double(u_T);
  c.thresholds = th;
  c.rounding_terms = n;
  c.bound_formula = EntryBound::formula();
  c.absolute_sweep = full_sweep;
  c.allow_less_accurate = o.allow_less_accurate;
  c.truth = truth->rung;
  const double max_digits = scalar_traits<T>::print_digits;
  Index offset = 0;
  for (std::size_t k = 0; k < net.depth(); ++k) {
    for (const auto& b : net.layer(k).parameter_blocks()) {
      BlockComparison bc;
      bc.layer = k;
      bc.layer_type = net.layer(k).type_name();
      bc.name = b.name;
      bc.shape = b.is_vector ? std::vector<Index>{b.rows} : std::vector<Index>{b.rows, b.cols};
      EntryBound bound_k = bound_of;
      bound_k.rounding = mp100(th.lambda) * sqrt(mp100(n_from[k])) * u_T;
      mp100 max_exact(0), max_err(0), block_magnitude(0), measured(0);
      bool all_finite = true;
      for (Index i = 0; i < b.size(); ++i) {
        const Index at = offset + b.offset + i;
        max_exact = std::max(max_exact, mp100(abs(g(at))));
        block_magnitude = std::max({block_magnitude, mp100(abs(g(at))), cancelled(at)});
        measured = std::max(measured, own_error(at));
      }
      std::vector<ComparedEntry> entries;
      std::vector<EntryEvidence> evidence;
      for (Index i = 0; i < b.size(); ++i) {
        const Index at = offset + b.offset + i;
        const Given& v = given[std::size_t(at)];
        // What the entry rounds relative to, normwise: the block's largest exact value or sum of the
        // terms that cancel. Per entry it would hold small entries to the rounding of their own terms,
        // but δ_k is itself formed from terms that cancel (softmax − one-hot, a norm's backward), whose
        // rounding reaches every entry.
        const mp100& magnitude = block_magnitude;
        EntryEvidence ev;
        ev.bound = bound_k(magnitude, cond(at), measured);
        ev.magnitude = magnitude;
        ComparedEntry e;
        e.row = b.is_vector ? i : i % b.rows;
        e.col = b.is_vector ? 0 : i / b.rows;
        e.where = b.is_vector ? fmt::format("{}[{}]", b.name, e.row) : fmt::format("{}[{},{}]", b.name, e.row, e.col);
        e.exact = short_text(g(at), max_digits + 3);
        e.given = v.text;
        e.bound = to_double(ev.bound);
        if (!v.finite) {
          all_finite = false;
          ev.finite = false;
          e.abs_error = e.ratio = infinity;
        } else {
          ev.error = abs(v.value - g(at));
          max_err = std::max(max_err, ev.error);
          e.abs_error = to_double(ev.error);
          e.ratio = ev.error == 0 ? 0.0 : to_double(ev.error / ev.bound);
        }
        entries.push_back(std::move(e));
        evidence.push_back(std::move(ev));
      }
      std::stable_sort(entries.begin(), entries.end(),
                       [](const ComparedEntry& x, const ComparedEntry& y) { return x.ratio > y.ratio; });
      bc.max_abs_error = all_finite ? to_double(max_err) : infinity;
      bc.max_exact = to_double(max_exact);
      if (!all_finite)
        bc.digits = 0;
      else if (max_err == 0)
        bc.digits = max_digits;
      else if (max_exact <= zero_tolerance * block_magnitude)
        bc.digits = 0;  // an exact 0: no digits to keep
      else
        bc.digits = std::clamp(-std::log10(to_double(max_err / max_exact)), 0.0, max_digits);
      // An exact 0 from terms that cancel comes out of mp100 as ~1e-101 of their size, of quad as ~1e-33.
      const bool exact_zero = max_exact <= zero_tolerance * block_magnitude;
      decide_block(bc, evidence, max_exact, exact_zero, prec, u_T, floor_T, floor_float, tol);
      entries.resize(std::min<std::size_t>(entries.size(), 5));
      bc.worst = std::move(entries);
      c.blocks.push_back(std::move(bc));
    }
    offset += net.layer(k).parameter_count();
  }
  return c;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if ((unsigned char)ch < 0x20 && ch != '\n' && ch != '\t') out += ' ';
        else out += ch;
    }
  }
  return out;
}

/// A finite double for JSON, null otherwise (JSON has no Inf).
nlohmann::ordered_json number_or_null(double x) {
  return std::isfinite(x) ? nlohmann::ordered_json(x) : nlohmann::ordered_json(nullptr);
}

std::string block_label(const BlockComparison& b) { return fmt::format("layer {} {} {}", b.layer, b.layer_type, b.name); }

std::string verdict_words(CompareVerdict v, const std::string& precision) {
  switch (v) {
    case CompareVerdict::pass: return "pass";
    case CompareVerdict::wrong: return "WRONG";
    case CompareVerdict::less_accurate: return "less accurate than " + precision + " allows";
  }
  return "?";
}

std::string shape_string(const std::vector<Index>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string entry_sentence(const BlockComparison& b, const ComparedEntry& e) {
  return fmt::format("layer {} ({}) {}: given {}, exact {}, |error| {:.3g}, bound {:.3g}", b.layer, b.layer_type,
                     e.where, e.given, e.exact, e.abs_error, e.bound);
}

}  // namespace

std::string compare_verdict_name(CompareVerdict v) {
  switch (v) {
    case CompareVerdict::pass: return "pass";
    case CompareVerdict::wrong: return "wrong";
    case CompareVerdict::less_accurate: return "less_accurate";
  }
  return "?";
}

bool GradientComparison::passed() const {
  const CompareVerdict v = verdict();
  return v == CompareVerdict::pass || (v == CompareVerdict::less_accurate && allow_less_accurate);
}

CompareVerdict GradientComparison::verdict() const {
  CompareVerdict v = CompareVerdict::pass;
  for (const auto& b : blocks) {
    if (b.verdict == CompareVerdict::wrong) return CompareVerdict::wrong;
    if (b.verdict == CompareVerdict::less_accurate) v = CompareVerdict::less_accurate;
  }
  return v;
}

const BlockComparison* GradientComparison::worst_block() const {
  const BlockComparison* worst = nullptr;
  for (const auto& b : blocks)
    if (!b.worst.empty() && (!worst || b.ratio > worst->ratio)) worst = &b;
  return worst;
}

GradientComparison compare_gradient(const NetworkSubject& subject, const nlohmann::json& gradient,
                                    const std::string& precision, const CompareOptions& options) {
  const std::string where = options.gradient_file;
  if (!subject.parameters) throw input_error("compare: the parameters the gradient was computed at are required");
  if (!subject.data) throw input_error("compare: the data the gradient was computed on is required");
  if (!gradient.is_object())
    throw input_error(where + ": a gradient is a JSON object {\"precision\", \"loss\", \"gradients\": [...]}, got " +
                      std::string(gradient.type_name()));
  std::string stated;
  if (gradient.contains("precision")) {
    if (!gradient.at("precision").is_string())
      throw input_error(where + ": 'precision' must be a string: \"float\", \"double\", \"bf16\" or \"fp16\"");
    stated = gradient.at("precision").get<std::string>();
  }
  const std::string p = precision.empty() ? stated : precision;
  if (p.empty())
    throw input_error(where + ": no 'precision' in the gradient: give --precision float, double, bf16 or fp16");
  if (p != "float" && p != "double" && p != "bf16" && p != "fp16")
    throw input_error((precision.empty() ? where + ": " : std::string()) + "precision '" + text_excerpt(p) +
                      "': a gradient is judged in float or double, or in bf16 or fp16 (mp100 is the truth it "
                      "is compared with)");
  if (!stated.empty() && stated != p)
    throw input_error(where + ": the gradient says it was computed in " + text_excerpt(stated) + ", not in " + p);
  check_model_memory(subject.spec, sizeof(mp100), scalar_name<mp100>(), "model");
  const Network<mp100> shape_net(subject.spec);
  const std::vector<Given> given = read_gradient(shape_net, gradient, where);
  std::optional<std::string> given_loss;
  if (gradient.contains("loss")) {
    const auto& l = gradient.at("loss");
    if (!l.is_string() && !l.is_number()) throw input_error(where + ": 'loss' must be a number or a decimal string");
    given_loss = l.is_string() ? l.get<std::string>() : l.dump();
  }
  if (options.accumulation != Accumulation::same && p != "bf16" && p != "fp16")
    throw input_error("--accumulate applies to the 16-bit precisions (bf16, fp16) only, not to " + p);
  const AccumulationScope accumulation(options.accumulation);  // bpcheck's own backprop in bf16/fp16
  if (p == "bf16") return compare_on<bf16>(subject, given, given_loss, options);
  if (p == "fp16") return compare_on<fp16>(subject, given, given_loss, options);
  return p == "float" ? compare_on<float>(subject, given, given_loss, options)
                      : compare_on<double>(subject, given, given_loss, options);
}

std::string format_table(const GradientComparison& c) {
  return compare_detail::comparison_table(
      c,
      fmt::format("bpcheck compare: a {} gradient of the {} on {} samples, against the {} truth", c.precision,
                  c.subject, c.samples, c.truth),
      fmt::format("bound per entry: {}; λ = {:g}, n ≤ {} (the lengths of backprop's sums from the loss down to the "
                  "block), K = {:g}, M = {:g}, u = {:.3g}; A the block's largest |g| or |terms|; activations round "
                  "relative to {}",
                  c.bound_formula, c.thresholds.lambda, c.rounding_terms, c.thresholds.cond_factor,
                  c.thresholds.measured_factor, c.unit_roundoff,
                  c.absolute_sweep ? "their layer's terms (absolute Jacobians)"
                                   : "their own size (normwise: a large model)"),
      true);
}

namespace compare_detail {

void set_block_verdict(BlockComparison& bc, const verify_detail::Judgement& j, const std::string& precision,
                       const std::string& wrong_cause, bool note_exact_zero) {
  const std::string digits = fmt::format("{:.1f} digits", bc.digits);
  const bool zero = note_exact_zero && bc.exact_zero;
  switch (j.verdict) {
    case Verdict::pass: bc.verdict = CompareVerdict::pass; break;
    case Verdict::fail:
      bc.verdict = CompareVerdict::wrong;
      bc.explanation = j.grounds == verify_detail::Grounds::not_finite
                           ? "a value that is not finite"
                           : (zero ? "the exact block is 0; " : "") + digits + ": an error far beyond any rounding (" +
                                 wrong_cause + ")";
      break;
    default:  // unstable: beyond the bound, not gross
      bc.verdict = CompareVerdict::less_accurate;
      if (precision == "double" && bc.float_ratio <= 1) {
        bc.consistent_with = "float";
        bc.explanation = "as accurate as float: a float32 path inside a double model?";
      } else {
        bc.explanation = (zero ? "the exact block is 0 and its terms' rounding leaves less; " : "") + digits +
                         ": no rounding in float or double explains it";
      }
  }
}

std::string comparison_table(const GradientComparison& c, const std::string& title, const std::string& bound_line,
                             bool worst_line) {
  std::string out = title + "\n";
  std::size_t width = 5;
  for (const auto& b : c.blocks) width = std::max(width, block_label(b).size());
  out += fmt::format("  {:<{}}  {:<10} {:<13} {:>6} {:>11}  {}\n", "block", width, "shape", "verdict", "digits",
                     "error/bound", "worst entry");
  for (const auto& b : c.blocks) {
    const std::string v = b.verdict == CompareVerdict::pass ? "pass"
                          : b.verdict == CompareVerdict::wrong ? "WRONG"
                                                               : "less accurate";
    out += fmt::format("  {:<{}}  {:<10} {:<13} {:>6.1f} {:>11.3g}  {}\n", block_label(b), width, shape_string(b.shape),
                       v, b.digits, b.ratio, b.worst.empty() ? std::string("-") : b.worst.front().where);
  }
  out += bound_line + "\n";
  out += "loss: exact " + c.exact_loss + (c.given_loss ? ", given " + *c.given_loss : std::string()) + "\n";
  if (const BlockComparison* w = c.worst_block(); worst_line && w)
    out += "worst entry: " + entry_sentence(*w, w->worst.front()) + "\n";
  for (const auto& b : c.blocks) {
    if (b.verdict == CompareVerdict::pass) continue;
    out += fmt::format("{} is {}: {}\n", block_label(b), verdict_words(b.verdict, c.precision), b.explanation);
    for (const auto& e : b.worst)
      if (e.ratio > 1) out += fmt::format("    {:<12} given {}  exact {}  |error| {:.3g}  bound {:.3g}\n", e.where,
                                          e.given, e.exact, e.abs_error, e.bound);
  }
  const CompareVerdict v = c.verdict();
  out += "verdict: " + verdict_words(v, c.precision);
  if (v == CompareVerdict::less_accurate)
    out += c.allow_less_accurate ? " (advice: --allow-less-accurate)" : " (a failure; --allow-less-accurate makes it advice)";
  return out + "\n";
}

}  // namespace compare_detail

nlohmann::ordered_json to_json(const GradientComparison& c) {
  nlohmann::ordered_json j;
  j["format"] = "bpcheck compare";
  j["version"] = 1;
  j["subject"] = c.subject;
  j["precision"] = c.precision;
  j["samples"] = c.samples;
  j["verdict"] = compare_verdict_name(c.verdict());
  j["passed"] = c.passed();
  j["allow_less_accurate"] = c.allow_less_accurate;
  j["loss"] = {{"exact", c.exact_loss}, {"given", c.given_loss ? nlohmann::ordered_json(*c.given_loss) : nullptr}};
  j["bound"] = {{"formula", c.bound_formula},
                {"lambda", c.thresholds.lambda},
                {"n", c.rounding_terms},
                {"K", c.thresholds.cond_factor},
                {"M", c.thresholds.measured_factor},
                {"unit_roundoff", c.unit_roundoff},
                {"activations", c.absolute_sweep ? "absolute sweep" : "normwise"}};
  const auto entry_json = [](const ComparedEntry& e) {
    nlohmann::ordered_json x;
    x["row"] = e.row;
    x["col"] = e.col;
    x["where"] = e.where;
    x["exact"] = e.exact;
    x["given"] = e.given;
    x["abs_error"] = number_or_null(e.abs_error);
    x["bound"] = number_or_null(e.bound);
    x["ratio"] = number_or_null(e.ratio);
    return x;
  };
  auto blocks = nlohmann::ordered_json::array();
  for (const auto& b : c.blocks) {
    nlohmann::ordered_json x;
    x["layer"] = b.layer;
    x["type"] = b.layer_type;
    x["name"] = b.name;
    x["shape"] = b.shape;
    x["verdict"] = compare_verdict_name(b.verdict);
    x["digits"] = b.digits;
    x["ratio"] = number_or_null(b.ratio);
    x["float_ratio"] = number_or_null(b.float_ratio);
    x["consistent_with"] = b.consistent_with.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(b.consistent_with);
    x["explanation"] = b.explanation;
    x["max_abs_error"] = number_or_null(b.max_abs_error);
    x["max_exact"] = b.max_exact;
    x["exact_zero"] = b.exact_zero;
    auto worst = nlohmann::ordered_json::array();
    for (const auto& e : b.worst) worst.push_back(entry_json(e));
    x["worst"] = std::move(worst);
    blocks.push_back(std::move(x));
  }
  j["blocks"] = std::move(blocks);
  if (const BlockComparison* w = c.worst_block()) {
    nlohmann::ordered_json x = entry_json(w->worst.front());
    x["layer"] = w->layer;
    x["name"] = w->name;
    j["worst"] = std::move(x);
  } else {
    j["worst"] = nullptr;
  }
  return j;
}

std::string to_junit_xml(const GradientComparison& c) {
  std::size_t failures = 0;
  for (const auto& b : c.blocks)
    failures += b.verdict == CompareVerdict::wrong || (b.verdict == CompareVerdict::less_accurate && !c.allow_less_accurate);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\">\n",
                     xml_escape("bpcheck compare: " + c.subject + " [" + c.precision + "]"), c.blocks.size(), failures);
  for (const auto& b : c.blocks) {
    out += fmt::format("  <testcase classname=\"{}\" name=\"{}\">\n", xml_escape(c.subject),
                       xml_escape(block_label(b) + " [" + c.precision + "]"));
    const std::string detail =
        fmt::format("{:.1f} digits, error/bound {:.3g}{}{}", b.digits, b.ratio,
                    b.explanation.empty() ? std::string() : " (" + b.explanation + ")",
                    b.worst.empty() ? std::string() : "; worst " + entry_sentence(b, b.worst.front()));
    const bool failed =
        b.verdict == CompareVerdict::wrong || (b.verdict == CompareVerdict::less_accurate && !c.allow_less_accurate);
    if (failed)
      out += fmt::format("    <failure message=\"{}\">{}</failure>\n",
                         xml_escape(block_label(b) + " is " + verdict_words(b.verdict, c.precision)), xml_escape(detail));
    else
      out += fmt::format("    <system-out>{}</system-out>\n",
                         xml_escape(verdict_words(b.verdict, c.precision) + ": " + detail));
    out += "  </testcase>\n";
  }
  return out + "</testsuite>\n";
}

}  // namespace bpcheck
