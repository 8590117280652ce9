#pragma once
// What one rung's explicit instantiation of the normalisation layers consists of.
#define BPCHECK_INSTANTIATE_NORMS(T) \
  template class LayerNorm<T>;       \
  template class BatchNormTrain<T>;  \
  template class BatchNormEval<T>;
