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

namespace {

/// An option's positive integer, or each entry of a [a, b] pair multiplied; 0 when absent or ill-formed
/// (the registry refuses those later with its own message).
double option_product(const nlohmann::json& options, const char* key, double absent) {
  const auto it = options.find(key);
  if (it == options.end()) return absent;
  auto positive = [](const nlohmann::json& j) {
    return j.is_number_integer() && j.get<long long>() > 0 ? double(j.get<long long>()) : 0.0;
  };
  if (!it->is_array()) return positive(*it);
  double product = 1;
  for (const auto& e : *it) product *= positive(e);
  return it->empty() ? 0.0 : product;
}

/// Counts layers from `layers` on, starting at `width` values per sample; false at a layer it cannot
/// size (unknown type or missing sizes), where the count stops.
bool add_extent(const std::vector<LayerSpec>& layers, double& width, ModelExtent& e, int depth = 0);

/// The extent of a JSON list of layer objects (a residual's layers, a branch); false when malformed.
bool add_sequence_extent(const nlohmann::json& list, double& width, ModelExtent& e, int depth) {
  if (!list.is_array()) return false;
  std::vector<LayerSpec> specs;
  for (const auto& j : list) {
    if (!j.is_object() || !j.contains("type") || !j.at("type").is_string()) return false;
    LayerSpec s{j.at("type").get<std::string>(), j};
    s.options.erase("type");
    specs.push_back(std::move(s));
  }
  return add_extent(specs, width, e, depth);
}

bool add_extent(const std::vector<LayerSpec>& layers, double& width, ModelExtent& e, int depth) {
  // Widths in double: a product of two huge sizes must not wrap around; only its magnitude matters.
  static const std::set<std::string> same_width{"relu", "leaky_relu", "sigmoid", "tanh", "softplus", "gelu",
                                                "silu", "softmax", "log_softmax", "elu", "hardtanh", "mish",
                                                "swish", "dropout", "flatten"};
  for (const auto& l : layers) {
    const auto& o = l.options;
    if (l.type == "dense") {
      const double out = option_product(o, "units", 0);
      if (out == 0) return false;
      e.parameters += (width + 1) * out;
      width = out;
    } else if (l.type == "layer_norm" || l.type == "batch_norm") {
      e.parameters += 2 * width;
    } else if (l.type == "conv1d" || l.type == "conv2d" || l.type.find("_pool") != std::string::npos) {
      // The padded input bounds the output's positions (stride ≥ 1); the kernel sizes the weights.
      const double channels = option_product(o, "channels", 0);
      const bool two_d = l.type.back() == 'd' && l.type[l.type.size() - 2] == '2';
      const auto padding_it = o.find("padding");
      double padding = 0;
      if (padding_it != o.end())
        for (const auto& p : padding_it->is_array() ? *padding_it : nlohmann::json::array({*padding_it}))
          if (p.is_number_integer()) padding = std::max(padding, double(p.get<long long>()));
      const double positions = two_d ? (option_product(o, "height", 0) + 2 * padding) *
                                           (option_product(o, "width", 0) + 2 * padding)
                                     : option_product(o, "length", 0) + 2 * padding;
      if (channels == 0 || positions == 0) return false;
      double out_channels = channels;
      if (l.type.rfind("conv", 0) == 0) {
        out_channels = option_product(o, "out_channels", 0);
        double kernel = option_product(o, "kernel", 0);
        if (two_d && !o.value("kernel", nlohmann::json()).is_array()) kernel *= kernel;  // k means k × k
        if (out_channels == 0 || kernel == 0) return false;
        e.parameters += out_channels * (channels * kernel + 1);
      }
      width = std::max(width, out_channels * positions);
    } else if (l.type == "embedding") {
      const double rows = option_product(o, "num_embeddings", 0), dim = option_product(o, "embedding_dim", 0);
      if (rows == 0 || dim == 0) return false;
      e.parameters += rows * dim;
      width *= dim;
    } else if (l.type == "multi_head_attention") {
      const double sequence = option_product(o, "sequence", 0), heads = option_product(o, "heads", 1);
      if (sequence == 0) return false;
      const double embed = width / sequence;
      e.parameters += 4 * embed * embed + 4 * embed;
      e.widest = std::max(e.widest, heads * sequence * sequence);  // the attention weights of one sample
    } else if (l.type == "residual") {
      const auto inner = o.find("layers");
      if (inner == o.end() || depth > max_json_depth) return false;
      double inner_width = width;
      if (!add_sequence_extent(*inner, inner_width, e, depth + 1)) return false;
    } else if (l.type == "add" || l.type == "concat") {
      // every branch reads the input; concat's width is the sum of the branches'
      const auto branches = o.find("branches");
      if (branches == o.end() || !branches->is_array() || depth > max_json_depth) return false;
      double joined = 0;
      for (const auto& branch : *branches) {
        double branch_width = width;
        if (!add_sequence_extent(branch, branch_width, e, depth + 1)) return false;
        joined = l.type == "concat" ? joined + branch_width : std::max(joined, branch_width);
      }
      width = joined;
    } else if (!same_width.count(l.type)) {
      return false;
    }
    e.widest = std::max(e.widest, width);
  }
  return true;
}

}  // namespace

ModelExtent model_extent(const ModelSpec& spec) {
  ModelExtent e;
  double width = double(spec.input_size);
  e.widest = width;
  add_extent(spec.layers, width, e);
  return e;
}

void check_model_memory(const ModelSpec& spec, std::size_t scalar_bytes, const std::string& rung,
                        const std::string& where) {
  const ModelExtent e = model_extent(spec);
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
