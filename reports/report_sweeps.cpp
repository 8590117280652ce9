// The sweeps of the report: what each work item computes. Every number is measured against the mp100
// truth of the very same inputs (a float network's parameters and samples are rounded from double, so
// its truth is recomputed from those rounded values).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/dual.hpp"
#include "bpcheck/random.hpp"
#include "bpcheck/verify/finite_difference.hpp"
#include "bpcheck/verify/hvp.hpp"
#include "bpcheck/verify/verify.hpp"
#include "bpcheck/verify/network_units.hpp"
#include "report.hpp"
#include "verify_shard.hpp"
#include "report_lanczos.hpp"
#include "report_svd.hpp"

namespace bpcheck::report {

namespace {

constexpr int format_version = 2;  // 2: layer-by-layer items for a user model
constexpr Index fd_samples = 8;        // columns of the finite-difference point: the error norm over
                                       // many outputs averages the round-off noise of single entries
constexpr Index backprop_samples = 4;  // batch of the backprop sweep
constexpr Index classes = 4;           // outputs of the default networks (cross-entropy)
constexpr Index max_conditioning_width = 256;
constexpr double few_digits = 2;  // a backward signal with fewer digits is named in the summary

/// The precisions the report can measure against mp100, as rungs of the library; a run chooses among them
/// (ReportOptions::precisions). Their finite-difference, layer-by-layer and second-order items, their rows
/// and the summary's lines follow from this list alone.
using Precisions = std::tuple<float, double, bf16, fp16>;

template <class T>
constexpr bool is_16_bit = std::is_same_v<T, bf16> || std::is_same_v<T, fp16>;

/// f(T{}) for the precision named `name`.
template <class F>
auto on_precision(const json& name, F&& f) {
  std::optional<decltype(f(float{}))> r;
  std::apply([&](auto... p) { ((r || name != scalar_name<decltype(p)>() ? void() : void(r = f(p))), ...); }, Precisions{});
  if (!r) throw error("report: no precision '" + name.dump() + "' in the report's list");
  return std::move(*r);
}

/// A finite double as a JSON number; NaN and ±Inf as null (JSON has neither).
json number(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

/// Significant digits of a relative error, capped at the digits the rung prints.
double digits_of(double relative_error, int cap) {
  if (!(relative_error >= 0)) return 0;  // NaN: nothing agrees
  if (relative_error == 0) return cap;
  return std::clamp(-std::log10(relative_error), 0.0, double(cap));
}

/// ‖a − b‖₂ / ‖b‖₂ in mp100 (‖a − b‖₂ when b = 0), a moved exactly into mp100.
template <class A>
double relative_error(const Vector<A>& a, const Vector<mp100>& b) {
  const Vector<mp100> d = vector_cast<mp100>(a) - b;
  for (Index i = 0; i < a.size(); ++i)
    if (!std::isfinite(scalar_cast<double>(a(i)))) return std::numeric_limits<double>::infinity();
  const mp100 nb = b.norm(), nd = d.norm();
  return scalar_cast<double>(nb == 0 ? nd : mp100(nd / nb));
}

ModelSpec single_layer(const std::string& type) { return ModelSpec{4, {{type, {}}}, "mse"}; }

ModelSpec example_spec() {
  return ModelSpec{4, {{"dense", {{"units", 8}}}, {"tanh", {}}, {"dense", {{"units", 3}}}}, "cross_entropy"};
}

/// depth × (dense width → activation), then dense → classes, cross-entropy; width inputs.
ModelSpec deep_spec(const std::string& activation, Index width, int depth) {
  ModelSpec s;
  s.input_size = width;
  for (int k = 0; k < depth; ++k) {
    s.layers.push_back({"dense", {{"units", width}}});
    s.layers.push_back({activation, {}});
  }
  s.layers.push_back({"dense", {{"units", classes}}});
  s.loss = "cross_entropy";
  return s;
}

ModelSpec spec_of(const json& params) { return model_spec_from_json(nlohmann::json(params.at("model")), "model"); }

/// An item's network on rung T: parameters from the item's "parameters" (the parameter format, read in T so
/// decimal strings keep their digits) or from the seed.
template <class T>
Network<T> network_of(const json& params, std::uint64_t seed) {
  Network<T> net(spec_of(params));
  if (params.contains("parameters"))
    parameters_from_json(net, nlohmann::json(params.at("parameters")), "parameters");
  else
    net.initialize(seed);
  return net;
}

/// An item's batch: from its "data" (the data format) or generated from the seed.
template <class T>
Batch<T> batch_of(const Network<T>& net, const json& params, std::uint64_t seed, Index samples) {
  if (params.contains("data")) return batch_from_json(net, nlohmann::json(params.at("data")), "data");
  return generate_batch(net, seed, samples);
}

/// The steps h of the finite-difference sweep: 1e-1 down to 1e-16, 2 (quick) or 4 per decade.
std::vector<double> step_grid(bool quick) {
  const int per_decade = quick ? 2 : 4;
  std::vector<double> h;
  for (int k = per_decade; k <= 16 * per_decade; ++k) h.push_back(std::pow(10.0, -double(k) / per_decade));
  return h;
}

// ---- finite differences ------------------------------------------------------------------------

/// Least-squares slope of log10(error) against log10(h) over the steps in [lo, hi] (NaN with < 2).
double loglog_slope(const std::vector<double>& h, const std::vector<double>& err, double lo, double hi) {
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < h.size(); ++i) {
    if (h[i] < lo || h[i] > hi || !(err[i] > 0) || !std::isfinite(err[i]) || err[i] > 0.5) continue;
    const double x = std::log10(h[i]), y = std::log10(err[i]);
    n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

// ---- kinks along the sweep's line ---------------------------------------------------------------

constexpr int max_moves = 4;  // jitters of the point before the subject is reported as non-differentiable

/// A unit whose one-sided derivatives along the line disagree: the first in layer order (later layers
/// inherit the jump), by layer index (0 = the first layer), its type, unit and sample.
/// `at_point` keeps the value at t = 0 between the probes of one point: each probe's backward and forward
/// differences both start from it, so it is computed once per point instead of twice per probe.
template <class S>
std::optional<json> first_kink(const Network<S>& net, const Vector<S>& x, const Vector<S>& v,
                               Index rows, Index cols, const std::optional<S>& step,
                               std::optional<Vector<S>>& at_point) {
  // Every layer's output at x + t v, concatenated: t ↦ (x_1, …, x_L).
  const VectorFunction<S> along = [&](const Vector<S>& t) -> Vector<S> {
    if (t(0) == 0 && at_point) return *at_point;
    const Vector<S> z = x + t(0) * v;
    const auto acts = net.activations(Eigen::Map<const Matrix<S>>(z.data(), rows, cols));
    Index n = 0;
    for (std::size_t k = 1; k < acts.size(); ++k) n += acts[k].size();
    Vector<S> all(n);
    n = 0;
    for (std::size_t k = 1; k < acts.size(); ++k) {
      all.segment(n, acts[k].size()) = Eigen::Map<const Vector<S>>(acts[k].data(), acts[k].size());
      n += acts[k].size();
    }
    if (t(0) == 0) at_point = all;
    return all;
  };
  OneSidedJacobians<S> sides;
  try {
    sides = one_sided_disagreement<S>(along, Vector<S>::Zero(1), step);
  } catch (const error& e) {
    return json{{"layer", nullptr}, {"what", std::string("a stencil point cannot be evaluated: ") + e.what()}};
  }
  if (!sides.any_jump()) return std::nullopt;
  Index jumped = 0;
  while (!sides.jump(jumped, 0)) ++jumped;
  const double left = scalar_cast<double>(sides.left(jumped, 0)), right = scalar_cast<double>(sides.right(jumped, 0));
  Index row = jumped;  // into layer k's output from here on
  for (std::size_t k = 0; k < net.depth(); ++k) {
    const Index units = net.layer(k).output_size(), size = units * cols;
    if (row >= size) {
      row -= size;
      continue;
    }
    return json{{"layer", k},
                {"type", net.layer(k).type_name()},
                {"unit", row % units},
                {"sample", row / units},
                {"left", number(left)},
                {"right", number(right)},
                {"what", fmt::format("layer {} ({}), unit {} of sample {}: one-sided derivatives along the "
                                     "direction {:.3g} and {:.3g}",
                                     k, net.layer(k).type_name(), row % units, row / units, left, right)}};
  }
  return std::nullopt;
}

template <class T>
json finite_differences(const json& params, const ReportOptions& o) {
  const Network<T> net = network_of<T>(params, o.seed);
  const Matrix<T> X = batch_of(net, params, o.seed, fd_samples).inputs;
  const Index rows = X.rows(), cols = X.cols();
  Vector<T> x = Eigen::Map<const Vector<T>>(X.data(), X.size());
  // A random direction with max |v_j| = 1 exactly, rounded to float so that every rung holds it.
  Random rng(o.seed ^ 0xfdfdfdfdULL);
  Vector<double> vd(x.size());
  for (Index j = 0; j < vd.size(); ++j) vd(j) = rng.symmetric();
  vd /= vd.cwiseAbs().maxCoeff();
  const Vector<T> v = vd.unaryExpr([](double a) { return T(float(a)); });
  const Network<mp100> exact = net.template rebind<mp100>();

  // Kinks (a ReLU input at 0, a max-pool tie, a hardtanh edge) make the error plateau for every h: where
  // mp100's one-sided derivatives along v disagree at the point, the inputs are jittered by a relative
  // 2^-10 (as verify resamples); index inputs cannot move, and after max_moves the subject is reported
  // as non-differentiable there. Then the largest probe step (a decade) whose one-sided derivatives still
  // agree bounds the kink-free stretch of the line, which the theory's windows must stay inside.
  json kinks;
  const bool index_input = !net.spec().layers.empty() && net.spec().layers.front().type == "embedding";
  const Vector<mp100> vm = vector_cast<mp100>(v);
  int moves = 0;
  // 2^-10 relative, or 4 u where the rung's u is coarser (bf16): a smaller move rounds back to the point.
  const double jitter_size = std::max(0x1p-10, 4 * scalar_cast<double>(unit_roundoff<T>()));
  std::optional<json> at_point;
  Random jitter(o.seed ^ 0x6b696e6bULL);
  std::optional<Vector<mp100>> value_at_point;  // of the point as it is now; reset when it moves

  // The largest clean step among the decades 1e-16 … 1e-1 and the kink just beyond it: steps
  // 10^(k − 16), k = −1 standing for mp100's default step. A probe in mp100 evaluates the network four
  // times; the same search in double (a thousandth of the cost) guesses the answer, and mp100 confirms it
  // with the two probes that bracket it (clean at the guess, a kink one decade up). Where the guess is
  // wrong, mp100 bisects what is left, so the bracket is mp100's own: the one that bisection from scratch
  // finds wherever a wider step is never cleaner than a narrower one.
  struct Bracket {
    int lo = -1, hi = 16;
    std::optional<json> beyond;
  };
  auto search = [&]() {
    const int guess = [&] {
      const Network<double> fast = net.template rebind<double>();
      const Vector<double> xd = vector_cast<double>(x), vdd = vector_cast<double>(v);
      std::optional<Vector<double>> fast_at_point;
      auto clean = [&](int k) {
        const auto kink =
            first_kink<double>(fast, xd, vdd, rows, cols, std::optional<double>(std::pow(10.0, k - 16)), fast_at_point);
        return !kink || kink->at("layer").is_null();  // a step double cannot form says nothing
      };
      if (clean(15)) return 15;
      int l = -1, h = 15;
      while (h - l > 1) (clean((l + h) / 2) ? l : h) = (l + h) / 2;
      return l;
    }();
    Bracket b;
    auto kink_at = [&](int k) {
      if (auto found = first_kink<mp100>(exact, vector_cast<mp100>(x), vm, rows, cols, mp100(std::pow(10.0, k - 16)),
                                         value_at_point)) {
        b.hi = k, b.beyond = std::move(found);
        return true;
      }
      b.lo = k;
      return false;
    };
    if (guess < 15 && kink_at(guess + 1)) {
      if (guess >= 0) (void)kink_at(guess);
    } else if (b.lo < 15) {
      (void)kink_at(15);
    }
    if (b.hi <= 15)
      while (b.hi - b.lo > 1) (void)kink_at((b.lo + b.hi) / 2);
    return b;
  };

  // A probe of step s clean at k ≥ 0 shows that the point itself is no kink (a kink at the point is a
  // kink within every step): after a move the search runs first, and the point is probed at mp100's
  // default step only where every decade saw a kink.
  std::optional<Bracket> bracket;
  for (;;) {
    value_at_point.reset();
    bracket.reset();
    at_point.reset();
    if (moves > 0) {
      bracket = search();
      if (bracket->lo >= 0) break;
    }
    at_point = first_kink<mp100>(exact, vector_cast<mp100>(x), vm, rows, cols, std::nullopt, value_at_point);
    if (!at_point) break;
    if (moves == 0) kinks["moved_from"] = *at_point;
    if (index_input || !o.move_off_kinks || moves == max_moves) break;
    ++moves;
    for (Index i = 0; i < x.size(); ++i) {
      x(i) = T(x(i) + T(float((std::abs(double(x(i))) + 1) * jitter_size * jitter.symmetric())));
    }
  }
  kinks["moves"] = moves;
  if (moves == 0) kinks.erase("moved_from");
  if (at_point) {
    kinks["non_differentiable"] = *at_point;
  } else {
    kinks["non_differentiable"] = nullptr;
    if (!bracket) bracket = search();
    const auto& [lo, hi, beyond] = *bracket;
    // A one-sided difference of step s notices a kink up to about s/3 away (its D(2s) reaches 2s).
    kinks["kink_free_step"] = lo < 0 ? 0.0 : std::pow(10.0, lo - 16);
    if (lo < 15) {
      json near = *beyond;
      near["within"] = 2 * std::pow(10.0, hi - 16);
      kinks["nearest"] = std::move(near);
    } else {
      kinks["nearest"] = nullptr;
    }
  }
  if (moves > 0 && !at_point)
    kinks["note"] = fmt::format("the point sat on a kink ({}) and was moved off it by {} jitter{} of a relative {}",
                                kinks["moved_from"]["what"].get<std::string>(), moves, moves == 1 ? "" : "s",
                                jitter_size == 0x1p-10 ? std::string("2^-10") : fmt::format("{:.2g}", jitter_size));

  auto map_of = [rows, cols](const auto& n) {
    using S = typename std::decay_t<decltype(n)>::scalar_type;
    return [&n, rows, cols](const Vector<S>& z) -> Vector<S> {
      const Matrix<S> Y = n.forward(Eigen::Map<const Matrix<S>>(z.data(), rows, cols));
      return Eigen::Map<const Vector<S>>(Y.data(), Y.size());
    };
  };
  // The truth f′(x)·v: forward mode in mp100, one pass of the network on dual numbers with one tangent
  // lane (exact up to mp100's rounding, ≈ 1e-99; no step, so no kink nearby can spoil it). Index inputs
  // (an embedding) have no tangent: Ridders' extrapolation in mp100, its first step inside the kink-free stretch.
  Vector<mp100> truth;
  if (!index_input) {
    const Network<dual<mp100>> tangent_net = exact.template rebind<dual<mp100>>();
    const ActiveLanes lanes(1);
    Matrix<dual<mp100>> Z(rows, cols);
    for (Index i = 0; i < x.size(); ++i) Z(i) = dual<mp100>(scalar_cast<mp100>(x(i)));
    for (Index i = 0; i < x.size(); ++i) Z(i).d[0] = vm(i);
    const Matrix<dual<mp100>> Y = tangent_net.forward(Z);
    truth.resize(Y.size());
    for (Index i = 0; i < Y.size(); ++i) truth(i) = Y(i).d[0];
  } else {
    FdOptions<mp100> ridders(FdScheme::richardson);
    if (kinks.contains("nearest") && !kinks["nearest"].is_null())
      ridders.step = kinks["kink_free_step"].get<double>() > 0 ? mp100(kinks["kink_free_step"].get<double>() / 3)
                                                               : mp100("1e-40");
    truth = directional_derivative_fd<mp100>(VectorFunction<mp100>(map_of(exact)), vector_cast<mp100>(x),
                                             vector_cast<mp100>(v), ridders)
                .value;
  }
  // The schemes share stencil points at each step (central's ±h is central4's, central6's and Ridders' first
  // row; each scheme's D(2h) for its error estimate lands on others' points), so f at a point is kept for
  // the step's five schemes: the same values, computed once. The point itself is kept for every step.
  std::vector<std::pair<Vector<T>, Vector<T>>> seen;
  const VectorFunction<T> f_once = map_of(net);
  const VectorFunction<T> f = [&](const Vector<T>& z) -> Vector<T> {
    for (const auto& [at, value] : seen)
      if (at.size() == z.size() && std::memcmp(at.data(), z.data(), sizeof(T) * std::size_t(z.size())) == 0) return value;
    seen.emplace_back(z, f_once(z));
    return seen.back().second;
  };

  const std::vector<double> grid = step_grid(o.quick);
  const double u = scalar_cast<double>(unit_roundoff<T>());
  const std::vector<FdScheme> scheme_list{FdScheme::forward, FdScheme::central, FdScheme::central4,
                                          FdScheme::central6, FdScheme::richardson};
  std::vector<std::vector<double>> errors_of(scheme_list.size());
  for (double h : grid) {
    if (seen.size() > 1) seen.erase(seen.begin() + 1, seen.end());  // the point (seen first) stays
    for (std::size_t s = 0; s < scheme_list.size(); ++s) {
      double e = std::numeric_limits<double>::quiet_NaN();
      try {
        e = relative_error<T>(directional_derivative_fd<T>(f, x, v, FdOptions<T>(scheme_list[s], T(h))).value, truth);
      } catch (const error&) {
        // h below half an ulp of x (x + h = x): no difference can be formed at this step.
      }
      errors_of[s].push_back(e);
    }
  }
  json schemes = json::array();
  for (std::size_t s = 0; s < scheme_list.size(); ++s) {
    const FdScheme scheme = scheme_list[s];
    const std::vector<double>& err = errors_of[s];
    std::size_t best = grid.size();
    for (std::size_t i = 0; i < grid.size(); ++i)
      if (std::isfinite(err[i]) && (best == grid.size() || err[i] < err[best])) best = i;
    const int p = fd_order(scheme);
    json row;
    row["scheme"] = fd_scheme_name(scheme);
    row["order"] = p;
    json errors = json::array();
    for (double e : err) errors.push_back(number(e));
    row["error"] = std::move(errors);
    row["best_h"] = best < grid.size() ? number(grid[best]) : json(nullptr);
    row["best_error"] = best < grid.size() ? number(err[best]) : json(nullptr);
    if (p > 0) {
      // Truncation C h^p against round-off ≈ u/h: the sum is least near h* = u^(1/(p+1)).
      const double h_star = std::pow(u, 1.0 / (p + 1));
      row["theory_h"] = number(h_star);
      row["theory_error"] = number(std::pow(u, double(p) / (p + 1)));
      row["slope_truncation"] = number(loglog_slope(grid, err, 10 * h_star, 1000 * h_star));
      row["slope_roundoff"] = number(loglog_slope(grid, err, h_star / 1000, h_star / 10));
    } else {
      row["theory_h"] = nullptr;  // Ridders' order adapts: no single optimal step
      row["theory_error"] = nullptr;
      row["slope_truncation"] = nullptr;
      row["slope_roundoff"] = nullptr;
    }
    schemes.push_back(std::move(row));
  }
  json r;
  r["subject"] = params.at("subject");
  r["precision"] = scalar_name<T>();
  r["unit_roundoff"] = u;
  r["outputs"] = truth.size();  // the values the error norm is taken over
  json h = json::array();
  for (double s : grid) h.push_back(s);
  r["h"] = std::move(h);
  r["schemes"] = std::move(schemes);
  r["kinks"] = std::move(kinks);
  return r;
}

// ---- backprop ----------------------------------------------------------------------------------

struct BlockName {
  std::size_t layer;
  std::string type;
  ParameterBlock block;
};

std::vector<BlockName> block_names(const Network<mp100>& net) {
  std::vector<BlockName> names;
  for (std::size_t k = 0; k < net.depth(); ++k)
    for (const auto& b : net.layer(k).parameter_blocks()) names.push_back({k, net.layer(k).type_name(), b});
  return names;
}

template <class T>
Targets<mp100> targets_to_mp100(const Targets<T>& t) {
  Targets<mp100> m;
  m.values = matrix_cast<mp100>(t.values);
  m.classes = t.classes;
  return m;
}

/// Per parameter block, the relative error of T's backprop against mp100 backprop of the same numbers.
template <class T>
std::vector<double> backprop_errors(const json& params, std::uint64_t seed) {
  const Network<T> net = network_of<T>(params, seed);
  const Batch<T> batch = batch_of(net, params, seed, backprop_samples);
  const Gradient<T> g = net.gradient(batch.inputs, batch.targets);
  const Network<mp100> exact = net.template rebind<mp100>();
  const Gradient<mp100> truth = exact.gradient(matrix_cast<mp100>(batch.inputs), targets_to_mp100(batch.targets));
  std::vector<double> errors;
  for (const auto& n : block_names(exact))
    errors.push_back(relative_error<T>(g.layers[n.layer].segment(n.block.offset, n.block.size()).eval(),
                                       truth.layers[n.layer].segment(n.block.offset, n.block.size()).eval()));
  return errors;
}

json singular_values_json(const SingularValues& s) {
  json j;
  j["svd"] = s.precision;
  j["method"] = "svd";
  j["sigma_max"] = number(s.sigma_max);
  j["sigma_min"] = number(s.sigma_min);
  j["rank"] = s.rank;
  j["singular"] = s.singular;
  j["cond"] = number(s.cond);
  json values = json::array();
  for (double v : s.values) values.push_back(number(v));
  j["singular_values"] = std::move(values);
  return j;
}

/// An estimate's JSON: the keys of singular_values_json, and how far to trust it.
json estimate_json(const SpectrumEstimate& e) {
  json j;
  j["svd"] = e.precision;
  j["method"] = "lanczos";
  j["sigma_max"] = number(e.sigma_max);
  // Unresolved: σ_min is below double's rounding of the product (≈ 1e-8·∏‖J_i‖ is where its digits end), so
  // neither it nor the condition number is known; only an upper bound of σ_min is.
  j["sigma_min"] = e.resolved ? number(e.sigma_min) : json(nullptr);
  if (!e.resolved) j["sigma_min_at_most"] = number(std::max(e.sigma_min, 1e-8 * e.norm_product));
  j["rank"] = e.exact && e.resolved ? json(e.rank) : json(nullptr);
  j["singular"] = e.singular;
  j["cond"] = e.resolved ? number(e.cond) : json(nullptr);
  j["exact"] = e.exact;
  j["resolved"] = e.resolved;
  j["steps"] = e.steps;
  j["dimension"] = e.dimension;
  j["norm_product"] = number(e.norm_product);
  json values = json::array();
  if (e.exact)
    for (double v : e.values) values.push_back(number(v));
  j["singular_values"] = std::move(values);
  return j;
}

json backprop(const json& params, const ReportOptions& o) {
  const std::vector<double> float_errors = backprop_errors<float>(params, o.seed);
  const std::vector<double> double_errors = backprop_errors<double>(params, o.seed);
  // The 16-bit rungs the run chose, beside float and double: per block their error and digits.
  struct Extra {
    std::string name;
    int cap;
    std::vector<double> errors;
  };
  std::vector<Extra> extra;
  for (const auto& p : params.value("precisions_16", json::array()))
    extra.push_back(on_precision(p, [&]<class T>(T) {
      return Extra{scalar_name<T>(), scalar_traits<T>::print_digits, backprop_errors<T>(params, o.seed)};
    }));

  // mp100 against itself under a change of evaluation order: the batch's samples reversed (every sum
  // over samples, the loss's mean included, runs the other way), and for small networks the explicit
  // Jacobian product ∇ℓᵀ·J_L⋯J_{k+1}·J_θ,k (matrix products instead of right-to-left VJPs).
  const Network<mp100> net = network_of<mp100>(params, o.seed);
  const Batch<mp100> batch = batch_of(net, params, o.seed, backprop_samples);
  const Gradient<mp100> g = net.gradient(batch.inputs, batch.targets);
  Targets<mp100> reversed_targets = batch.targets;
  std::reverse(reversed_targets.classes.begin(), reversed_targets.classes.end());
  if (reversed_targets.values.size()) reversed_targets.values = batch.targets.values.rowwise().reverse().eval();
  const Gradient<mp100> g_reversed = net.gradient(batch.inputs.rowwise().reverse().eval(), reversed_targets);
  Index widest = net.input_size();
  for (std::size_t k = 0; k < net.depth(); ++k) widest = std::max(widest, net.layer(k).output_size());
  // The explicit product and the conditioning need every layer's stated Jacobians (a user's layer may omit them).
  std::string no_jacobian;
  for (std::size_t k = 0; k < net.depth() && no_jacobian.empty(); ++k)
    if (!net.layer(k).has_jacobians())
      no_jacobian = fmt::format("layer {} ({}) states no explicit Jacobian", k, net.layer(k).type_name());
  const bool explicit_product = no_jacobian.empty() && widest * batch.inputs.cols() <= 64;  // O(depth (width·B)³)
  Gradient<mp100> g_explicit;
  if (explicit_product) g_explicit = net.explicit_gradient(batch.inputs, batch.targets);

  constexpr int float_cap = scalar_traits<float>::print_digits, double_cap = scalar_traits<double>::print_digits;
  constexpr int mp_cap = scalar_traits<mp100>::print_digits;
  json blocks = json::array();
  double worst_float = float_cap, worst_double = double_cap, worst_self = mp_cap;
  std::vector<double> worst_extra;
  for (const auto& e : extra) worst_extra.push_back(e.cap);
  const auto names = block_names(net);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto& n = names[i];
    const Vector<mp100> gi = g.layers[n.layer].segment(n.block.offset, n.block.size());
    const double reorder = relative_error<mp100>(
        g_reversed.layers[n.layer].segment(n.block.offset, n.block.size()).eval(), gi);
    double self = digits_of(reorder, mp_cap);
    json b;
    b["layer"] = n.layer;
    b["type"] = n.type;
    b["block"] = n.block.name;
    b["size"] = n.block.size();
    b["float_rel_error"] = number(float_errors[i]);
    b["float_digits"] = digits_of(float_errors[i], float_cap);
    b["double_rel_error"] = number(double_errors[i]);
    b["double_digits"] = digits_of(double_errors[i], double_cap);
    for (std::size_t j = 0; j < extra.size(); ++j) {
      b[extra[j].name + "_rel_error"] = number(extra[j].errors[i]);
      b[extra[j].name + "_digits"] = digits_of(extra[j].errors[i], extra[j].cap);
      worst_extra[j] = std::min(worst_extra[j], digits_of(extra[j].errors[i], extra[j].cap));
    }
    b["mp100_reordered_digits"] = self;
    if (explicit_product) {
      const double e = relative_error<mp100>(
          g_explicit.layers[n.layer].segment(n.block.offset, n.block.size()).eval(), gi);
      b["mp100_explicit_digits"] = digits_of(e, mp_cap);
      self = std::min(self, digits_of(e, mp_cap));
    } else {
      b["mp100_explicit_digits"] = nullptr;
    }
    worst_float = std::min(worst_float, double(b["float_digits"]));
    worst_double = std::min(worst_double, double(b["double_digits"]));
    worst_self = std::min(worst_self, self);
    blocks.push_back(std::move(b));
  }

  // Conditioning on sample 0: each layer's J_x and the products P_k = J_k ⋯ J_1, formed in mp100.
  const Matrix<mp100> x0 = batch.inputs.col(0);
  const std::vector<Matrix<mp100>> acts = net.activations(x0);
  std::vector<int> product_at = params.at("product_at").get<std::vector<int>>();
  json layers = json::array(), products = json::array();
  // Up to 256 units with every Jacobian stated: J_k and P_k formed in mp100 and their SVDs (O(width³)).
  // Past that, or where a layer states no Jacobian, the extremes are estimated without forming anything:
  // Golub–Kahan–Lanczos on P·v (forward mode) and Pᵀ·u (backward), in double where it resolves σ_min.
  const bool formed = no_jacobian.empty() && widest <= max_conditioning_width;
  const std::string method =
      formed ? std::string()
             : !no_jacobian.empty() ? no_jacobian
                                    : fmt::format("a layer has {} units, more than the {} up to which the products are "
                                                  "formed",
                                                  widest, max_conditioning_width);
  LanczosOptions lanczos;
  lanczos.seed = o.seed;
  std::vector<double> layer_norms;
  Matrix<mp100> P;
  for (std::size_t k = 0; k < net.depth(); ++k) {
    json layer;
    layer["layer"] = k;
    layer["type"] = net.layer(k).type_name();
    const bool wanted = std::find(product_at.begin(), product_at.end(), int(k + 1)) != product_at.end();
    if (formed) {
      const Matrix<mp100> J = net.layer(k).jacobian_input(acts[k]);
      P = k == 0 ? J : Matrix<mp100>(J * P);
      json l = singular_values_json(singular_values(J));
      l.erase("singular_values");  // per layer the extremes suffice
      layer.update(l);
      layers.push_back(std::move(layer));
      if (wanted) {
        json p;
        p["layers"] = k + 1;
        p.update(singular_values_json(singular_values(P)));
        products.push_back(std::move(p));
      }
      continue;
    }
    const SpectrumEstimate lk =
        product_spectrum(net, Eigen::Map<const Vector<mp100>>(acts[k].data(), acts[k].size()), k, k + 1, lanczos);
    layer_norms.push_back(lk.sigma_max);
    json l = estimate_json(lk);
    l.erase("singular_values");
    layer.update(l);
    layers.push_back(std::move(layer));
    if (wanted) {
      json p;
      p["layers"] = k + 1;
      p.update(estimate_json(product_spectrum(net, Eigen::Map<const Vector<mp100>>(x0.data(), x0.size()), 0, k + 1,
                                              lanczos, layer_norms)));
      products.push_back(std::move(p));
    }
  }

  json r;
  r["subject"] = params.at("subject");
  for (const char* key : {"activation", "width", "depth"})
    if (params.contains(key)) r[key] = params.at(key);
  r["float_digits"] = worst_float;
  r["double_digits"] = worst_double;
  for (std::size_t j = 0; j < extra.size(); ++j) r[extra[j].name + "_digits"] = worst_extra[j];
  r["mp100_self_digits"] = worst_self;
  r["mp100_explicit_product"] = explicit_product;
  if (!formed) r["conditioning_estimated"] = method;
  r["blocks"] = std::move(blocks);
  r["layers"] = std::move(layers);
  r["products"] = std::move(products);
  return r;
}

// ---- layer by layer ----------------------------------------------------------------------------

template <class S>
Vector<S> flat(const Matrix<S>& m) {
  return Eigen::Map<const Vector<S>>(m.data(), m.size());
}

/// Where T loses digits along the network: the relative error of every layer's forward activations and
/// of every backward signal (the cotangent after each Jacobian product, right to left) of T's own run
/// against the mp100 run of the same (rounded) parameters and batch.
template <class T>
json layerwise(const json& params, const ReportOptions& o) {
  const Network<T> net = network_of<T>(params, o.seed);
  const Batch<T> batch = batch_of(net, params, o.seed, backprop_samples);
  const Network<mp100> exact = net.template rebind<mp100>();
  const std::vector<Matrix<T>> xs = net.activations(batch.inputs);
  const std::vector<Matrix<mp100>> xm = exact.activations(matrix_cast<mp100>(batch.inputs));
  constexpr int cap = scalar_traits<T>::print_digits;
  auto measure = [](json& j, const char* what, double e) {
    j[std::string(what) + "_rel_error"] = number(e);
    j[std::string(what) + "_digits"] = digits_of(e, cap);
  };
  json layers = json::array();
  for (std::size_t k = 0; k < net.depth(); ++k) {
    json l;
    l["layer"] = k;
    l["type"] = net.layer(k).type_name();
    l["units"] = net.layer(k).output_size();
    measure(l, "forward", relative_error<T>(flat(xs[k + 1]), flat(xm[k + 1])));
    layers.push_back(std::move(l));
  }
  // Backward: the loss's seed ∂ℓ/∂x_L, then after layer k's product the cotangent ∂ℓ/∂x_k (its input).
  Matrix<T> delta = net.loss().gradient(xs.back(), batch.targets);
  Matrix<mp100> delta_m = exact.loss().gradient(xm.back(), targets_to_mp100(batch.targets));
  json seed;
  measure(seed, "backward", relative_error<T>(flat(delta), flat(delta_m)));
  for (std::size_t k = net.depth(); k-- > 0;) {
    Vector<T> dtheta = Vector<T>::Zero(net.layer(k).parameter_count());
    Vector<mp100> dtheta_m = Vector<mp100>::Zero(dtheta.size());
    delta = net.layer(k).backward(xs[k], xs[k + 1], delta, dtheta);
    delta_m = exact.layer(k).backward(xm[k], xm[k + 1], delta_m, dtheta_m);
    if (k == 0 && net.layer(0).input_is_index()) {  // no cotangent for index inputs
      layers[k]["backward_rel_error"] = nullptr;
      layers[k]["backward_digits"] = nullptr;
    } else {
      measure(layers[k], "backward", relative_error<T>(flat(delta), flat(delta_m)));
    }
  }
  // Where the backward signal keeps fewer than 2 digits: from there on (to the input) the gradient of
  // every earlier block is built on a cotangent that is mostly rounding.
  json few = json::array();
  for (const auto& l : layers)
    if (l.at("backward_digits").is_number() && l.at("backward_digits").get<double>() < few_digits)
      few.push_back({{"layer", l.at("layer")}, {"type", l.at("type")}, {"digits", l.at("backward_digits")}});
  json r;
  r["subject"] = params.at("subject");
  r["precision"] = scalar_name<T>();
  r["unit_roundoff"] = scalar_cast<double>(unit_roundoff<T>());
  r["loss_gradient"] = std::move(seed);
  r["layers"] = std::move(layers);
  r["backward_under_2_digits"] = std::move(few);
  return r;
}

// ---- second order ------------------------------------------------------------------------------

/// All blocks of a per-layer vector, concatenated in θ's order.
template <class S>
Vector<S> concatenated(const std::vector<Vector<S>>& layers) {
  Index n = 0;
  for (const auto& l : layers) n += l.size();
  Vector<S> all(n);
  n = 0;
  for (const auto& l : layers) {
    all.segment(n, l.size()) = l;
    n += l.size();
  }
  return all;
}

/// Along one random direction v over the parameters: the central difference of T's gradient,
/// (g(θ + h v) − g(θ − h v))/(2h), against the exact H v (mp100, by the backward run on dual numbers) for
/// every step of the first-order grid; and T's own H v (the same dual-number backward on rung T) against
/// that truth, per parameter block.
template <class T>
json second_order(const json& params, const ReportOptions& o) {
  const Network<T> net = network_of<T>(params, o.seed);
  const Batch<T> batch = batch_of(net, params, o.seed, backprop_samples);
  const Network<mp100> exact = net.template rebind<mp100>();
  const Vector<T> theta = net.parameters();
  // A random direction with max |v_j| = 1 exactly, rounded to float so that every rung holds it.
  Random rng(o.seed ^ 0x4876487648764876ULL);
  Vector<double> vd(theta.size());
  for (Index j = 0; j < vd.size(); ++j) vd(j) = rng.symmetric();
  if (vd.size()) vd /= vd.cwiseAbs().maxCoeff();
  const Vector<T> v = vd.unaryExpr([](double a) { return T(float(a)); });
  const double u = scalar_cast<double>(unit_roundoff<T>());
  constexpr int cap = scalar_traits<T>::print_digits;

  json r;
  r["subject"] = params.at("subject");
  r["precision"] = scalar_name<T>();
  r["unit_roundoff"] = u;
  r["parameters"] = theta.size();
  Gradient<mp100> truth_blocks;
  Gradient<T> hv;
  try {
    truth_blocks = hessian_vector_product<mp100>(exact, matrix_cast<mp100>(batch.inputs),
                                                 targets_to_mp100(batch.targets), vector_cast<mp100>(v));
    if constexpr (!is_16_bit<T>) hv = hessian_vector_product<T>(net, batch.inputs, batch.targets, v);
  } catch (const input_error& e) {
    // A layer or loss without a dual-number run: the section says why instead of stopping the report.
    r["unavailable"] = e.what();
    return r;
  }
  const Vector<mp100> truth = concatenated(truth_blocks.layers);
  if constexpr (is_16_bit<T>) {
    // The difference of the rung's own gradients (below) runs on its rounded inputs like any rung's; an H v of
    // the rung itself would need dual numbers over it, which the library does not build.
    r["hvp"] = {{"not_applicable", fmt::format("{} has no H v of its own: the backward run on dual numbers is not "
                                               "built over the 16-bit rungs (only the central difference of {}'s "
                                               "gradient is measured)",
                                               scalar_name<T>(), scalar_name<T>())}};
  } else {

  // H v on rung T, per block and over all of θ.
  json blocks = json::array();
  double worst = cap;
  for (const auto& n : block_names(exact)) {
    const double e = relative_error<T>(hv.layers[n.layer].segment(n.block.offset, n.block.size()).eval(),
                                       truth_blocks.layers[n.layer].segment(n.block.offset, n.block.size()).eval());
    json b;
    b["layer"] = n.layer;
    b["type"] = n.type;
    b["block"] = n.block.name;
    b["size"] = n.block.size();
    b["rel_error"] = number(e);
    b["digits"] = digits_of(e, cap);
    worst = std::min(worst, digits_of(e, cap));
    blocks.push_back(std::move(b));
  }
  const double total = relative_error<T>(concatenated(hv.layers), truth);
  r["hvp"] = {{"rel_error", number(total)}, {"digits", digits_of(total, cap)}, {"worst_block_digits", worst},
              {"blocks", std::move(blocks)}};
  }

  // Central differences of the gradient: two backward runs per step.
  Network<T> moved = network_of<T>(params, o.seed);
  const VectorFunction<T> gradient_at = [&](const Vector<T>& th) -> Vector<T> {
    moved.set_parameters(th);
    return concatenated(moved.gradient(batch.inputs, batch.targets, InputGradient::skip).layers);
  };
  const std::vector<double> grid = step_grid(o.quick);
  std::vector<double> err;
  for (double h : grid) {
    double e = std::numeric_limits<double>::quiet_NaN();
    try {
      e = relative_error<T>(directional_derivative_fd<T>(gradient_at, theta, v, FdOptions<T>(FdScheme::central, T(h))).value,
                            truth);
    } catch (const error&) {
      // h below half an ulp of θ (θ + h = θ): no difference can be formed at this step.
    }
    err.push_back(e);
  }
  std::size_t best = grid.size();
  for (std::size_t i = 0; i < grid.size(); ++i)
    if (std::isfinite(err[i]) && (best == grid.size() || err[i] < err[best])) best = i;
  json fd;
  fd["scheme"] = "central";
  fd["order"] = 2;
  json errors = json::array();
  for (double e : err) errors.push_back(number(e));
  fd["error"] = std::move(errors);
  fd["best_h"] = best < grid.size() ? number(grid[best]) : json(nullptr);
  fd["best_error"] = best < grid.size() ? number(err[best]) : json(nullptr);
  // As for a first derivative: truncation C h² against round-off ≈ u/h, least near h* = u^(1/3).
  const double h_star = std::cbrt(u);
  fd["theory_h"] = number(h_star);
  fd["theory_error"] = number(std::pow(u, 2.0 / 3));
  fd["slope_truncation"] = number(loglog_slope(grid, err, 10 * h_star, 1000 * h_star));
  fd["slope_roundoff"] = number(loglog_slope(grid, err, h_star / 1000, h_star / 10));
  json hs = json::array();
  for (double s : grid) hs.push_back(s);
  r["h"] = std::move(hs);
  r["fd"] = std::move(fd);
  return r;
}

// ---- verification ------------------------------------------------------------------------------

VerifyOptions verify_options(const ReportOptions& o) {
  VerifyOptions options;
  options.seed = o.seed;
  options.points = o.quick ? 1 : 2;
  return options;
}

NetworkSubject network_subject(const json& params) {
  NetworkSubject subject{spec_of(params), {}, {}};
  if (params.contains("parameters")) subject.parameters = nlohmann::json(params.at("parameters"));
  if (params.contains("data")) subject.data = nlohmann::json(params.at("data"));
  return subject;
}

json verification_json(const json& subject, const VerificationReport& report) {
  json checks = json::array();
  for (const auto& c : report.checks) {
    json j;
    j["subject"] = c.subject;
    j["check"] = c.check;
    j["precision"] = c.precision;
    j["verdict"] = verdict_name(c.verdict);
    j["value"] = number(c.value);
    j["threshold"] = number(c.threshold);
    j["digits"] = c.digits < 0 ? json(nullptr) : number(c.digits);
    j["worst_abs_error"] = c.worst.empty() ? json(nullptr) : number(c.worst.front().abs_error);
    j["worst_rel_error"] = c.worst.empty() ? json(nullptr) : number(c.worst.front().rel_error);
    j["message"] = c.message;
    checks.push_back(std::move(j));
  }
  json r;
  r["subject"] = subject;
  r["passed"] = report.passed();
  r["checks"] = std::move(checks);
  return r;
}

json verification(const json& params, const ReportOptions& o) {
  const VerifyOptions options = verify_options(o);
  if (params.contains("units")) {
    // Part of a network's verification (verify's units: the loss at the batch, then each point of each
    // layer); assemble joins the parts into exactly verify_network's report.
    const auto chosen = params.at("units").get<std::vector<std::size_t>>();
    const auto reports = verify_network_units(network_subject(params), options, chosen);
    json units = json::array();
    for (std::size_t i = 0; i < chosen.size(); ++i)
      units.push_back({{"index", chosen[i]}, {"report", json(to_json(reports[i]))}});
    return {{"subject", params.at("subject")}, {"units", std::move(units)}};
  }
  VerificationReport report;
  if (params.contains("layer")) {
    LayerSpec spec{params.at("layer").at("type").get<std::string>(), nlohmann::json::object()};
    for (const auto& [key, value] : params.at("layer").items())
      if (key != "type") spec.options[key] = value;
    try {
      report = verify_layer(spec, params.at("input_size").get<Index>(), options);
    } catch (const input_error& e) {
      // A registered layer that cannot be built without options of its own: shown as skipped, with why.
      CheckResult c;
      c.check = "build with default options";
      c.subject = spec.type;
      c.precision = "-";
      c.verdict = Verdict::skipped;
      c.value = std::numeric_limits<double>::quiet_NaN();
      c.threshold = std::numeric_limits<double>::quiet_NaN();
      c.message = e.what();
      report.checks.push_back(std::move(c));
    }
  } else {
    report = verify_network(network_subject(params), options);
  }
  return verification_json(params.at("subject"), report);
}

/// FNV-1a of a text: a stable fingerprint of the plan (std::hash is not stable across builds).
std::string fingerprint(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  return fmt::format("{:016x}", h);
}

}  // namespace

const std::vector<std::string>& known_precisions() {
  static const std::vector<std::string> names =
      std::apply([](auto... p) { return std::vector<std::string>{scalar_name<decltype(p)>()...}; }, Precisions{});
  return names;
}

std::vector<std::string> checked_precisions(const std::vector<std::string>& names) {
  const auto& known = known_precisions();
  std::string list;
  for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
  if (names.empty()) throw input_error("--precision: no precision given (known: " + list + ")");
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (std::find(known.begin(), known.end(), names[i]) == known.end())
      throw input_error("--precision: unknown precision '" + names[i] + "' (known for report: " + list + ")");
    if (std::find(names.begin(), names.begin() + i, names[i]) != names.begin() + i)
      throw input_error("--precision: '" + names[i] + "' given twice");
  }
  std::vector<std::string> ordered;
  for (const auto& k : known)
    if (std::find(names.begin(), names.end(), k) != names.end()) ordered.push_back(k);
  return ordered;
}

std::pair<json, Index> example_layer(const std::string& type) {
  // Layers whose shape or structure has no default get a small example of their own; the others
  // run with their default options on 4 inputs.
  static const std::map<std::string, std::pair<json, Index>> examples{
      {"dense", {{{"units", 3}}, 4}},
      {"conv1d", {{{"channels", 2}, {"length", 4}, {"out_channels", 2}, {"kernel", 3}, {"padding", 1}}, 8}},
      {"conv2d", {{{"channels", 1}, {"height", 3}, {"width", 3}, {"out_channels", 2}, {"kernel", 2}}, 9}},
      {"max_pool1d", {{{"channels", 2}, {"length", 4}, {"kernel", 2}}, 8}},
      {"avg_pool1d", {{{"channels", 2}, {"length", 4}, {"kernel", 2}}, 8}},
      {"max_pool2d", {{{"channels", 1}, {"height", 4}, {"width", 4}, {"kernel", 2}}, 16}},
      {"avg_pool2d", {{{"channels", 1}, {"height", 4}, {"width", 4}, {"kernel", 2}}, 16}},
      {"residual", {{{"layers", json::array({json{{"type", "dense"}, {"units", 4}}, json{{"type", "tanh"}}})}}, 4}},
      {"add", {{{"branches", json::array({json::array({json{{"type", "dense"}, {"units", 4}}}),
                                          json::array({json{{"type", "tanh"}}})})}}, 4}},
      {"concat", {{{"branches", json::array({json::array({json{{"type", "dense"}, {"units", 2}}}), json::array()})}}, 4}},
      {"multi_head_attention", {{{"sequence", 2}, {"heads", 2}}, 8}},
      {"embedding", {{{"num_embeddings", 5}, {"embedding_dim", 2}}, 3}},
      {"batch_norm2d", {{{"channels", 1}, {"height", 2}, {"width", 2}}, 4}},
      {"adaptive_avg_pool2d", {{{"channels", 1}, {"height", 2}, {"width", 2}, {"output_size", 1}}, 4}},
      {"transformer_encoder_layer", {{{"sequence", 2}, {"heads", 1}, {"dim_feedforward", 2}}, 4}},
      {"position_embedding", {{{"tokens", 2}, {"features", 2}}, 4}},
      {"token_mean", {{{"tokens", 2}}, 4}},
  };
  json layer{{"type", type}};
  Index input_size = 4;
  if (const auto it = examples.find(type); it != examples.end()) {
    layer.update(it->second.first);
    input_size = it->second.second;
  }
  return {layer, input_size};
}

std::vector<WorkItem> plan(const ReportOptions& o) {
  std::vector<WorkItem> items;
  auto add = [&items](std::string kind, json params) { items.push_back({std::move(kind), std::move(params)}); };
  const std::vector<std::string> precisions = checked_precisions(o.precisions);
  json precisions_16 = json::array();
  for (const auto& p : precisions)
    if (p != "float" && p != "double") precisions_16.push_back(p);
  // Backprop has float and double always; the 16-bit rungs only where chosen (the default plan unchanged).
  auto with_16 = [&precisions_16](json params) {
    if (!precisions_16.empty()) params["precisions_16"] = precisions_16;
    return params;
  };
  if (o.model) {
    json model{{"subject", "model"}, {"model", model_spec_to_json(*o.model)}};
    if (o.parameters) model["parameters"] = json(*o.parameters);
    if (o.data) model["data"] = json(*o.data);
    for (const auto& p : precisions) {
      json fd = model;
      fd["precision"] = p;
      add("finite_differences", std::move(fd));
    }
    json product_at = json::array();
    for (std::size_t k = 1; k <= o.model->layers.size(); ++k) product_at.push_back(k);
    json bp = model;
    bp["product_at"] = std::move(product_at);
    add("backprop", with_16(std::move(bp)));
    for (const auto& p : precisions) {
      json lw = model;
      lw["precision"] = p;
      add("layerwise", std::move(lw));
    }
    for (const auto& p : precisions) {
      json so = model;
      so["precision"] = p;
      add("second_order", std::move(so));
    }
    // The network's verification in two items that run side by side: unit 0 (the loss at the batch, with
    // the overflow search: about as long as all the layers' points together) and the layers' points.
    const std::size_t units = network_unit_count(network_subject(model), verify_options(o));
    json first = model, rest = model;
    first["units"] = json::array({0});
    rest["units"] = json::array();
    for (std::size_t i = 1; i < units; ++i) rest["units"].push_back(i);
    add("verification", std::move(first));
    if (units > 1) add("verification", std::move(rest));
    return items;
  }
  // The built-in default set.
  std::vector<std::pair<std::string, ModelSpec>> fd_subjects{{"tanh layer", single_layer("tanh")},
                                                              {"example network", example_spec()}};
  if (!o.quick) {
    fd_subjects.insert(fd_subjects.begin() + 1, {"softplus layer", single_layer("softplus")});
    fd_subjects.insert(fd_subjects.begin() + 2, {"gelu layer", single_layer("gelu")});
    fd_subjects.insert(fd_subjects.begin() + 3, {"softmax layer", single_layer("softmax")});
  }
  for (const auto& [name, spec] : fd_subjects)
    for (const auto& p : precisions)
      add("finite_differences", {{"subject", name}, {"precision", p}, {"model", model_spec_to_json(spec)}});

  const std::vector<std::string> activations =
      o.quick ? std::vector<std::string>{"tanh", "relu"}
              : std::vector<std::string>{"tanh", "sigmoid", "relu", "gelu", "softplus"};
  const std::vector<Index> widths = o.quick ? std::vector<Index>{8} : std::vector<Index>{8, 32};
  const std::vector<int> depths = o.quick ? std::vector<int>{1, 2, 4, 8} : std::vector<int>{1, 2, 4, 8, 16, 32};
  for (const auto& a : activations)
    for (Index w : widths)
      for (int d : depths)
        add("backprop", with_16({{"subject", fmt::format("{} width {} depth {}", a, w, d)},
                                 {"activation", a},
                                 {"width", w},
                                 {"depth", d},
                                 {"model", model_spec_to_json(deep_spec(a, w, d))},
                                 {"product_at", json::array({2 * d})}}));

  for (const auto& p : precisions)
    add("second_order", {{"subject", "example network"}, {"precision", p}, {"model", model_spec_to_json(example_spec())}});

  std::vector<std::string> layer_types =
      o.quick ? std::vector<std::string>{"dense", "relu", "tanh", "softmax"} : layer_type_names();
  for (const auto& t : layer_types) {
    auto [layer, input_size] = example_layer(t);
    add("verification", {{"subject", t}, {"layer", layer}, {"input_size", input_size}});
  }
  add("verification", {{"subject", "example network"}, {"model", model_spec_to_json(example_spec())}});
  return items;
}

json join_verification_units(const json& params, const std::vector<json>& parts, const json& run) {
  ReportOptions o;
  o.seed = run.at("seed").get<std::uint64_t>();
  o.quick = run.at("quick").get<bool>();
  std::vector<std::pair<std::size_t, VerificationReport>> units;
  for (const auto& part : parts)
    for (const auto& u : part.at("units"))
      units.emplace_back(u.at("index").get<std::size_t>(), cli::report_from_json(nlohmann::json(u.at("report"))));
  std::sort(units.begin(), units.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<VerificationReport> reports;
  for (auto& [i, r] : units) {
    if (i != reports.size()) throw error(fmt::format("report: verification unit {} is missing or repeated", reports.size()));
    reports.push_back(std::move(r));
  }
  const NetworkSubject subject = network_subject(params);
  return verification_json(params.at("subject"), join_network_units(subject, verify_options(o), reports));
}

json run_identity(const ReportOptions& o, const std::vector<WorkItem>& items) {
  std::string all;
  for (const auto& item : items) all += item.kind + item.params.dump() + "\n";
  json r;
  r["format"] = "bpcheck report";
  r["version"] = format_version;
  r["model"] = o.model ? json(model_spec_to_json(*o.model)) : json("default");
  r["seed"] = o.seed;
  r["quick"] = o.quick;
  if (!o.move_off_kinks) r["move_off_kinks"] = false;  // only when set: the default identity is unchanged
  const std::vector<std::string> precisions = checked_precisions(o.precisions);
  r["precisions"] = precisions;
  // The accumulation changes only the 16-bit rungs' numbers: part of the identity where one is chosen.
  if (std::any_of(precisions.begin(), precisions.end(), [](const auto& p) { return p == "bf16" || p == "fp16"; }))
    r["accumulate"] = o.accumulation == Accumulation::float_ ? "float" : "same";
  r["items"] = items.size();
  r["plan"] = fingerprint(all);
  return r;
}

json compute(const WorkItem& item, const ReportOptions& o) {
  const AccumulationScope accumulate(o.accumulation);  // on the thread that computes the item
  if (item.kind == "finite_differences")
    return on_precision(item.params.at("precision"),
                        [&]<class T>(T) { return finite_differences<T>(item.params, o); });
  if (item.kind == "backprop") return backprop(item.params, o);
  if (item.kind == "layerwise")
    return on_precision(item.params.at("precision"), [&]<class T>(T) { return layerwise<T>(item.params, o); });
  if (item.kind == "second_order")
    return on_precision(item.params.at("precision"), [&]<class T>(T) { return second_order<T>(item.params, o); });
  if (item.kind == "verification") return verification(item.params, o);
  throw error("report: unknown work item '" + item.kind + "'");
}

}  // namespace bpcheck::report
