#pragma once
// Shared set-up of the benchmarks: the networks they time, built through the public API only.
#include <cstdint>
#include <vector>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/network.hpp"

namespace bpcheck::bench {

/// input → (dense(width) → tanh) per hidden width → dense(outputs), mse: the MLPs of benchmarks 1–4.
inline ModelSpec tanh_mlp(Index inputs, const std::vector<Index>& hidden, Index outputs) {
  ModelSpec spec;
  spec.input_size = inputs;
  for (Index width : hidden) {
    spec.layers.push_back({"dense", {{"units", width}}});
    spec.layers.push_back({"tanh", nlohmann::json::object()});
  }
  spec.layers.push_back({"dense", {{"units", outputs}}});
  spec.loss = "mse";
  return spec;
}

/// A network with its parameters (PyTorch's Linear initialisation) and a batch drawn from the seed.
template <class T>
struct Problem {
  Network<T> net;
  Batch<T> batch;

  Problem(const ModelSpec& spec, Index samples, std::uint64_t seed = 42) : net(spec) {
    net.initialize(seed);
    batch = generate_batch(net, seed, samples);
  }
};

}  // namespace bpcheck::bench
