#pragma once
// Shared by the property tests: case counts per rung and the loop over built-in layers.
#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "bpcheck/properties/cases.hpp"
#include "bpcheck/properties/catch.hpp"
#include "bpcheck/properties/generators.hpp"

namespace bpcheck::properties::testing {

/// Every layer type the registry knows (a new type is covered by every layer property at once), or
/// those BPCHECK_PROPERTY_LAYERS names.
inline std::vector<std::string> builtin_layer_types() { return property_layer_types(); }

/// Cases for a property on rung T: `fast` on float and double, `slow` on mp100; BPCHECK_PROPERTY_CASES
/// overrides both (mp100 a tenth).
template <class T>
int cases(int fast, int slow) {
  constexpr bool mp = std::is_same_v<T, mp100>;
  return case_count(mp ? slow : fast, mp);
}

/// Generated layer cases of one type; on mp100 the inputs carry digits beyond double.
template <class T>
rc::Gen<LayerCase> layer_cases(const std::string& type, std::vector<Distribution> distributions = all_distributions()) {
  GeneratorOptions o;
  o.layer_types = {type};
  o.distributions = std::move(distributions);
  rc::Gen<LayerCase> g = gen::layer_case(o);
  if constexpr (std::is_same_v<T, mp100>) g = gen::with_digits_beyond_double(g);
  return g;
}

/// Requires an identity of every built-in layer, one property per layer type.
template <class T, class Identity>
void require_for_every_layer(const std::string& sentence, Identity identity, int fast, int slow,
                             const std::vector<Distribution>& distributions = all_distributions()) {
  for (const auto& type : builtin_layer_types()) {
    const auto g = layer_cases<T>(type, distributions);
    require_property(sentence + " [" + type + ", " + scalar_name<T>() + "]", cases<T>(fast, slow), [g, identity] {
      const LayerCase c = *g;
      const Outcome o = identity(c);
      if (!o.holds) RC_FAIL(o.message);
    });
  }
}

/// Requires an identity of random networks.
template <class T, class Identity>
void require_for_networks(const std::string& sentence, Identity identity, int fast, int slow,
                          GeneratorOptions o = {}) {
  const auto g = gen::network_case(o);
  require_property(sentence + " [" + scalar_name<T>() + "]", cases<T>(fast, slow), [g, identity] {
    const NetworkCase c = *g;
    const Outcome out = identity(c);
    if (!out.holds) RC_FAIL(out.message);
  });
}

}  // namespace bpcheck::properties::testing
