// Fuzzes the parameter reader on a fixed model (dense 3 → 4, tanh, dense 4 → 2, cross_entropy) in
// float and double: accepted parameters must give a gradient without crashing.
#include <cstddef>
#include <cstdint>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "fuzz_common.hpp"

namespace {

const bpcheck::ModelSpec& fuzz_model() {
  static const bpcheck::ModelSpec spec = bpcheck::model_spec_from_json(
      nlohmann::json::parse(R"({"input_size": 3, "layers": [{"type": "dense", "units": 4}, {"type": "tanh"},
                                {"type": "dense", "units": 2}], "loss": "cross_entropy"})"),
      "fuzz model");
  return spec;
}

template <class T>
void read_and_use(const nlohmann::json& j) {
  bpcheck::fuzz::expect_result_or_error([&] {
    bpcheck::Network<T> net(fuzz_model());
    bpcheck::parameters_from_json(net, j, "parameters");
    const auto batch = bpcheck::generate_batch(net, 7);
    (void)net.gradient(batch.inputs, batch.targets);
    (void)bpcheck::parameters_to_json(net).dump();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json j;
  try {
    j = bpcheck::parse_json(bpcheck::fuzz::text_of(data, size), "parameters");
  } catch (const bpcheck::error&) {
    return 0;
  }
  read_and_use<float>(j);
  read_and_use<double>(j);
  return 0;
}
