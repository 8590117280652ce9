#pragma once
// The subcommands of `bpcheck`. Each one registers its options on the parent app and returns the
// action main() runs once parsing has selected it; errors leave as exceptions (bpcheck::error,
// nlohmann::json::exception) and main() turns them into one line on stderr and exit code 2.
#include <functional>
#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

#include "bpcheck/scalar.hpp"

namespace bpcheck::cli {

struct Command {
  CLI::App* app = nullptr;               ///< the subcommand, to ask whether it was selected
  std::function<int(std::ostream&)> run;  ///< writes its result to the stream, returns the exit code
};

/// `bpcheck gradient`: the gradient of a model on a batch, in one precision, as JSON.
Command add_gradient_command(CLI::App& parent);
/// `bpcheck example`: the built-in example computed in float, double and mp100, compared.
Command add_example_command(CLI::App& parent);
/// `bpcheck verify`: every check of a model's gradients; exit 0 right, 1 wrong, 2 bad input.
Command add_verify_command(CLI::App& parent);
/// `bpcheck compare`: another program's gradient against a high-precision truth (quad or mp100); exit 0 right, 1 wrong, 2 bad input.
Command add_compare_command(CLI::App& parent);
/// `bpcheck hvp`: the Hessian-vector product of a model's loss with respect to its parameters, as JSON.
Command add_hvp_command(CLI::App& parent);
/// `bpcheck report`: the error-analysis report (JSON, CSV, HTML); `bpcheck report merge` joins shards.
Command add_report_command(CLI::App& parent);

/// Writes a file through a temporary in the same folder and a rename: no partial file on failure.
void write_file_atomically(const std::string& path, const std::string& text);

/// --seed's check: a decimal whole number in 0..2^64−1. Without it CLI11 reads "-1" as 2^64−1 and
/// saturates 2^64 and beyond to 2^64−1, a silent change of seed.
inline CLI::Validator seed_check() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::string refusal = "a seed is a whole number from 0 to 18446744073709551615, got '" + text + "'";
        if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos)
          return refusal;
        if (text.size() == 20 && text > "18446744073709551615") return refusal;
        return {};
      },
      "0..2^64-1");
}

/// The names --precision accepts.
inline const std::vector<std::string>& precision_names() {
  static const std::vector<std::string> names{"float", "double", "mp100"};
  return names;
}

/// Calls f(T{}) with T the rung named by `precision`.
template <class F>
decltype(auto) with_precision(const std::string& precision, F&& f) {
  if (precision == "float") return f(float{});
  if (precision == "double") return f(double{});
  if (precision == "mp100") return f(mp100{});
  throw input_error("unknown precision '" + precision + "' (known: float, double, mp100)");
}

/// The names --precision accepts where the 16-bit rungs are offered too (gradient, verify, compare).
inline const std::vector<std::string>& precision_names_16() {
  static const std::vector<std::string> names{"float", "double", "mp100", "bf16", "fp16"};
  return names;
}

/// with_precision, and bf16/fp16.
template <class F>
decltype(auto) with_precision_16(const std::string& precision, F&& f) {
  if (precision == "bf16") return f(bf16{});
  if (precision == "fp16") return f(fp16{});
  if (precision == "float" || precision == "double" || precision == "mp100")
    return with_precision(precision, std::forward<F>(f));
  throw input_error("unknown precision '" + precision + "' (known: float, double, mp100, bf16, fp16)");
}

/// --accumulate: how the 16-bit rungs' matrix products add up ("same": in the 16-bit format, the
/// default; "float": in float, rounded once, as mixed-precision training does).
inline void add_accumulate_option(CLI::App* app, std::string& accumulate) {
  app->add_option("--accumulate", accumulate,
                  "bf16/fp16 matrix products: 'same' rounds every product and sum to the 16-bit format, "
                  "'float' sums in float and rounds once (mixed precision)")
      ->check(CLI::IsMember({"same", "float"}))
      ->capture_default_str();
}
inline Accumulation accumulation_of(const std::string& accumulate) {
  return accumulate == "float" ? Accumulation::float_ : Accumulation::same;
}

}  // namespace bpcheck::cli
