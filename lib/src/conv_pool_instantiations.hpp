#pragma once
// What one rung's explicit instantiation of convolution, pooling and flatten consists of.
#define BPCHECK_INSTANTIATE_CONV_POOL(T) \
  template class Conv<T>;                \
  template class Pool<T>;                \
  template class Flatten<T>;
