// The generated layers' op lists: from drawn integers to a valid composition, and back to text.
#include "generated_layers.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace bpcheck::generated {

namespace {

constexpr std::array<double, 8> constants{1, 0.5, 2, -1, 1.5, -0.5, 3, -2};  // all |c| ≥ 1/2
constexpr std::array<double, 8> parameters{0.5, 1.25, -0.75, 2, -1.5, 0.25, 1, -1};
constexpr int max_parameters = 3;

/// What interpret() knows of a value: its width, and a lower bound that holds wherever the verifier
/// moves X or θ (it comes from the ops alone: exp, σ, softmax … are positive at any input).
struct Known {
  Index width = 1;
  bool positive = false;
  double lo = -INFINITY;  ///< a lower bound (−∞: none)
};

Known positive(Index width, double lo = 0) { return {width, true, std::max(lo, 0.0)}; }

}  // namespace

std::string op_name(Op op) {
  switch (op) {
    case Op::add_c: return "+ c";
    case Op::mul_c: return "× c";
    case Op::tanh: return "tanh";
    case Op::sigmoid: return "sigmoid";
    case Op::exp: return "exp";
    case Op::softplus: return "softplus";
    case Op::erf: return "erf";
    case Op::log1p: return "log1p";
    case Op::sqrt: return "sqrt";
    case Op::div_c: return "÷ c";
    case Op::softmax: return "softmax";
    case Op::log_softmax: return "log_softmax";
    case Op::sum: return "sum";
    case Op::mean: return "mean";
    case Op::mix: return "mix";
    case Op::add_p: return "+ θ";
    case Op::mul_p: return "× θ";
    case Op::add: return "+";
    case Op::sub: return "−";
    case Op::mul: return "×";
    case Op::div: return "÷";
    case Op::count: break;
  }
  return "?";
}

std::string style_name(Style s) {
  switch (s) {
    case Style::recompute: return "recompute from X";
    case Style::read_y: return "read Y";
    case Style::log_space: return "log-space";
  }
  return "?";
}

std::string mutation_name(Mutation m) {
  switch (m) {
    case Mutation::none: return "none";
    case Mutation::drop_factor: return "chain-rule factor dropped";
    case Mutation::flip_sign: return "sign flipped";
    case Mutation::transpose: return "matrix transposed";
    case Mutation::offset: return "factor off by 1e-6 relative";
  }
  return "?";
}

Description interpret(Index width, Style style, const std::vector<RawStep>& raw) {
  Description d;
  d.width = width;
  d.style = style;
  std::vector<Known> known{{width, false, -INFINITY}};
  for (const RawStep& r : raw) {
    Step s;
    s.op = Op(((r.op % int(Op::count)) + int(Op::count)) % int(Op::count));
    const int k = int(known.size());
    s.a = k - 1 - (std::abs(r.pick) % k);
    const auto latest = [&](auto fits) {
      std::vector<int> found;
      for (int i = k - 1; i >= 0; --i)
        if (fits(known[std::size_t(i)])) found.push_back(i);
      return found;
    };
    const double c = constants[std::size_t(std::abs(r.constant) % int(constants.size()))];
    if (s.op == Op::log1p || s.op == Op::sqrt) {
      if (!known[std::size_t(s.a)].positive) {
        const auto pos = latest([](const Known& v) { return v.positive; });
        if (pos.empty())
          s.op = Op::exp;
        else
          s.a = pos.front();
      }
    }
    const Known A = known[std::size_t(s.a)];
    if (s.op == Op::div) {
      const auto den = latest([&](const Known& v) { return v.width == A.width && v.lo >= 0.5; });
      if (den.empty())
        s.op = Op::div_c;
      else
        s.b = den[std::size_t(std::abs(r.pick2)) % den.size()];
    }
    if (s.op == Op::add || s.op == Op::sub || s.op == Op::mul) {
      const auto same = latest([&](const Known& v) { return v.width == A.width; });
      s.b = same[std::size_t(std::abs(r.pick2)) % same.size()];
    }
    if ((s.op == Op::add_p || s.op == Op::mul_p) && int(d.theta.size()) >= max_parameters)
      s.op = s.op == Op::add_p ? Op::add_c : Op::mul_c;
    if (s.op == Op::add_p || s.op == Op::mul_p) {
      s.param = int(d.theta.size());
      d.theta.push_back(parameters[std::size_t(std::abs(r.constant) % int(parameters.size()))]);
    }
    if (s.op == Op::add_c || s.op == Op::mul_c || s.op == Op::div_c) s.c = c;
    if (s.op == Op::mix) {
      // entries in {−1, −3/4, …, 1}, from the drawn constant: not symmetric in general
      const Index n = A.width;
      s.matrix.resize(std::size_t(n * n));
      for (Index j = 0; j < n; ++j)
        for (Index i = 0; i < n; ++i)
          s.matrix[std::size_t(i + j * n)] = double((std::abs(r.constant) * 5 + i * 7 + j * 3 + i * j) % 9 - 4) / 4;
    }
    Known out{A.width, false, -INFINITY};
    const Known B = s.b >= 0 ? known[std::size_t(s.b)] : Known{};
    switch (s.op) {
      case Op::add_c:
        if (A.positive && c > 0) out = positive(A.width, A.lo + c);
        break;
      case Op::mul_c:
        if (A.positive && c > 0) out = positive(A.width, A.lo * c);
        break;
      case Op::div_c:
        if (A.positive && c > 0) out = positive(A.width, A.lo / c);
        break;
      case Op::tanh:
      case Op::erf:
        out.lo = -1;
        if (A.positive) out = positive(A.width);
        break;
      case Op::sigmoid:
      case Op::exp:
      case Op::softplus:
      case Op::softmax: out = positive(A.width); break;
      case Op::log1p: out = positive(A.width, std::log1p(A.lo)); break;
      case Op::sqrt: out = positive(A.width, std::sqrt(A.lo)); break;
      case Op::sum:
        out = A.positive ? positive(1, A.lo * double(A.width)) : Known{1, false, -INFINITY};
        break;
      case Op::mean: out = A.positive ? positive(1, A.lo) : Known{1, false, -INFINITY}; break;
      case Op::add:
        if (A.positive && B.positive) out = positive(A.width, A.lo + B.lo);
        break;
      case Op::mul:
        if (A.positive && B.positive) out = positive(A.width, A.lo * B.lo);
        break;
      case Op::div:
        if (A.positive) out = positive(A.width);
        break;
      default: break;  // log_softmax, mix, sub, and the parameter ops (the verifier moves θ): no bound
    }
    known.push_back(out);
    d.steps.push_back(std::move(s));
  }
  for (const Known& v : known) d.widths.push_back(v.width);
  return d;
}

std::string describe(const Description& d) {
  std::string s = fmt::format("{} feature(s), backward style: {}", d.width, style_name(d.style));
  if (!d.theta.empty()) {
    s += ", θ = [";
    for (std::size_t j = 0; j < d.theta.size(); ++j) s += fmt::format("{}{}", j ? ", " : "", d.theta[j]);
    s += "]";
  }
  if (d.mutation != Mutation::none)
    s += fmt::format(", mutant: {} at v{}", mutation_name(d.mutation), d.mutated_step + 1);
  s += "\n";
  for (std::size_t k = 0; k < d.steps.size(); ++k) {
    const Step& t = d.steps[k];
    const std::string a = fmt::format("v{}", t.a), b = fmt::format("v{}", t.b);
    std::string rhs;
    switch (t.op) {
      case Op::add_c: rhs = fmt::format("{} + {}", a, t.c); break;
      case Op::mul_c: rhs = fmt::format("{} × {}", a, t.c); break;
      case Op::div_c: rhs = fmt::format("{} ÷ {}", a, t.c); break;
      case Op::add_p: rhs = fmt::format("{} + θ{}", a, t.param); break;
      case Op::mul_p: rhs = fmt::format("{} × θ{}", a, t.param); break;
      case Op::add: rhs = a + " + " + b; break;
      case Op::sub: rhs = a + " − " + b; break;
      case Op::mul: rhs = a + " ⊙ " + b; break;
      case Op::div: rhs = a + " ÷ " + b; break;
      case Op::mix: {
        rhs = "M " + a + ", M = [";
        const Index n = d.widths[std::size_t(t.a)];
        for (Index i = 0; i < n; ++i) {
          for (Index j = 0; j < n; ++j) rhs += fmt::format("{}{}", j ? " " : "", t.matrix[std::size_t(i + j * n)]);
          rhs += i + 1 < n ? "; " : "]";
        }
        break;
      }
      default: rhs = fmt::format("{}({})", op_name(t.op), a);
    }
    s += fmt::format("  v{} = {}    [{} feature(s)]\n", k + 1, rhs, d.widths[k + 1]);
  }
  return s;
}

std::vector<std::pair<int, Mutation>> applicable_mutations(const Description& d) {
  std::vector<std::pair<int, Mutation>> out;
  for (int k = 0; k < int(d.steps.size()); ++k) {
    const Op op = d.steps[std::size_t(k)].op;
    out.emplace_back(k, Mutation::flip_sign);
    out.emplace_back(k, Mutation::offset);
    const bool has_factor = !(op == Op::add_c || op == Op::sum || op == Op::add || op == Op::sub || op == Op::add_p);
    if (has_factor) out.emplace_back(k, Mutation::drop_factor);
    if (op == Op::mix) out.emplace_back(k, Mutation::transpose);
  }
  return out;
}

}  // namespace bpcheck::generated
