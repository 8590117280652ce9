// Hostile input, as users meet it in CI on models and data they did not write by hand: every case
// ends in exit code 2 and one line "bpcheck: error: <file>: <problem>", never a crash, a hang or a
// silent wrong number; the library raises input_error for the same cases, before allocating.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/io/limits.hpp"
#include "cli_run.hpp"
#include "helpers.hpp"

using Catch::Contains;
using Catch::Equals;
using Catch::StartsWith;
using nlohmann::json;
namespace fs = std::filesystem;

using bpcheck::testing::bpcheck_run;
using bpcheck::testing::input_error_message;
using bpcheck::testing::model_text;
using bpcheck::testing::one_error_line;
using bpcheck::testing::Run;
using bpcheck::testing::slurp;
using bpcheck::testing::temp_dir;
using bpcheck::testing::write_file;

namespace {

std::string nested_arrays(int depth) { return std::string(std::size_t(depth), '[') + std::string(std::size_t(depth), ']'); }

/// Restores the machine's memory budget when a test that lowered it ends.
struct MemoryBudget {
  explicit MemoryBudget(std::uint64_t bytes) { bpcheck::set_memory_budget(bytes); }
  ~MemoryBudget() { bpcheck::set_memory_budget(0); }
};

}  // namespace

TEST_CASE("a model larger than the machine's memory is refused before allocating, with its size", "[hostile][memory]") {
  auto gradient = [](const std::string& model) {
    return one_error_line(bpcheck_run("gradient --precision double --model " + model));
  };
  SECTION("a dense layer of 2^24 × 2^24 weights") {
    const std::string m = write_file("huge_dense.json", R"({"input_size": 16777216,
      "layers": [{"type": "dense", "units": 16777216}], "loss": "mse"})");
    CHECK_THAT(gradient(m), Contains(m) && Contains("281474993487872 parameters") && Contains("PiB") &&
                                Contains("more than this machine's"));
  }
  SECTION("an input width of 4·10^18 (no parameters, the activations alone)") {
    const std::string m = write_file("huge_input.json",
                                     R"({"input_size": 4000000000000000000, "layers": [{"type": "tanh"}], "loss": "mse"})");
    CHECK_THAT(gradient(m), Contains(m) && Contains("widest layer 4000000000000000000") && Contains("EiB"));
  }
  SECTION("a product of sizes that would wrap around 64 bits") {
    const std::string m = write_file("wrap.json", R"({"input_size": 4611686018427387904,
      "layers": [{"type": "dense", "units": 16}], "loss": "mse"})");
    CHECK_THAT(gradient(m), Contains(m) && Contains("needs about"));
  }
  SECTION("a conv2d of 2^20 × 2^20 channels with a 3 × 3 kernel") {
    const std::string m = write_file("huge_conv.json", R"({"input_size": 1048576, "layers": [{"type": "conv2d",
      "channels": 1048576, "height": 1, "width": 1, "out_channels": 1048576, "kernel": 3, "padding": 1}],
      "loss": "mse"})");
    // out·(in·3·3 + 1) weights: the count must square the kernel size.
    CHECK_THAT(gradient(m), Contains(m) && Contains("9895605698560 parameters") && Contains("TiB"));
  }
  SECTION("an embedding table of 2^24 × 2^24 inside a residual block's neighbour") {
    const std::string m = write_file("huge_embedding.json", R"({"input_size": 2, "layers": [
      {"type": "residual", "layers": [{"type": "dense", "units": 2}]},
      {"type": "embedding", "num_embeddings": 16777216, "embedding_dim": 16777216}], "loss": "mse"})");
    CHECK_THAT(gradient(m), Contains(m) && Contains("281474976710662 parameters") && Contains("PiB"));
  }
  SECTION("verify counts the oracle's rung (dual<mp100>)") {
    const std::string m = write_file("huge_verify.json", R"({"input_size": 16777216,
      "layers": [{"type": "dense", "units": 16777216}], "loss": "mse"})");
    CHECK_THAT(one_error_line(bpcheck_run("verify --model " + m)), Contains(m) && Contains("needs about"));
  }
}

TEST_CASE("the memory check counts the rung: a model that fits in double may not fit in mp100", "[hostile][memory]") {
  const bpcheck::ModelSpec spec{100, {{"dense", {{"units", 100}}}}, "mse"};  // 10100 parameters
  const MemoryBudget budget(200'000);                                          // bytes
  CHECK_NOTHROW(bpcheck::check_model_memory(spec, sizeof(double), "double", "m.json"));  // 81 KB
  CHECK_THAT(input_error_message([&] { bpcheck::check_model_memory(spec, sizeof(bpcheck::mp100), "mp100", "m.json"); }),
             StartsWith("m.json: the model (10100 parameters, widest layer 100) in mp100 needs about") &&
                 Contains("more than the memory budget of 195.3 KiB"));
  // The reader applies it before building the model.
  const bpcheck::ModelSpec big{1000, {{"dense", {{"units", 1000}}}}, "mse"};
  CHECK_THAT(input_error_message([&] {
               bpcheck::model_spec_from_json(json::parse(bpcheck::model_spec_to_json(big).dump()), "big.json");
             }),
             StartsWith("big.json: the model (1001000 parameters") && Contains("in double"));
}

TEST_CASE("a JSON file larger than memory can hold once parsed is refused by its size", "[hostile][memory]") {
  // A sparse file: its size is 1 TiB, its disk use nothing. The reader refuses it without reading.
  const auto path = temp_dir() / "terabyte.json";
  { std::ofstream(path) << "["; }
  fs::resize_file(path, std::uintmax_t(1) << 40);
  const auto start = std::chrono::steady_clock::now();
  CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model '" + path.string() + "'")),
             Contains(path.string()) && Contains("1.0 TiB of JSON would need about 32.0 TiB to read") &&
                 Contains("more than this machine's"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  fs::remove(path);
  // With a budget of 32 KiB a file may hold 1 KiB of JSON; a stream (no size known in advance, here
  // an endless one) is cut off as it is read.
  const MemoryBudget budget(32 * 1024);
  CHECK_NOTHROW(bpcheck::read_json_file(write_file("short.json", "[" + std::string(500, ' ') + "]")));
  CHECK_THAT(input_error_message([&] { bpcheck::read_json_file(write_file("long.json", std::string(2000, ' '))); }),
             Contains("2.0 KiB of JSON would need about 62.5 KiB to read, more than the memory budget of 32.0 KiB"));
  CHECK_THAT(input_error_message([] { bpcheck::read_json_file("/dev/zero"); }),
             Equals("/dev/zero: more than 1.0 KiB of JSON, which would need more than the memory budget of 32.0 KiB "
                    "to read"));
}

TEST_CASE("deeply nested JSON is refused with an error, not a stack overflow", "[hostile][json]") {
  SECTION("100 000 levels, in a model file") {
    const std::string m = write_file("deep.json", R"({"input_size": 3, "layers": [)" + nested_arrays(100000) +
                                                      R"(], "loss": "mse"})");
    CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model " + m)),
               Contains(m) && Contains("JSON nested deeper than 64 levels"));
  }
  SECTION("100 000 levels of objects, as a layer option") {
    std::string deep;
    for (int i = 0; i < 100000; ++i) deep += R"({"a":)";
    deep += "0" + std::string(100000, '}');
    const std::string m = write_file("deep_option.json",
                                     R"({"input_size": 3, "layers": [{"type": "tanh", "x": )" + deep + R"(}], "loss": "mse"})");
    CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model " + m)), Contains("nested deeper"));
  }
  SECTION("the limit sits exactly at 64 levels") {
    CHECK_NOTHROW(bpcheck::parse_json(nested_arrays(64), "ok"));
    CHECK_THAT(input_error_message([] { bpcheck::parse_json(nested_arrays(65), "deep"); }),
               Equals("deep: JSON nested deeper than 64 levels"));
  }
  SECTION("1 000 000 levels are refused at once") {
    const auto start = std::chrono::steady_clock::now();
    CHECK_THAT(input_error_message([] { bpcheck::parse_json(nested_arrays(1000000), "deep"); }),
               Contains("nested deeper"));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  }
}

TEST_CASE("a huge JSON value makes a short error line", "[hostile][json]") {
  const std::string key(100000, 'k');
  const std::string m = write_file("long_key.json", R"({"input_size": 3, ")" + key +
                                                       R"(": 1, "layers": [{"type": "tanh"}], "loss": "mse"})");
  CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model " + m)),
             Contains("unknown key 'kkkkkkkk") && Contains("…"));
  const std::string d = write_file("long_target.json",
                                   R"({"inputs": [[1, 2, 3]], "targets": [")" + std::string(100000, 'x') + R"("]})");
  const std::string model = write_file("model.json", model_text);
  CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model " + model + " --data " + d)),
             Contains("integer class index"));
}

TEST_CASE("control characters from a file do not reach the terminal", "[hostile][json]") {
  const std::string m = write_file("escape.json",
                                   R"({"input_size": 3, "layers": [{"type": "\u001b[31mred\n"}], "loss": "mse"})");
  CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model " + m)),
             Contains("unknown layer type '") && Contains("[31mred"));
}

TEST_CASE("numbers beyond the rung's range are refused, in that rung only", "[hostile][numbers]") {
  const std::string model = write_file("model.json", model_text);
  SECTION("1e400 as a decimal string: not finite in double") {
    const std::string d = write_file("e400.json", R"({"inputs": [[1, "1e400", 3]], "targets": [0]})");
    CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model " + model + " --data " + d)),
               Contains(d) && Contains("inputs[0][1]") && Contains("'1e400' is not finite in double"));
    // mp100's exponent range holds it.
    CHECK(bpcheck_run("gradient --precision mp100 --model " + model + " --data " + d).code == 0);
  }
  SECTION("1e400 as a JSON number: beyond any double the parser can hold") {
    const std::string d = write_file("e400n.json", R"({"inputs": [[1, 1e400, 3]], "targets": [0]})");
    CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model " + model + " --data " + d)),
               Contains(d) && Contains("1e400"));
  }
  SECTION("1e39 in float, fine in double") {
    const std::string d = write_file("e39.json", R"({"inputs": [[1, 1e39, 3]], "targets": [0]})");
    CHECK_THAT(one_error_line(bpcheck_run("gradient --precision float --model " + model + " --data " + d)),
               Contains("not finite in float"));
    CHECK(bpcheck_run("gradient --precision double --model " + model + " --data " + d).code == 0);
  }
}

TEST_CASE("NaN and Inf in parameters or data are refused with their place", "[hostile][numbers]") {
  const std::string model = write_file("model.json", model_text);
  const std::string params_text = R"({"layers": [
      {"W": [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, "NAN"]], "b": [0, 0, 0, 0]}, {},
      {"W": [[1, 2, 3, 4], [1, 2, 3, 4]], "b": [0, "-inf"]}]})";
  const std::string p = write_file("nan_params.json", params_text);
  CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model " + model + " --params " + p)),
             Contains(p) && Contains("layer 0 (dense): W[3][2]") && Contains("not finite"));
  std::string only_inf = params_text;
  only_inf.replace(only_inf.find("\"NAN\""), 5, "3");
  const std::string q = write_file("inf_params.json", only_inf);
  CHECK_THAT(one_error_line(bpcheck_run("verify --model " + model + " --params " + q)),
             Contains(q) && Contains("layer 2 (dense): b[1]") && Contains("'-inf' is not finite"));
  const std::string d = write_file("inf_data.json", R"({"inputs": [[1, 2, 3], ["Infinity", 0, 0]], "targets": [0, 1]})");
  CHECK_THAT(one_error_line(bpcheck_run("gradient --precision mp100 --model " + model + " --data " + d)),
             Contains(d) && Contains("inputs[1][0]") && Contains("not finite"));
}

TEST_CASE("empty batches, zero-width layers and missing or duplicate keys are refused", "[hostile][structure]") {
  const std::string model = write_file("model.json", model_text);
  auto gradient = [](const std::string& args) { return one_error_line(bpcheck_run("gradient --precision double " + args)); };
  SECTION("an empty batch") {
    const std::string d = write_file("empty.json", R"({"inputs": [], "targets": []})");
    CHECK_THAT(gradient("--model " + model + " --data " + d), Contains(d) && Contains("an empty list"));
  }
  SECTION("samples of no features") {
    const std::string d = write_file("no_features.json", R"({"inputs": [[]], "targets": [0]})");
    CHECK_THAT(gradient("--model " + model + " --data " + d), Contains(d) && Contains("expected 3 numbers"));
  }
  SECTION("a zero-width dense layer") {
    const std::string m = write_file("zero_units.json",
                                     R"({"input_size": 3, "layers": [{"type": "dense", "units": 0}], "loss": "mse"})");
    CHECK_THAT(gradient("--model " + m), Contains(m) && Contains("'units' must be a positive integer, got 0"));
  }
  SECTION("a zero-width input") {
    const std::string m = write_file("zero_input.json", R"({"input_size": 0, "layers": [{"type": "tanh"}], "loss": "mse"})");
    CHECK_THAT(gradient("--model " + m), Contains(m) && Contains("'input_size' must be a positive integer, got 0"));
  }
  SECTION("a duplicate key in the model") {
    const std::string m = write_file("dup_model.json",
                                     R"({"input_size": 3, "layers": [{"type": "tanh"}], "loss": "mse", "input_size": 4})");
    CHECK_THAT(gradient("--model " + m), Contains(m) && Contains("duplicate key 'input_size'"));
  }
  SECTION("a duplicate block in the parameters") {
    const std::string p = write_file("dup_params.json", R"({"layers": [
        {"W": [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]], "b": [0, 0, 0, 0], "b": [1, 1, 1, 1]}, {},
        {"W": [[1, 2, 3, 4], [1, 2, 3, 4]], "b": [0, 0]}]})");
    CHECK_THAT(gradient("--model " + model + " --params " + p), Contains(p) && Contains("duplicate key 'b'"));
  }
  SECTION("the same key in different objects is fine") {
    CHECK_NOTHROW(bpcheck::parse_json(R"({"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]})", "ok"));
  }
  SECTION("a missing loss") {
    const std::string m = write_file("no_loss.json", R"({"input_size": 3, "layers": [{"type": "tanh"}]})");
    CHECK_THAT(gradient("--model " + m), Contains(m) && Contains("has no 'loss'"));
  }
  SECTION("a missing parameter block") {
    const std::string p = write_file("no_b.json", R"({"layers": [
        {"W": [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]]}, {}, {"W": [[1, 2, 3, 4], [1, 2, 3, 4]], "b": [0, 0]}]})");
    CHECK_THAT(gradient("--model " + model + " --params " + p), Contains(p) && Contains("missing parameter block 'b'"));
  }
  SECTION("missing targets") {
    const std::string d = write_file("no_targets.json", R"({"inputs": [[1, 2, 3]]})");
    CHECK_THAT(gradient("--model " + model + " --data " + d), Contains(d) && Contains("has no 'targets'"));
  }
}

TEST_CASE("integer targets out of range are refused with the value as written", "[hostile][numbers]") {
  const std::string model = write_file("model.json", model_text);
  auto data_error = [&](const std::string& name, const std::string& targets) {
    const std::string d = write_file(name, R"({"inputs": [[1, 2, 3]], "targets": [)" + targets + "]}");
    return one_error_line(bpcheck_run("gradient --precision double --model " + model + " --data " + d));
  };
  CHECK_THAT(data_error("t2.json", "2"), Contains("class 2, outside 0..1"));
  CHECK_THAT(data_error("tneg.json", "-1"), Contains("class -1, outside 0..1"));
  CHECK_THAT(data_error("tmax.json", "18446744073709551615"), Contains("class 18446744073709551615, outside 0..1"));
  CHECK_THAT(data_error("tlong.json", "9223372036854775807"), Contains("class 9223372036854775807"));
  CHECK_THAT(data_error("tfrac.json", "1.5"), Contains("integer class index"));
  CHECK_THAT(data_error("tstring.json", "\"1\""), Contains("integer class index"));
}

TEST_CASE("unreadable or missing files are refused with the reason", "[hostile][files]") {
  auto gradient = [](const std::string& model) {
    return one_error_line(bpcheck_run("gradient --precision double --model '" + model + "'"));
  };
  CHECK_THAT(gradient((temp_dir() / "missing.json").string()), Contains("cannot open (No such file or directory)"));
  CHECK_THAT(gradient(temp_dir().string()), Contains("is a directory"));
  const std::string m = write_file("model.json", model_text);
  CHECK_THAT(gradient(m + "/inside"), Contains("cannot open (Not a directory)"));
  CHECK_THAT(gradient(write_file("empty_file.json", "")), Contains("malformed JSON at byte 1"));
  CHECK_THAT(gradient("/dev/null"), Contains("malformed JSON at byte 1"));
  CHECK_THAT(gradient(write_file("binary.json", std::string("\x7f" "ELF\0\0\xff", 7))), Contains("malformed JSON"));
  CHECK_THAT(gradient(write_file("bad_utf8.json", "{\"loss\": \"\xff\xfe\"}")), Contains("malformed JSON"));
}

TEST_CASE("output that cannot be written fails with exit 2 and leaves no partial file", "[hostile][files]") {
  const std::string model = write_file("model.json", model_text);
  auto leftovers = [] {  // temporaries are hidden files next to the target
    int n = 0;
    for (const auto& e : fs::directory_iterator(temp_dir())) n += e.path().filename().string().rfind('.', 0) == 0;
    return n;
  };
  SECTION("a folder that does not exist") {
    const auto target = temp_dir() / "absent" / "out.json";
    CHECK_THAT(one_error_line(bpcheck_run("verify --model " + model + " --json '" + target.string() + "'")),
               Contains("cannot be written"));
    CHECK_FALSE(fs::exists(target.parent_path()));
  }
  SECTION("a path that is a folder") {
    const auto target = temp_dir() / "out_folder";
    fs::create_directories(target);
    CHECK_THAT(one_error_line(bpcheck_run("verify --model " + model + " --junit '" + target.string() + "'")),
               Contains("cannot be written"));
    CHECK(fs::is_directory(target));
    CHECK(leftovers() == 0);
  }
  SECTION("a device is not replaced") {
    CHECK_THAT(one_error_line(bpcheck_run("verify --model " + model + " --json /dev/full")),
               Contains("/dev/full: cannot be written (it exists and is not a regular file)"));
    CHECK(fs::is_character_file("/dev/full"));
  }
  SECTION("standard output on a full disk") {
    const Run r = bpcheck_run("gradient --precision double --model " + model, "/dev/full");
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Equals("bpcheck: error: cannot write the result to standard output\n"));
  }
  SECTION("an existing result survives a failed run, and a good run replaces it whole") {
    const auto target = temp_dir() / "out.json";
    write_file("out.json", "previous result");
    const std::string bad = write_file("bad_model.json", R"({"input_size": 3})");
    one_error_line(bpcheck_run("verify --model " + bad + " --json '" + target.string() + "'"));
    CHECK(slurp(target) == "previous result");
    const Run ok = bpcheck_run("verify --points 1 --precision double --model " + model + " --json '" + target.string() + "'");
    CHECK(ok.code == 0);
    CHECK(json::parse(slurp(target)).at("passed") == true);
    struct stat st {};
    REQUIRE(::stat(target.c_str(), &st) == 0);
    const mode_t mask = ::umask(0);
    ::umask(mask);
    CHECK((st.st_mode & 0777) == (0666 & ~mask));  // as a plain create, not mkstemp's 0600
    CHECK(leftovers() == 0);
  }
}

TEST_CASE("a seed outside 0..2^64-1 is refused, not wrapped around", "[hostile][cli]") {
  const std::string model = write_file("model.json", model_text);
  for (const std::string seed : {"-1", "18446744073709551616", "99999999999999999999999", "1e3", "0x10", "''"}) {
    INFO(seed);
    CHECK_THAT(one_error_line(bpcheck_run("gradient --precision double --model " + model + " --seed " + seed)),
               Contains("--seed") && Contains("a seed is a whole number from 0 to 18446744073709551615"));
  }
  CHECK_THAT(one_error_line(bpcheck_run("verify --model " + model + " --seed -5")), Contains("--seed"));
  // The largest seed is a seed like any other.
  const Run top = bpcheck_run("gradient --precision double --model " + model + " --seed 18446744073709551615");
  const Run zero = bpcheck_run("gradient --precision double --model " + model + " --seed 0");
  CHECK(top.code == 0);
  CHECK(zero.code == 0);
  CHECK(top.out != zero.out);
}
