// The cuBLAS GEMM fallback. cuBLAS is column-major; a row-major matrix is the column-major view
// of its transpose, so the row-major C = op(A) op(B) is computed as the column-major
// C^T = op(B)^T op(A)^T: cuBLAS gets B before A, n before m, and each operand's own transpose flag.
// The math mode follows kernels/cudnn/settings.h (FP32 FMA by default, TF32 tensor cores when
// allowed). Tested in tests/kernels/gemm_test.cpp (the Cuda cases) against kernels/cpu/gemm.cpp.
#include "kernels/cudnn/gemm.h"

#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/cudnn/settings.h"

namespace glia::kernels::cudnn {
namespace {

void check(cublasStatus_t status, const char* call, const GemmShape& s) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(call) + " failed with " + cublasGetStatusName(status) +
                             " (" + cublasGetStatusString(status) + ") for gemm " + s.describe());
  }
}

int to_int(index_t v, const char* what, const GemmShape& s) {
  if (v < 0 || v > std::numeric_limits<int>::max()) {
    throw std::invalid_argument("cuBLAS gemm: " + std::string(what) + " = " + std::to_string(v) +
                                " does not fit cuBLAS's int (" + s.describe() + ")");
  }
  return static_cast<int>(v);
}

}  // namespace

void gemm(cublasHandle_t handle, const GemmShape& s, const float* a, const float* b, float* c,
          cudaStream_t stream) {
  if (s.m == 0 || s.n == 0 || s.batch == 0) return;
  const int m = to_int(s.m, "m", s), n = to_int(s.n, "n", s), k = to_int(s.k, "k", s);
  const int batch = to_int(s.batch, "batch", s);
  // With k == 0 the operands are never read, but cuBLAS still checks their leading dimensions.
  const int lda = k == 0 ? (s.trans_a ? m : 1) : to_int(s.lda, "lda", s);
  const int ldb = k == 0 ? (s.trans_b ? 1 : n) : to_int(s.ldb, "ldb", s);
  const int ldc = to_int(s.ldc, "ldc", s);
  const float alpha = static_cast<float>(s.alpha), beta = static_cast<float>(s.beta);
  const cublasOperation_t op_a = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;

  check(cublasSetStream(handle, stream), "cublasSetStream", s);
  check(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode", s);
  check(cublasSetMathMode(handle, cublas_math(settings().math)), "cublasSetMathMode", s);
  check(cublasSgemmStridedBatched(handle, op_b, op_a, n, m, k, &alpha, b, ldb, s.stride_b, a, lda,
                                  s.stride_a, &beta, c, ldc, s.stride_c, batch),
        "cublasSgemmStridedBatched", s);
}

}  // namespace glia::kernels::cudnn
