// Explicit instantiations of multi-head self-attention on float, double and their duals.
#include "bpcheck/layers/attention.hpp"

#define BPCHECK_INSTANTIATE_ATTENTION(T) template class MultiHeadAttention<T>;

namespace bpcheck {
BPCHECK_FAST_RUNGS(BPCHECK_INSTANTIATE_ATTENTION)
}
