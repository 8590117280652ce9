#pragma once
// What one rung's explicit instantiation of the built-in layers consists of.
#define BPCHECK_INSTANTIATE_LAYERS(T)                         \
  template class Dense<T>;                                    \
  template class ElementwiseLayer<Relu<T>, T>;                \
  template class ElementwiseLayer<LeakyRelu<T>, T>;           \
  template class ElementwiseLayer<Sigmoid<T>, T>;             \
  template class ElementwiseLayer<Tanh<T>, T>;                \
  template class ElementwiseLayer<Softplus<T>, T>;            \
  template class ElementwiseLayer<Gelu<T>, T>;                \
  template class ElementwiseLayer<Silu<T>, T>;                \
  template class Softmax<T>;                                  \
  template class LogSoftmax<T>;                               \
  template Matrix<T> softmax_columns<T>(const Matrix<T>&);    \
  template Matrix<T> log_softmax_columns<T>(const Matrix<T>&);
