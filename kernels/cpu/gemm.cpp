// Reference GEMM, row-major and batched: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] through
// cblas_sgemm / cblas_dgemm, one call per batch entry (see GemmShape). With beta == 0 BLAS never
// reads C, so NaN garbage there is overwritten. Tested in tests/kernels/gemm_test.cpp.
#include <cblas.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {
namespace {

void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
               const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
               const double* a, int lda, const double* b, int ldb, double beta, double* c,
               int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int to_int(index_t v, const char* what, const GemmShape& s) {
  if (v < 0 || v > std::numeric_limits<int>::max()) {
    throw std::invalid_argument("gemm: " + std::string(what) + " = " + std::to_string(v) +
                                " does not fit BLAS's int (m " + std::to_string(s.m) + ", n " +
                                std::to_string(s.n) + ", k " + std::to_string(s.k) + ")");
  }
  return static_cast<int>(v);
}

}  // namespace

template <class T>
void gemm(const GemmShape& s, const T* a, const T* b, T* c) {
  if (s.m == 0 || s.n == 0 || s.batch == 0) return;
  const T alpha = static_cast<T>(s.alpha), beta = static_cast<T>(s.beta);
  if (s.k == 0) {
    // op(A) * op(B) is empty: C = beta * C. BLAS would reject the (unused) leading dimensions.
    for (index_t bi = 0; bi < s.batch; ++bi) {
      T* cb = c + bi * s.stride_c;
      for (index_t i = 0; i < s.m; ++i) {
        for (index_t j = 0; j < s.n; ++j) {
          T& v = cb[i * s.ldc + j];
          v = beta == T(0) ? T(0) : beta * v;
        }
      }
    }
    return;
  }
  const int m = to_int(s.m, "m", s), n = to_int(s.n, "n", s), k = to_int(s.k, "k", s);
  const int lda = to_int(s.lda, "lda", s), ldb = to_int(s.ldb, "ldb", s),
            ldc = to_int(s.ldc, "ldc", s);
  const CBLAS_TRANSPOSE ta = s.trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = s.trans_b ? CblasTrans : CblasNoTrans;
  // BLAS parallelises each call itself.
  for (index_t bi = 0; bi < s.batch; ++bi) {
    blas_gemm(ta, tb, m, n, k, alpha, a + bi * s.stride_a, lda, b + bi * s.stride_b, ldb, beta,
              c + bi * s.stride_c, ldc);
  }
}

template void gemm<float>(const GemmShape&, const float*, const float*, float*);
template void gemm<double>(const GemmShape&, const double*, const double*, double*);

}  // namespace glia::kernels::cpu
