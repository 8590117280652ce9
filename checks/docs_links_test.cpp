// The manual's links: README.md and every docs/*.md. A relative link must name a file that exists
// (relative to the page that links), a #fragment must name a heading of the page it points to (by
// GitHub's anchor rule), and README.md must link to every page in docs/. The source tree comes from
// BPCHECK_SOURCE_DIR, which CTest sets (checks/CMakeLists.txt).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace bpcheck::testing::docs_links {

namespace fs = std::filesystem;

/// The source tree: $BPCHECK_SOURCE_DIR, or a failed test that says how to set it.
fs::path source_dir() {
  const char* env = std::getenv("BPCHECK_SOURCE_DIR");
  if (env == nullptr || *env == '\0')
    FAIL("BPCHECK_SOURCE_DIR is not set: run the tests through ctest (checks/CMakeLists.txt sets it to the "
         "source tree), or set it to the folder that holds README.md and docs/");
  const fs::path dir(env);
  if (!fs::is_regular_file(dir / "README.md"))
    FAIL("BPCHECK_SOURCE_DIR is '" << env << "', which holds no README.md: set it to the source tree");
  return dir;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// README.md, then docs/*.md in name order.
std::vector<fs::path> manual_pages(const fs::path& root) {
  std::vector<fs::path> docs;
  if (fs::is_directory(root / "docs"))
    for (const auto& e : fs::directory_iterator(root / "docs"))
      if (e.is_regular_file() && e.path().extension() == ".md") docs.push_back(e.path());
  std::sort(docs.begin(), docs.end());
  docs.insert(docs.begin(), root / "README.md");
  return docs;
}

/// The text with the lines of fenced code blocks (``` or ~~~) blanked out, line breaks kept.
std::string without_code_blocks(const std::string& text) {
  std::string out;
  std::istringstream lines(text);
  std::string line;
  bool in_fence = false;
  while (std::getline(lines, line)) {
    const auto first = line.find_first_not_of(' ');
    if (first != std::string::npos && (line.compare(first, 3, "```") == 0 || line.compare(first, 3, "~~~") == 0))
      in_fence = !in_fence;
    else if (!in_fence)
      out += line;
    out += '\n';
  }
  return out;
}

/// The text without code blocks and without inline code spans, line breaks kept, so that `[x](y)`
/// inside code is no link and line numbers still count.
std::string prose_only(const std::string& text) {
  const std::string in = without_code_blocks(text);
  std::string out;
  for (std::size_t i = 0; i < in.size();) {
    if (in[i] != '`') {
      out += in[i++];
      continue;
    }
    // A run of backticks opens a code span that the next run of the same length on its line closes.
    std::size_t n = 0;
    while (i + n < in.size() && in[i + n] == '`') ++n;
    const std::string ticks(n, '`');
    const auto close = in.find(ticks, i + n), eol = in.find('\n', i);
    if (close == std::string::npos || close > eol) {  // not closed on this line: literal backticks
      out += ticks;
      i += n;
    } else {
      i = close + n;
    }
  }
  return out;
}

struct Link {
  int line = 0;
  std::string target;
};

/// Every inline link `[text](target)` of the prose; the text may span lines, not nest brackets.
std::vector<Link> links_in(const std::string& text) {
  const std::string prose = prose_only(text);
  std::vector<Link> links;
  int line = 1;
  for (std::size_t i = 0; i < prose.size(); ++i) {
    if (prose[i] == '\n') ++line;
    if (prose[i] != '[') continue;
    const auto end = prose.find_first_of("[]", i + 1);
    if (end == std::string::npos || prose[end] != ']' || end + 1 >= prose.size() || prose[end + 1] != '(') continue;
    const auto close = prose.find(')', end + 2);
    if (close == std::string::npos) continue;
    std::string target = prose.substr(end + 2, close - end - 2);
    target = target.substr(0, target.find_first_of(" \t\n"));  // drop a "title"
    if (!target.empty() && target.front() == '<' && target.back() == '>') target = target.substr(1, target.size() - 2);
    links.push_back({line, target});
  }
  return links;
}

bool is_external(const std::string& target) {
  for (const char* scheme : {"http:", "https:", "mailto:"})
    if (target.rfind(scheme, 0) == 0) return true;
  return false;
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped except '-' and '_', each space a
/// '-'. Bytes beyond ASCII (letters such as ε) are kept as they are.
std::string slug(const std::string& heading) {
  std::string s;
  for (const unsigned char c : heading) {
    if (c >= 0x80 || std::isalnum(c) || c == '-' || c == '_')
      s += char(c >= 0x80 ? c : std::tolower(c));
    else if (c == ' ')
      s += '-';
  }
  return s;
}

/// The anchors of a page's headings (outside code blocks); a repeated heading gets -1, -2, … as on
/// GitHub.
std::set<std::string> anchors_of(const std::string& text) {
  std::set<std::string> anchors;
  std::map<std::string, int> seen;
  std::istringstream lines(without_code_blocks(text));
  std::string line;
  while (std::getline(lines, line)) {
    std::size_t level = 0;
    while (level < line.size() && line[level] == '#') ++level;
    if (level == 0 || level > 6 || level >= line.size() || line[level] != ' ') continue;
    std::string title = line.substr(level + 1);
    while (!title.empty() && (title.back() == '#' || title.back() == ' ')) title.pop_back();
    const std::string base = slug(title);
    const int n = seen[base]++;
    anchors.insert(n == 0 ? base : base + "-" + std::to_string(n));
  }
  return anchors;
}

std::string as_lines(const std::vector<std::string>& problems) {
  std::string s;
  for (const auto& p : problems) s += "  " + p + "\n";
  return s;
}

}  // namespace bpcheck::testing::docs_links

TEST_CASE("heading anchors follow GitHub's rule: lowercase, punctuation dropped, spaces become hyphens", "[docs]") {
  using bpcheck::testing::docs_links::anchors_of;
  using bpcheck::testing::docs_links::slug;
  CHECK(slug("How a verdict is reached") == "how-a-verdict-is-reached");
  CHECK(slug("File formats (public, stable)") == "file-formats-public-stable");
  CHECK(slug("The fifth round: -O1 where the work is elsewhere, and GCC's collector") ==
        "the-fifth-round--o1-where-the-work-is-elsewhere-and-gccs-collector");
  CHECK(slug("`bpcheck report`") == "bpcheck-report");
  const auto anchors = anchors_of("# Title\n\n## Notes\n\n```sh\n# not a heading\n```\n\n## Notes\n#hashtag\n");
  CHECK(anchors == std::set<std::string>{"title", "notes", "notes-1"});
  CHECK(anchors_of("### The `bpcheck` program\n").count("the-bpcheck-program") == 1);
}

TEST_CASE("every relative link in README.md and docs/*.md names a file that exists", "[docs]") {
  namespace d = bpcheck::testing::docs_links;
  const auto root = d::source_dir();
  std::vector<std::string> broken;
  std::size_t checked = 0;
  for (const auto& page : d::manual_pages(root)) {
    for (const auto& link : d::links_in(d::read_text(page))) {
      if (link.target.empty() || link.target.front() == '#' || d::is_external(link.target)) continue;
      const std::string path = link.target.substr(0, link.target.find('#'));
      ++checked;
      if (!d::fs::exists(page.parent_path() / path))
        broken.push_back(d::fs::relative(page, root).string() + ":" + std::to_string(link.line) + ": " + link.target);
    }
  }
  INFO("links to files that do not exist, relative to the page that links:\n" << d::as_lines(broken));
  REQUIRE(broken.empty());
  CHECK(checked > 0);
}

TEST_CASE("every #anchor of a link in README.md and docs/*.md names a heading of the page it points to", "[docs]") {
  namespace d = bpcheck::testing::docs_links;
  const auto root = d::source_dir();
  std::vector<std::string> broken;
  for (const auto& page : d::manual_pages(root)) {
    for (const auto& link : d::links_in(d::read_text(page))) {
      const auto hash = link.target.find('#');
      if (hash == std::string::npos || d::is_external(link.target)) continue;
      const std::string path = link.target.substr(0, hash), fragment = link.target.substr(hash + 1);
      const d::fs::path target = path.empty() ? page : page.parent_path() / path;
      if (target.extension() != ".md" || !d::fs::is_regular_file(target)) continue;  // a missing file is the other test's
      if (!d::anchors_of(d::read_text(target)).count(fragment))
        broken.push_back(d::fs::relative(page, root).string() + ":" + std::to_string(link.line) + ": " + link.target +
                         " (no heading of " + d::fs::relative(target, root).string() + " has that anchor)");
    }
  }
  INFO("anchors that name no heading:\n" << d::as_lines(broken));
  REQUIRE(broken.empty());
}

TEST_CASE("README.md links to every page in docs/", "[docs]") {
  namespace d = bpcheck::testing::docs_links;
  const auto root = d::source_dir();
  const d::fs::path readme = root / "README.md";
  std::set<d::fs::path> linked;
  for (const auto& link : d::links_in(d::read_text(readme))) {
    if (link.target.empty() || link.target.front() == '#' || d::is_external(link.target)) continue;
    const auto target = root / link.target.substr(0, link.target.find('#'));
    if (d::fs::exists(target)) linked.insert(d::fs::canonical(target));
  }
  std::vector<std::string> unlinked;
  for (const auto& page : d::manual_pages(root))
    if (page != readme && !linked.count(d::fs::canonical(page))) unlinked.push_back(d::fs::relative(page, root).string());
  INFO("pages in docs/ that README.md does not link to:\n" << d::as_lines(unlinked));
  REQUIRE(unlinked.empty());
}
