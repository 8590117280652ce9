// Explicit instantiations of the embedding layer on dual<mp100>.
#include "bpcheck/layers/embedding.hpp"

#define BPCHECK_INSTANTIATE_EMBEDDING(T) template class Embedding<T>;

namespace bpcheck {
BPCHECK_INSTANTIATE_EMBEDDING(::bpcheck::dual<::bpcheck::mp100>)
}
