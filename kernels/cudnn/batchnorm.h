// The cuDNN fallback for batch norm over NCHW (CUDNN_BATCHNORM_SPATIAL: per channel, statistics
// over n, h, w), with the contract of kernels/cuda's batch_norm_* (kernels/types.h
// BatchNormShape). Used by the engine under the `cudnn` policy and as the benchmark yardstick.
// Tested in tests/kernels/batchnorm_test.cpp (CudaCudnnBatchNorm, on a GPU only).
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/types.h"

namespace glia::kernels::cudnn {

// Training forward through cudnnBatchNormalizationForwardTraining: y from the batch statistics,
// save_mean / save_invstd = the batch mean and 1 / sqrt(biased var + eps), and the running
// statistics updated with factor s.momentum (cuDNN's exponentialAverageFactor; it keeps the
// unbiased variance, as PyTorch). running_mean and running_var may both be null (no update).
// weight and bias are required (cuDNN has no unscaled mode: pass ones and zeros).
void batch_norm_forward_training(cudnnHandle_t handle, const BatchNormShape& s, const float* x,
                                 const float* weight, const float* bias, float* y,
                                 float* running_mean, float* running_var, float* save_mean,
                                 float* save_invstd, cudaStream_t stream);
// Evaluation forward through cudnnBatchNormalizationForwardInference with the running statistics.
void batch_norm_forward_inference(cudnnHandle_t handle, const BatchNormShape& s, const float* x,
                                  const float* weight, const float* bias, const float* running_mean,
                                  const float* running_var, float* y, cudaStream_t stream);
// Training backward through cudnnBatchNormalizationBackward with the saved statistics: gx and the
// weight and bias gradients (written, not accumulated).
void batch_norm_backward(cudnnHandle_t handle, const BatchNormShape& s, const float* x,
                         const float* gy, const float* weight, const float* save_mean,
                         const float* save_invstd, float* gx, float* grad_weight, float* grad_bias,
                         cudaStream_t stream);

}  // namespace glia::kernels::cudnn
