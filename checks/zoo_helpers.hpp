#pragma once
// Shared by the zoo_*_test.cpp files: building registered layers, and demanding a clean verification.
#include <string>

#include <fmt/format.h>

#include "bpcheck/verify/verify.hpp"
#include "helpers.hpp"

namespace bpcheck::testing {

template <class T>
AnyLayer<T> build(const std::string& type, Index width, nlohmann::json options = nlohmann::json::object()) {
  return make_layer<T>(LayerSpec{type, std::move(options)}, width);
}

/// Every check of the report passed (or did not apply), and the decisive mp100 comparison ran.
inline void require_clean(const VerificationReport& r, const std::string& what) {
  INFO(what << "\n" << format_table(r));
  REQUIRE(!r.checks.empty());
  std::string bad;
  bool has_oracle = false;
  for (const auto& c : r.checks) {
    if (c.verdict != Verdict::pass && c.verdict != Verdict::skipped)
      bad += fmt::format("{} [{}]: {}: {}\n", c.check, c.precision, verdict_name(c.verdict), c.message);
    has_oracle = has_oracle || (c.check == "backward vs oracle" && c.precision == "mp100");
  }
  CHECK(has_oracle);
  CHECK(bad == "");
  CHECK(r.passed());
}

/// A registered layer verified at `points` random points with inputs uniform in ±scale.
inline void verify_clean(const LayerSpec& spec, Index input_size, int points, double scale = 1, Index batch = 2) {
  VerifyOptions o;
  o.points = points;
  o.input_scale = scale;
  o.batch = batch;
  require_clean(verify_layer(spec, input_size, o),
                fmt::format("{} {} on {} points, input scale {}, batch {}", spec.type, spec.options.dump(), points,
                            scale, batch));
}

/// Verification at fixed inputs without resampling: the point must be reported non-differentiable (with
/// the input named), never as a wrong gradient; returns the report.
inline VerificationReport require_non_differentiable(const LayerSpec& spec, Index input_size, const Matrix<mp100>& X) {
  VerifyOptions o;
  o.inputs = X;
  o.resample_kinks = false;
  o.points = 1;
  const VerificationReport r = verify_layer(spec, input_size, o);
  INFO(spec.type << " " << spec.options.dump() << "\n" << format_table(r));
  bool seen = false;
  for (const auto& c : r.checks) {
    CHECK(c.verdict != Verdict::fail);
    if (c.check != "differentiability") continue;
    seen = true;
    CHECK(c.verdict == Verdict::non_differentiable);
    REQUIRE(!c.worst.empty());
    CHECK(c.worst.front().block == "x");
  }
  CHECK(seen);
  CHECK(r.passed());
  return r;
}

}  // namespace bpcheck::testing

namespace bpcheck::testing {

/// For composite layers (residual, multi_head_attention): every gradient is right and every check
/// passes on every rung, float and double included: their rounding bound starts from the composite's
/// absolute Jacobian (the product of the inner layers' absolute Jacobians, or the linearisation in
/// absolute values), not from |J|, which cancelling paths undercut.
inline void require_right_gradients(const VerificationReport& r, const std::string& what) {
  INFO(what << "\n" << format_table(r));
  REQUIRE(!r.checks.empty());
  std::string bad;
  bool has_oracle = false;
  for (const auto& c : r.checks) {
    if (c.verdict != Verdict::pass && c.verdict != Verdict::skipped)
      bad += fmt::format("{} [{}]: {}: {}\n", c.check, c.precision, verdict_name(c.verdict), c.message);
    has_oracle = has_oracle || (c.check == "backward vs oracle" && c.precision == "mp100" && c.verdict == Verdict::pass);
  }
  CHECK(has_oracle);
  CHECK(bad == "");
  CHECK(r.passed());
}

inline void verify_right_gradients(const LayerSpec& spec, Index input_size, int points, double scale = 1,
                                   Index batch = 2) {
  VerifyOptions o;
  o.points = points;
  o.input_scale = scale;
  o.batch = batch;
  require_right_gradients(verify_layer(spec, input_size, o),
                          fmt::format("{} {} on {} points, batch {}", spec.type, spec.options.dump(), points, batch));
}

}  // namespace bpcheck::testing
