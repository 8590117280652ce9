// The 16-bit rungs bf16 and fp16 (bpcheck/float16.hpp): the formats' numbers, rounding and limits,
// text that reads back, the two accumulation policies of matrix products, a network's gradient against
// mp100 within the rung's bound, verify and compare on them, and the command line.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/layer.hpp"
#include "bpcheck/verify/compare.hpp"
#include "bpcheck/verify/verify.hpp"
#include "cli_run.hpp"
#include "mutants.hpp"

namespace {

using bpcheck::bf16;
using bpcheck::fp16;
using bpcheck::Index;
using bpcheck::Matrix;
using bpcheck::mp100;
using bpcheck::Vector;
using nlohmann::json;

/// Every finite number of format F, from its 65536 bit patterns.
template <class T>
std::vector<T> every_finite_number() {
  std::vector<T> out;
  for (std::uint32_t bits = 0; bits < 65536; ++bits) {
    typename T::storage s;
    const std::uint16_t b = std::uint16_t(bits);
    std::memcpy(static_cast<void*>(&s), &b, 2);
    const T x(s);
    if (std::isfinite(x.value())) out.push_back(x);
  }
  return out;
}

const char* const small_mlp = R"({"input_size": 3, "layers": [{"type": "dense", "units": 4}, {"type": "tanh"},
  {"type": "dense", "units": 2}], "loss": "cross_entropy"})";

/// max |g_T − g| / max |g| over the whole gradient, g computed in mp100 at the rung's own parameters
/// and inputs (so that only the arithmetic differs).
template <class T>
double gradient_error(const std::string& model, std::uint64_t seed) {
  const auto spec = bpcheck::model_spec_from_json(json::parse(model), "model");
  bpcheck::Network<T> net(spec);
  net.initialize(seed);
  const auto batch = bpcheck::generate_batch(net, seed, 4);
  const auto g = net.gradient(batch.inputs, batch.targets);
  bpcheck::Network<mp100> exact(spec);
  exact.set_parameters(bpcheck::vector_cast<mp100>(net.parameters()));
  bpcheck::Targets<mp100> t;
  t.values = bpcheck::matrix_cast<mp100>(batch.targets.values);
  t.classes = batch.targets.classes;
  const auto ge = exact.gradient(bpcheck::matrix_cast<mp100>(batch.inputs), t);
  mp100 err = 0, most = 0;
  for (std::size_t k = 0; k < ge.layers.size(); ++k)
    for (Index i = 0; i < ge.layers[k].size(); ++i) {
      err = std::max(err, mp100(abs(bpcheck::scalar_cast<mp100>(g.layers[k](i)) - ge.layers[k](i))));
      most = std::max(most, mp100(abs(ge.layers[k](i))));
    }
  return (err / most).convert_to<double>();
}

}  // namespace

TEST_CASE("float16: the formats' limits, unit roundoff and names come from one traits place", "[float16]") {
  CHECK(bpcheck::scalar_name<bf16>() == "bf16");
  CHECK(bpcheck::scalar_name<fp16>() == "fp16");
  CHECK(bpcheck::unit_roundoff<bf16>().value() == std::ldexp(1.0f, -8));
  CHECK(bpcheck::unit_roundoff<fp16>().value() == std::ldexp(1.0f, -11));
  CHECK(int(std::numeric_limits<bf16>::digits) == 8);  // a copy: Eigen declares it without a definition
  CHECK(int(std::numeric_limits<fp16>::digits) == 11);
  CHECK(std::numeric_limits<fp16>::max().value() == 65504.0f);
  CHECK(std::numeric_limits<fp16>::min().value() == std::ldexp(1.0f, -14));
  CHECK(std::numeric_limits<fp16>::denorm_min().value() == std::ldexp(1.0f, -24));
  CHECK(std::numeric_limits<bf16>::max().value() > 3e38f);  // float's range
  // fp16 overflows to ∞ from 65520 (65504 plus half its last place), keeps subnormals
  CHECK(fp16(65519.0).value() == 65504.0f);
  CHECK(std::isinf(fp16(65520.0).value()));
  CHECK(std::isinf((fp16(300.0) * fp16(300.0)).value()));
  CHECK(fp16(3 * std::ldexp(1.0, -24)).value() == float(3 * std::ldexp(1.0, -24)));
  CHECK(fp16(std::ldexp(1.0, -26)).value() == 0.0f);
  CHECK(bf16(1e38).value() > 9.9e37f);
}

TEST_CASE("float16: every operation and math function rounds to the format, literals too", "[float16]") {
  // 1 + 2⁻⁹ is 1 in bf16: an expression with a literal rounds like any other
  CHECK((bf16(1) + std::ldexp(1.0, -9)).value() == 1.0f);
  CHECK((bf16(1) + std::ldexp(1.0, -7)).value() == 1.0078125f);
  CHECK((fp16(1) + std::ldexp(1.0, -12)).value() == 1.0f);
  // the math the layers call resolves to float's and rounds once
  using std::erf, std::exp, std::log, std::log1p, std::sqrt, std::tanh, std::expm1, std::erfc;
  const bf16 x(0.3);
  CHECK(tanh(x).value() == bf16(std::tanh(x.value())).value());
  CHECK(exp(x).value() == bf16(std::exp(x.value())).value());
  CHECK(log(x).value() == bf16(std::log(x.value())).value());
  CHECK(erf(x).value() == bf16(std::erf(x.value())).value());
  CHECK(erfc(x).value() == bf16(std::erfc(x.value())).value());
  CHECK(sqrt(x).value() == bf16(std::sqrt(x.value())).value());
  CHECK(log1p(x).value() == bf16(std::log1p(x.value())).value());
  CHECK(expm1(x).value() == bf16(std::expm1(x.value())).value());
  CHECK(tanh(x).value() != std::tanh(x.value()));  // not float's value: rounded
  CHECK(std::isinf(exp(fp16(12)).value()));          // e¹² > 65504
  CHECK(std::isfinite(exp(bf16(12)).value()));
}

TEST_CASE("float16: to_string and from_string round-trip every number of both formats", "[float16][io]") {
  const auto round_trips = []<class T>(T) {
    std::size_t failures = 0;
    for (const T& x : every_finite_number<T>()) {
      const T back = bpcheck::from_string<T>(bpcheck::to_string(x));
      if (!(back.value() == x.value() && std::signbit(back.value()) == std::signbit(x.value()))) ++failures;
    }
    return failures;
  };
  CHECK(every_finite_number<bf16>().size() == 65536 - 256);  // less ±∞ and the NaNs
  CHECK(every_finite_number<fp16>().size() == 65536 - 2048);
  CHECK(round_trips(bf16{}) == 0);
  CHECK(round_trips(fp16{}) == 0);
  // A decimal just above the midpoint of 1 and 1 + 2⁻⁷: through float it would round twice, to 1
  CHECK(bpcheck::from_string<bf16>("1.0039062509313226").value() == 1.0078125f);
  CHECK(bf16(1.0039062509313226).value() == 1.0f);  // the twice-rounded value a literal gets
  CHECK(bpcheck::scalar_cast<bf16>(1.0039062509313226).value() == 1.0078125f);
  CHECK_THROWS_AS(bpcheck::from_string<fp16>("1.5x"), bpcheck::input_error);
}

TEST_CASE("float16: matrix products add up in the format, or in float under Accumulation::float_", "[float16]") {
  // 600 ones: in bf16 the sum stops at 256 (256 + 1 rounds back to 256); in float it is exact.
  for (const Index depth : {Index(600)}) {
    const Matrix<bf16> row = Matrix<bf16>::Constant(1, depth, bf16(1));
    const Matrix<bf16> ones = Matrix<bf16>::Constant(depth, 3, bf16(1));
    const Vector<bf16> column = Vector<bf16>::Constant(depth, bf16(1));
    const Matrix<bf16> big = Matrix<bf16>::Constant(30, depth, bf16(1));
    CHECK(Matrix<bf16>(row * ones)(0, 2).value() == 256.0f);
    CHECK(Vector<bf16>(big * column)(7).value() == 256.0f);
    CHECK(Matrix<bf16>(big * ones)(29, 2).value() == 256.0f);
    CHECK(Matrix<bf16>(ones.transpose() * column)(1, 0).value() == 256.0f);
    const bpcheck::AccumulationScope in_float(bpcheck::Accumulation::float_);
    CHECK(Matrix<bf16>(row * ones)(0, 2).value() == 600.0f);
    CHECK(Vector<bf16>(big * column)(7).value() == 600.0f);
    CHECK(Matrix<bf16>(big * ones)(29, 2).value() == 600.0f);
    CHECK(Matrix<bf16>(ones.transpose() * column)(1, 0).value() == 600.0f);
  }
  // the scope ends: back to the format
  const Matrix<fp16> a = Matrix<fp16>::Constant(1, 3000, fp16(1)), b = Matrix<fp16>::Constant(3000, 1, fp16(1));
  CHECK(Matrix<fp16>(a * b)(0, 0).value() == 2048.0f);
}

TEST_CASE("float16: a network's gradient in bf16 and fp16 is within the rung's rounding, not float's",
          "[float16]") {
  // layer_norm with the registry's default eps (1e-5, a subnormal number of fp16)
  const char* const wider = R"({"input_size": 6, "layers": [{"type": "dense", "units": 5}, {"type": "layer_norm"},
    {"type": "gelu"}, {"type": "dense", "units": 3}, {"type": "softmax"}], "loss": "mse"})";
  for (const char* model : {small_mlp, wider}) {
    for (const std::uint64_t seed : {1u, 2u, 3u}) {
      const double e_bf16 = gradient_error<bf16>(model, seed);
      const double e_fp16 = gradient_error<fp16>(model, seed);
      const double e_float = gradient_error<float>(model, seed);
      INFO(model << " seed " << seed << ": bf16 " << e_bf16 << ", fp16 " << e_fp16 << ", float " << e_float);
      // a few dozen roundings deep: within 64 u of the largest entry on each rung
      CHECK(e_bf16 <= 64 * std::ldexp(1.0, -8));
      CHECK(e_fp16 <= 64 * std::ldexp(1.0, -11));
      // and the rungs really round at 16 bits: far beyond float's error
      CHECK(e_bf16 > 100 * e_float);
      CHECK(e_fp16 > 10 * e_float);
    }
  }
}

namespace {

/// The checks of a report on one precision that did not pass, one line each. `range`: a result beyond
/// the rung's range where mp100's is finite (fp16's 65504) is the rung's range, reported unstable, and
/// left out here.
std::string not_passed(const bpcheck::VerificationReport& r, const std::string& precision, bool range = false) {
  std::string bad;
  for (const auto& c : r.checks)
    if (c.precision == precision && c.verdict != bpcheck::Verdict::pass && c.verdict != bpcheck::Verdict::skipped &&
        !(range && c.verdict == bpcheck::Verdict::unstable &&
          c.message.find("overflowed or is NaN in " + precision) != std::string::npos))
      bad += fmt::format("{} [{}]: {}: {}\n", c.check, c.precision, bpcheck::verdict_name(c.verdict), c.message);
  return bad;
}

bool ran_on(const bpcheck::VerificationReport& r, const std::string& precision) {
  return std::any_of(r.checks.begin(), r.checks.end(), [&](const auto& c) {
    return c.check == (precision == "mp100" ? "backward vs oracle" : "backward vs mp100") && c.precision == precision;
  });
}

}  // namespace

TEST_CASE("float16: constants of the layers are the nearest fp16 values, not 0 (gelu's 0.044715, a norm's eps)",
          "[float16]") {
  // gelu's tanh approximation at x = 1: 0.8412 with its cubic term, 0.8318 without (1.1% apart, fp16's u
  // is 4.9e-4)
  auto gelu = bpcheck::make_layer<fp16>({"gelu", {{"approximate", "tanh"}}}, 1);
  auto exact = bpcheck::make_layer<mp100>({"gelu", {{"approximate", "tanh"}}}, 1);
  const Matrix<fp16> y = gelu.forward(Matrix<fp16>::Constant(1, 1, fp16(1)));
  const Matrix<mp100> y_exact = exact.forward(Matrix<mp100>::Constant(1, 1, mp100(1)));
  const double truth = y_exact(0, 0).convert_to<double>();
  CHECK(std::abs(double(y(0, 0).value()) - truth) <= 4 * std::ldexp(1.0, -11) * truth);
  CHECK(bpcheck::from_string<fp16>("1e-5").value() > 0);
}

TEST_CASE("float16: verify on bf16 and fp16 passes every registered layer, no false alarms", "[float16][verify]") {
  const Index input_size = 4, units = 3, batch = 2;
  for (const auto& type : bpcheck::layer_types()) {
    const bpcheck::OptionKnobs knobs{std::vector<int>(bpcheck::layer_option_knob_count, 0), input_size, units, batch};
    bpcheck::LayerSpec spec{type.name, type.options(knobs)};
    bpcheck::VerifyOptions o;
    o.points = 8;  // two of each distribution: uniform, saturation, wide range, near ties
    o.batch = batch;
    o.precisions = {"mp100", "bf16", "fp16"};
    // every default builds on fp16 (a norm's eps of 1e-5 is rounded to the format once, not formed as 1/10⁵)
    REQUIRE_NOTHROW(bpcheck::make_layer<fp16>(spec, input_size));
    const auto r = bpcheck::verify_layer(spec, input_size, o);
    INFO(type.name << " " << spec.options.dump() << "\n" << bpcheck::format_table(r));
    CHECK(ran_on(r, "bf16"));
    CHECK(ran_on(r, "fp16"));
    CHECK(not_passed(r, "bf16") == "");
    CHECK(not_passed(r, "fp16", true) == "");  // batch_norm's Jacobian at near ties overflows fp16
    CHECK(r.passed());
  }
}

TEST_CASE("float16: the mutant zoo is still caught in mp100 when verify runs a 16-bit rung", "[float16][verify]") {
  using bpcheck::mutants::Mutant;
  for (const Mutant m : {Mutant::transposed_weight, Mutant::missing_derivative, Mutant::derivative_at_output,
                         Mutant::bias_first_sample, Mutant::flipped_sign, Mutant::off_by_one,
                         Mutant::softmax_diagonal_only, Mutant::overwritten_dtheta, Mutant::relative_offset_small,
                         Mutant::silu_missing_term, Mutant::gelu_wrong_approximation}) {
    bpcheck::VerifyOptions o;
    o.points = 2;
    o.precisions = {"mp100", "bf16", "fp16"};
    const bpcheck::AnyLayerFactory make(bpcheck::mutants::MutantFactory{m}, bpcheck::AnyLayerFactory::with_float16);
    const auto r = bpcheck::verify_layer(make, o);
    INFO("mutant " << int(m) << "\n" << bpcheck::format_table(r));
    CHECK(ran_on(r, "bf16"));
    CHECK(!r.passed());
    CHECK(std::any_of(r.checks.begin(), r.checks.end(), [](const auto& c) {
      return c.precision == "mp100" && c.verdict == bpcheck::Verdict::fail;
    }));
  }
}

TEST_CASE("float16: a factory not wrapped for the 16-bit rungs refuses them clearly", "[float16][verify]") {
  bpcheck::VerifyOptions o;
  o.points = 1;
  o.precisions = {"bf16"};
  const bpcheck::AnyLayerFactory make(bpcheck::mutants::MutantFactory{bpcheck::mutants::Mutant::flipped_sign});
  CHECK_THROWS_WITH(bpcheck::verify_layer(make, o),
                    Catch::Matchers::Contains("does not build on bf16") && Catch::Matchers::Contains("with_float16"));
  o.precisions = {"bf17"};
  CHECK_THROWS_WITH(bpcheck::verify_layer(make, o), Catch::Matchers::Contains("unknown precision 'bf17'"));
}

namespace {

/// A model, its parameters (mp100's, all digits) and a batch as the documents compare reads, and the
/// gradient bpcheck computes in rung T from them.
struct Documents {
  bpcheck::NetworkSubject subject;
  template <class T>
  json gradient(bpcheck::Accumulation a = bpcheck::Accumulation::same) const {
    bpcheck::Network<T> n(subject.spec);
    bpcheck::parameters_from_json(n, *subject.parameters, "parameters");
    const auto batch = bpcheck::batch_from_json(n, *subject.data, "data");
    const bpcheck::AccumulationScope scope(a);
    return json::parse(bpcheck::gradient_to_json(n, n.gradient(batch.inputs, batch.targets)).dump());
  }
};

Documents f16_documents(const std::string& model, std::uint64_t seed = 7) {
  Documents d;
  d.subject.spec = bpcheck::model_spec_from_json(json::parse(model), "model");
  bpcheck::Network<mp100> net(d.subject.spec);
  net.initialize(seed);
  d.subject.parameters = json::parse(bpcheck::parameters_to_json(net).dump());
  d.subject.data = json::parse(bpcheck::batch_to_json(net, bpcheck::generate_batch(net, seed, 4)).dump());
  return d;
}

const char* const conv_model = R"({"input_size": 12, "layers": [{"type": "conv1d", "channels": 2, "length": 6,
  "out_channels": 3, "kernel": 3}, {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "units": 2}],
  "loss": "bce_with_logits"})";

}  // namespace

TEST_CASE("float16: compare judges a 16-bit gradient: right passes at its bound, a wrong block is WRONG",
          "[float16][compare]") {
  for (const char* model : {small_mlp, conv_model}) {
    const Documents d = f16_documents(model);
    for (const auto accumulate : {bpcheck::Accumulation::same, bpcheck::Accumulation::float_}) {
      bpcheck::CompareOptions o;
      o.accumulation = accumulate;
      const auto bf = bpcheck::compare_gradient(d.subject, d.gradient<bf16>(accumulate), "bf16", o);
      const auto fp = bpcheck::compare_gradient(d.subject, d.gradient<fp16>(accumulate), "fp16", o);
      INFO(model << "\n" << bpcheck::format_table(bf) << bpcheck::format_table(fp));
      CHECK(bf.precision == "bf16");
      CHECK(bf.verdict() == bpcheck::CompareVerdict::pass);
      CHECK(fp.verdict() == bpcheck::CompareVerdict::pass);
      CHECK(bf.unit_roundoff == std::ldexp(1.0, -8));
      CHECK(fp.unit_roundoff == std::ldexp(1.0, -11));
    }
    // the bf16 gradient is not as accurate as fp16 allows, nor float's: judged there it fails
    json as_float = d.gradient<bf16>();
    as_float["precision"] = "float";
    const auto strict = bpcheck::compare_gradient(d.subject, as_float, "float");
    CHECK(strict.verdict() != bpcheck::CompareVerdict::pass);
    // one block with its sign flipped: wrong, at bf16's bound too
    json g = d.gradient<bf16>();
    for (auto& row : g["gradients"][0]["values"])
      for (auto& x : row) x = fmt::format("{:.9g}", -std::stod(x.get<std::string>()));
    const auto wrong = bpcheck::compare_gradient(d.subject, g, "bf16");
    INFO(bpcheck::format_table(wrong));
    CHECK(wrong.verdict() == bpcheck::CompareVerdict::wrong);
    CHECK(wrong.blocks[0].verdict == bpcheck::CompareVerdict::wrong);
    CHECK(wrong.exit_code() == 1);
  }
}

TEST_CASE("bpcheck gradient, verify and compare take --precision bf16|fp16 and --accumulate", "[float16][cli]") {
  using bpcheck::testing::bpcheck_run;
  using bpcheck::testing::write_file;
  const Documents d = f16_documents(small_mlp);
  const std::string model = write_file("f16_model.json", small_mlp);
  const std::string params = write_file("f16_params.json", d.subject.parameters->dump());
  const std::string data = write_file("f16_data.json", d.subject.data->dump());
  const std::string docs = " --model '" + model + "' --params '" + params + "' --data '" + data + "'";
  for (const std::string precision : {"bf16", "fp16"}) {
    for (const std::string accumulate : {"same", "float"}) {
      const auto g = bpcheck_run("gradient --precision " + precision + " --accumulate " + accumulate + docs);
      INFO(precision << " " << accumulate << ": " << g.err);
      REQUIRE(g.code == 0);
      const json j = json::parse(g.out);
      // every value is the format's own number, printed with the format's digits
      for (const auto& block : j["gradients"])
        for (const auto& row : block["values"])
          for (const auto& x : row.is_array() ? row : json::array({row})) {
            const std::string text = x.get<std::string>();
            CHECK(bpcheck::to_string(bpcheck::from_string<mp100>(text)) != "");
            if (precision == "bf16") CHECK(bpcheck::to_string(bpcheck::from_string<bf16>(text)) == text);
            if (precision == "fp16") CHECK(bpcheck::to_string(bpcheck::from_string<fp16>(text)) == text);
          }
      const std::string gradient = write_file("f16_gradient.json", g.out);
      const auto c = bpcheck_run("compare --precision " + precision + " --accumulate " + accumulate + docs +
                                 " --gradient '" + gradient + "'");
      INFO(c.out << c.err);
      CHECK(c.code == 0);
      CHECK_THAT(c.out, Catch::Matchers::Contains(precision));
    }
  }
  const auto v = bpcheck_run("verify --precision bf16,fp16 --points 2 --no-timings" + docs);
  INFO(v.out << v.err);
  CHECK(v.code == 0);
  CHECK_THAT(v.out, Catch::Matchers::Contains("bf16"));
  CHECK_THAT(v.out, Catch::Matchers::Contains("fp16"));
  SECTION("bad precision and accumulate values are errors with exit 2") {
    for (const std::string args : {"gradient --precision bf17" + docs, "verify --precision bf16,bf17" + docs,
                                   "compare --precision bf17 --gradient x.json" + docs,
                                   "gradient --precision float --accumulate float" + docs,
                                   "gradient --precision bf16 --accumulate double" + docs}) {
      const auto r = bpcheck_run(args);
      INFO(args << ": " << r.err);
      const std::string line = bpcheck::testing::one_error_line(r);
      CHECK((line.find("bf17") != std::string::npos || line.find("accumulate") != std::string::npos));
    }
  }
}
