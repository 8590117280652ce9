// Deterministic property runs; see bpcheck/properties/runner.hpp.
#include "bpcheck/properties/runner.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "bpcheck/error.hpp"
#include "bpcheck/layer.hpp"

namespace bpcheck::properties {

int case_count(int default_cases, bool mp100) {
  const char* env = std::getenv("BPCHECK_PROPERTY_CASES");
  if (env == nullptr || *env == '\0') return default_cases;
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || n <= 0 || n > 100000000)
    throw input_error(std::string("BPCHECK_PROPERTY_CASES: '") + env + "' is not a positive integer");
  return mp100 ? int(std::max(2L, n / 10)) : int(n);
}

std::vector<std::string> property_layer_types() {
  const char* env = std::getenv("BPCHECK_PROPERTY_LAYERS");
  const auto& known = layer_type_names();
  if (env == nullptr) return known;
  std::vector<std::string> types;
  std::stringstream list(env);
  for (std::string name; std::getline(list, name, ',');) {
    if (name.empty()) continue;
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw input_error("BPCHECK_PROPERTY_LAYERS: unknown layer type '" + name + "'");
    if (std::find(types.begin(), types.end(), name) == types.end()) types.push_back(name);
  }
  if (types.empty()) throw input_error(std::string("BPCHECK_PROPERTY_LAYERS: '") + env + "' names no layer type");
  return types;
}

bool rc_params_set(const std::string& key) {
  const char* env = std::getenv("RC_PARAMS");
  if (env == nullptr) return false;
  const std::string s(env);
  for (std::size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + 1)) {
    const bool starts = at == 0 || s[at - 1] == ' ';
    const std::size_t after = at + key.size();
    if (starts && after < s.size() && s[after] == '=') return true;
  }
  return false;
}

rc::detail::TestParams property_parameters(int cases) {
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  if (!rc_params_set("seed")) params.seed = default_seed;
  if (!rc_params_set("max_success")) params.maxSuccess = cases;
  return params;
}

PropertyRun summarize(const std::string& description, const rc::detail::TestResult& result,
                      const rc::detail::TestParams& params) {
  PropertyRun run;
  run.seed = params.seed;
  std::ostringstream os;
  rc::detail::printResultMessage(result, os);
  if (result.is<rc::detail::SuccessResult>()) {
    run.passed = true;
    run.cases = result.get<rc::detail::SuccessResult>().numSuccess;
  } else if (result.is<rc::detail::FailureResult>()) {
    const auto& f = result.get<rc::detail::FailureResult>();
    run.cases = f.numSuccess;
    run.failure = f.description;
    std::ostringstream ce;
    for (const auto& [type, value] : f.counterExample) ce << value << "\n";
    run.counterexample = ce.str();
  } else if (result.is<rc::detail::GaveUpResult>()) {
    run.failure = result.get<rc::detail::GaveUpResult>().description;
  } else if (result.is<rc::detail::Error>()) {
    run.failure = result.get<rc::detail::Error>().description;
  }
  os << "\nproperty: " << description << "\nseed: " << run.seed << ", cases: " << params.maxSuccess
     << "\nrerun exactly this: RC_PARAMS=\"seed=" << run.seed << " max_success=" << params.maxSuccess << "\"\n";
  run.message = os.str();
  return run;
}

}  // namespace bpcheck::properties
