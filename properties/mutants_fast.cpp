// The mutant zoo compiled once on float, double and their duals, and on the 16-bit rungs (mp100 apart:
// its code is the slow one to compile).
#include "mutant_layers.hpp"

namespace bpcheck::mutants {
#define BPCHECK_INSTANTIATE_MAKE_MUTANT(T) template AnyLayer<T> make_mutant<T>(Mutant, Index, Index);
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_MAKE_MUTANT)
BPCHECK_HALF_RUNGS(BPCHECK_INSTANTIATE_MAKE_MUTANT)
}  // namespace bpcheck::mutants
