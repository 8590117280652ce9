// The mutant zoo compiled once on mp100 and on Emulated, mp100 that rounds like float or double, which
// verify_layer runs a factory's layer on (mp100 apart: its code is the slow one to compile).
#include "mutant_layers.hpp"

namespace bpcheck::mutants {
#define BPCHECK_INSTANTIATE_MAKE_MUTANT(T) template AnyLayer<T> make_mutant<T>(Mutant, Index, Index);
BPCHECK_INSTANTIATE_MAKE_MUTANT(::bpcheck::mp100)
BPCHECK_INSTANTIATE_MAKE_MUTANT(::bpcheck::Emulated)
}  // namespace bpcheck::mutants
