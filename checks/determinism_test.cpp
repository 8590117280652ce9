// Determinism: the same seed gives byte-identical output across runs and across thread counts. Each
// command runs several times, under different OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, and every
// output file is compared byte for byte with the first run's. A new command (or a --jobs option)
// joins by adding a line to `commands` (and its thread settings to `thread_settings`).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "helpers.hpp"

namespace fs = std::filesystem;
using bpcheck::testing::cli_path;
using bpcheck::testing::slurp;
using bpcheck::testing::temp_dir;

namespace {

/// A command whose outputs must not depend on the run: its arguments, with {out} standing for a
/// folder of the run's own, and the files (relative to that folder) it writes besides stdout.
struct DeterministicCommand {
  std::string name, args;
  std::vector<std::string> files;
};

/// Every output of one run: stdout first, then the files, as bytes.
std::vector<std::string> run_outputs(const DeterministicCommand& c, const std::string& env, int run) {
  const fs::path out = temp_dir() / (c.name + "_" + std::to_string(run));
  fs::create_directories(out);
  std::string args = c.args;
  for (std::size_t at; (at = args.find("{out}")) != std::string::npos;) args.replace(at, 5, out.string());
  const std::string command = env + " '" + cli_path() + "' " + args + " > '" + (out / "stdout").string() + "'";
  const int status = std::system(command.c_str());
  INFO(command);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  std::vector<std::string> outputs{slurp(out / "stdout")};
  for (const auto& f : c.files) outputs.push_back(slurp(out / f));
  for (const auto& o : outputs) REQUIRE(!o.empty());
  return outputs;
}

const char* gelu_softmax_model_text = R"({"input_size": 3,
  "layers": [{"type": "dense", "units": 5}, {"type": "gelu"}, {"type": "dense", "units": 4}, {"type": "softmax"}],
  "loss": "mse"})";

}  // namespace

TEST_CASE("the same seed gives byte-identical output across runs and thread counts", "[determinism][cli]") {
  const std::string model = (temp_dir() / "model.json").string();
  std::ofstream(model) << gelu_softmax_model_text;
  const std::vector<DeterministicCommand> commands{
      {"gradient_float", "gradient --model " + model + " --precision float --seed 11", {}},
      {"gradient_double", "gradient --model " + model + " --precision double --seed 11", {}},
      {"gradient_mp100", "gradient --model " + model + " --precision mp100 --seed 11", {}},
      {"verify", "verify --model " + model + " --seed 5 --points 1 --no-timings --json {out}/v.json --junit {out}/v.xml",
       {"v.json", "v.xml"}},
      {"example", "example --json --no-timings", {}},
  };
  const std::vector<std::string> thread_settings{
      "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1",
      "OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2", "OMP_NUM_THREADS=4 OPENBLAS_NUM_THREADS=4"};
  for (const auto& c : commands) {
    INFO(c.name);
    const auto first = run_outputs(c, thread_settings[0], 0);
    for (std::size_t run = 1; run < thread_settings.size(); ++run) {
      INFO(thread_settings[run]);
      const auto again = run_outputs(c, thread_settings[run], int(run));
      REQUIRE(again.size() == first.size());
      for (std::size_t k = 0; k < first.size(); ++k) CHECK(again[k] == first[k]);
    }
  }
}

TEST_CASE("a different seed gives different output, so the comparison above can fail", "[determinism][cli]") {
  const std::string model = (temp_dir() / "model.json").string();
  std::ofstream(model) << gelu_softmax_model_text;
  const DeterministicCommand a{"seed_a", "gradient --model " + model + " --precision double --seed 1", {}};
  const DeterministicCommand b{"seed_b", "gradient --model " + model + " --precision double --seed 2", {}};
  CHECK(run_outputs(a, "", 0) != run_outputs(b, "", 0));
  // Without --no-timings, verify's files carry measured times: the flag is what makes them equal.
  const DeterministicCommand timed{"timed", "verify --model " + model + " --points 1 --json {out}/v.json", {"v.json"}};
  const auto json = nlohmann::json::parse(run_outputs(timed, "", 0)[1]);
  double seconds = 0;
  for (const auto& check : json.at("checks")) seconds += check.at("seconds").get<double>();
  CHECK(seconds > 0);
}
