#pragma once
// The extreme singular values of a network's Jacobian products P = J_last⋯J_first at one sample, without
// forming P: Golub–Kahan–Lanczos bidiagonalisation driven by products P·v (forward mode: the layers on
// dual numbers) and Pᵀ·u (the layers' backward), with full reorthogonalisation.
//
// After k steps P·V_k = U_k·B_k with B_k k×k upper bidiagonal and V_k, U_k orthonormal, so B_k's
// singular values are those of a compression of P: σ_max(B_k) ≤ σ_max(P) and σ_min(B_k) ≥ σ_min(P)
// (σ_min the min(rows, cols)-th). σ_max converges in a few steps; σ_min only as k nears min(rows, cols),
// where (k = min(rows, cols)) B_k holds every singular value of P exactly.
//
// Precision: double first. Its products carry rounding errors of about u·∏‖J_i‖ (each layer's JVP is
// evaluated in double), so σ_min is resolved to a few digits when σ_min > 1e-8·∏‖J_i‖; otherwise the run
// is repeated in mp100 where that is affordable (every layer at most max_mp100_width units), and else
// σ_min is reported as not resolved (only bounded above).
#include <cstdint>
#include <string>
#include <vector>

#include "bpcheck/network.hpp"

namespace bpcheck::report {

struct SpectrumEstimate {
  double sigma_max = 0;  ///< a lower bound of σ_max (the largest Ritz value)
  double sigma_min = 0;  ///< an upper bound of σ_min (the smallest Ritz value)
  double cond = 0;       ///< σ_max/σ_min over the nonzero Ritz values (a lower bound unless exact)
  bool exact = false;    ///< the Krylov space is all of it: every singular value found
  bool singular = false; ///< a Ritz value below the precision's floor: P is singular
  bool resolved = true;  ///< false: σ_min lies below what double resolves and mp100 was not affordable
  Index rank = 0;        ///< Ritz values above the floor (the rank of P when exact)
  int steps = 0;
  Index dimension = 0;   ///< min(rows, cols): the number of singular values
  std::string precision; ///< "double" or "mp100": where the final run went
  double norm_product = 0;  ///< ∏‖J_i‖ (Ritz estimates) of the layers of the product, the scale of double's error
  std::vector<double> values;  ///< the Ritz values, decreasing (all singular values when exact)
};

struct LanczosOptions {
  int max_steps = 32;
  Index max_mp100_width = 1024;  ///< widest layer of a product for the mp100 rerun
  bool double_first = true;      ///< false: mp100 from the start (for tests)
  std::uint64_t seed = 42;
};

/// Singular-value estimates of P = J_{last−1}⋯J_first at x (the input of layer `first`, one sample,
/// exact in mp100). layer_norms[i] (optional, ‖J_i‖ estimates) give the scale of double's rounding;
/// without them each layer's own norm is estimated first.
SpectrumEstimate product_spectrum(const Network<mp100>& net, const Vector<mp100>& x, std::size_t first,
                                  std::size_t last, const LanczosOptions& options,
                                  const std::vector<double>& layer_norms = {});

}  // namespace bpcheck::report
