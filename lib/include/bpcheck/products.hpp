#pragma once
// Matrix products compiled once per rung, for layers whose products are Eigen's own.
//
//   Matrix<T> S = product_tn<T>(Q.middleRows(h * d, d), K.middleRows(h * d, d));   // S = Qₕᵀ Kₕ
//   dW += product_nt<T>(dY, X);                                                   // dW += dY Xᵀ
//
// Why: every distinct product expression (a block times a transposed block, …) makes Eigen instantiate
// its product kernels anew, on each of the six rungs. A layer that calls these functions instead
// compiles none: lib/src/instantiate_*.cpp instantiate one set per rung. Measured on attention.hpp's 27
// products (compile CPU, another build beside it): its three units 145 s → 42 s, plus 31 s for the three
// products_*.cpp. Operands are Eigen::Ref, so a block of a matrix or a Map is passed without a copy; the
// result is Eigen's product, as before.
#include "bpcheck/scalar.hpp"

namespace bpcheck {

template <class T>
using ConstMatrixRef = Eigen::Ref<const Matrix<T>>;

/// A·B.
template <class T>
Matrix<T> product(const ConstMatrixRef<T>& A, const ConstMatrixRef<T>& B);
/// Aᵀ·B.
template <class T>
Matrix<T> product_tn(const ConstMatrixRef<T>& A, const ConstMatrixRef<T>& B);
/// A·Bᵀ.
template <class T>
Matrix<T> product_nt(const ConstMatrixRef<T>& A, const ConstMatrixRef<T>& B);

#define BPCHECK_EXTERN_PRODUCTS(T)                                                               \
  extern template Matrix<T> product<T>(const ConstMatrixRef<T>&, const ConstMatrixRef<T>&);    \
  extern template Matrix<T> product_tn<T>(const ConstMatrixRef<T>&, const ConstMatrixRef<T>&); \
  extern template Matrix<T> product_nt<T>(const ConstMatrixRef<T>&, const ConstMatrixRef<T>&);
BPCHECK_ALL_RUNGS(BPCHECK_EXTERN_PRODUCTS)  // kept defined: lib/src/quad.hpp declares quad's with it

}  // namespace bpcheck
