// From the items' results to report.json, the agreement with theory, the CSVs and index.html.
//
// Plots are SVG drawn by gnuplot (Debian's gnuplot-nox): log–log axes, 10^k tick labels and keys come
// for free, and its SVG is plain XML that inlines into the page, so index.html stays one
// self-contained file. Each plot's element ids get a per-plot prefix so the inlined SVGs do not clash.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "bpcheck/error.hpp"
#include "bpcheck/io/formats.hpp"
#include "bpcheck/network.hpp"
#include "report.hpp"

namespace bpcheck::report {

namespace {

constexpr double optimal_h_factor = 10;
constexpr std::size_t min_roundoff_outputs = 8;  // values the round-off slope is judged over, at least  // measured optimal h within this factor of u^(1/(p+1))
constexpr double double_digits_required = 12;
constexpr double mp100_self_digits_required = 90;
/// A network is well-conditioned here when its hidden Jacobian product J_2L⋯J_1 has full rank and a
/// condition number below 1e4 (at most 4 of double's 16 digits at stake).
constexpr double well_conditioned_limit = 1e4;

/// The 16-bit rungs a backprop row carries beside float and double (report --precision bf16,fp16).
std::vector<std::string> rungs_16(const json& backprop) {
  std::vector<std::string> r;
  for (const char* p : {"bf16", "fp16"})
    if (!backprop.empty() && backprop.front().contains(std::string(p) + "_digits")) r.push_back(p);
  return r;
}

/// A second-order result whose rung has no H v of its own (the 16-bit rungs): why, else empty.
std::string hvp_not_applicable(const json& so) {
  return so.contains("hvp") && so.at("hvp").contains("not_applicable") ? so.at("hvp").at("not_applicable").get<std::string>()
                                                                       : std::string();
}

double num(const json& j, double fallback = std::numeric_limits<double>::quiet_NaN()) {
  return j.is_number() ? j.get<double>() : fallback;
}

std::string csv_number(const json& j) {
  if (!j.is_number()) return "";
  if (j.is_number_integer()) return j.dump();
  return fmt::format("{:.6g}", j.get<double>());
}

std::string csv_text(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string html_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      default: r += c;
    }
  }
  return r;
}

/// A number for tables: 3 significant digits, "–" when absent.
std::string cell(const json& j, const char* format = "{:.3g}") {
  if (!j.is_number()) return "–";
  return fmt::format(fmt::runtime(format), j.get<double>());
}

std::string slug(const std::string& s) {
  std::string r;
  for (char c : s) r += std::isalnum(static_cast<unsigned char>(c)) ? char(std::tolower(c)) : '-';
  return r;
}

/// A gnuplot string literal in single quotes (a quote is doubled).
std::string gp_quote(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("''") : std::string(1, c);
  return r + "'";
}

// ---- plots -------------------------------------------------------------------------------------

struct Series {
  std::string title;
  std::vector<std::pair<double, double>> points;  ///< non-finite y values are left out
  std::string style = "linespoints";
  std::string axes = "x1y1";
};

struct Plot {
  std::string id, caption, xlabel, ylabel, y2label;
  std::string yrange;  ///< gnuplot's [lo:hi], empty for automatic
  bool logx = true, logy = true, logy2 = true;
  int xbase = 10;
  std::vector<Series> series;
};

std::string gnuplot_script(const std::vector<Plot>& plots, const std::filesystem::path& dir) {
  std::ostringstream s;
  s.imbue(std::locale::classic());
  s.precision(17);
  int data = 0;
  for (const auto& p : plots) {
    s << "reset session\nset terminal svg size 640,420 font 'sans,11' background '#ffffff'\n";
    s << "set output " << gp_quote((dir / (p.id + ".svg")).string()) << "\n";
    s << "set grid\nset key outside right top vertical\n";
    s << "set xlabel " << gp_quote(p.xlabel) << "\nset ylabel " << gp_quote(p.ylabel) << "\n";
    if (p.logx) s << "set logscale x " << p.xbase << "\n";
    if (p.logx && p.xbase == 10) s << "set format x '10^{%L}'\n";
    if (!p.logx) s << "set offsets graph 0.03, graph 0.03, 0, 0\n";  // points off the frame
    if (p.logy) s << "set logscale y\nset format y '10^{%L}'\n";
    if (!p.yrange.empty()) s << "set yrange " << p.yrange << "\n";
    if (!p.y2label.empty()) {
      s << "set y2label " << gp_quote(p.y2label) << "\nset ytics nomirror\nset y2tics\n";
      if (p.logy2) s << "set logscale y2\nset format y2 '10^{%L}'\n";
    }
    std::vector<std::string> parts;
    for (const auto& series : p.series) {
      if (series.points.empty()) continue;
      const std::string block = "$d" + std::to_string(data++);
      s << block << " << EOD\n";
      for (const auto& [x, y] : series.points) s << x << ' ' << y << "\n";
      s << "EOD\n";
      parts.push_back(block + " using 1:2 axes " + series.axes + " with " + series.style + " title " +
                      gp_quote(series.title));
    }
    if (parts.empty()) {
      s << "set label 'no data' at graph 0.5, graph 0.5 center\nplot [1:2] [1:2] NaN notitle\n";
      continue;
    }
    s << "plot ";
    for (std::size_t i = 0; i < parts.size(); ++i) s << (i ? ", \\\n     " : "") << parts[i];
    s << "\n";
  }
  s << "unset output\n";
  return s.str();
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

/// Runs gnuplot once for every plot; returns each plot's SVG element, ready to inline.
std::map<std::string, std::string> draw(const std::vector<Plot>& plots) {
  namespace fs = std::filesystem;
  std::string pattern = (fs::temp_directory_path() / "bpcheck-plots-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw error("report: cannot create a temporary folder for the plots");
  const fs::path dir(pattern);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  std::ofstream(dir / "plots.gp") << gnuplot_script(plots, dir);
  const std::string command = "gnuplot '" + (dir / "plots.gp").string() + "' > '" + (dir / "gnuplot.log").string() +
                              "' 2>&1 < /dev/null";
  const int status = std::system(command.c_str());
  if (status != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string log = read_text(dir / "gnuplot.log");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      throw error("report: gnuplot is needed for the plots and was not found (Debian: apt-get install gnuplot-nox)");
    log = log.substr(0, log.find('\n', std::min<std::size_t>(log.size(), 200)));
    throw error("report: gnuplot failed: " + log);
  }
  std::map<std::string, std::string> svgs;
  for (const auto& p : plots) {
    std::string svg = read_text(dir / (p.id + ".svg"));
    const auto start = svg.find("<svg");
    if (start == std::string::npos) throw error("report: gnuplot wrote no SVG for plot " + p.id);
    svg = svg.substr(start);
    // Every id the SVG defines (markers, filters, the canvas) and every reference to it get the prefix.
    const std::string prefix = slug(p.id) + "-";
    std::set<std::string> ids;
    static const std::regex id_attribute(R"(id=['"]([^'"]+)['"])");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), id_attribute); it != std::sregex_iterator(); ++it)
      ids.insert((*it)[1]);
    for (const auto& id : ids) {
      for (const char* q : {"'", "\""}) {
        replace_all(svg, "id=" + std::string(q) + id + q, "id=" + std::string(q) + prefix + id + q);
        replace_all(svg, "#" + id + q, "#" + prefix + id + q);
      }
      replace_all(svg, "url(#" + id + ")", "url(#" + prefix + id + ")");
    }
    svgs[p.id] = svg;
  }
  return svgs;
}

// ---- tables ------------------------------------------------------------------------------------

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  ///< cells are HTML already
  std::string html() const {
    std::string s = "<table>\n<tr>";
    for (const auto& h : header) s += "<th>" + html_escape(h) + "</th>";
    s += "</tr>\n";
    for (const auto& r : rows) {
      s += "<tr>";
      for (const auto& c : r) s += "<td>" + c + "</td>";
      s += "</tr>\n";
    }
    return s + "</table>\n";
  }
};

std::string verdict_cell(const std::string& v) {
  const std::string cls = v == "pass" ? "pass" : v == "FAIL" ? "fail" : "other";
  return "<span class=\"" + cls + "\">" + html_escape(v) + "</span>";
}

std::string holds_cell(bool holds) { return verdict_cell(holds ? "pass" : "FAIL"); }

// ---- CSV ---------------------------------------------------------------------------------------

std::string fd_csv(const json& report) {
  std::string s = "subject,precision,scheme,order,h,relative_error\n";
  for (const auto& fd : report.at("finite_differences"))
    for (const auto& sc : fd.at("schemes"))
      for (std::size_t i = 0; i < fd.at("h").size(); ++i)
        s += fmt::format("{},{},{},{},{},{}\n", csv_text(fd.at("subject")), fd.at("precision").get<std::string>(),
                         sc.at("scheme").get<std::string>(), sc.at("order").get<int>(), csv_number(fd.at("h")[i]),
                         csv_number(sc.at("error")[i]));
  return s;
}

std::string backprop_csv(const json& report) {
  // The 16-bit rungs' columns follow mp100's, only where the run chose them: the default file is unchanged.
  const auto extra = rungs_16(report.at("backprop"));
  std::string s =
      "subject,activation,width,depth,layer,type,block,size,float_rel_error,float_digits,double_rel_error,"
      "double_digits,mp100_reordered_digits,mp100_explicit_digits";
  for (const auto& p : extra) s += "," + p + "_rel_error," + p + "_digits";
  s += "\n";
  for (const auto& b : report.at("backprop"))
    for (const auto& k : b.at("blocks")) {
      s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{}", csv_text(b.at("subject")),
                       b.value("activation", ""), csv_number(b.value("width", json())),
                       csv_number(b.value("depth", json())), csv_number(k.at("layer")), k.at("type").get<std::string>(),
                       k.at("block").get<std::string>(), csv_number(k.at("size")), csv_number(k.at("float_rel_error")),
                       csv_number(k.at("float_digits")), csv_number(k.at("double_rel_error")),
                       csv_number(k.at("double_digits")), csv_number(k.at("mp100_reordered_digits")),
                       csv_number(k.at("mp100_explicit_digits")));
      for (const auto& p : extra)
        s += "," + csv_number(k.value(p + "_rel_error", json())) + "," + csv_number(k.value(p + "_digits", json()));
      s += "\n";
    }
  return s;
}

std::string conditioning_csv(const json& report) {
  std::string s =
      "subject,activation,width,depth,what,layers,type,svd,sigma_max,sigma_min,rank,singular,cond,method,exact,steps\n";
  for (const auto& c : report.at("conditioning")) {
    const std::string head = fmt::format("{},{},{},{}", csv_text(c.at("subject")), c.value("activation", ""),
                                         csv_number(c.value("width", json())), csv_number(c.value("depth", json())));
    auto row = [&](const char* what, const json& layers, const std::string& type, const json& sv) {
      // Lanczos estimates: σ_max a lower and σ_min an upper bound unless exact; σ_min empty where unresolved.
      s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", head, what, csv_number(layers), type,
                       sv.at("svd").get<std::string>(), csv_number(sv.at("sigma_max")), csv_number(sv.at("sigma_min")),
                       csv_number(sv.at("rank")), sv.at("singular").get<bool>() ? "true" : "false",
                       csv_number(sv.at("cond")), sv.value("method", "svd"),
                       sv.value("exact", true) ? "true" : "false", csv_number(sv.value("steps", json())));
    };
    for (const auto& l : c.at("layers")) row("layer", json(l.at("layer").get<int>() + 1), l.at("type"), l);
    for (const auto& p : c.at("products")) row("product", p.at("layers"), "", p);
  }
  return s;
}

std::string verification_csv(const json& report) {
  std::string s = "item,subject,check,precision,verdict,value,threshold,digits,worst_abs_error,worst_rel_error\n";
  for (const auto& v : report.at("verification"))
    for (const auto& c : v.at("checks"))
      s += fmt::format("{},{},{},{},{},{},{},{},{},{}\n", csv_text(v.at("subject")), csv_text(c.at("subject")),
                       csv_text(c.at("check")), c.at("precision").get<std::string>(), c.at("verdict").get<std::string>(),
                       csv_number(c.at("value")), csv_number(c.at("threshold")), csv_number(c.at("digits")),
                       csv_number(c.at("worst_abs_error")), csv_number(c.at("worst_rel_error")));
  return s;
}

/// One row per layer and precision; layer -1 is the loss's seed ∂ℓ/∂x_L (backward only).
std::string layerwise_csv(const json& report) {
  std::string s = "subject,precision,layer,type,units,forward_rel_error,forward_digits,backward_rel_error,"
                  "backward_digits\n";
  for (const auto& lw : report.value("layerwise", json::array())) {
    const std::string head = csv_text(lw.at("subject")) + "," + lw.at("precision").get<std::string>();
    const json& seed = lw.at("loss_gradient");
    s += fmt::format("{},-1,loss,,,,{},{}\n", head, csv_number(seed.at("backward_rel_error")),
                     csv_number(seed.at("backward_digits")));
    for (const auto& l : lw.at("layers"))
      s += fmt::format("{},{},{},{},{},{},{},{}\n", head, csv_number(l.at("layer")), l.at("type").get<std::string>(),
                       csv_number(l.at("units")), csv_number(l.at("forward_rel_error")),
                       csv_number(l.at("forward_digits")), csv_number(l.at("backward_rel_error")),
                       csv_number(l.at("backward_digits")));
  }
  return s;
}

/// The second-order section: a row per step of the gradient's central difference (series "fd_central")
/// and a row per parameter block of the rung's H v (series "hvp").
std::string second_order_csv(const json& report) {
  std::string s = "subject,precision,series,h,layer,type,block,size,rel_error,digits\n";
  for (const auto& so : report.value("second_order", json::array())) {
    const std::string head = csv_text(so.at("subject")) + "," + so.at("precision").get<std::string>();
    if (so.contains("unavailable")) continue;
    for (std::size_t i = 0; i < so.at("h").size(); ++i)
      s += fmt::format("{},fd_central,{},,,,,{},\n", head, csv_number(so.at("h")[i]),
                       csv_number(so.at("fd").at("error")[i]));
    if (!hvp_not_applicable(so).empty()) continue;
    for (const auto& b : so.at("hvp").at("blocks"))
      s += fmt::format("{},hvp,,{},{},{},{},{},{}\n", head, csv_number(b.at("layer")), b.at("type").get<std::string>(),
                       b.at("block").get<std::string>(), csv_number(b.at("size")), csv_number(b.at("rel_error")),
                       csv_number(b.at("digits")));
  }
  return s;
}

std::string theory_csv(const json& report) {
  std::string s = "statement,subject,measured,expected,holds,not_applicable\n";
  for (const auto& t : report.at("theory"))
    s += fmt::format("{},{},{},{},{},{}\n", csv_text(t.at("statement")), csv_text(t.at("subject")),
                     csv_number(t.at("measured")), csv_text(t.at("expected")),
                     t.at("holds").is_null() ? "" : t.at("holds") == true ? "true" : "false",
                     csv_text(t.value("not_applicable", "")));
  return s;
}

// ---- the page ----------------------------------------------------------------------------------

const char* page_style = R"(
body { font-family: sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:nth-child(-n+3) { text-align: left; }
.pass { color: #17692c; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
.other { color: #8a5a00; font-weight: bold; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 1em; }
figure { margin: 0; } figure svg { width: 100%; height: auto; }
figcaption { font-size: 0.85em; }
table.layers td:nth-child(-n+3) { text-align: left; }
.note { color: #555; font-size: 0.9em; max-width: 1000px; }
)";

std::string figure(const Plot& p, const std::map<std::string, std::string>& svgs) {
  return "<figure id=\"" + slug(p.id) + "\">\n" + svgs.at(p.id) + "\n<figcaption>" + html_escape(p.caption) +
         "</figcaption>\n</figure>\n";
}

/// Small multiples: a section's plots side by side in a CSS grid (as many per row as fit).
void plot_grid(std::ostream& h, const std::vector<Plot>& plots, const std::map<std::string, std::string>& svgs) {
  if (plots.empty()) return;
  h << "<div class=\"plots\">\n";
  for (const auto& p : plots) h << figure(p, svgs);
  h << "</div>\n";
}

/// "4×28×28" from a layer's channels/height/width (or channels/length) options, empty without them.
std::string shape_of(const nlohmann::json& options) {
  auto has = [&options](const char* k) { return options.contains(k) && options.at(k).is_number_integer(); };
  if (has("channels") && has("height") && has("width"))
    return fmt::format("{}×{}×{}", options.at("channels").get<long>(), options.at("height").get<long>(),
                       options.at("width").get<long>());
  if (has("channels") && has("length"))
    return fmt::format("{}×{}", options.at("channels").get<long>(), options.at("length").get<long>());
  return "";
}

/// The model as a table: per layer its type, options, input and output shape and parameter count.
std::string layer_table(const json& model) {
  const ModelSpec spec = model_spec_from_json(nlohmann::json(model), "model");
  const Network<double> net(spec);
  Table t{{"#", "layer", "options", "input", "output", "parameters"}, {}};
  Index in = net.input_size();
  std::string carried;  // the previous layer's output shape
  for (std::size_t k = 0; k < net.depth(); ++k) {
    const auto& layer = spec.layers[k];
    std::string options;
    for (const auto& [key, value] : layer.options.items())
      options += (options.empty() ? "" : ", ") + key + " " + (value.is_string() ? value.get<std::string>() : value.dump());
    const Index out = net.layer(k).output_size();
    const std::string in_shape = shape_of(layer.options);
    // The output's shape is the input shape of the next layer that states one, past size-keeping layers.
    std::string out_shape;
    for (std::size_t j = k + 1; j < net.depth() && out_shape.empty(); ++j) {
      out_shape = shape_of(spec.layers[j].options);
      if (net.layer(j).output_size() != out) break;
    }
    const std::string shown_in = in_shape.empty() && !carried.empty() ? carried : in_shape;
    carried = out_shape;
    t.rows.push_back({std::to_string(k), html_escape(layer.type), html_escape(options),
                      shown_in.empty() ? std::to_string(in) : fmt::format("{} = {}", shown_in, in),
                      out_shape.empty() ? std::to_string(out) : fmt::format("{} = {}", out_shape, out),
                      std::to_string(net.layer(k).parameter_count())});
    in = out;
  }
  const json& loss = model.at("loss");
  t.rows.push_back({"", "total", html_escape("loss " + (loss.is_string() ? loss.get<std::string>() : loss.dump())), "", "",
                    std::to_string(net.parameter_count())});
  std::string html = t.html();
  return "<table class=\"layers\">" + html.substr(std::string("<table>").size());
}

/// The backprop items of the default set, grouped by width, then activation, ordered by depth.
std::map<long, std::map<std::string, std::vector<const json*>>> by_width(const json& report) {
  std::map<long, std::map<std::string, std::vector<const json*>>> g;
  for (const auto& b : report.at("backprop"))
    if (b.contains("activation")) g[b.at("width").get<long>()][b.at("activation")].push_back(&b);
  for (auto& [w, acts] : g)
    for (auto& [a, v] : acts)
      std::sort(v.begin(), v.end(), [](const json* x, const json* y) { return x->at("depth") < y->at("depth"); });
  return g;
}

const json* conditioning_of(const json& report, const json& backprop_item) {
  for (const auto& c : report.at("conditioning"))
    if (c.at("subject") == backprop_item.at("subject")) return &c;
  return nullptr;
}

}  // namespace

json assemble(const json& run, const std::vector<WorkItem>& items, const std::vector<json>& results) {
  if (items.size() != results.size()) throw error("report: " + std::to_string(results.size()) + " results for " +
                                                  std::to_string(items.size()) + " items");
  json r;
  r["format"] = run.at("format");
  r["version"] = run.at("version");
  r["run"] = run;
  json fd = json::array(), bp = json::array(), cond = json::array(), ver = json::array(), lw = json::array(),
       so = json::array();
  bool passed = true;
  std::map<std::string, std::pair<std::size_t, std::vector<json>>> unit_parts;  // by subject: first item, results
  std::map<std::string, std::size_t> unit_slot;                                 // by subject: place in ver
  for (std::size_t i = 0; i < items.size(); ++i) {
    const json& x = results[i];
    if (items[i].kind == "finite_differences") {
      fd.push_back(x);
    } else if (items[i].kind == "backprop") {
      json b, c;
      for (const auto& [key, value] : x.items()) {
        if (key == "layers" || key == "products") continue;
        if (key == "subject" || key == "activation" || key == "width" || key == "depth") c[key] = value;
        b[key] = value;
      }
      c["layers"] = x.at("layers");
      c["products"] = x.at("products");
      bp.push_back(std::move(b));
      cond.push_back(std::move(c));
    } else if (items[i].kind == "verification" && items[i].params.contains("units")) {
      // A network's verification in parts: joined where its first part stands.
      const json& subject = items[i].params.at("subject");
      if (!unit_parts.count(subject.dump())) {
        unit_parts[subject.dump()] = {i, {}};
        ver.push_back(nullptr);
        unit_slot[subject.dump()] = ver.size() - 1;
      }
      unit_parts[subject.dump()].second.push_back(x);
    } else if (items[i].kind == "verification") {
      passed = passed && x.at("passed").get<bool>();
      ver.push_back(x);
    } else if (items[i].kind == "layerwise") {
      lw.push_back(x);
    } else if (items[i].kind == "second_order") {
      so.push_back(x);
    }
  }
  for (const auto& [subject, parts] : unit_parts) {
    json joined = join_verification_units(items[parts.first].params, parts.second, run);
    passed = passed && joined.at("passed").get<bool>();
    ver[unit_slot[subject]] = std::move(joined);
  }
  r["passed"] = passed;
  r["layerwise"] = std::move(lw);
  r["finite_differences"] = std::move(fd);
  r["second_order"] = std::move(so);
  r["backprop"] = std::move(bp);
  r["conditioning"] = std::move(cond);
  r["verification"] = std::move(ver);
  r["theory"] = theory_checks(r);
  return r;
}

namespace {

/// Why a statement about the steps up to `top` of a stencil reaching `reach` steps from the point cannot
/// be judged on this finite-difference subject (empty: it can). Kinks (report.json "kinks") break the
/// smoothness every statement assumes.
std::string not_applicable(const json& fd, double top, int reach) {
  if (!fd.contains("kinks")) return "";  // a report from before kinks were looked for
  const json& k = fd.at("kinks");
  if (!k.at("non_differentiable").is_null())
    return "not differentiable at the point: " + k.at("non_differentiable").at("what").get<std::string>();
  if (!k.contains("nearest") || k.at("nearest").is_null()) return "";
  // The grid stops at h = 0.1; a probe of step s sees kinks up to about s/3 away.
  const double span = std::min(top, 0.1) * reach, clean = num(k.at("kink_free_step"), 0) / 3;
  if (span <= clean) return "";
  return fmt::format("the direction crosses a kink within {:.2g} of the point ({}), inside the {:.2g} this "
                     "statement's steps reach",
                     num(k.at("nearest").at("within")), k.at("nearest").at("what").get<std::string>(), span);
}

/// The largest step of the sweep (step_grid in report_sweeps.cpp).
constexpr double grid_top = 0.1;
/// Fewer rounding steps of f than this across a difference: its round-off is a staircase, not B/h.
constexpr double min_rounding_steps = 100;

/// Why a statement made at step h (the theory's optimum, or the top of the round-off window) cannot hold on
/// this rung (empty: it can): h above the sweep's steps, or a difference f(x + h v) − f(x) that spans only
/// about h/u of the rung's rounding steps, so that its round-off is a few quanta instead of the smooth u/h the
/// statement assumes. Never the case for float or double on the sweep's grid; the 16-bit rungs meet it.
std::string coarse_rung(const json& fd, double h, double u, const char* what) {
  if (!(u > 0) || !(h > 0)) return "";
  const std::string rung = fd.at("precision").get<std::string>();
  if (h > grid_top)
    return fmt::format("{} h = {:.2g} (from {}'s u = {:.2g}) lies above the sweep's largest step {}", what, h, rung, u,
                       grid_top);
  if (h / u < min_rounding_steps)
    return fmt::format("at {} h = {:.2g} a difference spans only about {:.0f} of {}'s rounding steps (h/u, u = {:.2g}; "
                       "at least {:.0f} needed): its round-off is a staircase of a few quanta, not the smooth u/h the "
                       "statement assumes",
                       what, h, h / u, rung, u, min_rounding_steps);
  return "";
}

/// Offsets ±1…±reach of each fixed stencil's D(h).
int stencil_reach(const std::string& scheme) { return scheme == "central4" ? 2 : scheme == "central6" ? 3 : 1; }

/// The optimal step of a stencil of order p on this subject. The error is A h^p (truncation) plus B/h
/// (round-off), least at h_opt = (B/(p A))^(1/(p+1)); u^(1/(p+1)) is that step only where f and its
/// (p+1)-th derivative along v are of one size. Both are measured from the sweep: B = err·h on the
/// round-off side [h*/1000, h*/10], A = err/h^p on the steps above h*/10 inside the kink-free stretch where
/// the error is at least ten times B/h. Where either is not measured, u^(1/(p+1)) stands. `why` is set
/// where no optimum lies inside the measured steps.
struct Optimum {
  double h = std::numeric_limits<double>::quiet_NaN();
  bool measured = false;
  std::string why;
};
Optimum optimal_step(const json& fd, const json& sc, double h_star, int p, int reach) {
  Optimum o;
  o.h = h_star;
  const json& grid = fd.at("h");
  const json& err = sc.at("error");
  double top = 0.1;
  if (fd.contains("kinks") && fd.at("kinks").contains("nearest") && !fd.at("kinks").at("nearest").is_null())
    top = num(fd.at("kinks").at("kink_free_step"), 0) / 3 / reach;
  double log_b = 0, log_a = 0, largest = 0;
  int nb = 0, na = 0;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const double h = num(grid[i]), e = num(err[i]);
    if (!(e > 0) || e > 0.5) continue;
    if (h <= top) largest = std::max(largest, h);
    if (h >= h_star / 1000 && h <= h_star / 10) log_b += std::log(e * h), ++nb;
  }
  if (nb > 0) {
    const double b = std::exp(log_b / nb);
    for (std::size_t i = 0; i < grid.size(); ++i) {
      const double h = num(grid[i]), e = num(err[i]);
      if (!(e > 0) || e > 0.5 || h <= h_star / 10 || h > top || e < 10 * b / h) continue;
      log_a += std::log(e / std::pow(h, p)), ++na;
    }
    if (na > 0) {
      o.h = std::pow(b / (p * std::exp(log_a / na)), 1.0 / (p + 1));
      o.measured = true;
    }
  }
  // Best at the largest clean step with the optimum predicted a decade below: truncation never rose above
  // round-off (f nearly a polynomial of degree p along v), so the statement's premise, a V, is missing.
  if (largest > 0 && num(sc.at("best_h")) >= largest && o.h * optimal_h_factor < largest)
    o.why = fmt::format("the error still falls at the largest kink-free step {:.2g}: no optimum inside the measured "
                        "steps (truncation stays below round-off there)",
                        largest);
  return o;
}

}  // namespace

json theory_checks(const json& report) {
  json checks = json::array();
  auto add = [&checks](std::string statement, std::string subject, json measured, std::string expected, bool holds,
                       const std::string& reason = "") {
    json c{{"statement", std::move(statement)},
           {"subject", std::move(subject)},
           {"measured", std::move(measured)},
           {"expected", std::move(expected)},
           {"holds", reason.empty() ? json(holds) : json(nullptr)},
           {"applicable", reason.empty()}};
    if (!reason.empty()) c["not_applicable"] = reason;
    checks.push_back(std::move(c));
  };
  for (const auto& fd : report.at("finite_differences")) {
    const std::string where = fd.at("subject").get<std::string>() + ", " + fd.at("precision").get<std::string>();
    for (const auto& sc : fd.at("schemes")) {
      const std::string scheme = sc.at("scheme");
      if (sc.at("order").get<int>() == 0) continue;
      const double h_star = num(sc.at("theory_h"));
      const int reach = stencil_reach(scheme);
      const Optimum opt = optimal_step(fd, sc, h_star, sc.at("order").get<int>(), reach);
      const double ratio = num(sc.at("best_h")) / opt.h;
      const double u = num(fd.value("unit_roundoff", json()));
      std::string why = not_applicable(fd, 10 * std::max(h_star, opt.h), reach);
      if (why.empty()) why = coarse_rung(fd, h_star, u, "the optimum");
      if (why.empty()) why = opt.why;
      add("optimal h of " + scheme + " is within a factor of 10 of where truncation A h^p meets round-off B/h",
          where, json(std::isfinite(ratio) ? ratio : 0.0),
          opt.measured ? fmt::format("h_best / h_opt in [0.1, 10]; h_opt = (B/(pA))^(1/(p+1)) = {:.2g} from the "
                                     "measured A and B (u^(1/(p+1)) = {:.2g})",
                                     opt.h, h_star)
                       : fmt::format("h_best / h_opt in [0.1, 10]; h_opt = u^(1/(p+1)) = {:.2g} (A or B not measured)",
                                     h_star),
          ratio >= 1 / optimal_h_factor && ratio <= optimal_h_factor, why);
      // A side whose window [10h*, 1000h*] or [h*/1000, h*/10] holds fewer than two steps of the grid
      // (float's truncation side lies above h = 0.1) has no slope: no statement is made about it.
      if (scheme == "central") {
        // A coarse rung (bf16, fp16) puts the whole truncation window above the grid: said, not left out.
        if (!sc.at("slope_truncation").is_number() && 10 * h_star > grid_top)
          add("central differences: error falls like h^2 on the truncation side", where, nullptr,
              "log-log slope in [1.7, 2.3]", false,
              fmt::format("the truncation side [10 h*, 1000 h*] with h* = u^(1/3) = {:.2g} lies above the sweep's largest "
                          "step {}",
                          h_star, grid_top));
        if (sc.at("slope_truncation").is_number()) {
          const double t = num(sc.at("slope_truncation"));
          add("central differences: error falls like h^2 on the truncation side", where, sc.at("slope_truncation"),
              "log-log slope in [1.7, 2.3]", t >= 1.7 && t <= 2.3, not_applicable(fd, 1000 * h_star, reach));
        }
        if (sc.at("slope_roundoff").is_number()) {
          const double r = num(sc.at("slope_roundoff"));
          // The 1/h trend is that of the round-off's mean size: over a few values it is drowned by their
          // spread (one sample of two outputs: slopes of -0.5 on a correct model).
          const auto outputs = fd.value("outputs", json(min_roundoff_outputs)).get<std::size_t>();
          std::string why = not_applicable(fd, h_star / 10, reach);
          if (why.empty()) why = coarse_rung(fd, h_star / 10, u, "the round-off side's largest step");
          if (why.empty() && outputs < min_roundoff_outputs)
            why = fmt::format("the error norm is over {} output value{} only: their round-off does not average into "
                              "a 1/h trend (at least {} needed)",
                              outputs, outputs == 1 ? "" : "s", min_roundoff_outputs);
          add("central differences: error rises like 1/h on the round-off side", where, sc.at("slope_roundoff"),
              "log-log slope in [-1.3, -0.7]", r >= -1.3 && r <= -0.7, why);
        } else if (const std::string why = coarse_rung(fd, h_star / 10, u, "the round-off side's largest step");
                   !why.empty()) {
          add("central differences: error rises like 1/h on the round-off side", where, nullptr,
              "log-log slope in [-1.3, -0.7]", false, why);
        }
      }
    }
  }
  for (const auto& b : report.at("backprop")) {
    const std::string subject = b.at("subject");
    add("mp100 agrees with itself under a change of evaluation order", subject, b.at("mp100_self_digits"),
        ">= 90 digits", num(b.at("mp100_self_digits"), 0) >= mp100_self_digits_required);
  }
  for (const auto& c : report.at("conditioning")) {
    if (c.at("products").empty()) continue;
    const json& last = c.at("products").back();
    if (last.at("singular").get<bool>() || !(num(last.at("cond")) <= well_conditioned_limit)) continue;
    // An estimate short of exact bounds cond from below only: whether it is at most 1e4 is not known.
    if (!last.value("exact", true)) continue;
    for (const auto& b : report.at("backprop"))
      if (b.at("subject") == c.at("subject"))
        add("double gradients have at least 12 significant digits on a well-conditioned network (cond <= 1e4)",
            b.at("subject"), b.at("double_digits"), ">= 12 digits in every parameter block",
            num(b.at("double_digits"), 0) >= double_digits_required);
  }
  return checks;
}

std::map<std::string, std::string> render(const json& report) {
  std::map<std::string, std::string> files;
  files["fd_error.csv"] = fd_csv(report);
  files["backprop_error.csv"] = backprop_csv(report);
  files["conditioning.csv"] = conditioning_csv(report);
  files["verification.csv"] = verification_csv(report);
  files["theory.csv"] = theory_csv(report);
  const json layerwise = report.value("layerwise", json::array());
  if (!layerwise.empty()) files["layerwise.csv"] = layerwise_csv(report);
  const json second = report.value("second_order", json::array());
  if (!second.empty()) files["second_order.csv"] = second_order_csv(report);

  // Plots.
  std::vector<Plot> fd_plots, bp_plots, cond_plots;
  for (const auto& fd : report.at("finite_differences")) {
    Plot p;
    p.id = "fd " + fd.at("subject").get<std::string>() + " " + fd.at("precision").get<std::string>();
    p.caption = "Relative error of finite differences of " + fd.at("subject").get<std::string>() + " in " +
                fd.at("precision").get<std::string>() +
                " against the mp100 truth, versus the step h. Circles: the theory's optimum (u^(1/(p+1)), "
                "u^(p/(p+1))) for order p.";
    p.xlabel = "step h";
    p.ylabel = "relative error";
    Series theory{"theory optimum", {}, "points pt 6 ps 1.5 lc rgb 'black'"};
    for (const auto& sc : fd.at("schemes")) {
      Series s{sc.at("scheme").get<std::string>(), {}};
      for (std::size_t i = 0; i < fd.at("h").size(); ++i) {
        const double e = num(sc.at("error")[i]);
        if (std::isfinite(e) && e > 0) s.points.push_back({fd.at("h")[i].get<double>(), e});
      }
      p.series.push_back(std::move(s));
      if (sc.at("theory_h").is_number())
        theory.points.push_back({num(sc.at("theory_h")), num(sc.at("theory_error"))});
    }
    p.series.push_back(std::move(theory));
    fd_plots.push_back(std::move(p));
  }
  // Second order: the same V-curve for the gradient's central difference along v, one plot per precision.
  for (const auto& so : second) {
    if (so.contains("unavailable")) continue;
    Plot p;
    p.id = "fd2 " + so.at("subject").get<std::string>() + " " + so.at("precision").get<std::string>();
    p.caption = "Second order: relative error of the central difference of the gradient of " +
                so.at("subject").get<std::string>() + "'s loss along one random direction v, in " +
                so.at("precision").get<std::string>() +
                ", against the exact H v (mp100), versus the step h. Circle: the theory's optimum (u^(1/3), u^(2/3)).";
    p.xlabel = "step h";
    p.ylabel = "relative error";
    Series s{"central, gradient", {}};
    for (std::size_t i = 0; i < so.at("h").size(); ++i) {
      const double e = num(so.at("fd").at("error")[i]);
      if (std::isfinite(e) && e > 0) s.points.push_back({so.at("h")[i].get<double>(), e});
    }
    p.series.push_back(std::move(s));
    p.series.push_back(Series{"theory optimum",
                              {{num(so.at("fd").at("theory_h")), num(so.at("fd").at("theory_error"))}},
                              "points pt 6 ps 1.5 lc rgb 'black'"});
    fd_plots.push_back(std::move(p));
  }
  const auto groups = by_width(report);
  for (const auto& [width, acts] : groups) {
    Plot digits;
    digits.id = fmt::format("backprop width {}", width);
    digits.caption = fmt::format(
        "Significant digits of the backprop gradient (worst parameter block) against mp100, width {}, versus "
        "depth. Solid: double; dashed: float; dotted (where the run chose them): bf16 (triangles), fp16 "
        "(squares).",
        width);
    digits.xlabel = "depth (hidden dense + activation blocks)";
    digits.ylabel = "significant digits";
    digits.logy = false;
    digits.yrange = "[0:17]";
    digits.xbase = 2;
    Plot cond;
    cond.id = fmt::format("conditioning width {}", width);
    cond.caption = fmt::format(
        "Condition number of the hidden Jacobian product J_2L⋯J_1 (solid, left axis; over the nonzero singular "
        "values where it is singular) beside the relative error of the double gradient (dashed, right axis), "
        "width {}.",
        width);
    cond.xlabel = "depth (hidden dense + activation blocks)";
    cond.ylabel = "cond(J_2L⋯J_1)";
    cond.y2label = "double gradient relative error";
    cond.xbase = 2;
    int colour = 1;
    for (const auto& [activation, items] : acts) {
      Series d{activation + " double", {}, fmt::format("linespoints lc {} pt 7", colour)};
      Series f{activation + " float", {}, fmt::format("linespoints lc {} pt 6 dt 2", colour)};
      std::vector<Series> sixteen;
      for (const auto& p : rungs_16(report.at("backprop")))
        sixteen.push_back(Series{activation + " " + p, {}, fmt::format("linespoints lc {} pt {} dt 3", colour,
                                                                       p == "bf16" ? 8 : 4)});
      Series c{activation + " cond", {}, fmt::format("linespoints lc {} pt 7", colour)};
      Series e{activation + " error", {}, fmt::format("linespoints lc {} pt 6 dt 2", colour), "x1y2"};
      for (const json* b : items) {
        const double depth = b->at("depth").get<double>();
        d.points.push_back({depth, num(b->at("double_digits"))});
        f.points.push_back({depth, num(b->at("float_digits"))});
        for (auto& s16 : sixteen) {
          const std::string p = s16.title.substr(s16.title.rfind(' ') + 1);
          s16.points.push_back({depth, num(b->value(p + "_digits", json()))});
        }
        double worst = 0;
        for (const auto& k : b->at("blocks")) worst = std::max(worst, num(k.at("double_rel_error"), 0));
        if (worst > 0) e.points.push_back({depth, worst});
        if (const json* cj = conditioning_of(report, *b); cj && !cj->at("products").empty())
          if (const double k = num(cj->at("products").back().at("cond")); std::isfinite(k) && k > 0)
            c.points.push_back({depth, k});
      }
      digits.series.push_back(std::move(d));
      digits.series.push_back(std::move(f));
      for (auto& s16 : sixteen) digits.series.push_back(std::move(s16));
      cond.series.push_back(std::move(c));
      cond.series.push_back(std::move(e));
      ++colour;
    }
    bp_plots.push_back(std::move(digits));
    Plot blocks;
    blocks.id = fmt::format("backprop blocks width {}", width);
    blocks.caption = fmt::format(
        "Per parameter block: significant digits of the double gradient of each dense layer's W along the "
        "deepest network of width {} (layer 0 is the first, farthest from the loss; 17 is exact agreement, e.g. "
        "the zero gradient behind ReLUs that are all off).",
        width);
    blocks.xlabel = "layer";
    blocks.ylabel = "significant digits (double)";
    blocks.logx = false;
    blocks.logy = false;
    blocks.yrange = "[*:17]";
    int block_colour = 1;
    for (const auto& [activation, items] : acts) {
      Series s{activation + " W", {}, fmt::format("linespoints lc {} pt 7", block_colour++)};
      for (const auto& k : items.back()->at("blocks"))
        if (k.at("block") == "W") s.points.push_back({k.at("layer").get<double>(), num(k.at("double_digits"))});
      blocks.series.push_back(std::move(s));
    }
    bp_plots.push_back(std::move(blocks));
    cond_plots.push_back(std::move(cond));
    // Per layer, the deepest network of each activation.
    Plot layers;
    layers.id = fmt::format("layer conditioning width {}", width);
    layers.caption = fmt::format(
        "Condition number of each layer's Jacobian J_x along the deepest network of width {} (activations: "
        "diagonal; dense: the weight matrix). Singular layers (ReLU with an inactive unit) are left out.",
        width);
    layers.xlabel = "layer";
    layers.ylabel = "cond(J_x)";
    layers.logx = false;
    colour = 1;
    // The dense layers' weights come from the same seed whatever the activation: drawn once, in black.
    Series dense{"dense (W)", {}, "points lc rgb 'black' pt 5"};
    for (const auto& [activation, items] : acts) {
      const json* cj = conditioning_of(report, *items.back());
      Series s{activation, {}, fmt::format("points lc {} pt 7", colour++)};
      if (cj)
        for (const auto& l : cj->at("layers")) {
          if (l.at("singular").get<bool>() || !(num(l.at("cond")) > 0)) continue;
          const std::pair<double, double> point{l.at("layer").get<double>() + 1, num(l.at("cond"))};
          if (l.at("type") != "dense")
            s.points.push_back(point);
          else if (&activation == &acts.begin()->first)
            dense.points.push_back(point);
        }
      layers.series.push_back(std::move(s));
    }
    layers.series.push_back(std::move(dense));
    cond_plots.push_back(std::move(layers));
  }
  // A user's model: its gradient per block, and its products along depth.
  for (const auto& b : report.at("backprop")) {
    if (b.contains("activation")) continue;
    Plot p;
    p.id = "backprop blocks " + b.at("subject").get<std::string>();
    p.caption = "Significant digits of the gradient of each parameter block of the model against mp100.";
    p.xlabel = "layer";
    p.ylabel = "significant digits";
    p.logx = false;
    p.logy = false;
    p.yrange = "[0:17]";
    Series dw{"double W", {}, "points lc 1 pt 7"}, db{"double b, other", {}, "points lc 2 pt 5"};
    Series fw{"float W", {}, "points lc 1 pt 6"}, fb{"float b, other", {}, "points lc 2 pt 4"};
    for (const auto& k : b.at("blocks")) {
      const double layer = k.at("layer").get<double>();
      const bool w = k.at("block") == "W";
      (w ? dw : db).points.push_back({layer, num(k.at("double_digits"))});
      (w ? fw : fb).points.push_back({layer, num(k.at("float_digits"))});
    }
    p.series = {dw, db, fw, fb};
    int colour = 3;
    for (const auto& r : rungs_16(report.at("backprop"))) {
      Series s{r, {}, fmt::format("points lc {} pt {}", colour++, r == "bf16" ? 8 : 12)};
      for (const auto& k : b.at("blocks")) s.points.push_back({k.at("layer").get<double>(), num(k.value(r + "_digits", json()))});
      p.series.push_back(std::move(s));
    }
    bp_plots.push_back(std::move(p));
  }
  for (const auto& c : report.at("conditioning")) {
    if (c.contains("activation")) continue;
    Plot p;
    p.id = "conditioning " + c.at("subject").get<std::string>();
    p.caption = "Singular values of the Jacobian products J_k⋯J_1 of the model along its layers (sample 0).";
    p.xlabel = "layers in the product";
    p.ylabel = "singular value";
    p.logx = false;
    Series hi{"largest", {}}, lo{"smallest nonzero", {}};
    for (const auto& pr : c.at("products")) {
      const double k = pr.at("layers").get<double>(), smax = num(pr.at("sigma_max"));
      if (smax > 0) {
        hi.points.push_back({k, smax});
        const double smin = smax / num(pr.at("cond"));
        if (smin > 0) lo.points.push_back({k, smin});
      }
    }
    p.series = {hi, lo};
    cond_plots.push_back(std::move(p));
  }
  // Layer by layer: digits of every forward activation and backward signal against depth.
  std::vector<Plot> lw_plots;
  if (!layerwise.empty()) {
    Plot p;
    p.id = "layerwise " + layerwise.front().at("subject").get<std::string>();
    p.caption = "Significant digits against mp100 of each layer's forward activations (solid, x = the layer "
                "that computed them) and of the backward signal ∂ℓ/∂x after each Jacobian product, read right "
                "to left (dashed, x = the layer whose input it belongs to; x = depth: the loss's seed ∂ℓ/∂x_L), "
                "over the whole batch.";
    p.xlabel = "layer";
    p.ylabel = "significant digits";
    p.logx = false;
    p.logy = false;
    p.yrange = "[0:17]";
    int colour = 1;
    for (const auto& lw : layerwise) {
      const std::string precision = lw.at("precision");
      Series f{precision + " forward", {}, fmt::format("linespoints lc {} pt 7", colour)};
      Series b{precision + " backward", {}, fmt::format("linespoints lc {} pt 6 dt 2", colour)};
      for (const auto& l : lw.at("layers")) {
        f.points.push_back({l.at("layer").get<double>(), num(l.at("forward_digits"))});
        if (l.at("backward_digits").is_number())
          b.points.push_back({l.at("layer").get<double>(), num(l.at("backward_digits"))});
      }
      b.points.push_back({double(lw.at("layers").size()), num(lw.at("loss_gradient").at("backward_digits"))});
      std::sort(b.points.begin(), b.points.end());
      p.series.push_back(std::move(f));
      p.series.push_back(std::move(b));
      ++colour;
    }
    lw_plots.push_back(std::move(p));
  }
  std::vector<Plot> all;
  for (const auto* v : {&lw_plots, &fd_plots, &bp_plots, &cond_plots}) all.insert(all.end(), v->begin(), v->end());
  const auto svgs = draw(all);

  const json& run = report.at("run");
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
    << "<title>bpcheck error-analysis report</title>\n<style>" << page_style << "</style>\n</head>\n<body>\n";
  h << "<h1>bpcheck error-analysis report</h1>\n";
  // A user's model as a table of its layers (shapes, parameter counts) rather than its JSON.
  const bool user_model = !run.at("model").is_string();
  if (user_model) h << "<h2 id=\"model\">Model</h2>\n" << layer_table(run.at("model"));
  h << "<p class=\"note\">Model: " << (user_model ? "the layers above" : "the built-in default set")
    << "; seed " << run.at("seed").dump() << (run.at("quick").get<bool>() ? "; quick sweep" : "; full sweep") << "; "
    << run.at("items").dump() << " work items. Every error is measured against the mp100 (100-digit) truth of the "
    << "same inputs. Data: <a href=\"report.json\">report.json</a>, <a href=\"fd_error.csv\">fd_error.csv</a>, "
    << "<a href=\"backprop_error.csv\">backprop_error.csv</a>, <a href=\"conditioning.csv\">conditioning.csv</a>, "
    << "<a href=\"verification.csv\">verification.csv</a>, <a href=\"theory.csv\">theory.csv</a>"
    << (layerwise.empty() ? "" : ", <a href=\"layerwise.csv\">layerwise.csv</a>")
    << (second.empty() ? "" : ", <a href=\"second_order.csv\">second_order.csv</a>") << ".</p>\n";

  // A user's model: where each precision loses its digits, first.
  if (!layerwise.empty()) {
    h << "<h2 id=\"layerwise\">Layer by layer: where each precision loses digits</h2>\n"
      << "<p class=\"note\">Each rung's run of the model against the mp100 run of the same (rounded) "
         "parameters and batch: the normwise relative error ‖x − x*‖₂/‖x*‖₂ over the batch of each layer's "
         "output (forward) and of the cotangent ∂ℓ/∂x after each layer's Jacobian product, backprop reading "
         "the product right to left (backward), as significant digits (capped at 9 for float, 17 for double, 4 for "
         "bf16, 5 for fp16). "
         "A drop between two layers is the digits that layer costs.</p>\n";
    plot_grid(h, lw_plots, svgs);
    Table t{{"layer", "type", "units"}, {}};
    for (const auto& lw : layerwise) {
      t.header.push_back(lw.at("precision").get<std::string>() + " forward digits");
      t.header.push_back(lw.at("precision").get<std::string>() + " backward digits");
    }
    const json& first = layerwise.front().at("layers");
    auto row_of = [&](const std::string& layer, const std::string& type, const std::string& units,
                      const std::function<const json&(const json&)>& pick) {
      std::vector<std::string> row{layer, html_escape(type), units};
      for (const auto& lw : layerwise) {
        const json& l = pick(lw);
        row.push_back(cell(l.value("forward_digits", json()), "{:.1f}"));
        row.push_back(cell(l.value("backward_digits", json()), "{:.1f}"));
      }
      t.rows.push_back(std::move(row));
    };
    for (std::size_t k = 0; k < first.size(); ++k)
      row_of(std::to_string(k), first[k].at("type"), first[k].at("units").dump(),
             [k](const json& lw) -> const json& { return lw.at("layers")[k]; });
    row_of("", "loss seed ∂ℓ/∂x_L", "", [](const json& lw) -> const json& { return lw.at("loss_gradient"); });
    h << t.html();
  }

  // The findings in a few lines, then the agreement with theory: the verdict on the numbers.
  h << "<h2 id=\"summary\">Summary</h2>\n<ul>\n";
  for (const auto& lw : layerwise) {
    // The layer whose output (forward) or cotangent (backward) drops most below its predecessor's digits.
    const json& ls = lw.at("layers");
    double worst_drop = -1, before = num(lw.at("loss_gradient").at("backward_digits"), 0);
    std::string where;
    for (std::size_t k = 0; k < ls.size(); ++k) {
      const double prev = k == 0 ? 99 : num(ls[k - 1].at("forward_digits"), 0), now = num(ls[k].at("forward_digits"), 0);
      if (k > 0 && prev - now > worst_drop)
        worst_drop = prev - now, where = fmt::format("layer {} ({}) forward", k, ls[k].at("type").get<std::string>());
    }
    for (std::size_t k = ls.size(); k-- > 0;) {
      if (!ls[k].at("backward_digits").is_number()) continue;
      const double now = num(ls[k].at("backward_digits"), 0);
      if (before - now > worst_drop)
        worst_drop = before - now, where = fmt::format("layer {} ({}) backward", k, ls[k].at("type").get<std::string>());
      before = now;
    }
    h << fmt::format("<li>Layer by layer in {}: the output keeps {:.1f} digits, the first layer's cotangent {:.1f}; "
                     "the largest loss of digits in one step is {:.1f}, at {} (<a href=\"#layerwise\">chart</a>).</li>\n",
                     lw.at("precision").get<std::string>(), num(ls.back().at("forward_digits"), 0),
                     num(ls.front().at("backward_digits"), 0), std::max(worst_drop, 0.0),
                     where.empty() ? std::string("no layer") : html_escape(where));
    // The layers whose cotangent keeps fewer than 2 digits, by name (every precision the report ran).
    const json few = lw.value("backward_under_2_digits", json::array());
    std::string names;
    for (const auto& f : few)
      names += fmt::format("{}layer {} ({}, {:.1f} digits)", names.empty() ? "" : ", ", f.at("layer").get<int>(),
                           f.at("type").get<std::string>(), num(f.at("digits"), 0));
    h << fmt::format("<li class=\"few-digits\">{}: {}.</li>\n", html_escape(lw.at("precision").get<std::string>()),
                     few.empty() ? std::string("the gradient keeps at least 2 digits after every layer's backward")
                                 : "the gradient keeps fewer than 2 digits after the backward of " + html_escape(names));
  }
  // Every rung the run measured, in its order (a report from before --precision: float and double).
  const json precisions = run.value("precisions", json::array({"float", "double"}));
  for (const std::string precision : precisions) {
    double h_lo = 1e300, h_hi = 0, e_lo = 1e300, e_hi = 0, h_theory = 0, e_theory = 0;
    for (const auto& fd : report.at("finite_differences"))
      if (fd.at("precision") == precision)
        for (const auto& sc : fd.at("schemes"))
          if (sc.at("scheme") == "central" && sc.at("best_h").is_number()) {
            h_lo = std::min(h_lo, num(sc.at("best_h"))), h_hi = std::max(h_hi, num(sc.at("best_h")));
            e_lo = std::min(e_lo, num(sc.at("best_error"))), e_hi = std::max(e_hi, num(sc.at("best_error")));
            h_theory = num(sc.at("theory_h")), e_theory = num(sc.at("theory_error"));
          }
    if (h_hi > 0)
      h << fmt::format("<li>Central differences in {}: best step {:.2g} to {:.2g} (theory u^(1/3) = {:.2g}), best "
                       "relative error {:.2g} to {:.2g} (theory u^(2/3) = {:.2g}).</li>\n",
                       precision, h_lo, h_hi, h_theory, e_lo, e_hi, e_theory);
  }
  {
    double d_lo = 99, d_hi = 0, f_lo = 99, f_hi = 0, self = 999;
    const std::size_t n = report.at("backprop").size();
    for (const auto& b : report.at("backprop")) {
      d_lo = std::min(d_lo, num(b.at("double_digits"), 0)), d_hi = std::max(d_hi, num(b.at("double_digits"), 0));
      f_lo = std::min(f_lo, num(b.at("float_digits"), 0)), f_hi = std::max(f_hi, num(b.at("float_digits"), 0));
      self = std::min(self, num(b.at("mp100_self_digits"), 0));
    }
    std::string sixteen;
    for (const auto& p : rungs_16(report.at("backprop"))) {
      double lo = 99, hi = 0;
      for (const auto& b : report.at("backprop"))
        lo = std::min(lo, num(b.value(p + "_digits", json()), 0)), hi = std::max(hi, num(b.value(p + "_digits", json()), 0));
      sixteen += fmt::format(", {} {:.1f} to {:.1f}", p, lo, hi);
    }
    if (n)
      h << fmt::format("<li>Backprop against mp100 over {} network{}: double keeps {:.1f} to {:.1f} significant digits, "
                       "float {:.1f} to {:.1f}{}; mp100 agrees with itself under a change of evaluation order to {:.1f} "
                       "digits or more.</li>\n",
                       n, n == 1 ? "" : "s", d_lo, d_hi, f_lo, f_hi, sixteen, self);
    double cond = 0;
    std::size_t in_mp100 = 0, products = 0, estimated = 0, unresolved = 0;
    for (const auto& c : report.at("conditioning"))
      for (const auto& p : c.at("products")) {
        ++products;
        in_mp100 += p.at("svd") == "mp100";
        estimated += p.value("method", "svd") == "lanczos" && !p.value("exact", true);
        unresolved += !p.value("resolved", true);
        if (!p.at("singular").get<bool>()) cond = std::max(cond, num(p.at("cond"), 0));
      }
    if (products)
      h << fmt::format("<li>Jacobian products: the largest condition number of a nonsingular one is {:.2g}; {} of {} "
                       "ran in mp100{}.</li>\n",
                       cond, in_mp100, products,
                       estimated ? fmt::format("; {} estimated by Lanczos short of exact (their condition numbers are "
                                               "lower bounds), {} with σ_min below double's resolution",
                                               estimated, unresolved)
                                 : std::string());
  }
  for (const auto& so : second) {
    if (so.contains("unavailable")) continue;
    if (const std::string why = hvp_not_applicable(so); !why.empty()) {
      h << fmt::format("<li>Second order in {} ({}): H v not applicable ({}); the gradient's central difference along "
                       "v is best at h = {:.2g} with error {:.2g} (theory u^(1/3) = {:.2g}, u^(2/3) = {:.2g}) "
                       "(<a href=\"#second-order\">details</a>).</li>\n",
                       so.at("precision").get<std::string>(), html_escape(so.at("subject")), html_escape(why),
                       num(so.at("fd").at("best_h")), num(so.at("fd").at("best_error")),
                       num(so.at("fd").at("theory_h")), num(so.at("fd").at("theory_error")));
      continue;
    }
    h << fmt::format("<li>Second order in {} ({}): H v keeps {:.1f} significant digits (worst block {:.1f}); the "
                     "gradient's central difference along v is best at h = {:.2g} with error {:.2g} (theory u^(1/3) = "
                     "{:.2g}, u^(2/3) = {:.2g}) (<a href=\"#second-order\">details</a>).</li>\n",
                     so.at("precision").get<std::string>(), html_escape(so.at("subject")),
                     num(so.at("hvp").at("digits"), 0), num(so.at("hvp").at("worst_block_digits"), 0),
                     num(so.at("fd").at("best_h")), num(so.at("fd").at("best_error")), num(so.at("fd").at("theory_h")),
                     num(so.at("fd").at("theory_error")));
  }
  {
    std::size_t moved = 0, stuck = 0, near = 0;
    for (const auto& fd : report.at("finite_differences")) {
      if (!fd.contains("kinks")) continue;
      const json& k = fd.at("kinks");
      moved += k.at("moves").get<int>() > 0 && k.at("non_differentiable").is_null();
      stuck += !k.at("non_differentiable").is_null();
      near += k.contains("nearest") && !k.at("nearest").is_null();
    }
    if (moved + stuck + near)
      h << fmt::format("<li>Kinks: {} finite-difference subject{} moved off a kink, {} not differentiable at the "
                       "point, {} with a kink close enough to limit the steps the theory is checked on "
                       "(<a href=\"#finite-differences\">details</a>).</li>\n",
                       moved, moved == 1 ? "" : "s", stuck, near);
  }
  {
    std::size_t checks = 0, pass = 0, fail = 0;
    for (const auto& v : report.at("verification"))
      for (const auto& c : v.at("checks")) {
        ++checks;
        pass += c.at("verdict") == "pass";
        fail += c.at("verdict") == "FAIL";
      }
    h << fmt::format("<li>Verification: {} checks, {} pass, {} FAIL.</li>\n", checks, pass, fail);
  }
  h << "</ul>\n";

  const json& theory = report.at("theory");
  std::size_t holding = 0, applicable = 0;
  for (const auto& t : theory) {
    holding += t.at("holds") == true;
    applicable += !t.at("holds").is_null();
  }
  h << "<h2 id=\"theory\">Agreement with theory</h2>\n<p>" << holding << " of " << applicable
    << " applicable statements hold";
  if (applicable < theory.size())
    h << "; " << theory.size() - applicable
      << " are not applicable here, because their assumptions (a function smooth over the steps they are about) "
         "fail at the subject: see why below";
  h << ".</p>\n";
  // which: 'f' failing, 'n' not applicable, 'a' all.
  auto theory_table = [&theory](char which) {
    Table t{{"statement", "subject", "measured", "expected", "holds", "note"}, {}};
    for (const auto& c : theory) {
      const bool na = c.at("holds").is_null(), fails = !na && c.at("holds") == false;
      if ((which == 'f' && !fails) || (which == 'n' && !na)) continue;
      t.rows.push_back({html_escape(c.at("statement")), html_escape(c.at("subject")), cell(c.at("measured")),
                        html_escape(c.at("expected")),
                        na ? verdict_cell("not applicable") : holds_cell(c.at("holds").get<bool>()),
                        na ? html_escape(c.at("not_applicable")) : ""});
    }
    return t.html();
  };
  if (holding < applicable) h << "<p>Those that do not:</p>\n" << theory_table('f');
  if (applicable < theory.size()) h << "<p>Those not applicable, and why:</p>\n" << theory_table('n');
  h << "<details>\n<summary>Every statement</summary>\n" << theory_table('a') << "</details>\n";

  h << "<h2 id=\"finite-differences\">1. Finite differences: error versus step</h2>\n"
    << "<p class=\"note\">The error of a difference of order p is truncation C·h^p plus round-off ≈ u·|f|/h (u the "
       "unit roundoff), least near h* = u^(1/(p+1)), where it is ≈ u^(p/(p+1)): the V. Each subject's output "
       "is differenced along one random direction (max |v_i| = 1); the error is ‖D(h) − f′·v‖₂/‖f′·v‖₂. Steps "
       "below half an ulp of the point give no difference and are left out. Slopes are least-squares fits over "
       "[10h*, 1000h*] (truncation) and [h*/1000, h*/10] (round-off).</p>\n";
  // Kinks along each subject's direction: where the point was moved, where it is not differentiable, and
  // the nearest kink that limits which steps the theory can be checked on.
  {
    std::string notes;
    for (const auto& fd : report.at("finite_differences")) {
      if (!fd.contains("kinks")) continue;
      const json& k = fd.at("kinks");
      const std::string who = fd.at("subject").get<std::string>() + ", " + fd.at("precision").get<std::string>();
      if (!k.at("non_differentiable").is_null())
        notes += "<li><span class=\"fail\">" + html_escape(who) + ": not differentiable at the point</span>, " +
                 html_escape(k.at("non_differentiable").at("what").get<std::string>()) +
                 (k.at("moves").get<int>() ? fmt::format(" (after {} moves)", k.at("moves").get<int>()) : "") +
                 "; every error here measures the kink, not the difference scheme.</li>\n";
      else if (k.contains("note"))
        notes += "<li>" + html_escape(who + ": " + k.at("note").get<std::string>()) + ".</li>\n";
      if (k.contains("nearest") && !k.at("nearest").is_null())
        notes += "<li>" + html_escape(fmt::format("{}: the direction crosses a kink within {:.2g} of the point ({}); "
                                                  "steps beyond about {:.2g} straddle it",
                                                  who, num(k.at("nearest").at("within")),
                                                  k.at("nearest").at("what").get<std::string>(),
                                                  num(k.at("kink_free_step")) / 3)) +
                 ".</li>\n";
    }
    if (!notes.empty())
      h << "<p class=\"note\">Kinks (found where mp100's one-sided derivatives along the direction disagree):</p>\n<ul>\n"
        << notes << "</ul>\n";
  }
  plot_grid(h, fd_plots, svgs);
  {
    Table t{{"subject", "precision", "scheme", "order p", "theory h*", "measured best h", "best error",
             "theory error", "slope (truncation)", "slope (round-off)"},
            {}};
    for (const auto& fd : report.at("finite_differences"))
      for (const auto& sc : fd.at("schemes"))
        t.rows.push_back({html_escape(fd.at("subject")), html_escape(fd.at("precision")), html_escape(sc.at("scheme")),
                          sc.at("order").get<int>() ? sc.at("order").dump() : "adaptive", cell(sc.at("theory_h")),
                          cell(sc.at("best_h")), cell(sc.at("best_error")), cell(sc.at("theory_error")),
                          cell(sc.at("slope_truncation"), "{:.2f}"), cell(sc.at("slope_roundoff"), "{:.2f}")});
    h << t.html();
  }
  if (!second.empty()) {
    h << "<h3 id=\"second-order\">Second order along one direction</h3>\n"
      << "<p class=\"note\">For one random direction v over the parameters (max |v_j| = 1): the plots marked "
         "<i>second order</i> above are the V-curve of the central difference (g(θ + h v) − g(θ − h v))/(2h) of the "
         "loss's gradient, on the same steps, against the exact H v, computed in mp100 by the backward run on dual "
         "numbers. The table gives the digits of H v computed the same way in float and in double, per parameter "
         "block, as −log10 ‖Hv − Hv*‖₂/‖Hv*‖₂ (capped at 9 for float, 17 for double).</p>\n";
    Table t{{"subject", "layer", "type", "block", "size"}, {}};
    for (const auto& so : second) t.header.push_back(so.at("precision").get<std::string>() + " H v digits");
    const json* shape = nullptr;
    for (const auto& so : second)
      if (!so.contains("unavailable") && hvp_not_applicable(so).empty()) shape = &so;
    for (const auto& so : second)
      if (so.contains("unavailable"))
        h << "<p class=\"note\">" << html_escape(so.at("subject").get<std::string>() + ", " +
                                                   so.at("precision").get<std::string>() + ": no H v, " +
                                                   so.at("unavailable").get<std::string>())
          << "</p>\n";
      else if (const std::string why = hvp_not_applicable(so); !why.empty())
        h << "<p class=\"note\">" << html_escape(so.at("subject").get<std::string>() + ", " +
                                                   so.at("precision").get<std::string>() + ": H v not applicable, " + why)
          << "</p>\n";
    if (shape) {
      const json& blocks = shape->at("hvp").at("blocks");
      for (std::size_t k = 0; k <= blocks.size(); ++k) {
        const bool all = k == blocks.size();
        std::vector<std::string> row{html_escape(shape->at("subject")), all ? "" : blocks[k].at("layer").dump(),
                                     all ? "all of θ" : html_escape(blocks[k].at("type")),
                                     all ? "" : html_escape(blocks[k].at("block")),
                                     all ? shape->at("parameters").dump() : blocks[k].at("size").dump()};
        for (const auto& so : second)
          row.push_back(so.contains("unavailable") || !hvp_not_applicable(so).empty() ? std::string("–")
                        : all ? cell(so.at("hvp").at("digits"), "{:.1f}")
                              : cell(so.at("hvp").at("blocks")[k].at("digits"), "{:.1f}"));
        t.rows.push_back(std::move(row));
      }
      h << t.html();
    }
  }

  h << "<h2 id=\"backprop\">2. Backprop error against mp100</h2>\n"
    << "<p class=\"note\">Per parameter block, the normwise relative error ‖g − g*‖₂/‖g*‖₂ of the float and double "
       "backprop gradient against mp100 backprop of the very same (rounded) parameters and batch, as significant "
       "digits −log10 of it (capped at 9 for float, 17 for double). Networks: depth × (dense width → activation), "
       "then dense → 4 classes, cross-entropy, 4 samples, PyTorch's default initialisation. mp100 self: the "
       "digits to which mp100 backprop agrees with itself with the batch reversed and, where the network is small, "
       "with the explicit Jacobian product.</p>\n";
  plot_grid(h, bp_plots, svgs);
  {
    Table t{{"network", "float digits", "double digits", "mp100 self digits", "worst double block"}, {}};
    for (const auto& b : report.at("backprop")) {
      std::string worst;
      double lowest = 1e9;
      for (const auto& k : b.at("blocks"))
        if (num(k.at("double_digits"), 0) < lowest)
          lowest = num(k.at("double_digits"), 0),
          worst = fmt::format("layer {} {} {}", k.at("layer").get<int>(), k.at("type").get<std::string>(),
                              k.at("block").get<std::string>());
      t.rows.push_back({html_escape(b.at("subject")), cell(b.at("float_digits"), "{:.1f}"),
                        cell(b.at("double_digits"), "{:.1f}"), cell(b.at("mp100_self_digits"), "{:.1f}"),
                        html_escape(worst)});
    }
    h << t.html();
  }

  h << "<h2 id=\"conditioning\">3. Conditioning</h2>\n"
    << "<p class=\"note\">Singular values of each layer's input Jacobian J_x and of the products J_k⋯J_1 on sample 0, "
       "formed in mp100; the SVD runs in double when σ_min/σ_max > 1e-8 and in mp100 otherwise (Eigen's Jacobi "
       "SVD). A product is singular when a singular value falls below 1e-80·σ_max (ReLU switches units off); its "
       "condition number is then taken over the nonzero singular values.</p>\n";
  for (const auto& b : report.at("backprop"))
    if (b.contains("conditioning_estimated"))
      h << "<p class=\"note\">" << html_escape(b.at("subject")) << ": estimated without forming the products ("
        << html_escape(b.at("conditioning_estimated"))
        << "): Golub–Kahan–Lanczos bidiagonalisation with full reorthogonalisation, driven by P·v (forward mode, "
           "the layers on dual numbers) and Pᵀ·u (backprop), at most 32 steps. After k steps the Ritz values are "
           "those of a compression of P: σ_max is a lower bound (it converges in a few steps) and σ_min an upper "
           "bound, exact once k reaches min(rows, cols). It runs in double where double resolves σ_min: double's "
           "products are exact for J_i perturbed by about u·‖J_i‖, so σ_min keeps about 6 digits while it exceeds "
           "1e-8·∏‖J_i‖; below that it is rerun in mp100 when every layer has at most 1024 units, and otherwise "
           "σ_min is reported as unresolved, with only that upper bound. The statement about well-conditioned "
           "networks is made only on exact values.</p>\n";
  plot_grid(h, cond_plots, svgs);
  {
    Table t{{"network", "layers in product", "σ_max", "σ_min", "rank", "cond", "SVD in", "method", "double digits",
             "float digits"},
            {}};
    auto method_cell = [](const json& p) -> std::string {
      if (p.value("method", "svd") == "svd") return "SVD of the formed product";
      std::string m = fmt::format("Lanczos, {} of {} steps", p.at("steps").get<int>(), p.at("dimension").get<long>());
      if (p.at("exact").get<bool>()) return m + " (exact)";
      if (!p.at("resolved").get<bool>())
        return m + fmt::format(" (σ_max ≥; σ_min below double's resolution: ≤ {:.3g})", num(p.at("sigma_min_at_most")));
      return m + " (σ_max ≥, σ_min ≤, cond ≥)";
    };
    for (const auto& c : report.at("conditioning")) {
      const json* b = nullptr;
      for (const auto& x : report.at("backprop"))
        if (x.at("subject") == c.at("subject")) b = &x;
      for (const auto& p : c.at("products"))
        t.rows.push_back({html_escape(c.at("subject")), p.at("layers").dump(), cell(p.at("sigma_max")),
                          cell(p.at("sigma_min")), p.at("rank").is_null() ? "–" : p.at("rank").dump(),
                          cell(p.at("cond")) + (p.at("singular").get<bool>() ? " (singular)" : ""),
                          html_escape(p.at("svd")), html_escape(method_cell(p)),
                          b ? cell(b->at("double_digits"), "{:.1f}") : "–",
                          b ? cell(b->at("float_digits"), "{:.1f}") : "–"});
    }
    h << t.html();
  }

  h << "<h2 id=\"verification\">4. Verification summary</h2>\n"
    << "<p class=\"note\">Every check of <code>bpcheck verify</code> per layer and precision: its verdict, its metric "
       "against its limit (the Taylor order must reach its limit, every other metric stay at or below it), the "
       "significant digits of agreement and the worst entry's "
       "absolute error. Overall: "
    << (report.at("passed").get<bool>() ? "<span class=\"pass\">every gradient right</span>"
                                        : "<span class=\"fail\">a gradient is wrong</span>")
    << ".</p>\n";
  {
    Table t{{"subject", "check", "precision", "verdict", "value", "limit", "digits", "worst abs error", "note"}, {}};
    for (const auto& v : report.at("verification"))
      for (const auto& c : v.at("checks"))
        t.rows.push_back({html_escape(c.at("subject")), html_escape(c.at("check")), html_escape(c.at("precision")),
                          verdict_cell(c.at("verdict")), cell(c.at("value")), cell(c.at("threshold")),
                          cell(c.at("digits"), "{:.1f}"), cell(c.at("worst_abs_error")),
                          c.at("verdict") == "pass" ? "" : html_escape(c.at("message"))});
    h << t.html();
  }
  h << "</body>\n</html>\n";
  files["index.html"] = h.str();
  return files;
}

}  // namespace bpcheck::report
