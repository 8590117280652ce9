// Rendering of verification results: table, JSON, JUnit XML.
#include "bpcheck/verify/result.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace bpcheck {

std::string verdict_name(Verdict v) {
  switch (v) {
    case Verdict::pass: return "pass";
    case Verdict::fail: return "FAIL";
    case Verdict::unstable: return "unstable";
    case Verdict::non_differentiable: return "non-differentiable";
    case Verdict::skipped: return "skipped";
  }
  return "?";
}

bool VerificationReport::evaluated() const {
  return std::any_of(checks.begin(), checks.end(), [](const CheckResult& c) { return c.verdict != Verdict::skipped; });
}

bool VerificationReport::passed() const {
  for (const auto& c : checks)
    if (c.verdict == Verdict::fail || (unstable_fails && c.verdict == Verdict::unstable)) return false;
  return evaluated();
}

void VerificationReport::count(std::vector<SetAside>& list, const std::string& reason, int count) {
  for (auto& entry : list)
    if (entry.reason == reason) {
      entry.count += count;
      return;
    }
  list.push_back({reason, count});
}

void VerificationReport::merge(const VerificationReport& other) {
  checks.insert(checks.end(), other.checks.begin(), other.checks.end());
  unstable_fails = unstable_fails || other.unstable_fails;
  for (const auto& kind : other.inputs)
    if (std::find(inputs.begin(), inputs.end(), kind) == inputs.end()) inputs.push_back(kind);
  for (const auto& r : other.redrawn) count(redrawn, r.reason, r.count);
  for (const auto& r : other.not_evaluated) count(not_evaluated, r.reason, r.count);
}

namespace {
std::string digits_text(double d) { return d < 0 ? "-" : fmt::format("{:.1f}", d); }

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// A number cut to 22 significant characters and its exponent, for the table.
std::string short_number(const std::string& x) {
  if (x.size() <= 28) return x;
  const auto e = x.find_first_of("eE");
  const std::string exponent = e == std::string::npos ? "" : x.substr(e);
  return x.substr(0, 22) + "…" + exponent;
}

// JSON has no Inf/NaN: a metric that overflowed is written as a string.
nlohmann::json number(double x) {
  if (std::isfinite(x)) return x;
  return std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf");
}
}  // namespace

std::string format_table(const VerificationReport& report) {
  // Fits in 80 columns (Catch2 wraps there); JSON carries every digit.
  std::string out = fmt::format("bpcheck verification: {}\n", report.subject);
  out += fmt::format("  {:<26} {:<6} {:<9} {:>9} {:>6} {:>6}\n", "check", "rung", "verdict", "value", "limit", "digits");
  std::string subject;
  for (const auto& c : report.checks) {
    if (c.subject != subject) out += (subject = c.subject) + "\n";
    const std::string verdict = c.verdict == Verdict::non_differentiable ? "non-diff" : verdict_name(c.verdict);
    out += fmt::format("  {:<26} {:<6} {:<9} {:>9.3g} {:>6.3g} {:>6}\n", c.check, c.precision, verdict, c.value,
                       c.threshold, digits_text(c.digits));
  }
  for (const auto& c : report.checks) {
    if (c.verdict == Verdict::pass || c.verdict == Verdict::skipped) continue;
    out += fmt::format("\n{}: {} [{}]\n  {}\n", c.subject, c.check, c.precision, c.message);
    out += fmt::format("  metric: {}\n  {}\n", c.metric, c.formula);
    for (const auto& w : c.worst) {
      out += fmt::format("    {:<30} abs {:9.3g}  rel {:9.3g}\n", w.where, w.abs_error, w.rel_error);
      out += fmt::format("      expected {}\n      actual   {}\n", short_number(w.expected), short_number(w.actual));
    }
    out += fmt::format("  seed: {}\n", c.seed);
  }
  std::size_t evaluations = 0;
  double seconds = 0;
  for (const auto& c : report.checks) evaluations += c.evaluations, seconds += c.seconds;
  out += fmt::format("cost: {} forward/backward passes, {:.3f} s\n", evaluations, seconds);
  if (!report.inputs.empty()) {
    std::string kinds;
    for (const auto& k : report.inputs) kinds += (kinds.empty() ? "" : ", ") + k;
    out += "inputs: " + kinds + "\n";
  }
  for (const auto& r : report.redrawn) out += fmt::format("redrawn: {} point(s): {}\n", r.count, r.reason);
  for (const auto& r : report.not_evaluated) out += fmt::format("not evaluated: {} point(s): {}\n", r.count, r.reason);
  bool wrong = false;
  std::size_t unstable = 0;
  for (const auto& c : report.checks) wrong = wrong || c.verdict == Verdict::fail, unstable += c.verdict == Verdict::unstable;
  if (!report.evaluated())
    out += "result: NO VERDICT: no point could be evaluated\n";
  else if (wrong)
    out += "result: WRONG GRADIENT\n";
  else if (!report.passed())
    out += "result: numerically unstable (a right gradient that loses digits; failing in strict mode)\n";
  else if (unstable > 0)
    out += fmt::format("result: all gradients correct; {} check(s) lose digits (unstable: advice, see above)\n",
                       unstable);
  else
    out += "result: all gradients correct\n";
  return out;
}

nlohmann::json to_json(const VerificationReport& report) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : report.checks) {
    nlohmann::json worst = nlohmann::json::array();
    for (const auto& w : c.worst)
      worst.push_back({{"block", w.block},
                       {"row", w.row},
                       {"col", w.col},
                       {"where", w.where},
                       {"expected", w.expected},
                       {"actual", w.actual},
                       {"abs_error", number(w.abs_error)},
                       {"rel_error", number(w.rel_error)}});
    checks.push_back({{"check", c.check},
                      {"subject", c.subject},
                      {"precision", c.precision},
                      {"verdict", verdict_name(c.verdict)},
                      {"metric", c.metric},
                      {"formula", c.formula},
                      {"value", number(c.value)},
                      {"threshold", number(c.threshold)},
                      {"digits", c.digits < 0 ? nlohmann::json(nullptr) : number(c.digits)},
                      {"seed", c.seed},
                      {"message", c.message},
                      {"evaluations", c.evaluations},
                      {"seconds", number(c.seconds)},
                      {"worst", worst}});
  }
  const auto set_aside = [](const std::vector<SetAside>& list) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : list) out.push_back({{"reason", r.reason}, {"count", r.count}});
    return out;
  };
  return {{"subject", report.subject},
          {"passed", report.passed()},
          {"evaluated", report.evaluated()},
          {"unstable_fails", report.unstable_fails},
          {"inputs", report.inputs},
          {"redrawn", set_aside(report.redrawn)},
          {"not_evaluated", set_aside(report.not_evaluated)},
          {"checks", checks}};
}

std::string to_junit_xml(const VerificationReport& report) {
  std::size_t failures = 0, skipped = 0;
  double seconds = 0;
  // An unstable verdict fails the run when the report says so; CI dashboards must show it red then.
  const auto failing = [&report](const CheckResult& c) {
    return c.verdict == Verdict::fail || (report.unstable_fails && c.verdict == Verdict::unstable);
  };
  for (const auto& c : report.checks) {
    failures += failing(c);
    skipped += c.verdict == Verdict::skipped;
    seconds += c.seconds;
  }
  skipped += report.not_evaluated.size();
  const std::size_t tests = report.checks.size() + report.not_evaluated.size();
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites>\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.6f}\">\n",
                     xml_escape("bpcheck: " + report.subject), tests, failures, skipped, seconds);
  // Points redrawn (replaced by an evaluable draw) as properties of the suite.
  if (!report.redrawn.empty()) {
    out += "  <properties>\n";
    for (const auto& r : report.redrawn)
      out += fmt::format("    <property name=\"redrawn\" value=\"{}\"/>\n",
                         xml_escape(fmt::format("{} point(s): {}", r.count, r.reason)));
    out += "  </properties>\n";
  }
  for (const auto& c : report.checks) {
    out += fmt::format("  <testcase classname=\"{}\" name=\"{}\" time=\"{:.6f}\">\n", xml_escape(c.subject),
                       xml_escape(c.check + " [" + c.precision + "]"), c.seconds);
    std::string detail = c.message + "\n" + c.metric + "; " + c.formula + "\n";
    for (const auto& w : c.worst)
      detail += fmt::format("{}: expected {} actual {} (abs {:.3g}, rel {:.3g})\n", w.where, w.expected, w.actual,
                            w.abs_error, w.rel_error);
    if (failing(c))
      out += fmt::format("    <failure message=\"{}\">{}</failure>\n", xml_escape(c.message), xml_escape(detail));
    else if (c.verdict == Verdict::skipped)
      out += fmt::format("    <skipped message=\"{}\"/>\n", xml_escape(c.message));
    else if (c.verdict != Verdict::pass)
      out += fmt::format("    <system-out>{}</system-out>\n", xml_escape(verdict_name(c.verdict) + ": " + detail));
    out += "  </testcase>\n";
  }
  // Points without a verdict: one skipped case per reason, so that a dashboard shows them.
  for (const auto& r : report.not_evaluated)
    out += fmt::format("  <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n    <skipped message=\"{}\"/>\n  </testcase>\n",
                       xml_escape(report.subject), xml_escape(fmt::format("not evaluated: {} point(s)", r.count)),
                       xml_escape(r.reason));
  out += "</testsuite>\n</testsuites>\n";
  return out;
}

}  // namespace bpcheck
