// Random layers for the property suite: a type and its knobs, the options from the registry's table.
#include "layer_options.hpp"

#include "bpcheck/error.hpp"

namespace bpcheck::properties::detail {

rc::Gen<LayerDraw> layer_draw(std::vector<std::string> types) {
  if (types.empty()) throw input_error("generator options: no layer type to choose from");
  const int n = int(types.size());
  // at full size: RapidCheck narrows inRange at small sizes, which would hide the later types and knobs
  return rc::gen::resize(
      100, rc::gen::apply(
               [types = std::move(types)](int t, std::vector<int> knobs) {
                 return LayerDraw{types[std::size_t(t)], std::move(knobs)};
               },
               rc::gen::inRange(0, n), rc::gen::container<std::vector<int>>(std::size_t(kKnobs), rc::gen::inRange(0, 64))));
}

LayerSpec fit_layer(const LayerDraw& d, Index n, Index units, Index batch) {
  if (d.knobs.size() < std::size_t(kKnobs)) throw error("layer draw: too few knobs");
  return {d.type, layer_type(d.type).options(OptionKnobs{d.knobs, n, units, batch})};
}

}  // namespace bpcheck::properties::detail
