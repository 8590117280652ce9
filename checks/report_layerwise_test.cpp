// The report on a user's model, layer by layer: where float and double lose digits (checked against a
// hand computation), the conditioning of the products J_k⋯J_1 estimated without forming them (checked
// against the SVD of the formed product), and the page as a real browser renders it.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/SVD>
#include <nlohmann/json.hpp>

#include "bpcheck/io/formats.hpp"
#include "cli_run.hpp"
#include "helpers.hpp"
#include "report.hpp"
#include "report_lanczos.hpp"
#include "report_svd.hpp"

using Catch::Contains;
using nlohmann::json;
namespace fs = std::filesystem;

using bpcheck::mp100;
using bpcheck::testing::bpcheck_run;
using bpcheck::testing::Run;
using bpcheck::testing::slurp;
using bpcheck::testing::temp_dir;
using bpcheck::testing::temp_path;
using bpcheck::testing::write_file;

namespace {


std::size_t lw_count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// 3 → dense 2 → tanh → dense 2, mse, with given parameters and batch.
const char* lw_small_model =
    R"({"input_size": 3, "layers": [{"type": "dense", "units": 2}, {"type": "tanh"}, {"type": "dense", "units": 2}], "loss": "mse"})";
const char* lw_small_params =
    R"({"layers": [{"W": [[0.75, -0.5, 0.3125], [0.2, 1.25, -0.625]], "b": [0.1, -0.3]}, {}, {"W": [[1.5, -0.75], [0.5, 2]], "b": [0.25, 0]}]})";
const char* lw_small_data = R"({"inputs": [[0.1, 0.7, -0.3], [0.9, -0.4, 0.2]], "targets": [[0.5, -1], [1, 0.25]]})";

}  // namespace

TEST_CASE("report layer by layer: every layer's forward and backward error in float and double, first on the page",
          "[report]") {
  const std::string model = write_file("lw_model.json", lw_small_model);
  const std::string params = write_file("lw_params.json", lw_small_params);
  const std::string data = write_file("lw_data.json", lw_small_data);
  const Run run = bpcheck_run("report --quick --jobs 2 --out '" + temp_path("lw") + "' --model '" + model +
                              "' --params '" + params + "' --data '" + data + "'");
  INFO(run.err);
  REQUIRE(run.code == 0);
  const json r = json::parse(slurp(fs::path(temp_path("lw")) / "report.json"));
  REQUIRE(r.at("layerwise").size() == 2);
  for (const auto& lw : r.at("layerwise")) {
    INFO(lw.dump());
    const bool single = lw.at("precision") == "float";
    REQUIRE(lw.at("layers").size() == 3);
    for (const auto& l : lw.at("layers")) {
      // Rounding, not worse: within a few units of the rung's roundoff, far from its 9 or 17 digits cap.
      for (const char* what : {"forward", "backward"}) {
        const double digits = l.at(std::string(what) + "_digits").get<double>();
        CHECK(digits > (single ? 5.5 : 14.0));
        CHECK(digits < (single ? 9.0 : 17.0));
      }
    }
  }
  // layerwise.csv: a header, the loss's seed and every layer, per precision.
  const std::string csv = slurp(fs::path(temp_path("lw")) / "layerwise.csv");
  REQUIRE(lw_count(csv, "\n") == 1 + 2 * 4);
  REQUIRE_THAT(csv, Contains("model,double,-1,loss,") && Contains("model,float,1,tanh,2,"));
  // The page: the chart and its table come first, before the summary and every other plot.
  const std::string html = slurp(fs::path(temp_path("lw")) / "index.html");
  const auto chart = html.find("<figure id=\"layerwise-model\">");
  REQUIRE(chart != std::string::npos);
  REQUIRE(chart < html.find("id=\"summary\""));
  REQUIRE(chart == html.find("<figure"));
  REQUIRE_THAT(html, Contains("Layer by layer in float") && Contains("layerwise.csv"));
}

TEST_CASE("report layer by layer: float's first layer error equals the hand computation", "[report]") {
  // 1 → dense 2 → tanh → dense 1 at x = 0.5: w·x is exact (0.375, 0.75), so float's only rounding in layer 0
  // is of the sums with the biases (float(0.1), float(-0.3)), and double holds those sums exactly.
  bpcheck::report::ReportOptions o;
  o.quick = true;
  o.model = bpcheck::model_spec_from_json(
      json::parse(R"({"input_size": 1, "layers": [{"type": "dense", "units": 2}, {"type": "tanh"}, {"type": "dense", "units": 1}], "loss": "mse"})"),
      "model");
  o.parameters = json::parse(R"({"layers": [{"W": [[0.75], [1.5]], "b": [0.1, -0.3]}, {}, {"W": [[2, -1]], "b": [0]}]})");
  o.data = json::parse(R"({"inputs": [[0.5]], "targets": [[0.25]]})");
  json result;
  for (const auto& item : bpcheck::report::plan(o))
    if (item.kind == "layerwise" && item.params.at("precision") == "float") result = bpcheck::report::compute(item, o);
  REQUIRE(result.contains("layers"));
  const float b0 = 0.1f, b1 = -0.3f;
  const double y0 = 0.375 + double(b0), y1 = 0.75 + double(b1);               // exact
  const float f0 = 0.375f + b0, f1 = 0.75f + b1;                              // float's rounding
  const double expected = std::hypot(double(f0) - y0, double(f1) - y1) / std::hypot(y0, y1);
  REQUIRE(expected > 0);  // float did round: the comparison is not of zero with zero
  const json& layer0 = result.at("layers")[0];
  CHECK(layer0.at("forward_rel_error").get<double>() == Approx(expected).epsilon(1e-10));
  CHECK(layer0.at("forward_digits").get<double>() == Approx(-std::log10(expected)).epsilon(1e-10));
}

TEST_CASE("report layer by layer: no such section for the built-in set", "[report]") {
  bpcheck::report::ReportOptions o;
  o.quick = true;
  for (const auto& item : bpcheck::report::plan(o)) REQUIRE(item.kind != "layerwise");
}

namespace {

// 6 → dense 8 → tanh → dense 6 → tanh → dense 7: P_k is 8×6, 8×6, 6×6, 6×6, 7×6, each of rank 6.
bpcheck::Network<mp100> lw_small_tanh_network(double scale_last = 1) {
  bpcheck::ModelSpec spec{6, {{"dense", {{"units", 8}}}, {"tanh", {}}, {"dense", {{"units", 6}}}, {"tanh", {}},
                              {"dense", {{"units", 7}}}}, "mse"};
  bpcheck::Network<mp100> net(spec);
  net.initialize(7);
  if (scale_last != 1) {
    // Shrink one direction of the first layer's W: the products' σ_min falls by scale_last.
    bpcheck::Vector<mp100> theta = net.layer(0).parameters();
    for (bpcheck::Index i = 0; i < 8; ++i) theta(i) *= mp100(scale_last);  // column 0 of W (column-major)
    net.layer(0).set_parameters(theta);
  }
  return net;
}

bpcheck::report::SingularValues lw_formed(const bpcheck::Network<mp100>& net, const bpcheck::Vector<mp100>& x,
                                       std::size_t k) {
  const auto acts = net.activations(bpcheck::Matrix<mp100>(x));
  bpcheck::Matrix<mp100> P = net.layer(0).jacobian_input(acts[0]);
  for (std::size_t i = 1; i < k; ++i) P = (net.layer(i).jacobian_input(acts[i]) * P).eval();
  return bpcheck::report::singular_values(P);
}

bpcheck::Vector<mp100> lw_sample(bpcheck::Index n) {
  bpcheck::Vector<mp100> x(n);
  for (bpcheck::Index i = 0; i < n; ++i) x(i) = mp100(std::sin(1.3 * double(i) + 0.4));
  return x;
}

}  // namespace

TEST_CASE("Lanczos on JVP and VJP products: the formed product's extreme singular values", "[report]") {
  using bpcheck::report::LanczosOptions;
  using bpcheck::report::product_spectrum;
  const auto x = lw_sample(6);
  SECTION("enough steps: exact, in double where it resolves sigma_min (relative 1e-10)") {
    const auto net = lw_small_tanh_network();
    for (std::size_t k = 1; k <= 5; ++k) {
      INFO("product of " << k << " layers");
      const auto exact = lw_formed(net, x, k);
      const auto e = product_spectrum(net, x, 0, k, LanczosOptions{});
      CHECK(e.exact);
      CHECK(e.resolved);
      CHECK(e.precision == "double");
      CHECK(e.dimension == 6);
      CHECK(e.sigma_max == Approx(exact.sigma_max).epsilon(1e-10));
      CHECK(e.sigma_min == Approx(exact.sigma_min).epsilon(1e-10));
      REQUIRE(e.values.size() == exact.values.size());
      for (std::size_t i = 0; i < e.values.size(); ++i) CHECK(e.values[i] == Approx(exact.values[i]).epsilon(1e-10));
    }
  }
  SECTION("fewer steps than singular values: sigma_max from below, sigma_min from above") {
    const auto net = lw_small_tanh_network();
    LanczosOptions o;
    o.max_steps = 3;
    const auto exact = lw_formed(net, x, 5);
    const auto e = product_spectrum(net, x, 0, 5, o);
    CHECK_FALSE(e.exact);
    CHECK(e.steps == 3);
    CHECK(e.sigma_max <= exact.sigma_max * (1 + 1e-12));
    CHECK(e.sigma_max == Approx(exact.sigma_max).epsilon(0.05));  // σ_max converges first
    CHECK(e.sigma_min >= exact.sigma_min * (1 - 1e-12));
  }
  SECTION("below double's resolution: rerun in mp100, still exact (relative 1e-12)") {
    const auto net = lw_small_tanh_network(1e-13);
    const auto exact = lw_formed(net, x, 5);
    REQUIRE(exact.precision == "mp100");  // cond > 1e8: the lw_formed SVD itself needed mp100
    const auto e = product_spectrum(net, x, 0, 5, LanczosOptions{});
    CHECK(e.precision == "mp100");
    CHECK(e.exact);
    CHECK(e.sigma_min == Approx(exact.sigma_min).epsilon(1e-12));
    CHECK(e.cond == Approx(exact.cond).epsilon(1e-12));
    // the same run in double alone cannot tell σ_min from its rounding: it must not be taken from there
    LanczosOptions too_narrow;
    too_narrow.max_mp100_width = 4;
    const auto d = product_spectrum(net, x, 0, 5, too_narrow);
    CHECK(d.precision == "double");
    CHECK_FALSE(d.resolved);
  }
  SECTION("a singular product (a ReLU unit off) is found singular in mp100") {
    bpcheck::ModelSpec spec{3, {{"dense", {{"units", 4}}}, {"relu", {}}, {"dense", {{"units", 3}}}}, "mse"};
    bpcheck::Network<mp100> net(spec);
    net.initialize(3);
    // Two biases far below zero (θ = vec W, then b): those units are off near x = 0, so P_3 = W₂·D·W has rank 2.
    bpcheck::Vector<mp100> theta = net.layer(0).parameters();
    theta(12) = mp100(-50);
    theta(13) = mp100(-50);
    net.layer(0).set_parameters(theta);
    const bpcheck::Vector<mp100> x3 = lw_sample(3) * mp100("0.01");
    const auto exact = lw_formed(net, x3, 3);
    REQUIRE(exact.singular);
    const auto e = product_spectrum(net, x3, 0, 3, LanczosOptions{});
    CHECK(e.precision == "mp100");
    CHECK(e.singular);
    CHECK(e.rank == exact.rank);
    CHECK(e.sigma_max == Approx(exact.sigma_max).epsilon(1e-12));
  }
}

TEST_CASE("report on a model wider than 256 units: conditioning estimated, not skipped, and right", "[report]") {
  // 30 → dense 300 → tanh → dense 4: past the 256 units where products are lw_formed; min(rows, cols) ≤ 30
  // so 30 steps are exact, and the test forms the product in double to check.
  const std::string model = write_file(
      "wide_model.json",
      R"({"input_size": 30, "layers": [{"type": "dense", "units": 300}, {"type": "tanh"}, {"type": "dense", "units": 4}], "loss": "mse"})");
  const Run run = bpcheck_run("report --quick --jobs 2 --out '" + temp_path("wide") + "' --model '" + model + "'");
  INFO(run.err);
  REQUIRE(run.code == 0);
  const json r = json::parse(slurp(fs::path(temp_path("wide")) / "report.json"));
  REQUIRE_FALSE(r.at("backprop")[0].contains("conditioning_skipped"));
  REQUIRE_THAT(r.at("backprop")[0].at("conditioning_estimated").get<std::string>(), Contains("300 units"));
  const json& products = r.at("conditioning")[0].at("products");
  REQUIRE(products.size() == 3);
  // The same network and lw_sample 0 in double, its product lw_formed.
  bpcheck::Network<double> net(bpcheck::model_spec_from_json(json::parse(slurp(model)), "model"));
  net.initialize(42);
  const bpcheck::Matrix<double> x0 = bpcheck::generate_batch(net, 42, 4).inputs.col(0);
  const auto acts = net.activations(x0);
  bpcheck::Matrix<double> P = net.layer(0).jacobian_input(acts[0]);
  for (std::size_t k = 0; k < 3; ++k) {
    if (k > 0) P = (net.layer(k).jacobian_input(acts[k]) * P).eval();
    const Eigen::VectorXd s = Eigen::JacobiSVD<Eigen::MatrixXd>(P).singularValues();
    INFO("product of " << k + 1 << " layers: " << products[k].dump());
    CHECK(products[k].at("method") == "lanczos");
    CHECK(products[k].at("exact") == true);
    CHECK(products[k].at("sigma_max").get<double>() == Approx(s(0)).epsilon(1e-8));
    CHECK(products[k].at("sigma_min").get<double>() == Approx(s(s.size() - 1)).epsilon(1e-6));
  }
  const std::string html = slurp(fs::path(temp_path("wide")) / "index.html");
  REQUIRE_THAT(html, Contains("estimated without forming the products") && Contains("Lanczos, 30 of 30 steps (exact)"));
  REQUIRE_THAT(slurp(fs::path(temp_path("wide")) / "conditioning.csv"), Contains(",lanczos,true,30"));
}

namespace {

/// Runs a shell command; its exit code, stdout and stderr.
Run lw_shell(const std::string& command) {
  const auto out = temp_dir() / "shell_out.txt", err = temp_dir() / "shell_err.txt";
  const int status = std::system((command + " > '" + out.string() + "' 2> '" + err.string() + "' < /dev/null").c_str());
  Run r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace

TEST_CASE("report page in a real browser: chromium headless loads it without errors and shows every plot and table",
          "[report][browser]") {
  const Run which = lw_shell("command -v chromium");
  if (which.code != 0)
    FAIL("chromium is not installed: the page test needs Debian's chromium (scripts/setup.sh installs it; "
         "apt-get install chromium)");
  const std::string model = write_file("browser_model.json", lw_small_model);
  const Run run = bpcheck_run("report --quick --jobs 2 --out '" + temp_path("browser") + "' --model '" + model + "'");
  INFO(run.err);
  REQUIRE(run.code == 0);
  const fs::path page = fs::path(temp_path("browser")) / "index.html";
  const std::string source = slurp(page);
  const std::size_t figures = lw_count(source, "<figure"), tables = lw_count(source, "<table");
  REQUIRE(figures >= 5);  // layer by layer, 2 finite-difference plots, blocks, conditioning
  REQUIRE(tables >= 5);
  // Its own profile folder, so that parallel runs and a user's chromium do not meet.
  const std::string chromium = "chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir='" +
                               (temp_dir() / "chromium-profile").string() + "' --enable-logging=stderr --v=0 ";
  const Run dom = lw_shell("timeout 120 " + chromium + "--dump-dom 'file://" + page.string() + "'");
  INFO(dom.err.substr(0, 2000));
  REQUIRE(dom.code == 0);
  // Loaded without errors: no console message or failed resource, and the parsed document is the page
  // whole (every figure holds an SVG drawing with its paths, every table its rows).
  CHECK_THAT(dom.err, !Contains("CONSOLE") && !Contains("Uncaught") && !Contains("net::ERR_"));
  REQUIRE_THAT(dom.out, Contains("<title>bpcheck error-analysis report</title>") && Contains("</body>"));
  CHECK(lw_count(dom.out, "<figure") == figures);
  CHECK(lw_count(dom.out, "<table") == tables);
  std::size_t drawn = 0;
  for (std::size_t at = dom.out.find("<figure"); at != std::string::npos; at = dom.out.find("<figure", at + 1)) {
    const std::string one = dom.out.substr(at, dom.out.find("</figure>", at) - at);
    drawn += one.find("<svg") != std::string::npos && one.find("<path") != std::string::npos &&
             one.find("<figcaption>") != std::string::npos;
  }
  CHECK(drawn == figures);
  CHECK(lw_count(dom.out, "<figure id=\"layerwise-model\">") == 1);
  // A screenshot of the rendered page: a PNG of the window's size with real content (a blank page
  // compresses to a few hundred bytes).
  const fs::path png = temp_dir() / "page.png";
  const Run shot = lw_shell("timeout 120 " + chromium + "--hide-scrollbars --window-size=1300,2400 --screenshot='" +
                         png.string() + "' 'file://" + page.string() + "'");
  INFO(shot.err.substr(0, 2000));
  REQUIRE(shot.code == 0);
  const std::string image = slurp(png);
  REQUIRE(image.size() > 24);
  REQUIRE(image.compare(1, 3, "PNG") == 0);
  auto be32 = [&image](std::size_t at) {
    return (unsigned(std::uint8_t(image[at])) << 24) | (unsigned(std::uint8_t(image[at + 1])) << 16) |
           (unsigned(std::uint8_t(image[at + 2])) << 8) | unsigned(std::uint8_t(image[at + 3]));
  };
  CHECK(be32(16) == 1300);
  CHECK(be32(20) == 2400);
  CHECK(image.size() > 50000);
}
