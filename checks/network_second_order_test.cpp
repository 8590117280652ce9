// verify --order 2 on a network: the second-order checks of its loss in θ (lib/src/hvp_impl.hpp,
// network_second_order_checks), with the network's own H v and with wrong ones given in its place.
#include <chrono>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/hvp.hpp"
#include "bpcheck/verify/verify.hpp"
#include "cli_run.hpp"
#include "hvp_impl.hpp"
#include "verify_engine.hpp"

using bpcheck::CheckResult;
using bpcheck::Index;
using bpcheck::mp100;
using bpcheck::Vector;
using bpcheck::Verdict;

namespace {

const char* const smooth_text = R"({"input_size": 3,
  "layers": [{"type": "dense", "units": 4}, {"type": "tanh"}, {"type": "dense", "units": 3}, {"type": "sigmoid"},
             {"type": "dense", "units": 2}],
  "loss": "mse"})";

const char* const relu_text = R"({"input_size": 4,
  "layers": [{"type": "dense", "units": 5}, {"type": "relu"}, {"type": "dense", "units": 3}],
  "loss": "cross_entropy"})";

struct Net {
  bpcheck::Network<mp100> net;
  bpcheck::Batch<mp100> batch;
};

Net network(const char* text, std::uint64_t seed) {
  bpcheck::Network<mp100> net(bpcheck::model_spec_from_json(nlohmann::json::parse(text), "model"));
  net.initialize(seed);
  auto batch = bpcheck::generate_batch(net, seed, 4);
  return {std::move(net), std::move(batch)};
}

/// The network's own H d on a rung, as mp100.
Vector<mp100> own(const Net& n, const std::string& precision, const Vector<mp100>& d) {
  const auto flat = [](const auto& g) {
    Index size = 0;
    for (const auto& l : g.layers) size += l.size();
    Vector<mp100> out(size);
    Index at = 0;
    for (const auto& l : g.layers)
      for (Index i = 0; i < l.size(); ++i) out(at++) = bpcheck::scalar_cast<mp100>(l(i));
    return out;
  };
  const auto on = [&]<class T>(std::type_identity<T>) {
    const auto net = n.net.rebind<T>();
    return flat(bpcheck::hessian_vector_product(
        net, bpcheck::matrix_cast<T>(n.batch.inputs),
        bpcheck::Targets<T>{bpcheck::matrix_cast<T>(n.batch.targets.values), n.batch.targets.classes},
        bpcheck::vector_cast<T>(d)));
  };
  if (precision == "float") return on(std::type_identity<float>{});
  if (precision == "double") return on(std::type_identity<double>{});
  return on(std::type_identity<mp100>{});
}

const CheckResult* find(const std::vector<CheckResult>& checks, const std::string& check, const std::string& precision) {
  for (const auto& c : checks)
    if (c.check == check && c.precision == precision) return &c;
  return nullptr;
}

}  // namespace

TEST_CASE("network second order: the network's own H v passes every check on every rung", "[verify][second-order][hvp]") {
  const Net n = network(smooth_text, 5);
  bpcheck::VerifyOptions opt;
  const auto checks = bpcheck::hvp_detail::network_second_order_checks(n.net, n.batch, opt, "network");
  REQUIRE(checks.size() == 7);  // smoothness, then backward and identity per rung
  for (const auto& c : checks) {
    INFO(c.check << " [" << c.precision << "]: " << c.message);
    CHECK(c.verdict == Verdict::pass);
  }
  const CheckResult* mp = find(checks, "second-order backward", "mp100");
  REQUIRE(mp);
  CHECK(mp->digits > 40);  // the dual-number H v meets the differences to their own accuracy
}

TEST_CASE("network second order: a wrong H v fails in mp100, and the rungs with it", "[verify][second-order][hvp]") {
  const Net n = network(smooth_text, 5);
  const Index P = n.net.parameter_count();
  // the last block (the output bias) off by 1%: a backward right in value with one derivative wrong
  const bpcheck::hvp_detail::NetworkHvp wrong = [&](const std::string& p, const Vector<mp100>& d) {
    Vector<mp100> h = own(n, p, d);
    for (Index i = P - 2; i < P; ++i) h(i) *= mp100("1.01");
    return h;
  };
  const auto checks = bpcheck::hvp_detail::network_second_order_checks(n.net, n.batch, {}, "network", wrong);
  for (const char* p : {"mp100", "float", "double"}) {
    const CheckResult* c = find(checks, "second-order backward", p);
    REQUIRE(c);
    INFO(p << ": " << c->message);
    CHECK(c->verdict == Verdict::fail);
    REQUIRE(!c->worst.empty());
    CHECK_THAT(c->worst.front().where, Catch::Matchers::Contains("layer 4 b["));
  }
}

TEST_CASE("network second order: an H v right along v but not along w fails the identity", "[verify][second-order][hvp]") {
  const Net n = network(smooth_text, 6);
  std::optional<Vector<mp100>> first;
  // the first direction asked for is v (the backward check's); every other one is skewed
  const bpcheck::hvp_detail::NetworkHvp skewed = [&](const std::string& p, const Vector<mp100>& d) {
    Vector<mp100> h = own(n, p, d);
    if (!first) first = d;
    if (d != *first) h(0) += mp100("0.05") * abs(h(0)) + mp100("0.01");
    return h;
  };
  const auto checks = bpcheck::hvp_detail::network_second_order_checks(n.net, n.batch, {}, "network", skewed);
  const CheckResult* backward = find(checks, "second-order backward", "mp100");
  const CheckResult* identity = find(checks, "second-order identity", "mp100");
  REQUIRE(backward);
  REQUIRE(identity);
  CHECK(backward->verdict == Verdict::pass);
  CHECK(identity->verdict == Verdict::fail);
  CHECK_THAT(identity->message, Catch::Matchers::Contains("not symmetric"));
}

TEST_CASE("network second order: float wrong alone fails in float only", "[verify][second-order][hvp]") {
  const Net n = network(smooth_text, 7);
  const bpcheck::hvp_detail::NetworkHvp float_wrong = [&](const std::string& p, const Vector<mp100>& d) {
    Vector<mp100> h = own(n, p, d);
    if (p == "float") h *= mp100("1.5");
    return h;
  };
  const auto checks = bpcheck::hvp_detail::network_second_order_checks(n.net, n.batch, {}, "network", float_wrong);
  CHECK(find(checks, "second-order backward", "mp100")->verdict == Verdict::pass);
  CHECK(find(checks, "second-order backward", "double")->verdict == Verdict::pass);
  CHECK(find(checks, "second-order backward", "float")->verdict == Verdict::fail);
}

TEST_CASE("network second order: a relu network is smooth or non-differentiable, never wrong", "[verify][second-order][hvp]") {
  for (std::uint64_t seed : {1, 2, 3}) {
    const Net n = network(relu_text, seed);
    bpcheck::VerifyOptions opt;
    opt.seed = seed;
    const auto checks = bpcheck::hvp_detail::network_second_order_checks(n.net, n.batch, opt, "network");
    REQUIRE(!checks.empty());
    for (const auto& c : checks) {
      INFO("seed " << seed << ", " << c.check << " [" << c.precision << "]: " << c.message);
      CHECK((c.verdict == Verdict::pass || c.verdict == Verdict::non_differentiable));
    }
  }
}

TEST_CASE("bpcheck verify --order 2 on a model adds the network's second-order checks", "[cli][verify][second-order][hvp]") {
  using bpcheck::testing::bpcheck_run;
  const std::string model = bpcheck::testing::write_file("network_order2_model.json", smooth_text);
  const std::string json = bpcheck::testing::temp_path("network_order2.json");
  const auto count = [&](int order) {
    const auto r = bpcheck_run("verify --model " + model + " --points 1 --no-timings --order " + std::to_string(order) +
                               " --json " + json);
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    const auto j = nlohmann::json::parse(bpcheck::testing::slurp(json));
    int n = 0;
    for (const auto& c : j.at("checks"))
      if (c.at("subject").get<std::string>().rfind("network", 0) == 0 &&
          c.at("check").get<std::string>().rfind("second-order", 0) == 0) {
        CHECK(c.at("verdict") == "pass");
        ++n;
      }
    return n;
  };
  CHECK(count(1) == 0);
  CHECK(count(2) == 7);
}

namespace {

/// The network's own H d, after `delay` (a slow backward on dual numbers).
bpcheck::hvp_detail::NetworkHvp slow(const Net& n, std::chrono::milliseconds delay) {
  return [&n, delay](const std::string& p, const Vector<mp100>& d) {
    std::this_thread::sleep_for(delay);
    return own(n, p, d);
  };
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("network second order: each check has its own seconds, summing to no more than the run", "[verify][second-order][hvp]") {
  const Net n = network(smooth_text, 5);
  // Every rung's H v and H w take 60 ms: the backward check's (H v) and the identity's (H w) each.
  const auto start = std::chrono::steady_clock::now();
  const auto checks =
      bpcheck::hvp_detail::network_second_order_checks(n.net, n.batch, {}, "network", slow(n, std::chrono::milliseconds(60)));
  const double took = seconds_since(start);
  REQUIRE(checks.size() == 7);
  double sum = 0;
  for (const auto& c : checks) {
    INFO(c.check << " [" << c.precision << "]: " << c.seconds << " s");
    sum += c.seconds;
    if (c.check != "second-order smoothness") CHECK(c.seconds >= 0.06);
  }
  // A measurement counted under both checks of a rung would add 3 × 120 ms beyond the run's own time.
  CHECK(sum <= took);
}

TEST_CASE("network second order: the checks keep the verification's deadline", "[verify][second-order][hvp][liveness]") {
  namespace vd = bpcheck::verify_detail;
  const Net n = network(smooth_text, 5);
  SECTION("a deadline already passed: nothing runs") {
    const vd::DeadlineScope within(vd::Clock::now() - std::chrono::seconds(1));
    CHECK_THROWS_AS(bpcheck::hvp_detail::network_second_order_checks(n.net, n.batch, {}, "network"), vd::time_exceeded);
  }
  SECTION("a deadline passing while the rungs run: the next check stops the run") {
    // Six slow H d of 200 ms each would take 1.2 s; the deadline at 0.3 s stops it at the next check.
    const vd::DeadlineScope within(vd::Clock::now() + std::chrono::milliseconds(300));
    const auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(bpcheck::hvp_detail::network_second_order_checks(n.net, n.batch, {}, "network",
                                                                      slow(n, std::chrono::milliseconds(200))),
                    vd::time_exceeded);
    CHECK(seconds_since(start) < 1.0);
  }
  SECTION("no deadline: every check runs") {
    CHECK(bpcheck::hvp_detail::network_second_order_checks(n.net, n.batch, {}, "network").size() == 7);
  }
}

TEST_CASE("bpcheck verify --order 2 keeps --time-limit", "[cli][verify][second-order][hvp][liveness]") {
  using bpcheck::testing::bpcheck_run;
  const std::string model = bpcheck::testing::write_file("network_order2_limit_model.json", smooth_text);
  const std::string json = bpcheck::testing::temp_path("network_order2_limit.json");
  const auto r = bpcheck_run("verify --model " + model + " --order 2 --time-limit 0.001 --json " + json);
  INFO(r.out << r.err);
  CHECK(r.code == 3);  // no point evaluated: no verdict
  CHECK_THAT(r.out, Catch::Matchers::Contains("NO VERDICT"));
  const auto j = nlohmann::json::parse(bpcheck::testing::slurp(json));
  for (const auto& c : j.at("checks")) CHECK(c.at("check").get<std::string>().rfind("second-order", 0) != 0);
}
