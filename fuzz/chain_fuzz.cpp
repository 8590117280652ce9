// Fuzzes the verifier's liveness: bytes → a chain of elementary functions (exp, cos, sin, tanh,
// squares, log1p, silu, log, …) as a layer whose backward is the chain rule → verify_layer on one
// point of each distribution under a time limit. Whatever the chain does to the ranges of float,
// double, mp100 or the oracles, verify_layer must return a report within its budget: a numerical
// condition of the layer never escapes as an exception, and no run outlives the limit by more than a
// few passes of the layer.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "bpcheck/verify/verify.hpp"
#include "elementary_chain.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || size > 7) return 0;  // a distribution byte and one to six functions
  std::vector<elementary::Op> ops;
  for (std::size_t i = 1; i < size; ++i) ops.push_back(elementary::Op(data[i] % elementary::op_count));
  bpcheck::VerifyOptions o;
  o.distributions = {bpcheck::point_distributions()[data[0] % bpcheck::point_distributions().size()]};
  o.points = 1;
  o.batch = 1;
  o.precisions = {"double", "mp100"};
  o.time_limit = 3;
  const auto start = std::chrono::steady_clock::now();
  const auto report = bpcheck::verify_layer(
      [&ops]<class T>(bpcheck::rung<T>) { return elementary::Chain<T>(2, ops); }, o);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (took > o.time_limit + 5) __builtin_trap();  // the budget was not honoured
  if (report.checks.empty() && report.not_evaluated.empty()) __builtin_trap();  // neither verdict nor reason
  return 0;
}
