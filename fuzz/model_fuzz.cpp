// Fuzzes the model reader: JSON text → parse_json (depth and duplicate-key limits) → model spec →
// network. Any model accepted must build on float and double too, and round-trip through its JSON.
#include <cstddef>
#include <cstdint>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bpcheck::fuzz::expect_result_or_error([&] {
    const auto spec = bpcheck::model_spec_from_json(bpcheck::parse_json(bpcheck::fuzz::text_of(data, size), "model"),
                                                    "model");
    // A model that fits the machine is legal however large; building one of gigabytes proves nothing
    // more than one of a million numbers and would trip libFuzzer's memory limit.
    const auto extent = bpcheck::model_extent(spec);
    if (extent.parameters + extent.widest > 1e6) return;
    bpcheck::Network<float> net(spec);
    net.initialize(1);
    const auto again = bpcheck::model_spec_from_json(
        nlohmann::json::parse(bpcheck::model_spec_to_json(spec).dump()), "model written back");
    if (again.layers.size() != spec.layers.size() || again.input_size != spec.input_size) __builtin_trap();
  });
  return 0;
}
