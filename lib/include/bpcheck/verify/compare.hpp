#pragma once
// Judges a gradient computed by another program (PyTorch, a hand-written kernel) against the mp100
// truth of the same model, parameters and data, block by block:
//
//   bpcheck::NetworkSubject subject{spec, params_json, data_json};
//   auto c = bpcheck::compare_gradient(subject, gradient_json, "float");
//   std::cout << bpcheck::format_table(c);
//   return c.exit_code();                             // 0 right, 1 wrong
//
// Each entry i of the given gradient g_T is held to the rounding bound `verify` uses for a network's
// loss (docs/compare.md):
//
//   |g_T,i − g_i| ≤ K ((terms + 2) u_T A_i + cond_i) + floor
//
// with g the exact gradient (backprop in mp100), A = max(|g|, the backward sweep in absolute values
// LossLayer::absolute_sweep; the block's largest where both are 0), terms = LossLayer::rounding_terms(), and cond the largest change of the
// exact gradient when every activation moves by its rounding in T (two random draws of ±u_T F_k, and
// bpcheck's own forward activations in T) or the parameters and inputs move by a relative u_T.
// Beyond the bound, a block is `wrong` when an error is gross (above a tenth of the block's largest
// exact value and above √u_T A_i) or not finite, and `less_accurate` otherwise: digits lost beyond
// what T allows, which no exact computation can tell from a wrong formula at that size.
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
  less_accurate,  ///< beyond the bound, not gross: less accurate than the precision allows
};

/// "pass", "wrong", "less_accurate".
std::string compare_verdict_name(CompareVerdict v);

struct CompareOptions {
  std::uint64_t seed = 42;                           ///< signs of the activations' rounding moves
  double rounding_factor = default_rounding_factor;  ///< K
  bool strict = false;                               ///< `less_accurate` fails too (exit 1)
  std::string gradient_file = "gradient";            ///< the gradient document's name, for messages
  /// The most entries the layers' absolute Jacobians on the batch may have together (they are formed in
  /// mp100 for the absolute sweep, about 80 bytes each). Beyond it, A is normwise: each entry rounds
  /// relative to its block's largest exact value, and each activation relative to its own size, as
  /// `verify` does in projection mode.
  Index sweep_limit = 1000000;
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
};

struct GradientComparison {
  std::string subject;    ///< "network (5 layers, cross_entropy)"
  std::string precision;  ///< "float" or "double"
  Index samples = 0;
  std::string exact_loss;              ///< the loss in mp100
  std::optional<std::string> given_loss;  ///< the document's "loss", when it has one
  double unit_roundoff = 0, rounding_factor = default_rounding_factor;
  Index rounding_terms = 0;
  bool absolute_sweep = true;  ///< A from the absolute sweep (false: normwise, beyond sweep_limit)
  bool strict = false;
  std::vector<BlockComparison> blocks;

  /// No block wrong (nor less accurate, when strict).
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
/// One test case per block; `wrong` (and `less_accurate` when strict) is a failure.
std::string to_junit_xml(const GradientComparison& c);

}  // namespace bpcheck
