// Explicit instantiations of the embedding layer on float, double and their duals.
#include "bpcheck/layers/embedding.hpp"

#define BPCHECK_INSTANTIATE_EMBEDDING(T) template class Embedding<T>;

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_EMBEDDING)
}
