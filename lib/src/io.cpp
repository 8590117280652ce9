// Reading JSON files and the model spec format (the parts of io/formats.hpp that are not templates).
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "bpcheck/io/formats.hpp"

namespace bpcheck {

nlohmann::json read_json_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw input_error(path + ": is a directory, not a JSON file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw input_error(path + ": cannot open (" + std::strerror(errno) + ")");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 1, column 5: ..."; the
    // bracketed id means nothing to a user.
    std::string what = e.what();
    if (const auto close = what.find("] "); what.rfind("[json.", 0) == 0 && close != std::string::npos)
      what = what.substr(close + 2);
    throw input_error(path + ": malformed JSON at byte " + std::to_string(e.byte) + ": " + what);
  } catch (const nlohmann::json::exception& e) {
    // e.g. a number too large for a double (1e999)
    std::string what = e.what();
    if (const auto close = what.find("] "); what.rfind("[json.", 0) == 0 && close != std::string::npos)
      what = what.substr(close + 2);
    throw input_error(path + ": malformed JSON: " + what);
  }
}

namespace {

void check_keys(const nlohmann::json& j, const std::set<std::string>& known, const std::string& where,
                const std::string& what) {
  for (const auto& [key, value] : j.items()) {
    if (known.count(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw input_error(where + ": unknown key '" + key + "' in " + what + " (known: " + list + ")");
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
    throw input_error(where + ": 'input_size' must be a positive integer, got " + size.dump());
  spec.input_size = Index(size.get<long long>());

  const auto& layers = required(j, "layers", where, "the model spec");
  if (!layers.is_array() || layers.empty())
    throw input_error(where + ": 'layers' must be a non-empty list of layer objects, got " + layers.dump());
  for (std::size_t k = 0; k < layers.size(); ++k) {
    const auto& l = layers[k];
    const std::string at = where + ": layer " + std::to_string(k);
    if (!l.is_object()) throw input_error(at + ": expected an object like {\"type\": \"tanh\"}, got " + l.dump());
    if (!l.contains("type") || !l.at("type").is_string())
      throw input_error(at + ": needs a \"type\" string (e.g. \"dense\", \"tanh\")");
    LayerSpec ls;
    ls.type = l.at("type").get<std::string>();
    for (const auto& [key, value] : l.items())
      if (key != "type") ls.options[key] = value;
    spec.layers.push_back(std::move(ls));
  }

  const auto& loss = required(j, "loss", where, "the model spec");
  if (!loss.is_string()) throw input_error(where + ": 'loss' must be a string, got " + loss.dump());
  spec.loss = loss.get<std::string>();

  // Building the network once (in double, cheap) checks layer types, options, sizes and the loss.
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
  j["loss"] = spec.loss;
  return j;
}

}  // namespace bpcheck
