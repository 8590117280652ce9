#pragma once
// The definitions behind bpcheck/products.hpp, and what one rung's instantiation consists of.
#include "bpcheck/products.hpp"

namespace bpcheck {

template <class T>
Matrix<T> product(const ConstMatrixRef<T>& A, const ConstMatrixRef<T>& B) {
  return A * B;
}
template <class T>
Matrix<T> product_tn(const ConstMatrixRef<T>& A, const ConstMatrixRef<T>& B) {
  return A.transpose() * B;
}
template <class T>
Matrix<T> product_nt(const ConstMatrixRef<T>& A, const ConstMatrixRef<T>& B) {
  return A * B.transpose();
}

}  // namespace bpcheck

#define BPCHECK_INSTANTIATE_PRODUCTS(T)                                                   \
  template Matrix<T> product<T>(const ConstMatrixRef<T>&, const ConstMatrixRef<T>&);    \
  template Matrix<T> product_tn<T>(const ConstMatrixRef<T>&, const ConstMatrixRef<T>&); \
  template Matrix<T> product_nt<T>(const ConstMatrixRef<T>&, const ConstMatrixRef<T>&);
