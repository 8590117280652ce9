// Second order of a network: hessian_vector_product (the backward on dual numbers seeded along v),
// `bpcheck hvp`, and `bpcheck compare --hvp`.
#include <cmath>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/random.hpp"
#include "bpcheck/verify/hvp.hpp"
#include "cli_run.hpp"

using bpcheck::Gradient;
using bpcheck::Index;
using bpcheck::mp100;
using bpcheck::Network;
using bpcheck::Vector;
using bpcheck::testing::bpcheck_run;
using bpcheck::testing::one_error_line;
using bpcheck::testing::write_file;

namespace {

const char* const mlp_text = R"({"input_size": 3,
  "layers": [{"type": "dense", "units": 5}, {"type": "tanh"}, {"type": "dense", "units": 4}, {"type": "sigmoid"},
             {"type": "dense", "units": 3}],
  "loss": "cross_entropy"})";

const char* const mse_text = R"({"input_size": 4,
  "layers": [{"type": "dense", "units": 3}, {"type": "softplus"}, {"type": "dense", "units": 2}],
  "loss": "mse"})";

Vector<mp100> flat(const Gradient<mp100>& g) {
  Index n = 0;
  for (const auto& l : g.layers) n += l.size();
  Vector<mp100> out(n);
  Index at = 0;
  for (const auto& l : g.layers) out.segment(at, l.size()) = l, at += l.size();
  return out;
}

/// A float-exact direction: the same numbers on every rung.
Vector<mp100> direction(Index n, std::uint64_t seed) {
  bpcheck::Random rng(seed);
  Vector<mp100> v(n);
  for (Index i = 0; i < n; ++i) v(i) = mp100(float(rng.symmetric()));
  return v;
}

struct Subject {
  Network<mp100> net;
  bpcheck::Batch<mp100> batch;
};

Subject subject(const char* spec_text, std::uint64_t seed) {
  Network<mp100> net(bpcheck::model_spec_from_json(nlohmann::json::parse(spec_text), "model"));
  net.initialize(seed);
  auto batch = bpcheck::generate_batch(net, seed, 5);
  return {std::move(net), std::move(batch)};
}

mp100 max_abs(const Vector<mp100>& x) {
  mp100 m(0);
  for (Index i = 0; i < x.size(); ++i) m = std::max(m, mp100(abs(x(i))));
  return m;
}

/// (g(θ + h w) − g(θ − h w)) / 2h in mp100: off from H w by ~h² (1e-60) and 1e-100/h (1e-70).
Vector<mp100> central_difference(const Subject& s, const Vector<mp100>& w) {
  const mp100 h("1e-30");
  Network<mp100> plus = s.net, minus = s.net;
  plus.set_parameters(s.net.parameters() + h * w);
  minus.set_parameters(s.net.parameters() - h * w);
  const auto gp = flat(plus.gradient(s.batch.inputs, s.batch.targets));
  const auto gm = flat(minus.gradient(s.batch.inputs, s.batch.targets));
  return (gp - gm) / (2 * h);
}

}  // namespace

TEST_CASE("hvp: the mp100 HVP equals central differences of mp100 gradients to 40 digits", "[hvp]") {
  for (const char* spec : {mlp_text, mse_text}) {
    INFO(spec);
    const Subject s = subject(spec, 7);
    const Index P = s.net.parameter_count();
    const Vector<mp100> v = direction(P, 11), w = direction(P, 12);
    const Vector<mp100> hv = flat(bpcheck::hessian_vector_product(s.net, s.batch.inputs, s.batch.targets, v));
    const Vector<mp100> fd = central_difference(s, v);
    REQUIRE(hv.size() == P);
    const mp100 scale = max_abs(fd);
    CHECK(scale > mp100("1e-3"));
    CHECK(max_abs(Vector<mp100>(hv - fd)) < mp100("1e-40") * scale);
    // must-fail: differences along another vector are H w, not H v
    CHECK(max_abs(Vector<mp100>(hv - central_difference(s, w))) > mp100("1e-3") * scale);
    // H is symmetric: wᵀ H v = vᵀ H w
    const Vector<mp100> hw = flat(bpcheck::hessian_vector_product(s.net, s.batch.inputs, s.batch.targets, w));
    CHECK(abs(w.dot(hv) - v.dot(hw)) < mp100("1e-80") * (abs(w.dot(hv)) + 1));
  }
}

TEMPLATE_TEST_CASE("hvp: float and double agree with mp100 to their precision", "[hvp]", float, double) {
  const Subject s = subject(mlp_text, 3);
  const Index P = s.net.parameter_count();
  const Vector<mp100> v = direction(P, 5);
  const Vector<mp100> exact = flat(bpcheck::hessian_vector_product(s.net, s.batch.inputs, s.batch.targets, v));
  const Network<TestType> net = s.net.rebind<TestType>();
  const Gradient<TestType> g = bpcheck::hessian_vector_product(
      net, bpcheck::matrix_cast<TestType>(s.batch.inputs),
      bpcheck::Targets<TestType>{bpcheck::matrix_cast<TestType>(s.batch.targets.values), s.batch.targets.classes},
      bpcheck::vector_cast<TestType>(v));
  Vector<mp100> got(P);
  Index at = 0;
  for (const auto& l : g.layers)
    for (Index i = 0; i < l.size(); ++i) got(at++) = bpcheck::scalar_cast<mp100>(l(i));
  const mp100 u = bpcheck::scalar_cast<mp100>(bpcheck::unit_roundoff<TestType>());
  const mp100 err = max_abs(Vector<mp100>(got - exact));
  CHECK(err < 100 * u * max_abs(exact));
  CHECK(err > 0);  // it ran in TestType, not in mp100
}

TEST_CASE("hvp: a vector of another size is refused", "[hvp]") {
  const Subject s = subject(mlp_text, 3);
  const Vector<mp100> v = direction(s.net.parameter_count() - 1, 5);
  CHECK_THROWS_AS(bpcheck::hessian_vector_product(s.net, s.batch.inputs, s.batch.targets, v), bpcheck::input_error);
}

namespace {

/// The subject's model, parameters and data as files, and V (= the gradient, in the gradient format).
struct Files {
  std::string model, params, data, vector;
};

Files files(const std::string& prefix) {
  const Subject s = subject(mlp_text, 9);
  Files f;
  f.model = write_file(prefix + "model.json", mlp_text);
  f.params = write_file(prefix + "params.json", bpcheck::parameters_to_json(s.net).dump());
  f.data = write_file(prefix + "data.json", bpcheck::batch_to_json(s.net, s.batch).dump());
  const auto v = bpcheck_run("gradient --model " + f.model + " --params " + f.params + " --data " + f.data +
                             " --precision float");
  REQUIRE(v.code == 0);
  f.vector = write_file(prefix + "vector.json", v.out);
  return f;
}

std::string common(const Files& f) {
  return " --model " + f.model + " --params " + f.params + " --data " + f.data + " --vector " + f.vector;
}

}  // namespace

TEST_CASE("bpcheck hvp prints H v in the gradient's block layout, equal to the library's", "[cli][hvp]") {
  const Files f = files("hvp_print_");
  const auto r = bpcheck_run("hvp" + common(f) + " --precision mp100");
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j.at("precision") == "mp100");
  CHECK(j.contains("loss"));
  REQUIRE(j.at("hvp").size() == 6);  // W and b of three dense layers
  CHECK(j.at("hvp")[0].at("shape") == nlohmann::json::array({5, 3}));
  // the library on the same numbers, read back from the files
  Network<mp100> net(bpcheck::read_model_spec(f.model));
  bpcheck::read_parameters(net, f.params);
  const auto batch = bpcheck::read_batch(net, f.data);
  const Vector<mp100> v = bpcheck::parameter_vector_from_json(net, bpcheck::read_json_file(f.vector), "v");
  const Vector<mp100> want = flat(bpcheck::hessian_vector_product(net, batch.inputs, batch.targets, v));
  const Vector<mp100> got = bpcheck::parameter_vector_from_json(net, j, "hvp", "hvp");
  CHECK(max_abs(Vector<mp100>(got - want)) < mp100("1e-95") * max_abs(want));
  for (const char* p : {"float", "double"}) {
    const auto q = bpcheck_run("hvp" + common(f) + " --precision " + p);
    REQUIRE(q.code == 0);
    CHECK(nlohmann::json::parse(q.out).at("precision") == p);
  }
}

TEST_CASE("bpcheck hvp: bad input exits 2 with one line", "[cli][hvp]") {
  const Files f = files("hvp_bad_");
  auto v = nlohmann::json::parse(bpcheck::testing::slurp(f.vector));
  const std::string base = " --model " + f.model + " --params " + f.params + " --data " + f.data + " --precision double";
  const auto with_vector = [&](const std::string& name, const nlohmann::json& doc) {
    return one_error_line(bpcheck_run("hvp" + base + " --vector " + write_file(name, doc.dump())));
  };
  {
    auto bad = v;
    bad["gradients"][0]["values"].erase(0);
    CHECK_THAT(with_vector("v_rows.json", bad), Catch::Matchers::Contains("expected a list of 5"));
  }
  {
    auto bad = v;
    bad["gradients"][0]["shape"] = {3, 5};
    CHECK_THAT(with_vector("v_shape.json", bad), Catch::Matchers::Contains("does not match the model's [5, 3]"));
  }
  {
    auto bad = v;
    bad["gradients"].erase(3);
    CHECK_THAT(with_vector("v_missing.json", bad), Catch::Matchers::Contains("no block 'b' of layer 2"));
  }
  {
    auto bad = v;
    bad["gradients"][1]["values"][2] = "nan";
    CHECK_THAT(with_vector("v_nan.json", bad), Catch::Matchers::Contains("must be finite"));
  }
  {
    auto bad = v;
    bad["gradients"][1]["values"][2] = "1e400";
    CHECK_THAT(with_vector("v_range.json", bad), Catch::Matchers::Contains("beyond the range of double"));
  }
  CHECK_THAT(with_vector("v_list.json", nlohmann::json::array()), Catch::Matchers::Contains("expected a JSON object"));
  CHECK_THAT(one_error_line(bpcheck_run("hvp" + base)), Catch::Matchers::Contains("--vector"));
  CHECK_THAT(one_error_line(bpcheck_run("hvp" + base + " --vector " + f.params)), Catch::Matchers::Contains("unknown key 'layers'"));
  // must-pass: the untouched vector is accepted
  CHECK(bpcheck_run("hvp" + base + " --vector " + f.vector).code == 0);
}

TEST_CASE("bpcheck hvp names the layer whose run on dual numbers fails", "[cli][hvp]") {
  // batch_norm in training mode refuses a batch of one sample: a throw inside the network on dual<T>
  const std::string model = write_file("hvp_bn_model.json", R"({"input_size": 3,
    "layers": [{"type": "dense", "units": 4}, {"type": "batch_norm"}, {"type": "dense", "units": 2}], "loss": "mse"})");
  const auto v = bpcheck_run("gradient --model " + model + " --precision double");
  REQUIRE(v.code == 0);
  const std::string vector = write_file("hvp_bn_vector.json", v.out);
  const std::string one = write_file("hvp_bn_one.json", R"({"inputs": [[0.1, 0.2, 0.3]], "targets": [[0.5, 0.1]]})");
  const std::string two = write_file("hvp_bn_two.json",
                                     R"({"inputs": [[0.1, 0.2, 0.3], [0.3, -0.2, 0.1]], "targets": [[0.5, 0.1], [0, 1]]})");
  const std::string line = one_error_line(
      bpcheck_run("hvp --model " + model + " --data " + one + " --vector " + vector + " --precision mp100"));
  CHECK_THAT(line, Catch::Matchers::Contains("layer 1 (batch_norm): its forward on dual numbers failed"));
  CHECK_THAT(line, Catch::Matchers::Contains("at least 2 samples"));
  CHECK(bpcheck_run("hvp --model " + model + " --data " + two + " --vector " + vector + " --precision mp100").code == 0);
}

TEST_CASE("bpcheck compare --hvp: bpcheck's own float and double HVPs pass, tampered ones are judged", "[cli][hvp]") {
  const Files f = files("hvp_compare_");
  const std::string subject = " --model " + f.model + " --params " + f.params + " --data " + f.data;
  const auto hvp_in = [&](const std::string& p) {
    const auto r = bpcheck_run("hvp" + common(f) + " --precision " + p);
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out);
  };
  const auto judge = [&](const std::string& name, const nlohmann::json& doc, const std::string& extra = "") {
    return bpcheck_run("compare" + subject + " --vector " + f.vector + " --hvp " + write_file(name, doc.dump()) + extra);
  };
  const auto hf = hvp_in("float"), hd = hvp_in("double");
  for (const auto* doc : {&hf, &hd}) {
    const auto r = judge("own.json", *doc);
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::Matchers::Contains("verdict: pass"));
  }
  {  // a wrong second derivative in one block
    auto bad = hd;
    const double x = std::stod(bad["hvp"][2]["values"][1][0].get<std::string>());
    bad["hvp"][2]["values"][1][0] = std::to_string(x * 1.3 + 1e-3);
    const auto r = judge("wrong.json", bad);
    INFO(r.out);
    CHECK(r.code == 1);
    CHECK_THAT(r.out, Catch::Matchers::Contains("layer 2 dense W is WRONG"));
    CHECK_THAT(r.out, Catch::Matchers::Contains("verdict: WRONG"));
  }
  {  // float's digits in a double document: less accurate, consistent with float; advice when allowed
    auto as_double = hf;
    as_double["precision"] = "double";
    const auto r = judge("float_as_double.json", as_double);
    INFO(r.out);
    CHECK(r.code == 1);
    CHECK_THAT(r.out, Catch::Matchers::Contains("less accurate than double allows"));
    CHECK_THAT(r.out, Catch::Matchers::Contains("as accurate as float"));
    CHECK(judge("float_as_double.json", as_double, " --allow-less-accurate").code == 0);
  }
  {  // NaN is a verdict, not bad input
    auto bad = hf;
    bad["hvp"][5]["values"][0] = "nan";
    const auto r = judge("nan.json", bad);
    CHECK(r.code == 1);
    CHECK_THAT(r.out, Catch::Matchers::Contains("layer 4 dense b is WRONG: a value that is not finite"));
  }
  // bad input: exit 2, one line
  CHECK_THAT(one_error_line(bpcheck_run("compare" + subject + " --hvp " + write_file("h.json", hd.dump()))),
             Catch::Matchers::Contains("--vector"));
  CHECK_THAT(one_error_line(bpcheck_run("compare" + subject + " --vector " + f.vector)),
             Catch::Matchers::Contains("--hvp"));
  {
    auto bad = hd;
    bad["hvp"].erase(0);
    CHECK_THAT(one_error_line(judge("missing.json", bad)), Catch::Matchers::Contains("no block 'W' of layer 0"));
  }
  {
    auto bad = hd;
    bad["gradients"] = bad["hvp"];
    bad.erase("hvp");
    CHECK_THAT(one_error_line(judge("as_gradient.json", bad)), Catch::Matchers::Contains("unknown key 'gradients' (known: precision, loss, hvp)"));
  }
  CHECK_THAT(one_error_line(judge("mp100.json", hvp_in("mp100"))), Catch::Matchers::Contains("judged in float or double"));
}

TEST_CASE("bpcheck compare --hvp beyond 4096 parameters: A normwise, own HVPs pass, a wrong entry is WRONG",
          "[cli][hvp]") {
  const char* const wide = R"({"input_size": 64,
    "layers": [{"type": "dense", "units": 64}, {"type": "tanh"}, {"type": "dense", "units": 10}],
    "loss": "cross_entropy"})";
  Network<mp100> net(bpcheck::model_spec_from_json(nlohmann::json::parse(wide), "model"));
  REQUIRE(net.parameter_count() > 4096);
  net.initialize(4);
  const auto batch = bpcheck::generate_batch(net, 4, 6);
  const std::string files = " --model " + write_file("wide_model.json", wide) + " --params " +
                            write_file("wide_params.json", bpcheck::parameters_to_json(net).dump()) + " --data " +
                            write_file("wide_data.json", bpcheck::batch_to_json(net, batch).dump());
  const auto v = bpcheck_run("gradient" + files + " --precision float");
  REQUIRE(v.code == 0);
  const std::string vector = " --vector " + write_file("wide_vector.json", v.out);
  const auto h = bpcheck_run("hvp" + files + vector + " --precision float");
  REQUIRE(h.code == 0);
  const auto own = bpcheck_run("compare" + files + vector + " --hvp " + write_file("wide_hvp.json", h.out));
  INFO(own.out);
  CHECK(own.code == 0);
  CHECK_THAT(own.out, Catch::Matchers::Contains("normwise: more than 4096 parameters"));
  auto bad = nlohmann::json::parse(h.out);
  const double x = std::stod(bad["hvp"][0]["values"][7][3].get<std::string>());
  bad["hvp"][0]["values"][7][3] = std::to_string(x + 0.5);
  const auto wrong = bpcheck_run("compare" + files + vector + " --hvp " + write_file("wide_bad.json", bad.dump()));
  INFO(wrong.out);
  CHECK(wrong.code == 1);
  CHECK_THAT(wrong.out, Catch::Matchers::Contains("layer 0 dense W is WRONG"));
  CHECK_THAT(wrong.out, Catch::Matchers::Contains("W[7,3]"));
}
