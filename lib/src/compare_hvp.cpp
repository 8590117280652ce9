// compare_hvp: another program's Hessian-vector product against the mp100 one (bpcheck/verify/hvp.hpp).
//
// The bound on entry i of block b, for an HVP computed in T (docs/verdicts.md, "Second order of a network"):
//
//   |h_T,i − (H v)_i| ≤ λ √n u_T A_b + K cond_i + M e_b + floor
//
//   A_b     the block's largest |(H v)_i| or S_i = Σ_j |H_ij v_j|: the terms the double backward sums into
//           entry i, in absolute values (formed exactly from 8-lane dual<mp100> backward passes up to
//           `terms_limit` parameters; beyond it A_b = max |H v| over the block, normwise)
//   n       2 Σ_k (in_k + out_k) + out + samples: the roundings of a forward tangent pass and a backward
//           pass through every layer, and the sum over the samples
//   cond_i  the largest change of the mp100 H v over four moves T's rounding makes: two draws of θ, X
//           and v moved by a relative ±u_T, two of every activation moved by ±u_T of itself
//   e_b     the largest error of bpcheck's own H v in T (dual<T> backward) on the block: a correct
//           implementation rounds about as much where the magnitudes above miss a cancellation
//
// It assumes the other program rounds each operation once (independent roundings of mean zero, the
// probabilistic bound of compare), reads θ, X and v rounded to T, and differentiates the same functions
// (no approximations of its own).
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/parallel.hpp"
#include "bpcheck/random.hpp"
#include "bpcheck/verify/hvp.hpp"
#include "compare_shared.hpp"
#include "hvp_impl.hpp"
#include "rounding_bound.hpp"
#include "verdict.hpp"
#include "verify_engine.hpp"

namespace bpcheck {

namespace {

constexpr double infinity = std::numeric_limits<double>::infinity();
double to_double(const mp100& x) { return x.convert_to<double>(); }

Vector<mp100> lane(const Vector<dual<mp100>>& g, std::size_t l) {
  Vector<mp100> out(g.size());
  for (Index i = 0; i < g.size(); ++i) out(i) = g(i).d[l];
  return out;
}

template <class R>
Matrix<mp100> lanes_of(const Vector<dual<R>>& g, Index lanes) {
  Matrix<mp100> out(g.size(), lanes);
  for (Index l = 0; l < lanes; ++l)
    for (Index i = 0; i < g.size(); ++i) out(i, l) = scalar_cast<mp100>(g(i).d[std::size_t(l)]);
  return out;
}

}  // namespace

namespace hvp_detail {

template <class R>
HvpMoves hvp_moves(const Network<mp100>& net, const Batch<mp100>& batch, const Matrix<mp100>& D, const mp100& u,
                   std::uint64_t seed, int jobs) {
  using std::abs;
  HvpMoves out;
  const Index P = net.parameter_count(), lanes = D.cols();
  const Network<R> net_R = net.template rebind<R>();
  const Matrix<R> X_R = matrix_cast<R>(batch.inputs), D_R = matrix_cast<R>(D);
  const Targets<R> targets{matrix_cast<R>(batch.targets.values), batch.targets.classes};
  const R u_R = scalar_cast<R>(u);
  // The truth, and the moves of cond, on `jobs` threads, each under the caller's deadline (verify's).
  std::vector<Matrix<mp100>> moved(4);
  const bool index_input = net.layer(0).input_is_index();
  const auto deadline = verify_detail::thread_deadline();
  parallel_for(5, jobs, [&](std::size_t job) {
    const verify_detail::DeadlineScope within(deadline);
    verify_detail::check_deadline();
    R loss{};
    if (job == 0) {
      out.h = lanes_of(hvp_detail::dual_backprop(net_R, X_R, targets, D_R, {}, &loss), lanes);
      out.loss = scalar_cast<mp100>(loss);
      return;
    }
    Random rng((seed ^ 0x94d049bb133111ebULL) + job);
    const auto sign = [&rng] { return rng.symmetric() < 0 ? mp100(-1) : mp100(1); };
    if (job <= 2) {  // θ, X and D as T reads them: each moved by a relative ±u (D lane by lane)
      Network<R> m = net_R;
      Vector<mp100> theta = net.parameters();
      for (Index i = 0; i < P; ++i) theta(i) *= 1 + sign() * u;
      m.set_parameters(vector_cast<R>(theta));
      Matrix<mp100> X = batch.inputs, W = D;
      if (!index_input)
        for (Index i = 0; i < X.size(); ++i) X(i) *= 1 + sign() * u;
      for (Index i = 0; i < W.size(); ++i) W(i) *= 1 + sign() * u;
      moved[job - 1] = lanes_of(hvp_detail::dual_backprop(m, matrix_cast<R>(X), targets, matrix_cast<R>(W)), lanes);
    } else {  // every activation rounded: ±u of itself (its value; its tangent is moved by the layers above)
      const hvp_detail::ActivationMove<R> move = [&](std::size_t k, Matrix<dual<R>>& x) {
        if (k == 0) return;
        for (Index i = 0; i < x.size(); ++i) x(i).v += scalar_cast<R>(sign()) * u_R * abs(x(i).v);
      };
      moved[job - 1] = lanes_of(hvp_detail::dual_backprop(net_R, X_R, targets, D_R, move), lanes);
    }
  });
  out.cond = Matrix<mp100>::Zero(P, lanes);
  for (const auto& m : moved) out.cond = out.cond.cwiseMax(Matrix<mp100>((m - out.h).cwiseAbs()));
  out.evaluations = 5;
  return out;
}
template HvpMoves hvp_moves<double>(const Network<mp100>&, const Batch<mp100>&, const Matrix<mp100>&, const mp100&,
                                    std::uint64_t, int);
template HvpMoves hvp_moves<mp100>(const Network<mp100>&, const Batch<mp100>&, const Matrix<mp100>&, const mp100&,
                                   std::uint64_t, int);

Vector<mp100> hvp_terms(const Network<mp100>& net, const Batch<mp100>& batch, const Vector<mp100>& v, int jobs,
                        Index& evaluations) {
  const Index P = net.parameter_count();
  const Index passes = (P + dual_width - 1) / dual_width;
  std::vector<Vector<mp100>> parts(static_cast<std::size_t>(passes));
  const auto deadline = verify_detail::thread_deadline();
  parallel_for(std::size_t(passes), jobs, [&](std::size_t p) {
    const verify_detail::DeadlineScope within(deadline);
    verify_detail::check_deadline();
    const Index first = Index(p) * dual_width, lanes = std::min<Index>(dual_width, P - first);
    Matrix<mp100> D = Matrix<mp100>::Zero(P, lanes);
    for (Index l = 0; l < lanes; ++l) D(first + l, l) = v(first + l);
    const auto g = hvp_detail::dual_backprop(net, batch.inputs, batch.targets, D);
    Vector<mp100> s = Vector<mp100>::Zero(P);
    for (Index l = 0; l < lanes; ++l) s += lane(g, std::size_t(l)).cwiseAbs();
    parts[p] = std::move(s);
  });
  Vector<mp100> S = Vector<mp100>::Zero(P);
  for (const auto& s : parts) S += s;
  evaluations += passes;
  return S;
}

HvpReference hvp_reference(const Network<mp100>& net, const Batch<mp100>& batch, const Vector<mp100>& v,
                           const mp100& u_T, std::uint64_t seed, int jobs, bool form_terms) {
  HvpReference ref;
  HvpMoves m = hvp_moves<mp100>(net, batch, Matrix<mp100>(v), u_T, seed, jobs);
  ref.loss = m.loss;
  ref.h = m.h.col(0);
  ref.cond = m.cond.col(0);
  ref.evaluations = m.evaluations;
  ref.terms_formed = form_terms && net.parameter_count() <= hvp_terms_limit;
  ref.terms = ref.terms_formed ? hvp_terms(net, batch, v, jobs, ref.evaluations) : Vector<mp100>(ref.h.cwiseAbs());
  return ref;
}

}  // namespace hvp_detail

namespace {

template <class T>
GradientComparison compare_on(const NetworkSubject& subject, const Network<mp100>& net, const Batch<mp100>& batch,
                              const Vector<mp100>& v, const std::vector<compare_detail::GivenValue>& given,
                              const std::optional<std::string>& given_loss, const CompareOptions& o) {
  using std::abs;
  using boost::multiprecision::sqrt;
  const verify_detail::Tolerances tol = verify_detail::Tolerances::from(o);
  const CompareThresholds& th = tol.compare;
  const std::string prec = scalar_name<T>();
  const Index P = net.parameter_count(), nx = batch.inputs.size();
  const mp100 u_T = scalar_cast<mp100>(unit_roundoff<T>());

  const hvp_detail::HvpReference ref = hvp_detail::hvp_reference(net, batch, v, u_T, o.seed, o.jobs);
  const Vector<mp100>& h = ref.h;
  const Vector<mp100>& S = ref.terms;
  const Vector<mp100>& cond = ref.cond;
  const mp100& exact_loss = ref.loss;
  const bool terms = ref.terms_formed;

  // bpcheck's own H v in T: how far a correct implementation's rounding goes.
  Vector<mp100> own_error = Vector<mp100>::Zero(P);
  try {
    const Network<T> net_T = net.template rebind<T>();
    const Gradient<T> hT = hessian_vector_product(net_T, matrix_cast<T>(batch.inputs),
                                                  Targets<T>{matrix_cast<T>(batch.targets.values), batch.targets.classes},
                                                  vector_cast<T>(v));
    Index at = 0;
    bool finite = true;
    for (const auto& l : hT.layers)
      for (Index i = 0; i < l.size(); ++i, ++at) {
        using std::isfinite;
        finite = finite && isfinite(l(i));
        own_error(at) = abs(scalar_cast<mp100>(l(i)) - h(at));
      }
    if (!finite) own_error.setZero();
  } catch (const std::exception&) {
    // T's own run fails: the bound stands on its other terms
  }

  Index n = net.output_size() + batch.inputs.cols();
  for (std::size_t k = 0; k < net.depth(); ++k) n += 2 * (net.layer(k).input_size() + net.layer(k).output_size());
  const mp100 rounding = mp100(th.lambda) * sqrt(mp100(n)) * u_T;
  const mp100 floor_T = underflow_floor<T>(mp100(nx + P + 1), mp100(2));
  const mp100 floor_float = underflow_floor<float>(mp100(nx + P + 1), mp100(2));
  const mp100 to_float = scalar_cast<mp100>(unit_roundoff<float>()) / u_T;

  GradientComparison c;
  c.subject = fmt::format("Hessian-vector product of the network ({} layers, {})", subject.spec.layers.size(),
                          net.loss().name());
  c.precision = prec;
  c.samples = batch.inputs.cols();
  c.exact_loss = exact_loss.str(20, std::ios_base::scientific);
  c.given_loss = given_loss;
  c.unit_roundoff = to_double(u_T);
  c.thresholds = th;
  c.rounding_terms = n;
  c.bound_formula = std::string("λ √n u A + K cond + M e + floor; A the block's largest ") +
                    (terms ? "Σ_j |H_ij v_j| or |H v|"
                           : fmt::format("|H v| (normwise: more than {} parameters)", hvp_detail::hvp_terms_limit));
  c.absolute_sweep = terms;  // here: A from Σ_j |H_ij v_j| (hvp_comparison_to_json says so)
  c.allow_less_accurate = o.allow_less_accurate;
  const double max_digits = scalar_traits<T>::print_digits;
  const mp100 sqrt_u = sqrt(u_T);
  Index offset = 0;
  for (std::size_t k = 0; k < net.depth(); ++k) {
    for (const auto& b : net.layer(k).parameter_blocks()) {
      BlockComparison bc;
      bc.layer = k;
      bc.layer_type = net.layer(k).type_name();
      bc.name = b.name;
      bc.shape = b.is_vector ? std::vector<Index>{b.rows} : std::vector<Index>{b.rows, b.cols};
      mp100 max_exact(0), A(0), measured(0), max_err(0);
      for (Index i = 0; i < b.size(); ++i) {
        const Index at = offset + b.offset + i;
        max_exact = std::max(max_exact, mp100(abs(h(at))));
        A = std::max({A, mp100(abs(h(at))), S(at)});
        measured = std::max(measured, own_error(at));
      }
      verify_detail::Evidence ev;
      ev.what = fmt::format("H v, layer {} {} {}", k, bc.layer_type, b.name);
      ev.precision = prec;
      ev.external = true;
      ev.rung_digits = -std::log10(c.unit_roundoff);
      double float_ratio = 0;
      std::vector<ComparedEntry> entries;
      for (Index i = 0; i < b.size(); ++i) {
        const Index at = offset + b.offset + i;
        const auto& g = given[std::size_t(at)];
        const mp100 bound = rounding * A + mp100(th.cond_factor) * cond(at) + mp100(th.measured_factor) * measured + floor_T;
        ComparedEntry e;
        e.row = b.is_vector ? i : i % b.rows;
        e.col = b.is_vector ? 0 : i / b.rows;
        e.where = b.is_vector ? fmt::format("{}[{}]", b.name, e.row) : fmt::format("{}[{},{}]", b.name, e.row, e.col);
        e.exact = h(at).str(int(max_digits) + 3, std::ios_base::scientific);
        e.given = g.text;
        e.bound = to_double(bound);
        if (!g.finite) {
          ev.value_finite = false;
          e.abs_error = e.ratio = infinity;
        } else {
          const mp100 err = abs(g.value - h(at));
          max_err = std::max(max_err, err);
          e.abs_error = to_double(err);
          e.ratio = err == 0 ? 0.0 : to_double(err / bound);
          ev.ratio = std::max(ev.ratio, e.ratio);
          if (err != 0) float_ratio = std::max(float_ratio, to_double(err / ((bound - floor_T) * to_float + floor_float)));
          const mp100 floor = sqrt_u * A;
          if (!ev.gross && e.ratio > 1) ev.gross = verify_detail::gross_error(err, max_exact, &floor, tol.gross_fraction);
        }
        entries.push_back(std::move(e));
      }
      std::stable_sort(entries.begin(), entries.end(),
                       [](const ComparedEntry& x, const ComparedEntry& y) { return x.ratio > y.ratio; });
      entries.resize(std::min<std::size_t>(entries.size(), 5));
      bc.worst = std::move(entries);
      bc.exact_zero = max_exact <= mp100_tolerance() * A;
      bc.max_exact = to_double(max_exact);
      bc.max_abs_error = ev.value_finite ? to_double(max_err) : infinity;
      if (!ev.value_finite)
        bc.digits = 0;
      else if (max_err == 0)
        bc.digits = max_digits;
      else if (bc.exact_zero)
        bc.digits = 0;
      else
        bc.digits = std::clamp(-std::log10(to_double(max_err / max_exact)), 0.0, max_digits);
      ev.digits = bc.digits;
      if (!ev.value_finite) ev.ratio = infinity;
      bc.ratio = ev.ratio;
      bc.float_ratio = prec == "double" ? (ev.value_finite ? float_ratio : infinity) : bc.ratio;
      const verify_detail::Judgement j = verify_detail::judge(ev, tol);
      compare_detail::set_block_verdict(bc, j, prec,
                                        "a wrong second derivative: a backward that is not itself differentiable, "
                                        "or a tensor detached from the graph?",
                                        false);
      c.blocks.push_back(std::move(bc));
    }
    offset += net.layer(k).parameter_count();
  }
  return c;
}

}  // namespace

GradientComparison compare_hvp(const NetworkSubject& subject, const nlohmann::json& hvp, const nlohmann::json& vector,
                               const std::string& precision, const CompareOptions& options,
                               const std::string& vector_file) {
  const std::string where = options.gradient_file;
  if (!subject.parameters) throw input_error("compare --hvp: the parameters the HVP was computed at are required");
  if (!subject.data) throw input_error("compare --hvp: the data the HVP was computed on is required");
  if (!hvp.is_object())
    throw input_error(where + ": an HVP is a JSON object {\"precision\", \"loss\", \"hvp\": [...]}, got " +
                      std::string(hvp.type_name()));
  std::string stated;
  if (hvp.contains("precision")) {
    if (!hvp.at("precision").is_string()) throw input_error(where + ": 'precision' must be \"float\" or \"double\"");
    stated = hvp.at("precision").get<std::string>();
  }
  const std::string p = precision.empty() ? stated : precision;
  if (p.empty()) throw input_error(where + ": no 'precision' in the HVP: give --precision float or double");
  if (p != "float" && p != "double")
    throw input_error((precision.empty() ? where + ": " : std::string()) + "precision '" + text_excerpt(p) +
                      "': an HVP is judged in float or double (mp100 is the truth it is compared with)");
  if (!stated.empty() && stated != p)
    throw input_error(where + ": the HVP says it was computed in " + text_excerpt(stated) + ", not in " + p);
  check_model_memory(subject.spec, sizeof(dual<mp100>), scalar_name<dual<mp100>>(), "model");
  Network<mp100> net(subject.spec);
  parameters_from_json(net, *subject.parameters, subject.parameters_file);
  const Batch<mp100> batch = batch_from_json(net, *subject.data, subject.data_file);
  const auto given = compare_detail::read_parameter_blocks(net, hvp, where, {"hvp", "no 'hvp' list", "no"});
  const Vector<mp100> v = parameter_vector_from_json(net, vector, vector_file);
  std::optional<std::string> given_loss;
  if (hvp.contains("loss")) {
    const auto& l = hvp.at("loss");
    if (!l.is_string() && !l.is_number()) throw input_error(where + ": 'loss' must be a number or a decimal string");
    given_loss = l.is_string() ? l.get<std::string>() : l.dump();
  }
  return p == "float" ? compare_on<float>(subject, net, batch, v, given, given_loss, options)
                      : compare_on<double>(subject, net, batch, v, given, given_loss, options);
}

nlohmann::ordered_json hvp_comparison_to_json(const GradientComparison& c) {
  nlohmann::ordered_json j = to_json(c);
  j["format"] = "bpcheck compare --hvp";
  auto& bound = j["bound"];
  bound.erase("activations");
  bound["terms"] = c.absolute_sweep ? "sum |H_ij v_j|" : "|H v|";
  return j;
}

std::string format_hvp_table(const GradientComparison& c) {
  return compare_detail::comparison_table(
      c,
      fmt::format("bpcheck compare --hvp: a {} {} on {} samples, against the mp100 one", c.precision, c.subject,
                  c.samples),
      fmt::format("bound per entry: {}; λ = {:g}, n = {} (two passes through every layer's widths, plus the samples), "
                  "K = {:g}, M = {:g}, u = {:.3g}",
                  c.bound_formula, c.thresholds.lambda, c.rounding_terms, c.thresholds.cond_factor,
                  c.thresholds.measured_factor, c.unit_roundoff),
      false);
}

}  // namespace bpcheck
