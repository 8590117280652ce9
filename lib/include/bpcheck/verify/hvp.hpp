#pragma once
// Second order for a network: the Hessian-vector product of its loss with respect to the parameters,
// and a judge of another program's HVP against the mp100 one.
//
//   bpcheck::Network<double> net(spec);  ...
//   bpcheck::Gradient<double> hv = bpcheck::hessian_vector_product(net, X, targets, v);
//   std::cout << bpcheck::hvp_to_json(net, hv).dump(2);   // {"precision", "loss", "hvp": [blocks]}
//
//   auto c = bpcheck::compare_hvp(subject, hvp_json, vector_json, "float");
//   std::cout << bpcheck::format_hvp_table(c);
//   return c.exit_code();                             // 0 right, 1 wrong or less accurate
//
// H v is computed forward over reverse: the network's own backward (every layer's `backward`, the
// loss's gradient) run on dual<T> with the parameters seeded along v, θ + ε v; the tangent of dℓ/dθ is
// H v. No Hessian is formed and nothing is differenced.
#include <string>

#include <nlohmann/json.hpp>

#include "bpcheck/network.hpp"
#include "bpcheck/verify/compare.hpp"

namespace bpcheck {

/// H v (per layer, in each layer's block order, as Gradient::layers) and the loss, from the network's
/// backward on dual<T>; Gradient::input is left empty. Throws input_error for a v of another size than
/// the parameters, a batch that does not fit, and a layer (or loss) that cannot run on dual numbers,
/// naming it. T is float, double or mp100.
template <class T>
Gradient<T> hessian_vector_product(const Network<T>& net, const Matrix<T>& X, const Targets<T>& targets,
                                   const Vector<T>& v);

/// A vector over the parameters from a document in the gradient format (docs/formats.md): the blocks
/// under `key` ("gradients" for a vector, "hvp" for an HVP), every block of the model exactly once and
/// of its shape, every value finite. Returns it in θ's order. Throws input_error("<where>: …").
template <class T>
Vector<T> parameter_vector_from_json(const Network<T>& net, const nlohmann::json& doc, const std::string& where,
                                     const std::string& key = "gradients");

/// H v in the HVP format: the gradient format with its blocks under "hvp" (docs/formats.md).
template <class T>
nlohmann::ordered_json hvp_to_json(const Network<T>& net, const Gradient<T>& hv);

/// Judges `hvp` (the HVP format, computed by another program in float or double for the vector in
/// `vector`, the gradient format) against the mp100 H v of the subject's loss, block by block, within a
/// rounding bound (docs/verdicts.md, "Second order of a network"). The verdicts, the table's words and
/// the exit codes are compare_gradient's. Throws input_error as compare_gradient does, and for a vector
/// that is missing blocks, of another shape, or not finite.
GradientComparison compare_hvp(const NetworkSubject& subject, const nlohmann::json& hvp, const nlohmann::json& vector,
                               const std::string& precision, const CompareOptions& options = {},
                               const std::string& vector_file = "vector");

/// A table for people, as format_table(GradientComparison) for a gradient.
std::string format_hvp_table(const GradientComparison& c);
/// The comparison as JSON: compare's (docs/compare.md, "JSON output") with "format": "bpcheck compare
/// --hvp" and, in "bound", "terms" (what A is: "sum |H_ij v_j|" or "|H v|") in place of "activations".
nlohmann::ordered_json hvp_comparison_to_json(const GradientComparison& c);

#define BPCHECK_EXTERN_HVP(T)                                                                                   \
  extern template Gradient<T> hessian_vector_product<T>(const Network<T>&, const Matrix<T>&, const Targets<T>&, \
                                                        const Vector<T>&);                                      \
  extern template Vector<T> parameter_vector_from_json<T>(const Network<T>&, const nlohmann::json&,             \
                                                          const std::string&, const std::string&);              \
  extern template nlohmann::ordered_json hvp_to_json<T>(const Network<T>&, const Gradient<T>&);
BPCHECK_EXTERN_HVP(float)
BPCHECK_EXTERN_HVP(double)
BPCHECK_EXTERN_HVP(mp100)
#undef BPCHECK_EXTERN_HVP

}  // namespace bpcheck
