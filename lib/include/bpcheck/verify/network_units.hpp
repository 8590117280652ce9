#pragma once
// verify_network's work in units that may run apart, on other machines, and be joined afterwards
// (`bpcheck verify --shard k/n` and `bpcheck verify merge`):
//
//   const std::size_t n = bpcheck::network_unit_count(subject, options);   // 1 + layers · points
//   auto some = bpcheck::verify_network_units(subject, options, {0, 2, 4});  // one report per unit
//   ... the other units elsewhere, then, with every unit's report in unit order:
//   bpcheck::VerificationReport r = bpcheck::join_network_units(subject, options, all);  // = verify_network
//
// Unit 0 is the network's loss at its batch (with the overflow search in float and double); unit
// 1 + k·points + p is point p of layer k. A point's seed and distribution follow from its index
// alone, so a unit's report does not depend on which others run beside it; verify_network is the
// join of all units run in one process.
#include <cstddef>
#include <vector>

#include "bpcheck/verify/result.hpp"
#include "bpcheck/verify/verify.hpp"

namespace bpcheck {

/// The number of units of verify_network(subject, options): 1 + layers · options.points.
std::size_t network_unit_count(const NetworkSubject& subject, const VerifyOptions& options);

/// Runs the units `chosen` (indices below network_unit_count, any order) on options.threads threads;
/// one report per chosen unit, in the order given. Reads and checks the whole subject first, so that
/// bad input is refused whichever units are chosen.
std::vector<VerificationReport> verify_network_units(const NetworkSubject& subject, const VerifyOptions& options,
                                                     const std::vector<std::size_t>& chosen);

/// verify_network's report from the reports of all its units, in unit order. Throws input_error
/// when their number is not network_unit_count.
VerificationReport join_network_units(const NetworkSubject& subject, const VerifyOptions& options,
                                      const std::vector<VerificationReport>& units);

}  // namespace bpcheck
