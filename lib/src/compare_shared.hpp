#pragma once
// What compare and compare --hvp share (compare.cpp): reading the blocks of a document in the gradient
// format, a block's verdict from judge()'s, and the table.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpcheck/network.hpp"

#include "bpcheck/verify/compare.hpp"
#include "verdict.hpp"

namespace bpcheck::compare_detail {

/// A value of a document: finite (value), or NaN/±Inf as the document wrote it (the strings "nan",
/// "inf", "-inf", "infinity"; JSON has no such numbers).
struct GivenValue {
  mp100 value{0};
  bool finite = true;
  std::string text;
};

/// How a document's list of blocks is named in its errors.
struct BlockListWords {
  std::string key;           ///< the list: "gradients", "hvp"
  std::string needs_list;    ///< "a gradient needs a 'gradients' list"
  std::string missing;       ///< before "block 'b' of layer k …" when a block is missing: "no gradient for"
};

/// Every block of the network once, in θ's order, from the document's list under words.key (known
/// keys precision, loss and that list; layer indices, block names and shapes checked, no block twice,
/// none missing). The document is a JSON object (the caller checks it, in its own words).
template <class T>
std::vector<GivenValue> read_parameter_blocks(const Network<T>& net, const nlohmann::json& doc,
                                              const std::string& where, const BlockListWords& words);

/// bc.verdict and bc.explanation from judge()'s verdict on the block (bc.digits, bc.float_ratio and
/// bc.exact_zero set): wrong when not finite or far beyond any rounding (`wrong_cause` the likely
/// cause), less accurate otherwise when not passed (consistent with float when a double block is
/// within float's bound). `note_exact_zero`: say so when the exact block is 0.
void set_block_verdict(BlockComparison& bc, const verify_detail::Judgement& j, const std::string& precision,
                       const std::string& wrong_cause, bool note_exact_zero);

/// The table: `title`, the blocks, `bound_line`, the loss, the worst entry (`worst_line`), each block
/// that did not pass with its worst entries, and the verdict.
std::string comparison_table(const GradientComparison& c, const std::string& title, const std::string& bound_line,
                             bool worst_line);

}  // namespace bpcheck::compare_detail
