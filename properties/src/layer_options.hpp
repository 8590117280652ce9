#pragma once
// Random layers for the property suite: a type and options fitted to the width they receive.
//
// A generated layer is a type and a handful of small integers ("knobs"); `fit_layer` turns them into
// options that are valid for the given input size (conv and pooling shapes that divide it, heads that
// divide the embedding, a residual branch that keeps the width). RapidCheck shrinks the knobs toward 0,
// and knob 0 always picks the simplest choice, so a shrunk case has the simplest options that still fail.
#include <string>
#include <vector>

#include <rapidcheck.h>

#include "bpcheck/layer.hpp"

namespace bpcheck::properties::detail {

struct LayerDraw {
  std::string type;
  std::vector<int> knobs;  ///< kKnobs small non-negative integers
};

inline constexpr int kKnobs = layer_option_knob_count;

/// A type among `types` and its knobs; shrinks toward the first type and all knobs 0.
rc::Gen<LayerDraw> layer_draw(std::vector<std::string> types);

/// The layer spec of a draw for an input of `input_size` features and a batch of `batch` samples:
/// `units` is the width of layers that choose one (dense). The options come from the type's entry in
/// the registry (LayerTypeInfo::options); throws input_error for an unregistered type.
LayerSpec fit_layer(const LayerDraw& d, Index input_size, Index units, Index batch);

}  // namespace bpcheck::properties::detail
