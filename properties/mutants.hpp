#pragma once
// Deliberately broken layers: each wraps or derives from a built-in layer and plants one classic
// backprop bug (or one numerical flaw) that the verification engine must report.
//
//   auto report = bpcheck::verify_layer(bpcheck::mutants::MutantFactory{bpcheck::mutants::Mutant::flipped_sign});
//   // report.passed() == false; the worst entry of `backward vs oracle` [mp100] is dW[1,2]
//
// properties/mutant_zoo_test.cpp runs the property suite against every wrong-gradient mutant in
// float, double and mp100 and prints the detection table; checks/verify_test.cpp tests each check on
// the mutant it exists for.
//
// Every mutant is reachable through one factory type (MutantFactory, returning AnyLayer<T>), so the
// engine is instantiated once for all of them rather than once per mutant: mp100 code is slow to compile.
// For the same reason the mutant classes (mutant_layers.hpp) are compiled once per rung, in
// mutants_fast.cpp, mutants_mp100.cpp and mutants_dual_mp100.cpp; a test includes only this header.
#include "bpcheck/layer.hpp"
#include "bpcheck/scalar.hpp"
#include "bpcheck/verify/verify.hpp"

namespace bpcheck::mutants {

enum class Mutant {
  transposed_weight,
  missing_derivative,
  relative_offset,
  flipped_sign,
  bias_first_sample,
  derivative_at_output,
  overwritten_dtheta,
  wrong_in_float,
  wrong_for_batch,
  coupled_samples,
  throws_in_float,
  naive_softmax,
  naive_softplus,
  tangent_dropped,
  wrong_jacobian,
  relative_offset_small,
  divided_by_batch,
  missing_bias_gradient,
  off_by_one,
  wrong_for_negative,
  softmax_diagonal_only,
  log_softmax_missing_sum,
  softplus_mirrored,
  silu_missing_term,
  gelu_wrong_approximation,
  norm_missing_epsilon,
  rms_norm,  ///< the correct twin of norm_missing_epsilon
  parameter_backward_missing_bias,
  // Layers of common architectures, each with fixed shapes (input_size and units are ignored):
  conv_groups_weight_into_first,   ///< conv2d, 2 → 4 channels in 2 groups: every group's dW lands in group 0's rows
  batch_norm2d_missing_mean,       ///< batch_norm2d (2 channels of 2 × 2, train): dx without its −mean(g) term
  adaptive_pool_uniform_bins,      ///< adaptive_avg_pool2d 5 × 4 → 3 × 3: every bin's dx divided by ⌈H/oh⌉⌈W/ow⌉
  dense_tokens_bias_first_token,   ///< dense 2 → 3 on 3 tokens: db from token 0 only
  layer_norm_tokens_affine_first,  ///< layer_norm of 3 features on 2 tokens: dγ, dβ from token 0 only
  position_embedding_untransposed, ///< position_embedding 3 × 2: dP(t, f) read at θ's order instead of the sample's
  token_mean_missing_scale,        ///< token_mean of 3 tokens: dx = dy, the 1/T forgotten
  transformer_wrong_activation,    ///< transformer_encoder_layer, gelu forward, backward through relu
};

/// Builds a mutant on T. Sizes: `input_size` inputs and `units` units for the dense ones (square for
/// the transposed weight; at least 3 inputs and 2 units for the flipped dW[1,2]), width `input_size`
/// for the others; 0 chooses the defaults (dense 4 → 3, width 4, 3 × 3 for the transposed weight).
template <class T>
AnyLayer<T> make_mutant(Mutant m, Index input_size = 0, Index units = 0);

#define BPCHECK_EXTERN_MAKE_MUTANT(T) extern template AnyLayer<T> make_mutant<T>(Mutant, Index, Index);
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_MAKE_MUTANT)
BPCHECK_EXTERN_MAKE_MUTANT(::bpcheck::Emulated)
#undef BPCHECK_EXTERN_MAKE_MUTANT

/// A verify_layer factory for any mutant.
struct MutantFactory {
  Mutant which;
  Index input_size = 0;  ///< 0: the mutant's default sizes
  Index units = 0;
  template <class T>
  AnyLayer<T> operator()(rung<T>) const {
    return make_mutant<T>(which, input_size, units);
  }
};

}  // namespace bpcheck::mutants
