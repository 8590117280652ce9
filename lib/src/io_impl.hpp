#pragma once
// Definitions behind io/formats.hpp that are templated on the scalar, included only by the
// instantiation units.
#include <random>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/json_scalar.hpp"
#include "bpcheck/io/limits.hpp"
#include "bpcheck/random.hpp"

namespace bpcheck {

// bpcheck::to_string is always called qualified: for mp100, argument-dependent lookup would otherwise
// pick boost::multiprecision::to_string, which prints 6 digits.

namespace io_detail {

inline std::string shape_text(Index rows, Index cols, bool is_vector) {
  return is_vector ? "a list of " + std::to_string(rows) + " numbers"
                   : std::to_string(rows) + " rows of " + std::to_string(cols) + " numbers";
}

/// A list of exactly `count` numbers into out(0..count−1) via `set`; `where` names the list.
template <class T, class Set>
void read_row(const nlohmann::json& j, Index count, const std::string& where, const std::string& expected,
              Set set) {
  if (!j.is_array())
    throw input_error(where + ": expected " + expected + ", got " + std::string(j.type_name()));
  if (Index(j.size()) != count)
    throw input_error(where + ": expected " + expected + ", got " + std::to_string(j.size()) + " numbers");
  // The entry's name is spelt out only for an error: per entry it cost more than reading a double.
  for (Index c = 0; c < count; ++c) {
    const nlohmann::json& x = j[std::size_t(c)];
    T v;
    try {
      v = scalar_from_json<T>(x, where);
    } catch (const input_error&) {
      v = scalar_from_json<T>(x, where + "[" + std::to_string(c) + "]");  // throws, naming the entry
    }
    set(c, std::move(v));
  }
}

/// A list of rows of equal width (at least one row) into a matrix with one column per row.
template <class T>
Matrix<T> read_rows_as_columns(const nlohmann::json& j, Index width, const std::string& where,
                               const std::string& what, const std::string& row_name) {
  if (!j.is_array() || j.empty())
    throw input_error(where + ": '" + what + "' must be a non-empty list of rows (one per sample), got " +
                      (j.is_array() ? std::string("an empty list") : std::string(j.type_name())));
  Matrix<T> M(width, Index(j.size()));
  for (std::size_t s = 0; s < j.size(); ++s) {
    const auto& row = j[s];
    const std::string at = where + ": " + what + "[" + std::to_string(s) + "]";
    if (!row.is_array())
      throw input_error(at + ": expected a list of " + std::to_string(width) + " numbers, got " +
                        std::string(row.type_name()));
    if (s > 0 && row.size() != j[0].size())
      throw input_error(at + ": ragged rows: this " + row_name + " has " + std::to_string(row.size()) +
                        " numbers, " + what + "[0] has " + std::to_string(j[0].size()));
    if (Index(row.size()) != width)
      throw input_error(at + ": expected " + std::to_string(width) + " numbers per " + row_name + ", got " +
                        std::to_string(row.size()));
    read_row<T>(row, width, at, "a list of " + std::to_string(width) + " numbers",
                [&](Index c, T v) { M(c, Index(s)) = std::move(v); });
  }
  return M;
}

template <class T>
nlohmann::ordered_json columns_as_rows(const Matrix<T>& M) {
  auto rows = nlohmann::ordered_json::array();
  for (Index s = 0; s < M.cols(); ++s) {
    auto row = nlohmann::ordered_json::array();
    for (Index i = 0; i < M.rows(); ++i) row.push_back(bpcheck::to_string(M(i, s)));
    rows.push_back(std::move(row));
  }
  return rows;
}

/// One block of a flat vector as JSON: nested rows (row i = unit i) or a flat list.
template <class T>
nlohmann::ordered_json block_to_json(const Vector<T>& theta, const ParameterBlock& b) {
  auto out = nlohmann::ordered_json::array();
  for (Index i = 0; i < b.rows; ++i) {
    if (b.is_vector) {
      out.push_back(bpcheck::to_string(theta(b.offset + i)));
      continue;
    }
    auto row = nlohmann::ordered_json::array();
    for (Index c = 0; c < b.cols; ++c) row.push_back(bpcheck::to_string(theta(b.offset + i + c * b.rows)));  // column-major
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace io_detail

template <class T>
void parameters_from_json(Network<T>& net, const nlohmann::json& j, const std::string& where) {
  using namespace io_detail;
  if (!j.is_object())
    throw input_error(where + ": parameters must be a JSON object {\"layers\": [...]}, got " +
                      std::string(j.type_name()));
  for (const auto& [key, value] : j.items())
    if (key != "layers") throw input_error(where + ": unknown key '" + text_excerpt(key) + "' in the parameters (known: layers)");
  if (!j.contains("layers") || !j.at("layers").is_array())
    throw input_error(where + ": parameters need a 'layers' list, one object per layer");
  const auto& layers = j.at("layers");
  if (layers.size() != net.depth())
    throw input_error(where + ": the model has " + std::to_string(net.depth()) + " layers but 'layers' lists " +
                      std::to_string(layers.size()));
  for (std::size_t k = 0; k < net.depth(); ++k) {
    auto& layer = net.layer(k);
    const auto& lj = layers[k];
    const std::string at = where + ": layer " + std::to_string(k) + " (" + layer.type_name() + ")";
    if (!lj.is_object())
      throw input_error(at + ": expected an object of parameter blocks, got " + std::string(lj.type_name()));
    const auto blocks = layer.parameter_blocks();
    for (const auto& [key, value] : lj.items()) {
      bool known = false;
      for (const auto& b : blocks) known = known || b.name == key;
      if (known) continue;
      std::string list;
      for (const auto& b : blocks) list += (list.empty() ? "" : ", ") + b.name;
      throw input_error(at + ": unknown parameter block '" + text_excerpt(key) + "'" +
                        (list.empty() ? " (this layer has no parameters)" : " (it has: " + list + ")"));
    }
    Vector<T> theta(parameter_count(blocks));
    for (const auto& b : blocks) {
      const std::string bat = at + ": " + b.name;
      const std::string expected = shape_text(b.rows, b.cols, b.is_vector);
      if (!lj.contains(b.name)) throw input_error(at + ": missing parameter block '" + b.name + "' (" + expected + ")");
      const auto& bj = lj.at(b.name);
      if (b.is_vector) {
        read_row<T>(bj, b.rows, bat, expected, [&](Index i, T v) { theta(b.offset + i) = std::move(v); });
        continue;
      }
      if (!bj.is_array() || Index(bj.size()) != b.rows)
        throw input_error(bat + ": expected " + expected + ", got " +
                          (bj.is_array() ? std::to_string(bj.size()) + " rows" : std::string(bj.type_name())));
      for (Index i = 0; i < b.rows; ++i) {
        const auto& row = bj[std::size_t(i)];
        const std::string rat = bat + "[" + std::to_string(i) + "]";
        if (!row.is_array() || Index(row.size()) != b.cols)
          throw input_error(rat + ": expected " + expected + ", got a row of " +
                            (row.is_array() ? std::to_string(row.size()) + " numbers" : std::string(row.type_name())));
        read_row<T>(row, b.cols, rat, expected,
                    [&](Index c, T v) { theta(b.offset + i + c * b.rows) = std::move(v); });  // column-major
      }
    }
    layer.set_parameters(theta);
  }
}

template <class T>
void read_parameters(Network<T>& net, const std::string& path) {
  parameters_from_json(net, read_json_file(path), path);
}

template <class T>
nlohmann::ordered_json parameters_to_json(const Network<T>& net) {
  auto layers = nlohmann::ordered_json::array();
  for (std::size_t k = 0; k < net.depth(); ++k) {
    const auto& layer = net.layer(k);
    const Vector<T> theta = layer.parameters();
    auto o = nlohmann::ordered_json::object();
    for (const auto& b : layer.parameter_blocks()) o[b.name] = io_detail::block_to_json(theta, b);
    layers.push_back(std::move(o));
  }
  nlohmann::ordered_json j;
  j["layers"] = std::move(layers);
  return j;
}

template <class T>
Batch<T> batch_from_json(const Network<T>& net, const nlohmann::json& j, const std::string& where) {
  using namespace io_detail;
  if (!j.is_object())
    throw input_error(where + ": data must be a JSON object {\"inputs\": ..., \"targets\": ...}, got " +
                      std::string(j.type_name()));
  for (const auto& [key, value] : j.items())
    if (key != "inputs" && key != "targets")
      throw input_error(where + ": unknown key '" + text_excerpt(key) + "' in the data (known: inputs, targets)");
  if (!j.contains("inputs")) throw input_error(where + ": the data has no 'inputs'");
  if (!j.contains("targets")) throw input_error(where + ": the data has no 'targets'");
  Batch<T> batch;
  batch.inputs = read_rows_as_columns<T>(j.at("inputs"), net.input_size(), where, "inputs", "sample");
  const Index samples = batch.inputs.cols();
  const auto& tj = j.at("targets");
  if (!tj.is_array())
    throw input_error(where + ": 'targets' must be a list with one entry per sample, got " +
                      std::string(tj.type_name()));
  if (Index(tj.size()) != samples)
    throw input_error(where + ": " + std::to_string(samples) + " samples in 'inputs' but " +
                      std::to_string(tj.size()) + " in 'targets'");
  const auto& loss = net.loss();
  if (loss.target_kind() == TargetKind::classes) {
    for (std::size_t s = 0; s < tj.size(); ++s) {
      const auto& c = tj[s];
      if (!c.is_number_integer())
        throw input_error(where + ": targets[" + std::to_string(s) + "]: " + loss.name() +
                          " takes an integer class index per sample, got " + json_excerpt(c));
      // Range-checked below by the loss; a value beyond Index must not wrap around on the way.
      if (c.is_number_unsigned() && c.get<unsigned long long>() > (1ULL << 62))
        throw input_error(where + ": targets[" + std::to_string(s) + "]: class " + c.dump() + ", outside 0.." +
                          std::to_string(net.output_size() - 1));
      batch.targets.classes.push_back(Index(c.get<long long>()));
    }
  } else {
    batch.targets.values = read_rows_as_columns<T>(tj, net.output_size(), where, "targets", "target row");
  }
  try {
    loss.check_targets(batch.targets, net.output_size(), samples);
  } catch (const input_error& e) {
    throw input_error(where + ": targets: " + e.what());
  }
  return batch;
}

template <class T>
Batch<T> read_batch(const Network<T>& net, const std::string& path) {
  return batch_from_json(net, read_json_file(path), path);
}

template <class T>
nlohmann::ordered_json batch_to_json(const Network<T>& net, const Batch<T>& batch) {
  nlohmann::ordered_json j;
  j["inputs"] = io_detail::columns_as_rows(batch.inputs);
  if (net.loss().target_kind() == TargetKind::classes)
    j["targets"] = batch.targets.classes;
  else
    j["targets"] = io_detail::columns_as_rows(batch.targets.values);
  return j;
}

template <class T>
Batch<T> generate_batch(const Network<T>& net, std::uint64_t seed, Index samples) {
  if (samples <= 0) throw input_error("generated batch: need at least one sample, got " + std::to_string(samples));
  // As in Network::initialize: the engine is specified bit for bit, the distributions are not.
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  auto unit = [&rng] { return double(rng() >> 11) * 0x1.0p-53; };  // [0, 1)
  Batch<T> batch;
  batch.inputs.resize(net.input_size(), samples);
  for (Index s = 0; s < samples; ++s)
    for (Index i = 0; i < net.input_size(); ++i) batch.inputs(i, s) = scalar_cast<T>(2.0 * unit() - 1.0);
  // An embedding first takes integer indices: its inputs are drawn as valid ones.
  if (net.depth() > 0 && net.layer(0).input_is_index()) {
    Random index_rng(seed ^ 0x5bd1e995ULL);
    const auto count = std::uint64_t(net.layer(0).index_count());
    for (Index i = 0; i < batch.inputs.size(); ++i) batch.inputs(i) = scalar_cast<T>(double(index_rng.below(count)));
  }
  const Index outputs = net.output_size();
  if (net.loss().target_kind() == TargetKind::classes) {
    for (Index s = 0; s < samples; ++s) {
      const auto c = Index(unit() * double(outputs));
      batch.targets.classes.push_back(c < outputs ? c : outputs - 1);
    }
  } else {
    batch.targets.values.resize(outputs, samples);
    for (Index s = 0; s < samples; ++s)
      for (Index i = 0; i < outputs; ++i) batch.targets.values(i, s) = scalar_cast<T>(unit());
  }
  return batch;
}

template <class T>
nlohmann::ordered_json gradient_to_json(const Network<T>& net, const Gradient<T>& g) {
  if (g.layers.size() != net.depth())
    throw error("gradient has " + std::to_string(g.layers.size()) + " layers, the network " +
                std::to_string(net.depth()));
  auto entries = nlohmann::ordered_json::array();
  for (std::size_t k = 0; k < net.depth(); ++k) {
    for (const auto& b : net.layer(k).parameter_blocks()) {
      nlohmann::ordered_json e;
      e["layer"] = k;
      e["name"] = b.name;
      e["shape"] = b.is_vector ? nlohmann::ordered_json::array({b.rows}) : nlohmann::ordered_json::array({b.rows, b.cols});
      e["values"] = io_detail::block_to_json(g.layers[k], b);
      entries.push_back(std::move(e));
    }
  }
  nlohmann::ordered_json j;
  j["precision"] = scalar_name<T>();
  j["loss"] = bpcheck::to_string(g.loss);
  j["gradients"] = std::move(entries);
  return j;
}

#define BPCHECK_INSTANTIATE_FORMATS(T)                                                                \
  template void parameters_from_json<T>(Network<T>&, const nlohmann::json&, const std::string&);       \
  template void read_parameters<T>(Network<T>&, const std::string&);                                  \
  template nlohmann::ordered_json parameters_to_json<T>(const Network<T>&);                           \
  template Batch<T> batch_from_json<T>(const Network<T>&, const nlohmann::json&, const std::string&); \
  template Batch<T> read_batch<T>(const Network<T>&, const std::string&);                             \
  template nlohmann::ordered_json batch_to_json<T>(const Network<T>&, const Batch<T>&);               \
  template Batch<T> generate_batch<T>(const Network<T>&, std::uint64_t, Index);                       \
  template nlohmann::ordered_json gradient_to_json<T>(const Network<T>&, const Gradient<T>&);

}  // namespace bpcheck
