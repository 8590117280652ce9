#pragma once
// Limits every reader applies to input it did not write itself: JSON nesting, duplicate keys, file
// sizes and models that would need more memory than the machine has. Each refusal is an input_error
// naming the file, raised before anything large is allocated.
//
//   nlohmann::json j = bpcheck::parse_json(text, "model.json");     // ≤ 64 levels, no duplicate keys
//   bpcheck::check_model_memory(spec, sizeof(bpcheck::mp100), "mp100", "model.json");
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "bpcheck/network.hpp"

namespace bpcheck {

/// Deepest nesting of arrays and objects a reader accepts. The formats need 4 levels; the limit keeps
/// the recursive parts of nlohmann::json (dump, copy, comparison) far from the end of the stack.
inline constexpr int max_json_depth = 64;

/// Parses JSON text, refusing nesting beyond max_json_depth and an object with a repeated key (which
/// nlohmann::json would otherwise resolve silently by keeping the last value). Errors name `where`.
nlohmann::json parse_json(const std::string& text, const std::string& where);

/// A text or JSON value for an error message, cut to `most` characters so that a huge value still
/// makes one readable line.
inline std::string text_excerpt(std::string text, std::size_t most = 60) {
  if (text.size() > most) text = text.substr(0, most) + "…";
  return text;
}
inline std::string json_excerpt(const nlohmann::json& j, std::size_t most = 60) { return text_excerpt(j.dump(), most); }

/// The bytes a reader may plan on: the machine's physical memory (sysconf), unless a smaller budget
/// was set with set_memory_budget (the fuzzers run under a 2 GiB limit of their own).
std::uint64_t memory_budget();
/// Sets the budget memory_budget() returns; 0 restores the machine's physical memory.
void set_memory_budget(std::uint64_t bytes);

/// Bytes as a short human-readable text ("2.3 GiB").
std::string format_bytes(double bytes);

/// Throws input_error("<where>: <what> needs about <N> …, more than this machine's memory") when
/// `bytes` exceeds memory_budget(); called before the allocation it guards.
void check_memory(double bytes, const std::string& what, const std::string& where);

/// The parameters a model holds and its widest activation (one sample), counted from the spec
/// without building it, by each layer type's rule in the registry. An unknown layer type is an
/// input_error ("layer 2: unknown layer type …", naming the known ones); a layer whose options do not
/// size it ends the count there (the registry refuses those options when the model is built): what
/// is counted is then a lower bound.
struct ModelExtent {
  double parameters = 0;
  double widest = 0;
};
ModelExtent model_extent(const ModelSpec& spec);

/// Refuses a model whose parameters and widest activation, at `scalar_bytes` per number, do not fit
/// in the machine's memory; `rung` and `where` name the precision and the file in the message.
void check_model_memory(const ModelSpec& spec, std::size_t scalar_bytes, const std::string& rung,
                        const std::string& where);

}  // namespace bpcheck
