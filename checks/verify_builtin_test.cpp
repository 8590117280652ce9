// No false alarms: every built-in layer and a few small networks pass every check on every rung.
// Uses the engine instantiated in the library (verify_layer(LayerSpec), verify_network), so this
// translation unit compiles fast.
#include <chrono>
#include <string>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/verify/verify.hpp"
#include "helpers.hpp"

namespace {

using bpcheck::LayerSpec;
using bpcheck::Verdict;
using bpcheck::VerificationReport;
using bpcheck::VerifyOptions;

// Random points per input distribution. The standard distribution gets 200; saturation and
// near-kink points get 100 each to keep the file under a minute of CPU (measured: 38 s for all of
// checks/verify_*_test.cpp, 29 s of it gelu "none", whose mp100 erfc is slow).
constexpr int standard_points = 200;
constexpr int saturated_points = 100;
constexpr int near_kink_points = 100;

/// Every check of the report passed (or did not apply); the table goes to the failure message only.
void require_clean(const VerificationReport& r, const std::string& what) {
  INFO(what << "\n" << bpcheck::format_table(r));
  REQUIRE(!r.checks.empty());
  std::string bad;
  bool has_oracle = false;
  for (const auto& c : r.checks) {
    if (c.verdict != Verdict::pass && c.verdict != Verdict::skipped)
      bad += fmt::format("{} [{}]: {}\n", c.check, c.precision, bpcheck::verdict_name(c.verdict));
    has_oracle = has_oracle || (c.check == "backward vs oracle" && c.precision == "mp100");
  }
  CHECK(has_oracle);
  CHECK(bad == "");
  CHECK(r.passed());
}

/// The three distributions: standard (±1), saturation (±30: sigmoid, tanh, softplus, silu and gelu
/// saturate) and near the kinks (±1e-6; with resample_kinks a point exactly on a kink is moved).
void verify_everywhere(const LayerSpec& spec, bpcheck::Index input_size) {
  struct Distribution {
    const char* name;
    double scale;
    int points;
  };
  for (const Distribution& d : {Distribution{"standard", 1, standard_points},
                                Distribution{"saturation", 30, saturated_points},
                                Distribution{"near kinks", 1e-6, near_kink_points}}) {
    VerifyOptions o;
    o.points = d.points;
    o.input_scale = d.scale;
    require_clean(bpcheck::verify_layer(spec, input_size, o),
                  fmt::format("{} {} on {} points, input scale {}", spec.type, spec.options.dump(), d.points, d.scale));
  }
}

}  // namespace

TEST_CASE("verify: dense passes every check on every rung", "[verify][builtin]") {
  verify_everywhere({"dense", {{"units", 2}}}, 3);
}
TEST_CASE("verify: relu passes every check on every rung", "[verify][builtin]") { verify_everywhere({"relu", {}}, 3); }
TEST_CASE("verify: leaky_relu passes every check on every rung", "[verify][builtin]") {
  verify_everywhere({"leaky_relu", {}}, 3);
}
TEST_CASE("verify: sigmoid passes every check on every rung", "[verify][builtin]") {
  verify_everywhere({"sigmoid", {}}, 3);
}
TEST_CASE("verify: tanh passes every check on every rung", "[verify][builtin]") { verify_everywhere({"tanh", {}}, 3); }
TEST_CASE("verify: softplus passes every check on every rung", "[verify][builtin]") {
  verify_everywhere({"softplus", {}}, 3);
}
TEST_CASE("verify: gelu (exact) passes every check on every rung", "[verify][builtin]") {
  verify_everywhere({"gelu", {{"approximate", "none"}}}, 3);
}
TEST_CASE("verify: gelu (tanh approximation) passes every check on every rung", "[verify][builtin]") {
  verify_everywhere({"gelu", {{"approximate", "tanh"}}}, 3);
}
TEST_CASE("verify: silu passes every check on every rung", "[verify][builtin]") { verify_everywhere({"silu", {}}, 3); }
TEST_CASE("verify: softmax passes every check on every rung", "[verify][builtin]") {
  verify_everywhere({"softmax", {}}, 3);
}
TEST_CASE("verify: log_softmax passes every check on every rung", "[verify][builtin]") {
  verify_everywhere({"log_softmax", {}}, 3);
}

TEST_CASE("verify: relu exactly on its kink is non-differentiable, and passes once resampled", "[verify][builtin]") {
  VerifyOptions o;
  o.inputs = bpcheck::Matrix<bpcheck::mp100>::Zero(3, 2);
  o.resample_kinks = false;
  const VerificationReport on_kink = bpcheck::verify_layer({"relu", {}}, 3, o);
  INFO(bpcheck::format_table(on_kink));
  bool seen = false;
  for (const auto& c : on_kink.checks) {
    if (c.check != "differentiability") continue;
    seen = true;
    CHECK(c.verdict == Verdict::non_differentiable);
    REQUIRE(!c.worst.empty());
    CHECK(c.worst.front().block == "x");
    CHECK(c.worst.front().where.find("X[") != std::string::npos);
  }
  CHECK(seen);
  CHECK(on_kink.passed());  // a kink is reported, never as a wrong gradient

  o.resample_kinks = true;
  const VerificationReport moved = bpcheck::verify_layer({"relu", {}}, 3, o);
  require_clean(moved, "relu resampled off its kink");
}

// ---- networks --------------------------------------------------------------------------------

namespace {
bpcheck::ModelSpec small_model(const std::string& loss) {
  return {3, {{"dense", {{"units", 4}}}, {"tanh", {}}, {"dense", {{"units", 2}}}}, loss};
}
}  // namespace

TEST_CASE("verify_network: small models pass with every loss", "[verify][network]") {
  for (const std::string loss : {"mse", "cross_entropy", "bce_with_logits"}) {
    bpcheck::NetworkSubject subject{small_model(loss), std::nullopt, std::nullopt};
    require_clean(bpcheck::verify_network(subject), "network with " + loss);
  }
}

TEST_CASE("verify_network: given parameters and data (all mp100 digits) pass with every loss", "[verify][network]") {
  for (const std::string loss : {"mse", "cross_entropy", "bce_with_logits"}) {
    const auto spec = small_model(loss);
    bpcheck::Network<bpcheck::mp100> net(spec);
    net.initialize(11);
    const auto batch = bpcheck::generate_batch(net, 12, 3);
    bpcheck::NetworkSubject subject{spec, nlohmann::json(bpcheck::parameters_to_json(net)),
                                    nlohmann::json(bpcheck::batch_to_json(net, batch))};
    const VerificationReport r = bpcheck::verify_network(subject);
    require_clean(r, "network with " + loss + " from JSON");
    CHECK(r.subject.find(loss) != std::string::npos);
  }
}

// Regression: deep and mixed networks once exceeded the rounding bound in float/double because the
// bound of a whole backprop started at |J|ᵀ|u| (one term) instead of the absolute sweep through every
// layer (LossLayer::absolute_sweep). These models and seeds were false alarms before.
TEST_CASE("verify_network: deep and mixed networks raise no false alarm in float or double", "[verify][network]") {
  const std::vector<bpcheck::ModelSpec> models{
      {3, {{"dense", {{"units", 4}}}, {"silu", {}}, {"dense", {{"units", 4}}}, {"log_softmax", {}}}, "mse"},
      {2,
       {{"dense", {{"units", 3}}}, {"sigmoid", {}}, {"dense", {{"units", 3}}}, {"softplus", {}},
        {"dense", {{"units", 3}}}, {"tanh", {}}, {"dense", {{"units", 3}}}, {"gelu", {}}, {"dense", {{"units", 2}}}},
       "bce_with_logits"},
      {5,
       {{"dense", {{"units", 6}}}, {"relu", {}}, {"dense", {{"units", 6}}}, {"leaky_relu", {{"negative_slope", 0.2}}},
        {"dense", {{"units", 3}}}},
       "cross_entropy"}};
  for (std::size_t m = 0; m < models.size(); ++m)
    for (std::uint64_t seed = 1; seed <= 8; ++seed) {
      VerifyOptions o;
      o.seed = seed;
      o.points = 3;
      bpcheck::NetworkSubject subject{models[m], std::nullopt, std::nullopt};
      require_clean(bpcheck::verify_network(subject, o), fmt::format("model {} seed {}", m, seed));
    }
}
