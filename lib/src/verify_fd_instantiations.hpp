#pragma once
// What one rung's explicit instantiation of the finite-difference oracle consists of.
#define BPCHECK_INSTANTIATE_FD(T)                                                                        \
  template T fd_default_step<T>(FdScheme, const T&, int);                                                \
  template T fd_nudge_step<T>(const T&, const T&);                                                       \
  template FdDerivative<T> directional_derivative_fd<T>(const VectorFunction<T>&, const Vector<T>&,      \
                                                        const Vector<T>&, const FdOptions<T>&);          \
  template FdJacobian<T> jacobian_fd<T>(const VectorFunction<T>&, const Vector<T>&, const FdOptions<T>&); \
  template OneSidedJacobians<T> one_sided_disagreement<T>(const VectorFunction<T>&, const Vector<T>&,    \
                                                          const std::optional<T>&);
