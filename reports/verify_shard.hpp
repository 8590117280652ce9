#pragma once
// The shard file of `bpcheck verify --shard k/n` and its reading by `bpcheck verify merge`:
//
//   {"format": "bpcheck verify shard", "version": 1, "run": {...}, "shard": {"index": k, "count": n},
//    "units": [{"index": i, "report": <the unit's report in the verification format>}]}
//
// "run" names everything the results depend on (the model, fingerprints of the parameters and data,
// the seed and the verify options, the number of units), so that merge refuses parts of different
// runs; unit i belongs to shard (i mod n) + 1.
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpcheck/verify/result.hpp"

namespace bpcheck::cli {

/// Part k of n (1 ≤ k ≤ n), from the text "k/n".
struct ShardIndex {
  std::size_t index = 1, count = 1;
};
/// Reads --shard's "k/n"; throws input_error naming the flag otherwise.
ShardIndex parse_verify_shard(const std::string& text);

/// A 64-bit FNV-1a fingerprint of a JSON document's canonical text (keys sorted, no spaces), as 16
/// hex digits: equal documents, whatever their layout, have equal fingerprints.
std::string json_fingerprint(const nlohmann::json& document);

/// A unit's report exactly as to_json writes it, read back (non-finite numbers are written as
/// "inf", "-inf" or "nan"). Throws nlohmann::json::exception or input_error on anything else.
VerificationReport report_from_json(const nlohmann::json& j);

/// One shard file's content.
struct VerifyShard {
  nlohmann::json run;
  ShardIndex shard;
  std::vector<std::pair<std::size_t, VerificationReport>> units;  ///< (unit index, its report)
};
nlohmann::json shard_to_json(const VerifyShard& shard);
/// Reads and checks a shard file; every problem is an input_error naming `path`.
VerifyShard read_verify_shard(const std::string& path);

/// The shards of one run, joined: every unit's report in unit order, and the run they share. Refuses
/// (input_error) shards of different runs, a shard given twice, a missing shard, a unit out of place.
struct JoinedShards {
  nlohmann::json run;
  std::vector<VerificationReport> units;
};
JoinedShards join_verify_shards(const std::vector<std::string>& paths);

}  // namespace bpcheck::cli
