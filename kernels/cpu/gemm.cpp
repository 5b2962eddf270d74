// Reference GEMM, row-major and batched: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] through
// cblas_sgemm / cblas_dgemm (see GemmShape). With beta == 0 BLAS never reads C, so NaN garbage
// there is overwritten. BLAS runs single-threaded and this file spreads the work over the OpenMP
// team instead: batch entries, and for large products blocks of C's columns (or rows when C is
// tall), one BLAS call each. OpenBLAS's own threads would otherwise compete with the OpenMP team
// that the other cpu kernels use (on two cores that cost a third of a training step, mostly in
// the kernel's yield loops). Splitting C into blocks leaves each element's sum over k as it was.
// Tested in tests/kernels/gemm_test.cpp.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
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

extern "C" void openblas_set_num_threads(int num_threads);

void use_single_threaded_blas() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

// Below this many multiply-adds per call a parallel region costs more than it saves.
constexpr double kParallelMacs = 1 << 20;

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
  use_single_threaded_blas();
  // Tasks: batch entries times blocks of C. Blocks split the longer of C's two dimensions into
  // as many parts as it takes to give every thread work, in multiples of 16.
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const double macs = static_cast<double>(m) * n * k;
  const bool split_columns = n >= m;
  const int extent = split_columns ? n : m;
  int parts = 1;
  if (threads > 1 && macs >= kParallelMacs && s.batch < threads) {
    parts = static_cast<int>(std::min<index_t>((threads + s.batch - 1) / s.batch, extent));
  }
  const int block = ((extent + parts - 1) / parts + 15) / 16 * 16;
  parts = (extent + block - 1) / block;
  const index_t tasks = s.batch * parts;
#pragma omp parallel for schedule(static) if (tasks > 1 && macs * s.batch >= kParallelMacs)
  for (index_t t = 0; t < tasks; ++t) {
    const index_t bi = t / parts;
    const int begin = static_cast<int>(t % parts) * block;
    const int size = std::min(block, extent - begin);
    const T* ab = a + bi * s.stride_a;
    const T* bb = b + bi * s.stride_b;
    T* cb = c + bi * s.stride_c;
    if (split_columns) {
      // Columns [begin, begin + size) of op(B) and C.
      blas_gemm(ta, tb, m, size, k, alpha, ab, lda,
                bb + (s.trans_b ? static_cast<index_t>(begin) * ldb : begin), ldb, beta, cb + begin,
                ldc);
    } else {
      // Rows [begin, begin + size) of op(A) and C.
      blas_gemm(ta, tb, size, n, k, alpha,
                ab + (s.trans_a ? begin : static_cast<index_t>(begin) * lda), lda, bb, ldb, beta,
                cb + static_cast<index_t>(begin) * ldc, ldc);
    }
  }
}

template void gemm<float>(const GemmShape&, const float*, const float*, float*);
template void gemm<double>(const GemmShape&, const double*, const double*, double*);

}  // namespace glia::kernels::cpu
