#pragma once
// What every fuzz target shares: a finding is anything but a normal outcome, and bpcheck::error (one
// line for the user, exit code 2) is a normal outcome. Any other exception escapes the target, and
// libFuzzer reports it as a crash with the input that caused it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bpcheck/error.hpp"
#include "bpcheck/io/limits.hpp"

namespace bpcheck::fuzz {

inline std::string text_of(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

/// Runs f; a bpcheck::error must carry a message, and is otherwise the expected refusal.
template <class F>
void expect_result_or_error(F&& f) {
  try {
    f();
  } catch (const bpcheck::error& e) {
    if (std::string(e.what()).empty()) __builtin_trap();  // a refusal must say what is wrong
  }
}

}  // namespace bpcheck::fuzz

/// libFuzzer stops at 2 GiB of memory; the readers plan within 256 MiB, so that a large but
/// legal input is refused by the readers' own check rather than flagged by the fuzzer.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bpcheck::set_memory_budget(std::uint64_t(256) << 20);
  return 0;
}
