// verify --order 2 on a network: the second-order checks of its loss in θ (hvp_impl.hpp). The layers'
// own second-order checks are the engine's (verify_second_order.hpp); these differentiate the whole
// backprop, loss included, along a direction v of the parameters.
//
//   smoothness  one-sided differences of mp100 gradients along v, (g(θ + hv) − g(θ))/h against
//               (g(θ) − g(θ − hv))/h, h = 2⁻¹⁵⁰: beyond second_order_kink_fraction of their size, the
//               gradient has a kink along v (relu, max pool): non-differentiable, no other check.
//   backward    H v from the network's backward on dual<T> (hessian_vector_product) against central
//               differences of mp100 gradients, (g(θ + hv) − g(θ − hv))/2h (off by ~h² = 1e-60 and
//               1e-100/h = 1e-70 of the terms). Bound per entry, normwise per block as compare --hvp:
//               (tol in mp100) + K (n + 2) u_T A_b + K cond_i + 4 · the oracle's error + floor, with A_b
//               the block's largest Σ_j |H_ij v_j| or |H v|, n two passes of the widths plus the samples,
//               cond the change of H v under four moves of T's rounding (measured once, at the coarsest
//               rung's u, and scaled by u_T/u).
//   identity    wᵀ(H v) = vᵀ(H w) from the rung's own H v and H w: no differences.
// Each check runs in its own CheckScope (its own seconds; the shared oracle's under smoothness) and
// under the caller's deadline.
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "bpcheck/random.hpp"
#include "bpcheck/verify/hvp.hpp"
#include "hvp_impl.hpp"
#include "rounding_bound.hpp"
#include "verdict.hpp"
#include "verify_engine.hpp"

namespace bpcheck::hvp_detail {

namespace {

using verify_detail::Evidence;
using verify_detail::Judgement;

double as_double(const mp100& x) { return x.convert_to<double>(); }

template <class T>
Vector<mp100> own_hvp(const Network<mp100>& net, const Batch<mp100>& batch, const Vector<mp100>& d) {
  const Network<T> n = net.template rebind<T>();
  const Gradient<T> g = hessian_vector_product(
      n, matrix_cast<T>(batch.inputs), Targets<T>{matrix_cast<T>(batch.targets.values), batch.targets.classes},
      vector_cast<T>(d));
  Vector<mp100> out(net.parameter_count());
  Index at = 0;
  for (const auto& l : g.layers)
    for (Index i = 0; i < l.size(); ++i) out(at++) = scalar_cast<mp100>(l(i));
  return out;
}

/// Each parameter's block: its layer, name and place, for the worst entries.
struct Place {
  std::size_t layer;
  std::string name;
  Index row, col, block_start, block_size;
  bool is_vector;
};

std::vector<Place> places(const Network<mp100>& net) {
  std::vector<Place> out;
  Index offset = 0;
  for (std::size_t k = 0; k < net.depth(); ++k) {
    for (const auto& b : net.layer(k).parameter_blocks())
      for (Index i = 0; i < b.size(); ++i)
        out.push_back({k, b.name, b.is_vector ? i : i % b.rows, b.is_vector ? 0 : i / b.rows, offset + b.offset, b.size(),
                       b.is_vector});
    offset += net.layer(k).parameter_count();
  }
  return out;
}

std::string where_of(const Place& p) {
  return p.is_vector ? fmt::format("(Hv) layer {} {}[{}]", p.layer, p.name, p.row)
                : fmt::format("(Hv) layer {} {}[{},{}]", p.layer, p.name, p.row, p.col);
}


}  // namespace

std::vector<CheckResult> network_second_order_checks(const Network<mp100>& net, const Batch<mp100>& batch,
                                                     const VerifyOptions& opt, const std::string& subject,
                                                     const NetworkHvp& given) {
  using std::abs;
  using verify_detail::CheckScope;
  std::vector<CheckResult> out;
  const Index P = net.parameter_count();
  if (P == 0) return out;
  const verify_detail::Tolerances tol = verify_detail::Tolerances::from(opt);
  const NetworkHvp hvp = given ? given : NetworkHvp([&net, &batch](const std::string& p, const Vector<mp100>& d) {
    if (p == "float") return own_hvp<float>(net, batch, d);
    if (p == "double") return own_hvp<double>(net, batch, d);
    return own_hvp<mp100>(net, batch, d);
  });
  const auto wants = [&opt](const std::string& p) {
    return std::find(opt.precisions.begin(), opt.precisions.end(), p) != opt.precisions.end();
  };
  const std::uint64_t seed = opt.seed ^ 0x5851f42d4c957f2dULL;
  Random rng(seed);
  Vector<mp100> v(P), w(P);  // float-exact: the same directions on every rung
  for (Index i = 0; i < P; ++i) v(i) = mp100(float(rng.symmetric()));
  for (Index i = 0; i < P; ++i) w(i) = mp100(float(rng.symmetric()));

  // The oracle, shared by every check below and timed under the smoothness check that needs all of it:
  // mp100 gradients at θ and θ ± h v, the mp100 H v and H w (one pass of two lanes), and their changes
  // under moves of relative u, the coarsest rung asked for (five passes of two lanes). A change under
  // a move of u is linear in u up to O(u²): the other rungs take it scaled by u_T / u, which keeps the
  // coarse rung's O(u²) part (a wider bound, never a narrower one).
  CheckScope smooth("second-order smoothness", subject, "mp100", opt.seed);
  const mp100 h = ldexp(mp100(1), -150);  // h · g‴ ≈ 1e-45: far below the kink fraction (as the layers')
  const auto gradient_at = [&](int sign) {
    verify_detail::check_deadline();
    Network<mp100> moved = net;
    moved.set_parameters(net.parameters() + sign * h * v);
    const Gradient<mp100> g = moved.gradient(batch.inputs, batch.targets, InputGradient::skip);
    Vector<mp100> flat(P);
    Index at = 0;
    for (const auto& l : g.layers) flat.segment(at, l.size()) = l, at += l.size();
    return flat;
  };
  const Vector<mp100> gp = gradient_at(1), g0 = gradient_at(0), gm = gradient_at(-1);
  const Vector<mp100> fd = (gp - gm) / (2 * h);
  const int jobs = opt.threads;
  const mp100 u_mp = scalar_cast<mp100>(unit_roundoff<mp100>());
  const mp100 u_moves = wants("float")    ? scalar_cast<mp100>(unit_roundoff<float>())
                        : wants("double") ? scalar_cast<mp100>(unit_roundoff<double>())
                                          : u_mp;
  Matrix<mp100> vw(P, 2);
  vw << v, w;
  // Moves of float's u run on dual<double>: the changes they make (~1e-8 relative) keep eight digits
  // there, and double's own rounding (1e-16 of the terms) is far below float's bound. Anything not
  // finite or thrown there, and every finer u, runs on dual<mp100>.
  using boost::multiprecision::isfinite;
  const auto finite = [](const Matrix<mp100>& x) {
    return std::all_of(x.data(), x.data() + x.size(), [](const mp100& y) { return isfinite(y); });
  };
  HvpMoves moves;
  Matrix<mp100> own_mp;  // the mp100 H [v w]
  Index oracle_evaluations = 3;
  if (wants("float")) {
    try {
      moves = hvp_moves<double>(net, batch, vw, u_moves, seed, jobs);
      oracle_evaluations += moves.evaluations;
      if (!finite(moves.h) || !finite(moves.cond)) moves = {};
    } catch (const std::exception&) {
      moves = {};  // a layer that does not run on dual<double>: the moves run on dual<mp100>
    }
  }
  if (moves.h.size() == 0) {
    moves = hvp_moves<mp100>(net, batch, vw, u_moves, seed, jobs);
    oracle_evaluations += moves.evaluations;
    own_mp = moves.h;
  } else {
    verify_detail::check_deadline();
    const Vector<dual<mp100>> g = dual_backprop(net, batch.inputs, batch.targets, vw);
    own_mp.resize(P, 2);
    for (Index l = 0; l < 2; ++l)
      for (Index i = 0; i < P; ++i) own_mp(i, l) = g(i).d[std::size_t(l)];
    ++oracle_evaluations;
  }
  // S_i = Σ_j |H_ij v_j| where affordable, else |H v|
  const Vector<mp100> terms = P <= hvp_terms_limit ? hvp_terms(net, batch, v, jobs, oracle_evaluations)
                                                   : Vector<mp100>(own_mp.col(0).cwiseAbs());
  const mp100 eps = scalar_traits<mp100>::epsilon();
  Vector<mp100> oracle_error(P);
  {
    CheckResult& r = smooth.r;
    r.metric = "one-sided derivatives of the gradient along v that disagree";
    r.formula = fmt::format("(g(θ + hv) − g(θ))/h against (g(θ) − g(θ − hv))/h, h = 2⁻¹⁵⁰, in mp100: beyond {:g} of "
                            "their size, the gradient has a kink along v here",
                            tol.second_order_kink_fraction);
    r.threshold = 1;
    r.evaluations = std::size_t(oracle_evaluations);
    Evidence e;
    e.what = "the gradient is smooth along v here";
    e.exact_rung = true;
    for (Index i = 0; i < P; ++i) {
      const mp100 right = (gp(i) - g0(i)) / h, left = (g0(i) - gm(i)) / h;
      const mp100 rounding = 4 * eps * (abs(gp(i)) + abs(g0(i)) + abs(gm(i)) + terms(i) * h) / h;
      oracle_error(i) = rounding + h * abs(right - left);
      if (!e.kink &&
          abs(right - left) > mp100(tol.second_order_kink_fraction) * (abs(right) + abs(left) + terms(i)) + 4 * rounding) {
        const auto pl = places(net)[std::size_t(i)];
        e = Evidence::of_kink(fmt::format("the gradient has a kink along v at layer {} {}: one-sided second "
                                          "derivatives disagree, so there is no Hessian to check here",
                                          pl.layer, pl.name));
        r.value = 1;
        WorstEntry we;
        we.block = pl.name;
        we.row = i;
        we.where = where_of(pl);
        we.expected = "left " + bpcheck::to_string(left);
        we.actual = "right " + bpcheck::to_string(right);
        we.abs_error = as_double(mp100(abs(right - left)));
        r.worst.push_back(std::move(we));
      }
    }
    verify_detail::apply(r, verify_detail::judge(e, tol));
    if (r.verdict == Verdict::pass) r.message = "the gradient is smooth along v here";
    const bool stop = r.verdict != Verdict::pass;
    out.push_back(smooth.done());
    if (stop) return out;
  }

  Index n = net.output_size() + batch.inputs.cols();
  for (std::size_t k = 0; k < net.depth(); ++k) n += 2 * (net.layer(k).input_size() + net.layer(k).output_size());
  const std::vector<Place> where = places(net);
  // A_b: per block, the largest terms or |H v|
  Vector<mp100> A(P);
  for (Index i = 0; i < P;) {
    const Place& p = where[std::size_t(i)];
    mp100 most(0);
    for (Index j = p.block_start; j < p.block_start + p.block_size; ++j)
      most = std::max({most, terms(j), mp100(abs(fd(j)))});
    for (Index j = p.block_start; j < p.block_start + p.block_size; ++j) A(j) = most;
    i = p.block_start + p.block_size;
  }
  const mp100 K(opt.rounding_factor);
  const mp100 tolerance = mp100_tolerance(opt.mp100_tolerance);
  const auto all_finite = [P](const Vector<mp100>& x) {
    return x.size() == P && std::all_of(x.begin(), x.end(), [](const mp100& y) { return isfinite(y); });
  };
  bool wrong_backward = false, wrong_identity = false;
  for (const std::string prec : {"mp100", "float", "double"}) {
    const bool report = wants(prec);
    if (prec != "mp100" && !report) continue;
    const bool is_mp = prec == "mp100";
    const mp100 u_T = prec == "float" ? scalar_cast<mp100>(unit_roundoff<float>())
                      : prec == "double" ? scalar_cast<mp100>(unit_roundoff<double>())
                                         : u_mp;
    const double rung_digits = prec == "float" ? 9 : prec == "double" ? 17 : 102;
    const mp100 floor = prec == "float"    ? underflow_floor<float>(mp100(n + P), A.maxCoeff() + 1, opt.rounding_factor)
                        : prec == "double" ? underflow_floor<double>(mp100(n + P), A.maxCoeff() + 1, opt.rounding_factor)
                                           : mp100(0);
    const Vector<mp100> cond_v = moves.cond.col(0) * (u_T / u_moves), cond_w = moves.cond.col(1) * (u_T / u_moves);
    // The rung's H d: in mp100 the oracle's own passes are the network's backward on dual<mp100>.
    const auto rung_hvp = [&](Index lane, const Vector<mp100>& d) -> Vector<mp100> {
      if (is_mp && !given) return own_mp.col(lane);
      return hvp(prec, d);
    };
    // A throw of the rung's backward on dual numbers is the check's verdict; the identity needs both.
    const auto threw = [&](CheckScope& c, const std::exception& e) {
      verify_detail::apply(c.r, verify_detail::judge(Evidence::of_throw(std::string("the network's backward on dual "
                                                                                     "numbers threw: ") + e.what()),
                                                     tol));
      if (report) out.push_back(c.done());
    };
    Vector<mp100> Hv, Hw;
    {
      CheckScope c("second-order backward", subject, prec, opt.seed);
      CheckResult& r = c.r;
      try {
        Hv = rung_hvp(0, v);
      } catch (const std::bad_alloc&) {
        throw;
      } catch (const std::exception& e) {
        threw(c, e);
        continue;
      }
      const bool finite = all_finite(Hv);
      r.metric = "max |Hv_backward − Hv_oracle| / bound";
      r.formula = std::string("bound = ") + (is_mp ? "tol A + " : "") +
                  "K (n + 2) u_T A + K cond + 4 · oracle error + floor; A the block's largest Σ_j |H_ij v_j| or |H v|, "
                  "cond the change of the mp100 H v under T's rounding of θ, X, v and the activations; oracle: central "
                  "differences of mp100 gradients (h = 2⁻¹⁵⁰)";
      r.threshold = 1;
      Evidence e;
      e.what = "the network's H v (its backward differentiated along v)";
      e.precision = prec;
      e.exact_rung = is_mp;
      e.rung_digits = rung_digits;
      e.reference_wrong = !is_mp && wrong_backward;
      e.value_finite = finite;
      std::vector<std::pair<double, Index>> ratios;
      double worst_rel = 0;
      if (finite) {
        for (Index i = 0; i < P; ++i) {
          const mp100 err = abs(Hv(i) - fd(i));
          const mp100 bound = (is_mp ? tolerance * A(i) : mp100(0)) + K * (n + 2) * u_T * A(i) + K * cond_v(i) +
                              4 * oracle_error(i) + floor;
          const double ratio = err == 0 ? 0.0 : bound == 0 ? std::numeric_limits<double>::infinity() : as_double(mp100(err / bound));
          ratios.push_back({ratio, i});
          e.ratio = std::max(e.ratio, ratio);
          if (A(i) > floor) worst_rel = std::max(worst_rel, as_double(mp100(err / A(i))));
          if (!is_mp && !e.gross && ratio > 1) {
            const Place& p = where[std::size_t(i)];
            mp100 block_largest(0);
            for (Index j = p.block_start; j < p.block_start + p.block_size; ++j)
              block_largest = std::max(block_largest, mp100(abs(fd(j))));
            const mp100 gross_floor = boost::multiprecision::sqrt(u_T) * A(i);
            e.gross = verify_detail::gross_error(err, block_largest, &gross_floor, tol.gross_fraction);
          }
        }
      } else {
        e.ratio = std::numeric_limits<double>::infinity();
      }
      e.digits = worst_rel == 0 ? rung_digits : std::min(rung_digits, std::max(0.0, -std::log10(worst_rel)));
      r.value = e.ratio;
      r.digits = e.digits;
      std::stable_sort(ratios.begin(), ratios.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      for (std::size_t k = 0; k < std::min<std::size_t>(5, ratios.size()) && ratios[k].first > 1; ++k) {
        const Index i = ratios[k].second;
        const Place& p = where[std::size_t(i)];
        WorstEntry we;
        we.block = p.name;
        we.row = i;
        we.where = where_of(p);
        we.expected = bpcheck::to_string(fd(i));
        we.actual = bpcheck::to_string(Hv(i));
        we.abs_error = as_double(mp100(abs(Hv(i) - fd(i))));
        we.rel_error = A(i) > 0 ? as_double(mp100(abs(Hv(i) - fd(i)) / A(i))) : 0;
        r.worst.push_back(std::move(we));
      }
      const Judgement j = verify_detail::judge(e, tol);
      verify_detail::apply(r, j);
      if (j.verdict == Verdict::fail && is_mp)
        r.message += ": the network's backward is right in value but does not differentiate correctly along v";
      if (is_mp) wrong_backward = j.verdict == Verdict::fail;
      r.evaluations = 1;
      if (report) out.push_back(c.done());
    }
    {
      CheckScope c("second-order identity", subject, prec, opt.seed);
      CheckResult& r = c.r;
      try {
        Hw = rung_hvp(1, w);
      } catch (const std::bad_alloc&) {
        throw;
      } catch (const std::exception& e) {
        threw(c, e);
        continue;
      }
      const bool finite = all_finite(Hv) && all_finite(Hw);
      const mp100 lhs = w.dot(Hv), rhs = v.dot(Hw);
      const mp100 err = abs(lhs - rhs);
      const mp100 scale = w.cwiseAbs().dot(Hv.cwiseAbs()) + v.cwiseAbs().dot(Hw.cwiseAbs());
      const mp100 cond_terms = w.cwiseAbs().dot(cond_v) + v.cwiseAbs().dot(cond_w);
      const mp100 bound = (is_mp ? tolerance * scale : mp100(0)) + K * (2 * n + 2) * u_T * scale + K * cond_terms + floor;
      r.metric = "|wᵀ(Hv) − vᵀ(Hw)| / bound";
      r.formula = std::string("bound = ") + (is_mp ? "tol (|w|ᵀ|Hv| + |v|ᵀ|Hw|) + " : "") +
                  "K (2n + 2) u_T (|w|ᵀ|Hv| + |v|ᵀ|Hw|) + K (|w|ᵀ cond_v + |v|ᵀ cond_w) + floor; H v, H w from the "
                  "network's backward on dual numbers, no differences";
      r.threshold = 1;
      r.value = !finite ? std::numeric_limits<double>::infinity()
                : err == 0 ? 0.0
                : bound == 0 ? std::numeric_limits<double>::infinity()
                             : as_double(mp100(err / bound));
      r.digits = err == 0 ? rung_digits : std::max(0.0, -std::log10(as_double(mp100(err / std::max(scale, mp100(1e-300))))));
      Evidence e;
      e.what = "wᵀ(Hv) = vᵀ(Hw) for the network";
      e.precision = prec;
      e.exact_rung = is_mp;
      e.identity = !is_mp;
      e.ratio = r.value;
      e.digits = r.digits;
      e.rung_digits = rung_digits;
      e.reference_wrong = !is_mp && wrong_identity;
      e.value_finite = finite;
      const Judgement j = verify_detail::judge(e, tol);
      verify_detail::apply(r, j);
      if (j.verdict != Verdict::pass)
        r.message += fmt::format(" (wᵀ(Hv) {:.17g} vs vᵀ(Hw) {:.17g}): the Hessian the network's backward "
                                 "differentiates to is not symmetric",
                                 as_double(lhs), as_double(rhs));
      if (is_mp) wrong_identity = j.verdict == Verdict::fail;
      r.evaluations = 1;  // H w; H v is the backward check's
      if (report) out.push_back(c.done());
    }
  }
  return out;
}

}  // namespace bpcheck::hvp_detail
