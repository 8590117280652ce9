// bpcheck example [--json] [--no-timings]: the built-in example network computed in float, double and mp100.
//
// Per parameter block it reports significant digits of agreement, d = min over entries of
// −log10(|a − b| / max(|b|, tiny)) with tiny the smallest normal double, capped at the digits the
// compared rung prints:
//   - float and double backprop against the mp100 backprop of the very same parameters and inputs
//     (the float network's values are rounded from double, so its truth is recomputed from them);
//   - backprop against the explicit Jacobian product ∇ℓᵀ·J_L⋯J_{k+1}·J_θ,k, in each rung.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/verify.hpp"
#include "commands.hpp"

namespace bpcheck::cli {

namespace {

constexpr std::uint64_t example_seed = 42;
constexpr Index example_samples = 4;

ModelSpec example_spec() {
  return ModelSpec{4, {{"dense", {{"units", 8}}}, {"tanh", {}}, {"dense", {{"units", 3}}}}, "cross_entropy"};
}

/// Digits of agreement of a with b (see the file comment), both moved exactly into mp100.
template <class A, class B>
double agreeing_digits(const Vector<A>& a, const Vector<B>& b, int cap) {
  using std::abs;
  using std::log10;
  const mp100 tiny(std::numeric_limits<double>::min());
  double digits = cap;
  for (Index i = 0; i < a.size(); ++i) {
    const mp100 x = scalar_cast<mp100>(a(i)), y = scalar_cast<mp100>(b(i));
    const mp100 scale = std::max(mp100(abs(y)), tiny);
    const mp100 r = abs(mp100(x - y)) / scale;
    if (r > 0) digits = std::min(digits, scalar_cast<double>(mp100(-log10(r))));
  }
  return digits;
}

/// One rung's network, batch, backprop and explicit product, and the mp100 truth for its values.
template <class T>
struct RungResult {
  Network<T> net;
  Batch<T> batch;
  Gradient<T> backprop, explicit_product;
  Gradient<mp100> truth;

  explicit RungResult(const ModelSpec& spec) : net(spec) {
    net.initialize(example_seed);
    batch = generate_batch(net, example_seed, example_samples);
    backprop = net.gradient(batch.inputs, batch.targets);
    explicit_product = net.explicit_gradient(batch.inputs, batch.targets);
    const Network<mp100> exact = net.template rebind<mp100>();
    Targets<mp100> t;
    t.classes = batch.targets.classes;
    t.values = matrix_cast<mp100>(batch.targets.values);
    truth = exact.gradient(matrix_cast<mp100>(batch.inputs), t);
  }

  Vector<T> block(const Gradient<T>& g, std::size_t k, const ParameterBlock& b) const {
    return g.layers[k].segment(b.offset, b.size());
  }
};

struct BlockDigits {
  std::size_t layer;
  ParameterBlock block;
  double float_vs_mp100, double_vs_mp100;
  double explicit_float, explicit_double, explicit_mp100;
};

double rounded(double x) { return std::round(x * 100) / 100; }

std::string shape_text(const ParameterBlock& b) {
  return b.is_vector ? std::to_string(b.rows) : std::to_string(b.rows) + "x" + std::to_string(b.cols);
}

int run_example(bool as_json, bool no_timings, std::ostream& out) {
  const ModelSpec spec = example_spec();
  const RungResult<float> f(spec);
  const RungResult<double> d(spec);
  const RungResult<mp100> m(spec);
  // The same model, parameters and samples through every check of `bpcheck verify`.
  VerifyOptions verify_options;
  verify_options.seed = example_seed;
  verify_options.batch = example_samples;
  VerificationReport verdict = verify_network(NetworkSubject{spec, {}, {}}, verify_options);
  if (no_timings)  // wall-clock times are the only numbers that differ between runs
    for (auto& c : verdict.checks) c.seconds = 0;
  constexpr int float_cap = scalar_traits<float>::print_digits;
  constexpr int double_cap = scalar_traits<double>::print_digits;
  constexpr int mp_cap = scalar_traits<mp100>::print_digits;

  std::vector<BlockDigits> rows;
  for (std::size_t k = 0; k < m.net.depth(); ++k) {
    for (const auto& b : m.net.layer(k).parameter_blocks()) {
      rows.push_back({k, b,
                      agreeing_digits(f.block(f.backprop, k, b), f.truth.layers[k].segment(b.offset, b.size()).eval(),
                                      float_cap),
                      agreeing_digits(d.block(d.backprop, k, b), d.truth.layers[k].segment(b.offset, b.size()).eval(),
                                      double_cap),
                      agreeing_digits(f.block(f.backprop, k, b), f.block(f.explicit_product, k, b), float_cap),
                      agreeing_digits(d.block(d.backprop, k, b), d.block(d.explicit_product, k, b), double_cap),
                      agreeing_digits(m.block(m.backprop, k, b), m.block(m.explicit_product, k, b), mp_cap)});
    }
  }

  if (as_json) {
    nlohmann::ordered_json j;
    j["model"] = model_spec_to_json(spec);
    j["seed"] = example_seed;
    j["samples"] = example_samples;
    j["loss"] = {{"float", bpcheck::to_string(f.backprop.loss)},
                 {"double", bpcheck::to_string(d.backprop.loss)},
                 {"mp100", bpcheck::to_string(m.backprop.loss)}};
    j["metric"] = "min over entries of -log10(|a - b| / max(|b|, 2.2e-308)), capped at the rung's printed digits";
    auto blocks = nlohmann::ordered_json::array();
    for (const auto& r : rows) {
      nlohmann::ordered_json e;
      e["layer"] = r.layer;
      e["name"] = r.block.name;
      e["shape"] = r.block.is_vector ? nlohmann::ordered_json::array({r.block.rows})
                                     : nlohmann::ordered_json::array({r.block.rows, r.block.cols});
      e["digits_vs_mp100"] = {{"float", rounded(r.float_vs_mp100)}, {"double", rounded(r.double_vs_mp100)}};
      e["digits_backprop_vs_explicit"] = {{"float", rounded(r.explicit_float)},
                                          {"double", rounded(r.explicit_double)},
                                          {"mp100", rounded(r.explicit_mp100)}};
      blocks.push_back(std::move(e));
    }
    j["blocks"] = std::move(blocks);
    j["gradients"] = {{"float", gradient_to_json(f.net, f.backprop)},
                      {"double", gradient_to_json(d.net, d.backprop)},
                      {"mp100", gradient_to_json(m.net, m.backprop)}};
    j["verification"] = to_json(verdict);
    out << j.dump(2) << '\n';
    return verdict.exit_code();
  }

  std::ostringstream os;
  os << "bpcheck example: input 4 -> dense 8 -> tanh -> dense 3, cross_entropy; seed " << example_seed << ", "
     << example_samples << " generated samples\n";
  os << "loss (mp100): " << bpcheck::to_string(m.backprop.loss) << "\n\n";
  os << "significant digits of agreement of the backprop gradient, min over entries of -log10(relative error)\n";
  os << std::left << std::setw(14) << "" << std::setw(18) << "   vs mp100 truth" << "   vs explicit Jacobian product\n";
  os << std::setw(14) << "block" << std::right << std::setw(7) << "float" << std::setw(8) << "double" << "   "
     << std::setw(7) << "float" << std::setw(8) << "double" << std::setw(8) << "mp100" << '\n';
  os << std::fixed << std::setprecision(1);
  for (const auto& r : rows) {
    const std::string name = "layer " + std::to_string(r.layer) + " " + r.block.name + " " + shape_text(r.block);
    os << std::left << std::setw(14) << name << std::right << std::setw(7) << r.float_vs_mp100 << std::setw(8)
       << r.double_vs_mp100 << "   " << std::setw(7) << r.explicit_float << std::setw(8) << r.explicit_double
       << std::setw(8) << r.explicit_mp100 << '\n';
  }
  os << "(float carries " << float_cap << " printed digits, double " << double_cap << ", mp100 " << mp_cap
     << "; unit roundoff " << std::scientific << std::setprecision(1) << unit_roundoff<float>() << ", "
     << unit_roundoff<double>() << ")\n";
  // The last block's gradient in each rung, in full; `bpcheck gradient` prints every block.
  const auto& last = rows.back();
  os << "\ngradient of layer " << last.layer << " " << last.block.name << " (backprop):\n";
  const auto print = [&os](const char* rung, const auto& values) {
    os << "  " << std::left << std::setw(7) << rung << std::right;
    for (Index i = 0; i < values.size(); ++i) os << (i ? "\n         " : "") << bpcheck::to_string(values(i));
    os << '\n';
  };
  print("float", f.block(f.backprop, last.layer, last.block));
  print("double", d.block(d.backprop, last.layer, last.block));
  print("mp100", m.block(m.backprop, last.layer, last.block));
  std::size_t failed = 0;
  for (const auto& c : verdict.checks) failed += c.verdict == Verdict::fail || c.verdict == Verdict::unstable;
  os << "\nverification (bpcheck verify on this model, its layers, float/double/mp100): " << verdict.checks.size()
     << " checks, " << failed << " failed: " << (verdict.passed() ? "all gradients correct" : "WRONG GRADIENT")
     << '\n';
  out << os.str();
  if (!verdict.passed()) out << '\n' << format_table(verdict);
  return verdict.exit_code();
}

}  // namespace

Command add_example_command(CLI::App& parent) {
  auto as_json = std::make_shared<bool>(false), no_timings = std::make_shared<bool>(false);
  CLI::App* app = parent.add_subcommand(
      "example", "Compute a built-in example network in float, double and mp100 and compare the gradients");
  app->add_flag("--json", *as_json, "print the comparison as JSON instead of a table");
  app->add_flag("--no-timings", *no_timings, "write 0 for every measured time, so that output is byte-identical");
  return {app, [as_json, no_timings](std::ostream& out) { return run_example(*as_json, *no_timings, out); }};
}

}  // namespace bpcheck::cli
