// Reading JSON files and the model spec format (the parts of io/formats.hpp that are not templates).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "layer_table.hpp"

namespace bpcheck {

namespace {

/// A nlohmann::json exception's text without its "[json.exception.parse_error.101] " prefix, which
/// means nothing to a user.
std::string json_error_text(const std::exception& e) {
  std::string what = e.what();
  if (const auto close = what.find("] "); what.rfind("[json.", 0) == 0 && close != std::string::npos)
    what = what.substr(close + 2);
  return what;
}

/// JSON text held in memory as nlohmann::json takes up to this many bytes per byte of text ("0," is a
/// 16-byte value plus vector growth); a file is refused when that would exceed the memory budget.
constexpr double json_bytes_per_text_byte = 32;

std::atomic<std::uint64_t> memory_budget_override{0};

/// "this machine's 23.4 GiB of memory", or the budget set in its place.
std::string memory_text() {
  const double budget = double(memory_budget());
  return memory_budget_override ? "the memory budget of " + format_bytes(budget)
                                : "this machine's " + format_bytes(budget) + " of memory";
}

}  // namespace

nlohmann::json parse_json(const std::string& text, const std::string& where) {
  // The parser callback sees every object's keys in order: one set of keys per open object catches a
  // repeated key, which the parser itself would resolve silently by keeping the last value. The depth
  // it reports stops deep nesting before any recursive function (dump, copy) meets it.
  std::vector<std::set<std::string>> open_objects;
  auto guard = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using event_t = nlohmann::json::parse_event_t;
    if ((event == event_t::object_start || event == event_t::array_start) && depth >= max_json_depth)
      throw input_error(where + ": JSON nested deeper than " + std::to_string(max_json_depth) + " levels");
    if (event == event_t::object_start) open_objects.emplace_back();
    if (event == event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == event_t::key && !open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second)
      throw input_error(where + ": duplicate key '" + text_excerpt(parsed.get<std::string>()) +
                        "' in an object (each key may appear once)");
    return true;
  };
  try {
    return nlohmann::json::parse(text, guard);
  } catch (const nlohmann::json::parse_error& e) {
    throw input_error(where + ": malformed JSON at byte " + std::to_string(e.byte) + ": " + json_error_text(e));
  } catch (const nlohmann::json::exception& e) {
    // e.g. a number too large for a double (1e999)
    throw input_error(where + ": malformed JSON: " + json_error_text(e));
  }
}

nlohmann::json read_json_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw input_error(path + ": is a directory, not a JSON file");
  const double most_text = double(memory_budget()) / json_bytes_per_text_byte;
  // A regular file's size is known before reading; a pipe's is checked as it is read.
  if (fs::is_regular_file(path, ec)) {
    const auto size = fs::file_size(path, ec);
    if (!ec && double(size) > most_text)
      throw input_error(path + ": " + format_bytes(double(size)) + " of JSON would need about " +
                        format_bytes(double(size) * json_bytes_per_text_byte) + " to read, more than " + memory_text());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw input_error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string text;
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, std::size_t(in.gcount()));
    if (double(text.size()) > most_text)
      throw input_error(path + ": more than " + format_bytes(most_text) + " of JSON, which would need more than " +
                        memory_text() + " to read");
  }
  if (in.bad()) throw input_error(path + ": cannot read (" + std::strerror(errno) + ")");
  return parse_json(text, path);
}

std::uint64_t memory_budget() {
  if (const std::uint64_t set = memory_budget_override) return set;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return std::uint64_t(1) << 62;  // unknown: no limit of our own
  return std::uint64_t(pages) * std::uint64_t(page);
}

void set_memory_budget(std::uint64_t bytes) { memory_budget_override = bytes; }

std::string format_bytes(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, ++u;
  return u == 0 ? fmt::format("{:.0f} bytes", bytes) : fmt::format("{:.1f} {}", bytes, units[u]);
}

void check_memory(double bytes, const std::string& what, const std::string& where) {
  if (bytes > double(memory_budget()))
    throw input_error(where + ": " + what + " needs about " + format_bytes(bytes) + ", more than " + memory_text());
}

ModelExtent model_extent(const ModelSpec& spec) {
  ModelExtent e;
  double width = double(spec.input_size);
  e.widest = width;
  for (std::size_t k = 0; k < spec.layers.size(); ++k) {
    try {
      if (!layer_extent(spec.layers[k], width, e, 0)) break;
    } catch (const input_error& error) {
      throw input_error("layer " + std::to_string(k) + ": " + error.what());
    }
  }
  return e;
}

void check_model_memory(const ModelSpec& spec, std::size_t scalar_bytes, const std::string& rung,
                        const std::string& where) {
  ModelExtent e;
  try {
    e = model_extent(spec);
  } catch (const input_error& error) {
    throw input_error(where + ": " + error.what());
  }
  check_memory((e.parameters + e.widest) * double(scalar_bytes),
               fmt::format("the model ({:.0f} parameters, widest layer {:.0f}) in {}", e.parameters, e.widest, rung),
               where);
}

namespace {

void check_keys(const nlohmann::json& j, const std::set<std::string>& known, const std::string& where,
                const std::string& what) {
  for (const auto& [key, value] : j.items()) {
    if (known.count(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw input_error(where + ": unknown key '" + text_excerpt(key) + "' in " + what + " (known: " + list + ")");
  }
}

const nlohmann::json& required(const nlohmann::json& j, const std::string& key, const std::string& where,
                               const std::string& what) {
  if (!j.contains(key)) throw input_error(where + ": " + what + " has no '" + key + "'");
  return j.at(key);
}

}  // namespace

ModelSpec model_spec_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object())
    throw input_error(where + ": a model spec must be a JSON object, got " + std::string(j.type_name()));
  check_keys(j, {"input_size", "layers", "loss"}, where, "the model spec");
  ModelSpec spec;

  const auto& size = required(j, "input_size", where, "the model spec");
  if (!size.is_number_integer() || size.get<long long>() <= 0)
    throw input_error(where + ": 'input_size' must be a positive integer, got " + json_excerpt(size));
  spec.input_size = Index(size.get<long long>());

  const auto& layers = required(j, "layers", where, "the model spec");
  if (!layers.is_array() || layers.empty())
    throw input_error(where + ": 'layers' must be a non-empty list of layer objects, got " + json_excerpt(layers));
  for (std::size_t k = 0; k < layers.size(); ++k) {
    const auto& l = layers[k];
    const std::string at = where + ": layer " + std::to_string(k);
    if (!l.is_object()) throw input_error(at + ": expected an object like {\"type\": \"tanh\"}, got " + json_excerpt(l));
    if (!l.contains("type") || !l.at("type").is_string())
      throw input_error(at + ": needs a \"type\" string (e.g. \"dense\", \"tanh\")");
    LayerSpec ls;
    ls.type = l.at("type").get<std::string>();
    for (const auto& [key, value] : l.items())
      if (key != "type") ls.options[key] = value;
    spec.layers.push_back(std::move(ls));
  }

  // "mse", or an object with the name and the loss's options: {"type": "huber", "delta": 0.5}
  const auto& loss = required(j, "loss", where, "the model spec");
  if (loss.is_string()) {
    spec.loss = loss.get<std::string>();
  } else if (loss.is_object() && loss.contains("type") && loss.at("type").is_string()) {
    spec.loss = loss.at("type").get<std::string>();
    for (const auto& [key, value] : loss.items())
      if (key != "type") spec.loss_options[key] = value;
  } else {
    throw input_error(where + ": 'loss' must be a name like \"mse\" or an object like {\"type\": \"huber\", \"delta\": 0.5}, got " +
                      json_excerpt(loss));
  }

  // Building the network once (in double, cheap) checks layer types, options, sizes and the loss;
  // first its size, so that a model larger than the machine is refused before anything is allocated.
  check_model_memory(spec, sizeof(double), "double", where);
  try {
    Network<double> check(spec);
  } catch (const input_error& e) {
    throw input_error(where + ": " + e.what());
  }
  return spec;
}

ModelSpec read_model_spec(const std::string& path) { return model_spec_from_json(read_json_file(path), path); }

nlohmann::ordered_json model_spec_to_json(const ModelSpec& spec) {
  nlohmann::ordered_json j;
  j["input_size"] = spec.input_size;
  j["layers"] = nlohmann::ordered_json::array();
  for (const auto& l : spec.layers) {
    nlohmann::ordered_json o;
    o["type"] = l.type;
    for (const auto& [key, value] : l.options.items()) o[key] = nlohmann::ordered_json::parse(value.dump());
    j["layers"].push_back(std::move(o));
  }
  if (spec.loss_options.empty()) {
    j["loss"] = spec.loss;
  } else {
    nlohmann::ordered_json loss{{"type", spec.loss}};
    for (const auto& [key, value] : spec.loss_options.items()) loss[key] = nlohmann::ordered_json::parse(value.dump());
    j["loss"] = std::move(loss);
  }
  return j;
}

}  // namespace bpcheck
