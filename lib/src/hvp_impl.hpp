#pragma once
// The network's backward on dual numbers (private to the library): hessian_vector_product and
// compare_hvp's exact HVP, its conditioning moves and its terms all run through it.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bpcheck/io/formats.hpp"
#include "bpcheck/network.hpp"
#include "bpcheck/verify/result.hpp"
#include "bpcheck/verify/verify.hpp"

namespace bpcheck::hvp_detail {

/// Moves the values of activation k (k = 0 the inputs, L the output) after it is formed on dual numbers.
template <class T>
using ActivationMove = std::function<void(std::size_t k, Matrix<dual<T>>& x)>;

/// dℓ/dθ on dual<T> at θ seeded along the columns of D (P × lanes, lanes ≤ dual_width), X and the
/// targets constant: lane l of the result's tangents is H D(:, l). `loss`, when given, receives ℓ.
/// Each layer runs its own forward and backward; one that throws on dual numbers is named in the
/// input_error that follows.
template <class T>
Vector<dual<T>> dual_backprop(const Network<T>& net, const Matrix<T>& X, const Targets<T>& targets,
                              const Matrix<T>& D, const ActivationMove<T>& move = {}, T* loss = nullptr);

/// H D for up to dual_width directions at once (the columns of D), computed in R (mp100 for the truth,
/// double for moves of float's u), and how much T's rounding moves it: one backward pass on dual<R> for
/// H D, four for the moves, each on every lane.
struct HvpMoves {
  mp100 loss;
  Matrix<mp100> h;     ///< H D, the network's backward on dual<R>
  Matrix<mp100> cond;  ///< per lane, the largest change of H D over four moves of relative u (θ, X, D; activations)
  Index evaluations = 0;
};
template <class R>
HvpMoves hvp_moves(const Network<mp100>& net, const Batch<mp100>& batch, const Matrix<mp100>& D, const mp100& u,
                   std::uint64_t seed, int jobs);
/// S_i = Σ_j |H_ij v_j| (⌈P/8⌉ passes of eight lanes H e_j v_j); `evaluations` counts them.
Vector<mp100> hvp_terms(const Network<mp100>& net, const Batch<mp100>& batch, const Vector<mp100>& v, int jobs,
                        Index& evaluations);

/// What an HVP in T is judged against (compare --hvp), from mp100:
struct HvpReference {
  mp100 loss;
  Vector<mp100> h;      ///< H v, the network's backward on dual<mp100>
  Vector<mp100> terms;  ///< S_i = Σ_j |H_ij v_j| (terms_formed), else |H v|
  Vector<mp100> cond;   ///< the largest change of H v over four moves of T's rounding (relative u_T)
  bool terms_formed = false;
  Index evaluations = 0;  ///< backward passes on dual<mp100>
};
/// Beyond this many parameters S is not formed (⌈P/8⌉ passes): the terms are |H v|.
inline constexpr Index hvp_terms_limit = 4096;
HvpReference hvp_reference(const Network<mp100>& net, const Batch<mp100>& batch, const Vector<mp100>& v,
                           const mp100& u_T, std::uint64_t seed, int jobs, bool form_terms = true);

/// One rung's H d for a direction d over the parameters, in mp100; `precision` is "float", "double" or
/// "mp100". verify's network checks take the network's own (hessian_vector_product on that rung) unless
/// a test gives another.
using NetworkHvp = std::function<Vector<mp100>(const std::string& precision, const Vector<mp100>& d)>;

/// The second-order checks of a network's loss in θ (VerifyOptions::order = 2): smoothness, H v from the
/// backward on dual numbers against central differences of mp100 gradients, and wᵀHv = vᵀHw, for every
/// rung in opt.precisions (mp100 always runs first; reported when asked for). No parameters: none.
std::vector<CheckResult> network_second_order_checks(const Network<mp100>& net, const Batch<mp100>& batch,
                                                     const VerifyOptions& opt, const std::string& subject,
                                                     const NetworkHvp& hvp = {});

#define BPCHECK_EXTERN_DUAL_BACKPROP(T)                                                                          \
  extern template Vector<dual<T>> dual_backprop<T>(const Network<T>&, const Matrix<T>&, const Targets<T>&,       \
                                                   const Matrix<T>&, const ActivationMove<T>&, T*);
BPCHECK_EXTERN_DUAL_BACKPROP(float)
BPCHECK_EXTERN_DUAL_BACKPROP(double)
BPCHECK_EXTERN_DUAL_BACKPROP(mp100)
#undef BPCHECK_EXTERN_DUAL_BACKPROP

}  // namespace bpcheck::hvp_detail
