// The cuDNN fallback for softmax and log-softmax over the rows of [rows, classes] (ClassShape),
// with the contract of kernels/cuda's softmax / log_softmax and their backward. Used by the engine
// under the `softmax` policy (and timed against them under `auto`). Tested in
// tests/kernels/softmax_test.cpp (CudaCudnnSoftmax) and by the Cuda tests of
// tests/engine/softmax_test.cpp, on a GPU only.
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/types.h"

namespace glia::kernels::cudnn {

// y = softmax(x) (CUDNN_SOFTMAX_ACCURATE: max-subtracted) or log_softmax(x) (CUDNN_SOFTMAX_LOG)
// over each row.
void softmax_forward(cudnnHandle_t handle, bool log, const ClassShape& s, const float* x, float* y,
                     cudaStream_t stream);
// gx from the forward's output y and gy, for the same `log`. gx is written whole.
void softmax_backward(cudnnHandle_t handle, bool log, const ClassShape& s, const float* y,
                      const float* gy, float* gx, cudaStream_t stream);

}  // namespace glia::kernels::cudnn
