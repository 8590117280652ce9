// Generators of shapes, values, layers and networks; see bpcheck/properties/generators.hpp.
#include "bpcheck/properties/generators.hpp"

#include <algorithm>
#include <cmath>
#include <ostream>

#include <boost/multiprecision/mpfr.hpp>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/losses.hpp"
#include "layer_options.hpp"

namespace bpcheck::properties {

std::string distribution_name(Distribution d) {
  switch (d) {
    case Distribution::standard: return "standard";
    case Distribution::wide_range: return "wide_range";
    case Distribution::near_kinks: return "near_kinks";
    case Distribution::saturation: return "saturation";
    case Distribution::near_ties: return "near_ties";
  }
  return "?";
}

const std::vector<Distribution>& all_distributions() {
  static const std::vector<Distribution> all{Distribution::standard, Distribution::wide_range, Distribution::near_kinks,
                                             Distribution::saturation, Distribution::near_ties};
  return all;
}

namespace {

double float_round(double x) { return double(float(x)); }

/// 0, 1, 2, 3, … ↦ 0, −1, 1, −2, 2, …: a range that shrinks toward its middle.
int zigzag(int k) { return k % 2 ? -(k + 1) / 2 : k / 2; }

/// Layer types a random network draws from by default: every registered type except `embedding`,
/// whose inputs are indices and which therefore only starts a network (see network_case).
std::vector<std::string> network_layer_types() {
  std::vector<std::string> types;
  for (const auto& t : layer_type_names())
    if (t != "embedding") types.push_back(t);
  return types;
}

/// One element of a list, shrinking toward the first (RapidCheck's elementOf does not shrink).
template <class T>
rc::Gen<T> pick(std::vector<T> items) {
  if (items.empty()) throw input_error("generator options: nothing to choose from");
  const int n = int(items.size());
  // at full size: RapidCheck narrows inRange at small sizes, which would hide the later items
  return rc::gen::map(rc::gen::resize(100, rc::gen::inRange(0, n)),
                      [items = std::move(items)](int i) { return items[std::size_t(i)]; });
}

/// One of several generators, chosen with the given weights, shrinking toward the first.
template <class T>
rc::Gen<T> pick_weighted(std::vector<std::pair<int, rc::Gen<T>>> choices) {
  std::vector<std::size_t> table;
  for (std::size_t k = 0; k < choices.size(); ++k) table.insert(table.end(), std::size_t(choices[k].first), k);
  const int n = int(table.size());
  return rc::gen::mapcat(rc::gen::resize(100, rc::gen::inRange(0, n)), [table, choices = std::move(choices)](int i) {
    return choices[table[std::size_t(i)]].second;
  });
}

std::vector<mp100> to_mp(const std::vector<double>& v) {
  std::vector<mp100> out;
  out.reserve(v.size());
  for (double x : v) out.emplace_back(x);
  return out;
}

/// Numbers in the JSON documents: a decimal string that a double holds exactly becomes a JSON number
/// (shortest form); anything else keeps its string with all its digits.
void shorten_numbers(nlohmann::ordered_json& j) {
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    try {
      const mp100 x(s);
      // only where the number's shortest text is the exact value (the readers take decimal text)
      const double d = x.convert_to<double>();
      if (std::isfinite(d) && mp100(nlohmann::json(d).dump()) == x) j = d;
    } catch (const std::exception&) {
    }
  } else if (j.is_array() || j.is_object()) {
    for (auto& e : j) shorten_numbers(e);
  }
}

}  // namespace

// ---- JSON and printing -----------------------------------------------------------------------------

nlohmann::ordered_json model_json(const NetworkCase& c) { return model_spec_to_json(c.spec); }

nlohmann::ordered_json parameters_json(const NetworkCase& c) {
  Network<mp100> net(c.spec);
  net.set_parameters(detail::to_vector<mp100>(c.parameters));
  nlohmann::ordered_json j = parameters_to_json(net);
  shorten_numbers(j);
  return j;
}

nlohmann::ordered_json data_json(const NetworkCase& c) {
  Network<mp100> net(c.spec);
  Batch<mp100> batch;
  batch.inputs = detail::to_matrix<mp100>(c.inputs, c.spec.input_size, c.batch);
  if (!c.classes.empty())
    batch.targets.classes = c.classes;
  else
    batch.targets.values = detail::to_matrix<mp100>(c.targets, net.output_size(), c.batch);
  nlohmann::ordered_json j = batch_to_json(net, batch);
  shorten_numbers(j);
  return j;
}

NetworkCase as_network_case(const LayerCase& c) {
  NetworkCase n;
  n.spec.input_size = c.input_size;
  n.spec.layers = {c.spec};
  n.spec.loss = "mse";
  n.batch = c.batch;
  n.distribution = c.distribution;
  n.inputs = c.inputs;
  n.parameters = c.parameters;
  n.targets.assign(std::size_t(c.output_size * c.batch), mp100(0));
  n.cotangent = c.cotangent;
  return n;
}

namespace {
void print_documents(const NetworkCase& n, std::ostream& os) {
  os << "\n  reproduce: save the three documents below as model.json, params.json and data.json, then run\n"
        "    bpcheck verify --model model.json --params params.json --data data.json\n"
     << "  model.json:  " << model_json(n).dump() << "\n"
     << "  params.json: " << parameters_json(n).dump() << "\n"
     << "  data.json:   " << data_json(n).dump() << "\n";
}
}  // namespace

namespace {
void print_values(const std::string& name, const std::vector<mp100>& v, std::ostream& os) {
  os << "  " << name << ": [";
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double d = v[i].convert_to<double>();
    const std::string shortest = nlohmann::json(d).dump();
    os << (i ? ", " : "") << (mp100(shortest) == v[i] ? shortest : bpcheck::to_string(v[i]));
  }
  os << "]\n";
}
}  // namespace

void showValue(const LayerCase& c, std::ostream& os) {
  os << "layer " << c.spec.type << " " << nlohmann::json(c.spec.options).dump() << ", " << c.input_size << " inputs → "
     << c.output_size << " outputs, batch " << c.batch << ", values " << distribution_name(c.distribution);
  const auto& known = layer_type_names();
  if (std::find(known.begin(), known.end(), c.spec.type) != known.end()) {
    print_documents(as_network_case(c), os);
  } else {
    os << "\n";
    print_values("X (column-major, one sample after another)", c.inputs, os);
    print_values("θ", c.parameters, os);
  }
  print_values("cotangent U (column-major)", c.cotangent, os);
  print_values("direction v in [vec X; θ]", c.direction, os);
}

void showValue(const NetworkCase& c, std::ostream& os) {
  os << "network of " << c.spec.layers.size() << " layer(s), batch " << c.batch << ", inputs "
     << distribution_name(c.distribution);
  print_documents(c, os);
}

void showValue(Distribution d, std::ostream& os) { os << distribution_name(d); }

void showValue(const Shape& s, std::ostream& os) {
  os << s.input_size << " inputs, " << s.units << " units, batch " << s.batch;
}

// ---- generators ------------------------------------------------------------------------------------

namespace gen {

rc::Gen<Shape> shape(const GeneratorOptions& o) {
  const int mi = int(o.max_input_size), mu = int(o.max_units), mb = int(o.max_batch);
  const auto batch = rc::gen::inRange(1, mb + 1);
  // The general shapes come first: choices shrink toward the first, and only there do input size,
  // units and batch all shrink on to 1 × 1, batch 1 (a fixed tall or wide shape would stop them).
  return pick_weighted<Shape>({
      {5, rc::gen::apply([](int in, int units, int b) { return Shape{in, units, b}; }, rc::gen::inRange(1, mi + 1),
                         rc::gen::inRange(1, mu + 1), batch)},
      {1, rc::gen::map(batch, [](int b) { return Shape{1, 1, b}; })},
      {1, rc::gen::map(batch, [mu](int b) { return Shape{1, mu, b}; })},  // tall: one input, many units
      {1, rc::gen::map(batch, [mi](int b) { return Shape{mi, 1, b}; })},  // wide: many inputs, one unit
  });
}

rc::Gen<Distribution> distribution(const GeneratorOptions& o) {
  if (o.distributions.empty()) throw input_error("generator options: no distribution to draw from");
  return pick(o.distributions);
}

rc::Gen<double> value(Distribution d) {
  switch (d) {
    case Distribution::standard:
      // odd multiples of 1/128 in (−4, 4), simplest first: 1/128, −1/128, 3/128, …
      return rc::gen::map(rc::gen::inRange(0, 512), [](int k) {
        const int odd = 2 * (k / 2) + 1;
        return (k % 2 ? -odd : odd) / 128.0;
      });
    case Distribution::wide_range:
      return rc::gen::apply(
          [](int mantissa, int e, bool negative) {
            const double x = (1 + mantissa / 1024.0) * std::pow(10.0, zigzag(e));
            return float_round(negative ? -x : x);
          },
          rc::gen::inRange(0, 1024), rc::gen::inRange(0, 17), rc::gen::arbitrary<bool>());
    case Distribution::near_kinks:
      // (1 + m/16) 2^−(21 + k) < 2^−20 < 1e-6
      return rc::gen::apply(
          [](int m, int k, bool negative) {
            const double x = std::ldexp(1 + m / 16.0, -(21 + k));
            return negative ? -x : x;
          },
          rc::gen::inRange(0, 16), rc::gen::inRange(0, 20), rc::gen::arbitrary<bool>());
    case Distribution::saturation:
      return rc::gen::apply([](int k, bool negative) { return (negative ? -1 : 1) * (20 + k / 8.0); },
                            rc::gen::inRange(0, 320), rc::gen::arbitrary<bool>());
    case Distribution::near_ties:
      return rc::gen::map(rc::gen::inRange(0, 17), [](int k) { return std::ldexp(double(zigzag(k)), -24); });
  }
  throw error("unknown distribution");
}

rc::Gen<std::vector<mp100>> values(Distribution d, std::size_t n) {
  if (d != Distribution::near_ties)
    return rc::gen::map(rc::gen::container<std::vector<double>>(n, value(d)), to_mp);
  // one base value for all, each entry a few 2⁻²⁴ away from it
  return rc::gen::apply(
      [](double base, const std::vector<double>& offsets) {
        std::vector<mp100> out;
        for (double off : offsets) out.emplace_back(float_round(base + off));
        return out;
      },
      value(Distribution::standard), rc::gen::container<std::vector<double>>(n, value(Distribution::near_ties)));
}

rc::Gen<mp100> beyond_double(rc::Gen<double> d) {
  return rc::gen::apply(
      [](double x, std::int64_t t1, std::int64_t t2) {
        using boost::multiprecision::ldexp;
        const mp100 tail = ldexp(mp100(t1), -70) + ldexp(mp100(t2), -140);
        return mp100(mp100(x) * (mp100(1) + tail));
      },
      std::move(d), rc::gen::inRange<std::int64_t>(1, std::int64_t(1) << 40),
      rc::gen::inRange<std::int64_t>(0, std::int64_t(1) << 40));
}

rc::Gen<LayerSpec> layer_spec(const GeneratorOptions& o, Index input_size, Index batch) {
  if (input_size < 1 || batch < 1) throw input_error("layer_spec: the input size and batch must be positive");
  const Index max_units = o.max_units;
  return rc::gen::map(detail::layer_draw(o.layer_types.empty() ? layer_type_names() : o.layer_types),
                      [=](const detail::LayerDraw& d) {
                        return detail::fit_layer(d, input_size, 1 + d.knobs[5] % max_units, batch);
                      });
}

namespace {

/// n inputs: valid indices below index_count (exact in every rung) when it is positive (a layer
/// that reads indices), else values of the distribution.
rc::Gen<std::vector<mp100>> inputs_for(Index index_count, Distribution d, std::size_t n) {
  if (index_count <= 0) return values(d, n);
  return rc::gen::map(rc::gen::container<std::vector<int>>(n, rc::gen::inRange(0, int(index_count))),
                      [](const std::vector<int>& k) { return std::vector<mp100>(k.begin(), k.end()); });
}

/// A case of the given sizes: inputs (indices when index_count > 0), θ (standard values, or
/// wide_range ones with that distribution), a cotangent and a direction.
rc::Gen<LayerCase> case_of(const LayerSpec& spec, Index input_size, Index output_size, Index P, Index batch,
                           Distribution d, Index index_count) {
  const Index nx = input_size * batch;
  const Distribution for_parameters = d == Distribution::wide_range ? d : Distribution::standard;
  return rc::gen::apply(
      [=](std::vector<mp100> x, std::vector<mp100> theta, std::vector<mp100> u, std::vector<mp100> v) {
        LayerCase c;
        c.spec = spec;
        c.input_size = input_size;
        c.output_size = output_size;
        c.batch = batch;
        c.distribution = d;
        c.inputs = std::move(x);
        c.parameters = std::move(theta);
        c.cotangent = std::move(u);
        // indices are not differentiated: the direction leaves them where they are
        if (index_count > 0) std::fill(v.begin(), v.begin() + nx, mp100(0));
        c.direction = std::move(v);
        return c;
      },
      inputs_for(index_count, d, std::size_t(nx)), values(for_parameters, std::size_t(P)),
      values(Distribution::standard, std::size_t(output_size * batch)),
      values(Distribution::standard, std::size_t(nx + P)));
}

/// The case of a registered layer's spec at a given shape and distribution.
rc::Gen<LayerCase> case_at(const LayerSpec& spec, Index input_size, Index batch, Distribution d) {
  const AnyLayer<double> layer = make_layer<double>(spec, input_size);
  return case_of(spec, input_size, layer.output_size(), layer.parameter_count(), batch, d,
                 layer.input_is_index() ? layer.index_count() : 0);
}

}  // namespace

rc::Gen<LayerCase> layer_case(const LayerSpec& spec0, const GeneratorOptions& o) {
  return rc::gen::mapcat(rc::gen::pair(shape(o), distribution(o)), [spec0](const std::pair<Shape, Distribution>& sd) {
    const Shape s = sd.first;
    LayerSpec spec = spec0;
    if (spec.type == "dense" && !spec.options.contains("units")) spec.options["units"] = s.units;
    return case_at(spec, s.input_size, s.batch, sd.second);
  });
}

rc::Gen<LayerCase> point_case(const std::string& name, Index input_size, Index output_size, Index parameters,
                              const GeneratorOptions& o) {
  return rc::gen::mapcat(rc::gen::pair(rc::gen::inRange(1, int(o.max_batch) + 1), distribution(o)),
                         [=](const std::pair<int, Distribution>& bd) {
                           return case_of(LayerSpec{name, nlohmann::json::object()}, input_size, output_size,
                                          parameters, bd.first, bd.second, 0);
                         });
}

rc::Gen<LayerCase> layer_case(const GeneratorOptions& o) {
  const auto draw = detail::layer_draw(o.layer_types.empty() ? layer_type_names() : o.layer_types);
  return rc::gen::mapcat(rc::gen::tuple(draw, shape(o), distribution(o)),
                         [](const std::tuple<detail::LayerDraw, Shape, Distribution>& h) {
                           const auto& [d, s, dist] = h;
                           return case_at(detail::fit_layer(d, s.input_size, s.units, s.batch), s.input_size, s.batch,
                                          dist);
                         });
}

rc::Gen<LayerCase> with_digits_beyond_double(rc::Gen<LayerCase> g) {
  return rc::gen::mapcat(std::move(g), [](const LayerCase& c) {
    // each input keeps its value as the leading part and gains a tail only mp100 can hold
    return rc::gen::map(
        rc::gen::container<std::vector<std::pair<std::int64_t, std::int64_t>>>(
            c.inputs.size(), rc::gen::pair(rc::gen::inRange<std::int64_t>(1, std::int64_t(1) << 40),
                                           rc::gen::inRange<std::int64_t>(0, std::int64_t(1) << 40))),
        [c](const std::vector<std::pair<std::int64_t, std::int64_t>>& tails) {
          using boost::multiprecision::ldexp;
          LayerCase out = c;
          for (std::size_t i = 0; i < tails.size(); ++i)
            out.inputs[i] *= mp100(1) + ldexp(mp100(tails[i].first), -70) + ldexp(mp100(tails[i].second), -140);
          return out;
        });
  });
}

rc::Gen<NetworkCase> network_case(const GeneratorOptions& o) {
  const std::vector<std::string> losses = o.losses.empty() ? loss_names() : o.losses;
  // A list that shrinks by dropping layers (fewest layers first); its length grows with RapidCheck's
  // size, 0–100 scaled to 0–(max_depth + 2), and is cut to 1–max_depth.
  const std::size_t max_depth = std::size_t(o.max_depth);
  const auto draws = rc::gen::map(
      rc::gen::nonEmpty(rc::gen::scale(
          double(o.max_depth + 2) / 100.0,
          rc::gen::container<std::vector<detail::LayerDraw>>(
              detail::layer_draw(o.layer_types.empty() ? network_layer_types() : o.layer_types)))),
      [max_depth](std::vector<detail::LayerDraw> l) {
        if (l.size() > max_depth) l.resize(max_depth);
        return l;
      });
  const auto head = rc::gen::tuple(draws, rc::gen::inRange(1, int(o.max_input_size) + 1),
                                   rc::gen::inRange(1, int(o.max_batch) + 1), distribution(o), pick(losses));
  const Index max_units = o.max_units;
  return rc::gen::mapcat(head, [max_units](const std::tuple<std::vector<detail::LayerDraw>, int, int, Distribution,
                                                            std::string>& h) {
    const auto& [layer_draws, in, batch, d, loss] = h;
    // Each layer's options fit the width it receives. A layer that would widen the network beyond
    // 3 × max_units takes its simplest options instead (knobs 0), and an embedding, which reads
    // indices, only starts a network: later ones are left out.
    ModelSpec spec{in, {}, loss};
    Index width = in;
    for (const auto& draw : layer_draws) {
      if (draw.type == "embedding" && !spec.layers.empty()) continue;
      LayerSpec s = detail::fit_layer(draw, width, 1 + draw.knobs[5] % max_units, batch);
      Index out = make_layer<double>(s, width).output_size();
      if (out > 3 * max_units && out > width) {
        s = detail::fit_layer({draw.type, std::vector<int>(detail::kKnobs, 0)}, width, 1, batch);
        out = make_layer<double>(s, width).output_size();
      }
      spec.layers.push_back(std::move(s));
      width = out;
    }
    const Network<double> net(spec);
    const Index out = net.output_size(), P = net.parameter_count();
    // parameters as odd multiples of 1/512 in (−1, 1): standard values scaled by 1/4, exact in float
    const auto params = rc::gen::map(values(Distribution::standard, std::size_t(P)), [](std::vector<mp100> v) {
      for (auto& x : v) x /= 4;
      return v;
    });
    const auto classes = rc::gen::container<std::vector<Index>>(std::size_t(batch), rc::gen::inRange<Index>(0, out));
    const auto targets = rc::gen::map(
        rc::gen::container<std::vector<int>>(std::size_t(out * batch), rc::gen::inRange(0, 17)),
        [](const std::vector<int>& k) {
          std::vector<mp100> t;
          for (int x : k) t.emplace_back(mp100(x) / 16);  // in [0, 1]
          return t;
        });
    const bool class_targets = make_loss<double>(loss)->target_kind() == TargetKind::classes;
    const Index samples = batch;
    const Distribution dist = d;
    return rc::gen::apply(
        [spec, samples, dist, class_targets](std::vector<mp100> x, std::vector<mp100> theta, std::vector<mp100> t,
                                             std::vector<Index> c, std::vector<mp100> u) {
          NetworkCase n;
          n.spec = spec;
          n.batch = samples;
          n.distribution = dist;
          n.inputs = std::move(x);
          n.parameters = std::move(theta);
          if (class_targets)
            n.classes = std::move(c);
          else
            n.targets = std::move(t);
          n.cotangent = std::move(u);
          return n;
        },
        inputs_for(net.layer(0).input_is_index() ? net.layer(0).index_count() : 0, d, std::size_t(in * batch)), params, targets, classes,
        values(Distribution::standard, std::size_t(out * batch)));
  });
}

}  // namespace gen
}  // namespace bpcheck::properties

namespace rc {
Gen<bpcheck::mp100> Arbitrary<bpcheck::mp100>::arbitrary() {
  return bpcheck::properties::gen::beyond_double(bpcheck::properties::gen::value(bpcheck::properties::Distribution::standard));
}
}  // namespace rc
