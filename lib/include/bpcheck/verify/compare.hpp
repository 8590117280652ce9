#pragma once
// Judges a gradient computed by another program (PyTorch, a hand-written kernel) against the mp100
// truth of the same model, parameters and data, block by block:
//
//   bpcheck::NetworkSubject subject{spec, params_json, data_json};
//   auto c = bpcheck::compare_gradient(subject, gradient_json, "float");
//   std::cout << bpcheck::format_table(c);
//   return c.exit_code();                             // 0 right, 1 wrong or less accurate
//
// Each entry i of the given gradient g_T is held to a bound of the rounding a correct implementation
// makes in T (docs/compare.md, "The bound"):
//
//   |g_T,i − g_i| ≤ λ √n u_T A_b + K cond_i + M e_b + floor
//
// with g the exact gradient (backprop in mp100), A_b what block b is summed from, normwise: its
// largest |g| or absolute sum of terms (where terms cancel to an exact 0, their size), n the lengths
// of the sums backprop forms from the loss down to the block, cond the largest change of the exact gradient over T's
// rounding of the forward pass (each layer's output, the parameters, the inputs) and of a backward
// that cancels, and e_b the largest error of bpcheck's own
// backprop in T on the block b. Each block's evidence goes to verify's one verdict rule (judge() in
// lib/src/verdict.hpp), with these thresholds as the compare section of its Tolerances.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpcheck/verify/rounding.hpp"
#include "bpcheck/verify/verify.hpp"

namespace bpcheck {

enum class CompareVerdict {
  pass,           ///< every entry within the rounding bound of the stated precision
  wrong,          ///< beyond the bound and gross (or not finite): the exact gradient says it is wrong
  less_accurate,  ///< beyond the bound, not gross: more digits lost than any rounding in T explains
};

/// "pass", "wrong", "less_accurate".
std::string compare_verdict_name(CompareVerdict v);

/// The thresholds of the bound (docs/compare.md), the compare section of the verdict rule's tolerances.
struct CompareThresholds {
  /// λ: the rounding error of a value computed in n steps exceeds λ √n u times the absolute sum of its
  /// terms with probability at most 2n exp(−λ²/2) when the roundings are independent and of mean zero
  /// (Higham & Mary's probabilistic analysis); λ = 8: at most 2.5e-14 n per entry.
  double lambda = 8;
  /// K on cond: the gradient's largest change over five moves (two random draws of every activation
  /// moved by the whole u_T F where rounding moves it by |δ| ≤ u_T, T's own activations, two draws of
  /// the parameters and inputs); K covers the directions not drawn.
  double cond_factor = 4;
  /// M on e_b, the largest error of bpcheck's own backprop in T on the block at the same numbers: a
  /// correct implementation rounds about as much, whatever the magnitudes A miss.
  double measured_factor = 8;
  // The verdict's thresholds (a pass at error/bound ≤ 1, the gross fraction) are verify's: compare's
  // blocks are judged by the one verdict rule (lib/src/verdict.hpp), where these are its compare section.
};

struct CompareOptions {
  std::uint64_t seed = 42;            ///< signs of the activations' rounding moves
  CompareThresholds thresholds;
  /// `less_accurate` is advice (exit 0) rather than a failure. Off by default: for another program's
  /// gradient nothing shows that digits beyond the bound were lost to rounding and not to a formula.
  bool allow_less_accurate = false;
  int jobs = 0;                       ///< threads for the rounding moves (0: one per core)
  std::string gradient_file = "gradient";            ///< the gradient document's name, for messages
  /// The most entries the layers' absolute Jacobians on the batch may have together (they are formed in
  /// mp100 for the forward sweep in absolute values, about 80 bytes each, what each activation's
  /// rounding is relative to in cond's moves). Beyond it, each activation rounds relative to its own size.
  Index sweep_limit = 1000000;
  /// bf16/fp16: how bpcheck's own backprop in the precision adds up its matrix products (float16.hpp):
  /// in the format (same) or in float (mixed precision, as the program judged may have run).
  Accumulation accumulation = Accumulation::same;
  /// The truth and cond's moves in mp100 even where quad resolves the gradient's rounding (float,
  /// double; lib/src/quad.hpp): slower, the same verdicts; for tests of that.
  bool mp100_truth = false;
};

/// One entry of a block, as the gradient document indexes it.
struct ComparedEntry {
  Index row = 0, col = 0;  ///< values[row][col] of a matrix block; values[row] of a vector (col 0)
  std::string where;       ///< "W[2,1]" or "b[3]"
  std::string exact, given;
  double abs_error = 0;    ///< +inf when the given value is not finite
  double bound = 0;
  double ratio = 0;        ///< abs_error / bound
};

struct BlockComparison {
  std::size_t layer = 0;
  std::string layer_type, name;
  std::vector<Index> shape;  ///< [rows, cols] or [rows]
  CompareVerdict verdict = CompareVerdict::pass;
  double digits = 0;          ///< −log10(max |g_T − g| / max |g|), capped at the precision's digits
  double ratio = 0;           ///< max error/bound over the block (+inf for a non-finite entry)
  double max_abs_error = 0, max_exact = 0;
  std::vector<ComparedEntry> worst;  ///< the five largest ratios, largest first
  double float_ratio = 0;     ///< max error/bound against float's bound (a double gradient), else ratio
  bool exact_zero = false;    ///< the exact block is 0: its terms cancel
  /// Beyond the bound: "float" when a double block is within float's bound, else "" (no rounding in
  /// float or double explains it).
  std::string consistent_with;
  std::string explanation;    ///< why, in words ("" for a pass)
};

struct GradientComparison {
  std::string subject;    ///< "network (5 layers, cross_entropy)"
  std::string precision;  ///< "float" or "double"
  Index samples = 0;
  std::string exact_loss;              ///< the loss in mp100
  std::optional<std::string> given_loss;  ///< the document's "loss", when it has one
  double unit_roundoff = 0;
  CompareThresholds thresholds;
  Index rounding_terms = 0;    ///< the largest n in the bound (the first layer's, as a rule)
  std::string bound_formula;   ///< the bound as a formula, written where it is built
  bool absolute_sweep = true;  ///< activations round relative to their forward sweep (false: their size)
  bool allow_less_accurate = false;
  std::string truth = "mp100";  ///< the rung the truth and cond's moves ran on: "quad" or "mp100"
  std::vector<BlockComparison> blocks;

  /// No block wrong nor less accurate (less accurate is allowed with allow_less_accurate).
  bool passed() const;
  int exit_code() const { return passed() ? 0 : 1; }
  /// The block whose worst entry has the largest error/bound ratio (nullptr without blocks).
  const BlockComparison* worst_block() const;
  /// The overall verdict: wrong if a block is wrong, else less_accurate if one is, else pass.
  CompareVerdict verdict() const;
};

/// Compares `gradient` (the gradient format, docs/formats.md) with the exact gradient of the subject's
/// loss. The subject must carry its parameters and data. `precision` is "float" or "double"; empty takes
/// the document's "precision". Throws input_error (exit 2) for a precision other than float or double,
/// one that contradicts the document's, and for blocks missing, repeated, unknown, or of another shape
/// than the model's; a value that is not a number or a decimal string is refused, while "nan", "inf"
/// and "-inf" (strings) are read and judged wrong.
GradientComparison compare_gradient(const NetworkSubject& subject, const nlohmann::json& gradient,
                                    const std::string& precision, const CompareOptions& options = {});

/// A table for people: one line per block, then the worst entry and the verdict.
std::string format_table(const GradientComparison& c);
/// The comparison as JSON (docs/compare.md, "JSON output").
nlohmann::ordered_json to_json(const GradientComparison& c);
/// One test case per block; `wrong` (and `less_accurate` unless allowed) is a failure.
std::string to_junit_xml(const GradientComparison& c);

}  // namespace bpcheck
