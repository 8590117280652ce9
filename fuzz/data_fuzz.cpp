// Fuzzes the data reader against a class-index loss and a value loss, in float and double: an
// accepted batch must give a gradient without crashing, whatever its values.
#include <cstddef>
#include <cstdint>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "fuzz_common.hpp"

namespace {

bpcheck::ModelSpec fuzz_model(const char* loss) {
  return bpcheck::ModelSpec{3, {{"dense", {{"units", 2}}}}, loss};
}

template <class T>
void read_and_use(const nlohmann::json& j, const char* loss) {
  bpcheck::fuzz::expect_result_or_error([&] {
    bpcheck::Network<T> net(fuzz_model(loss));
    net.initialize(3);
    const auto batch = bpcheck::batch_from_json(net, j, "data");
    (void)net.gradient(batch.inputs, batch.targets);
    (void)bpcheck::batch_to_json(net, batch).dump();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  nlohmann::json j;
  try {
    j = bpcheck::parse_json(bpcheck::fuzz::text_of(data, size), "data");
  } catch (const bpcheck::error&) {
    return 0;
  }
  for (const char* loss : {"cross_entropy", "mse", "bce_with_logits"}) {
    read_and_use<float>(j, loss);
    read_and_use<double>(j, loss);
  }
  return 0;
}
