// The cuBLAS fallback for GEMM: the same contract as kernels/cuda's gemm (row-major, batched,
// see GemmShape), used by the engine under the `cudnn` policy and as the benchmark yardstick.
// Tested in tests/kernels/gemm_test.cpp (the Cuda cases).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/types.h"

namespace glia::kernels::cudnn {

// C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] on `stream`, through cublasSgemmStridedBatched.
// Sets the handle's stream and host pointer mode; leaves its math mode to the caller. Throws
// std::runtime_error naming the call and the shape when cuBLAS fails, std::invalid_argument when
// a size does not fit cuBLAS's int.
void gemm(cublasHandle_t handle, const GemmShape& s, const float* a, const float* b, float* c,
          cudaStream_t stream);

}  // namespace glia::kernels::cudnn
