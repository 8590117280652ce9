// The shard file of `bpcheck verify --shard k/n` and `bpcheck verify merge` (see verify_shard.hpp).
#include "verify_shard.hpp"

#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "bpcheck/error.hpp"

namespace bpcheck::cli {

using nlohmann::json;

ShardIndex parse_verify_shard(const std::string& text) {
  static const std::regex form(R"(([0-9]{1,6})/([0-9]{1,6}))");
  std::smatch m;
  if (!std::regex_match(text, m, form))
    throw input_error("--shard: expected k/n, part k of n (e.g. 1/4), got '" + text + "'");
  const ShardIndex s{std::stoul(m[1]), std::stoul(m[2])};
  if (s.count < 1 || s.index < 1 || s.index > s.count)
    throw input_error("--shard: part k of n needs 1 <= k <= n, got '" + text + "'");
  return s;
}

std::string json_fingerprint(const json& document) {
  std::uint64_t h = 14695981039346656037ULL;
  for (const unsigned char c : document.dump()) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

namespace {

/// A number as to_json writes it: a JSON number, or "inf", "-inf", "nan" where it is not finite.
double number_from_json(const json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.get<std::string>();
  if (s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "-inf") return -std::numeric_limits<double>::infinity();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  throw input_error("'" + s + "' is not a number");
}

Verdict verdict_from_name(const std::string& name) {
  for (const Verdict v : {Verdict::pass, Verdict::fail, Verdict::unstable, Verdict::non_differentiable, Verdict::skipped})
    if (verdict_name(v) == name) return v;
  throw input_error("unknown verdict '" + name + "'");
}

/// j, which must be an array.
const json& json_array(const json& j) {
  if (!j.is_array()) throw input_error("expected an array, got " + std::string(j.type_name()));
  return j;
}

std::vector<SetAside> set_aside_from_json(const json& j) {
  std::vector<SetAside> list;
  for (const auto& e : json_array(j)) list.push_back({e.at("reason").get<std::string>(), e.at("count").get<int>()});
  return list;
}

json read_shard_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw input_error(path + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw input_error(path + ": malformed JSON (" + std::string(e.what()) + ")");
  }
}

/// The first key in which two runs differ, for the message.
std::string first_run_difference(const json& a, const json& b) {
  for (const auto& [key, value] : a.items())
    if (!b.contains(key) || b.at(key) != value) return key;
  for (const auto& [key, value] : b.items())
    if (!a.contains(key)) return key;
  return "?";
}

constexpr const char* shard_format = "bpcheck verify shard";

}  // namespace

VerificationReport report_from_json(const json& j) {
  VerificationReport r;
  r.subject = j.at("subject").get<std::string>();
  r.unstable_fails = j.at("unstable_fails").get<bool>();
  r.inputs = j.at("inputs").get<std::vector<std::string>>();
  r.redrawn = set_aside_from_json(j.at("redrawn"));
  r.not_evaluated = set_aside_from_json(j.at("not_evaluated"));
  for (const auto& c : json_array(j.at("checks"))) {
    CheckResult x;
    x.check = c.at("check").get<std::string>();
    x.subject = c.at("subject").get<std::string>();
    x.precision = c.at("precision").get<std::string>();
    x.verdict = verdict_from_name(c.at("verdict").get<std::string>());
    x.metric = c.at("metric").get<std::string>();
    x.formula = c.at("formula").get<std::string>();
    x.value = number_from_json(c.at("value"));
    x.threshold = number_from_json(c.at("threshold"));
    x.digits = c.at("digits").is_null() ? -1 : number_from_json(c.at("digits"));
    x.seed = c.at("seed").get<std::uint64_t>();
    x.message = c.at("message").get<std::string>();
    x.evaluations = c.at("evaluations").get<std::size_t>();
    x.seconds = number_from_json(c.at("seconds"));
    for (const auto& w : json_array(c.at("worst"))) {
      WorstEntry e;
      e.block = w.at("block").get<std::string>();
      e.row = w.at("row").get<Index>();
      e.col = w.at("col").get<Index>();
      e.where = w.at("where").get<std::string>();
      e.expected = w.at("expected").get<std::string>();
      e.actual = w.at("actual").get<std::string>();
      e.abs_error = number_from_json(w.at("abs_error"));
      e.rel_error = number_from_json(w.at("rel_error"));
      x.worst.push_back(std::move(e));
    }
    r.checks.push_back(std::move(x));
  }
  return r;
}

json shard_to_json(const VerifyShard& shard) {
  json units = json::array();
  for (const auto& [index, report] : shard.units) units.push_back({{"index", index}, {"report", to_json(report)}});
  return {{"format", shard_format},
          {"version", 1},
          {"run", shard.run},
          {"shard", {{"index", shard.shard.index}, {"count", shard.shard.count}}},
          {"units", std::move(units)}};
}

VerifyShard read_verify_shard(const std::string& path) {
  const json j = read_shard_json(path);
  if (!j.is_object() || !j.contains("format") || j.at("format") != shard_format)
    throw input_error(path + ": not a shard of bpcheck verify (written by `bpcheck verify --shard k/n`)");
  try {
    if (j.at("version") != 1)
      throw input_error(path + ": a verify shard of version " + j.at("version").dump() + "; this bpcheck reads version 1");
    VerifyShard s;
    s.run = j.at("run");
    if (!s.run.is_object()) throw input_error(path + ": \"run\" is not an object");
    s.shard.index = j.at("shard").at("index").get<std::size_t>();
    s.shard.count = j.at("shard").at("count").get<std::size_t>();
    if (s.shard.count < 1 || s.shard.index < 1 || s.shard.index > s.shard.count)
      throw input_error(fmt::format("{}: shard {}/{} is not a part k of n with 1 <= k <= n", path, s.shard.index,
                                    s.shard.count));
    const auto total = s.run.at("units").get<std::size_t>();
    if (!j.at("units").is_array()) throw input_error(path + ": \"units\" is not an array");
    for (const auto& u : j.at("units")) {
      const auto i = u.at("index").get<std::size_t>();
      if (i >= total || i % s.shard.count != s.shard.index - 1)
        throw input_error(fmt::format("{}: unit {} does not belong to shard {}/{} of a run of {} units", path, i,
                                      s.shard.index, s.shard.count, total));
      try {
        s.units.emplace_back(i, report_from_json(u.at("report")));
      } catch (const input_error& e) {
        throw input_error(fmt::format("{}: unit {}: {}", path, i, e.what()));
      }
    }
    return s;
  } catch (const json::exception& e) {
    throw input_error(path + ": not a valid shard of bpcheck verify (" + std::string(e.what()) + ")");
  }
}

JoinedShards join_verify_shards(const std::vector<std::string>& paths) {
  JoinedShards joined;
  std::string first_path;
  std::size_t count = 0, total = 0;
  std::map<std::size_t, std::string> shard_files;
  std::map<std::size_t, VerificationReport> by_unit;
  for (const auto& path : paths) {
    VerifyShard s = read_verify_shard(path);
    if (first_path.empty()) {
      joined.run = s.run;
      first_path = path;
      count = s.shard.count;
      total = s.run.at("units").get<std::size_t>();
    } else if (s.run != joined.run) {
      const std::string key = first_run_difference(joined.run, s.run);
      throw input_error(fmt::format("{}: a shard of a different run than {} ('{}' differs: {} vs {})", path, first_path,
                                    key, s.run.value(key, json()).dump(), joined.run.value(key, json()).dump()));
    } else if (s.shard.count != count) {
      throw input_error(fmt::format("{}: a shard of {} parts, {} is one of {}", path, s.shard.count, first_path, count));
    }
    if (const auto it = shard_files.find(s.shard.index); it != shard_files.end())
      throw input_error(fmt::format("{}: shard {}/{} given twice (also {})", path, s.shard.index, count, it->second));
    shard_files[s.shard.index] = path;
    for (auto& [i, report] : s.units)
      if (!by_unit.emplace(i, std::move(report)).second)
        throw input_error(fmt::format("{}: unit {} appears twice", path, i));
  }
  std::string missing;
  for (std::size_t k = 1; k <= count; ++k)
    if (!shard_files.count(k)) missing += (missing.empty() ? "" : ", ") + fmt::format("{}/{}", k, count);
  if (!missing.empty()) throw input_error("verify merge: missing shard " + missing + " of this run");
  if (by_unit.size() != total)
    throw input_error(fmt::format("verify merge: {} of the run's {} units present (a shard was cut short?)",
                                  by_unit.size(), total));
  for (auto& [i, report] : by_unit) joined.units.push_back(std::move(report));
  return joined;
}

}  // namespace bpcheck::cli
