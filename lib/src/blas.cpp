// The dense layer's float/double matrix products, through OpenBLAS's CBLAS interface.
#include <cblas.h>

#include "bpcheck/layers/dense.hpp"

namespace bpcheck::blas {

namespace {
CBLAS_TRANSPOSE op(bool transpose) { return transpose ? CblasTrans : CblasNoTrans; }
}  // namespace

void gemm(bool transpose_a, bool transpose_b, Index m, Index n, Index k, float alpha, const float* A, Index lda,
          const float* B, Index ldb, float beta, float* C, Index ldc) {
  cblas_sgemm(CblasColMajor, op(transpose_a), op(transpose_b), int(m), int(n), int(k), alpha, A,
              int(lda), B, int(ldb), beta, C, int(ldc));
}

void gemm(bool transpose_a, bool transpose_b, Index m, Index n, Index k, double alpha, const double* A, Index lda,
          const double* B, Index ldb, double beta, double* C, Index ldc) {
  cblas_dgemm(CblasColMajor, op(transpose_a), op(transpose_b), int(m), int(n), int(k), alpha, A,
              int(lda), B, int(ldb), beta, C, int(ldc));
}

}  // namespace bpcheck::blas
