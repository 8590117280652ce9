#pragma once
// What one rung's explicit instantiation of the dual-number JVP oracle consists of.
#define BPCHECK_INSTANTIATE_JVP(T)                                                                             \
  template Jvp<T> jvp_input<T>(const DualForward<T>&, const Matrix<T>&, const Vector<T>&, const Matrix<T>&);   \
  template Jvp<T> jvp_parameters<T>(const DualForward<T>&, const Matrix<T>&, const Vector<T>&,                 \
                                    const Matrix<T>&);                                                         \
  template Jvp<T> jvp<T>(const DualForward<T>&, const Matrix<T>&, const Vector<T>&, const Matrix<T>&);         \
  template Matrix<T> jacobian_input_jvp<T>(const DualForward<T>&, const Matrix<T>&, const Vector<T>&);         \
  template Matrix<T> jacobian_parameters_jvp<T>(const DualForward<T>&, const Matrix<T>&, const Vector<T>&);
