#pragma once
// What one rung's explicit instantiation of the extra activations and dropout consists of.
#define BPCHECK_INSTANTIATE_EXTRA_ACTIVATIONS(T)        \
  template class ElementwiseLayer<Elu<T>, T>;           \
  template class ElementwiseLayer<Hardtanh<T>, T>;      \
  template class ElementwiseLayer<Mish<T>, T>;          \
  template class ElementwiseLayer<Swish<T>, T>;         \
  template class ElementwiseLayer<Hardswish<T>, T>;     \
  template class Dropout<T>;
