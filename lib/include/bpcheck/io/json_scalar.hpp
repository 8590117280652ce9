#pragma once
// Scalars in JSON: a number is read through its decimal text (0.01 means the decimal 0.01, exact to
// the rung, not the double nearest to it), a string carries all its digits; NaN and Inf are refused.
//
//   mp100 a = bpcheck::scalar_from_json<mp100>(json("0.1000000000000000000000000001"), "params");
#include <cmath>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "bpcheck/scalar.hpp"

namespace bpcheck {

/// Reads a JSON number or decimal string into T; throws input_error naming `where`.
template <class T>
T scalar_from_json(const nlohmann::json& j, const std::string& where) {
  // A JSON number is the double nearest its decimal: double takes that double itself, the same value
  // as reading back its shortest decimal (which float and mp100 read, each rounding the decimal once).
  if constexpr (std::is_same_v<T, double>)
    if (j.is_number_float() && std::isfinite(j.get<double>())) return j.get<double>();
  std::string text;
  if (j.is_string())
    text = j.get<std::string>();
  else if (j.is_number())
    text = j.dump();  // shortest decimal that reads back to the parsed double
  else
    throw input_error(where + ": expected a number or a decimal string, got " + std::string(j.type_name()));
  T v;
  try {
    v = from_string<T>(text);
  } catch (const input_error&) {
    throw input_error(where + ": '" + text + "' is not a number");
  }
  using std::isfinite;
  if (!isfinite(value_of(v)))
    throw input_error(where + ": '" + text + "' is not finite in " + scalar_name<T>() +
                      " (NaN, Inf or out of range)");
  return v;
}

/// A scalar as a JSON string with all of its rung's digits.
template <class T>
nlohmann::json scalar_to_json(const T& x) {
  return bpcheck::to_string(x);
}

}  // namespace bpcheck
