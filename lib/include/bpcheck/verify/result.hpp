#pragma once
// What a verification says: per check a verdict, the metric and its formula, the worst entries,
// the precision and the seed. Reports read these structs only; they know nothing of scalars.
//
//   bpcheck::VerificationReport r = bpcheck::verify_layer(factory);
//   std::cout << bpcheck::format_table(r);          // for people
//   nlohmann::json j = bpcheck::to_json(r);         // for machines
//   std::string x = bpcheck::to_junit_xml(r);       // for CI dashboards
//   return r.exit_code();                            // 0 all pass, 1 a gradient is wrong
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpcheck/scalar.hpp"

namespace bpcheck {

enum class Verdict {
  pass,                ///< within tolerance
  fail,                ///< the gradient is wrong: shown in mp100, where the oracles are exact in practice
  unstable,            ///< right in mp100, but float/double lose more digits than the rounding bound allows
  non_differentiable,  ///< one-sided differences disagree at the point: no gradient to check
  skipped,             ///< not applicable (e.g. no explicit Jacobians stated)
};

std::string verdict_name(Verdict v);

/// One entry of a compared matrix, with everything needed to find it in the layer.
struct WorstEntry {
  std::string block;  ///< "x" for the input, a parameter block name ("W", "b") otherwise
  Index row = 0;      ///< row of the Jacobian or gradient (output index · sample)
  Index col = 0;      ///< column: the entry of the block (row-major position inside it is in `where`)
  std::string where;  ///< human-readable position, e.g. "W[2,1] (sample 0, output 1)"
  std::string expected;
  std::string actual;
  double abs_error = 0;
  double rel_error = 0;
};

struct CheckResult {
  std::string check;      ///< "backward vs oracle", "dot-product identity", "taylor order", …
  std::string subject;    ///< the layer or network
  std::string precision;  ///< rung name
  Verdict verdict = Verdict::pass;
  std::string metric;     ///< what `value` measures
  std::string formula;    ///< how the verdict follows from `value` and `threshold`
  double value = 0;
  double threshold = 0;
  double digits = -1;     ///< significant digits of agreement where meaningful, −1 otherwise
  std::uint64_t seed = 0;
  std::vector<WorstEntry> worst;
  std::string message;    ///< a sentence for people: what is wrong and where
  std::size_t evaluations = 0;  ///< forward/backward passes spent
  double seconds = 0;
};

/// Points of a verification set aside, counted by the reason.
struct SetAside {
  std::string reason;
  int count = 0;
};

struct VerificationReport {
  std::string subject;
  std::vector<CheckResult> checks;
  bool unstable_fails = false;  ///< whether an `unstable` verdict fails the report (by default it is advice)
  /// How the points' inputs were drawn, one entry per kind ("uniform ±1", "saturation", "given", …).
  std::vector<std::string> inputs;
  /// Drawn points replaced by a new draw because they could not be evaluated there (the exact forward
  /// leaves double's range, an oracle is not finite), by reason.
  std::vector<SetAside> redrawn;
  /// Points abandoned without a verdict (the time limit reached, no evaluable point within the
  /// redraws), by reason.
  std::vector<SetAside> not_evaluated;

  /// Some point was evaluated: a check gave a verdict other than skipped.
  bool evaluated() const;
  /// Something was evaluated and no check failed (nor was unstable, when unstable_fails).
  /// Non-differentiable points are reported but are not wrong gradients.
  bool passed() const;
  /// 0 when passed, 1 when a gradient is wrong, 3 when nothing could be evaluated (the `bpcheck verify`
  /// exit code).
  int exit_code() const { return !evaluated() ? 3 : passed() ? 0 : 1; }
  /// Adds `count` points set aside for `reason` to `list`.
  static void count(std::vector<SetAside>& list, const std::string& reason, int count = 1);
  /// Appends another report's checks (and the kinds of inputs it used).
  void merge(const VerificationReport& other);
};

/// A short fixed-width table: one line per check, then the worst entries of each failing check.
std::string format_table(const VerificationReport& report);
nlohmann::json to_json(const VerificationReport& report);
std::string to_junit_xml(const VerificationReport& report);

}  // namespace bpcheck
