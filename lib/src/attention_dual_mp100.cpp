// Explicit instantiations of multi-head self-attention on dual<mp100>.
#include "bpcheck/layers/attention.hpp"

#define BPCHECK_INSTANTIATE_ATTENTION(T) template class MultiHeadAttention<T>;

namespace bpcheck {
BPCHECK_INSTANTIATE_ATTENTION(::bpcheck::dual<::bpcheck::mp100>)
}
