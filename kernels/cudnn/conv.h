// The cuDNN fallback for 2-D convolution: the same contract as kernels/cuda's conv2d_* (NCHW,
// float, cross-correlation, groups = 1; see kernels/conv_shape.h), used by the engine under the
// `cudnn` policy and as the benchmark yardstick. Each pass takes its algorithm from cuDNN's
// heuristics (cudnnGet*Algorithm_v7) in FMA math (no TF32, so results match the native float
// kernels); the caller asks the pass for its workspace size and allocates it. Every status is
// checked: failures throw std::runtime_error naming the call and the shape, std::invalid_argument
// when a size does not fit cuDNN's int. Tested in tests/kernels/conv_test.cpp (CudaCudnnConv).
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>

#include "kernels/conv_shape.h"

namespace glia::kernels::cudnn {

// Bytes of device workspace each pass needs with the algorithm it will pick for s.
std::size_t conv2d_forward_workspace_size(cudnnHandle_t handle, const ConvShape& s);
std::size_t conv2d_backward_data_workspace_size(cudnnHandle_t handle, const ConvShape& s);
std::size_t conv2d_backward_filter_workspace_size(cudnnHandle_t handle, const ConvShape& s);

// y = conv(x, w) + bias (bias may be null). The handle is bound to `stream`.
void conv2d_forward(cudnnHandle_t handle, const ConvShape& s, const float* x, const float* w,
                    const float* bias, float* y, void* workspace, std::size_t workspace_bytes,
                    cudaStream_t stream);
// gx = the gradient w.r.t. x (written whole).
void conv2d_backward_data(cudnnHandle_t handle, const ConvShape& s, const float* gy, const float* w,
                          float* gx, void* workspace, std::size_t workspace_bytes,
                          cudaStream_t stream);
// gw = the gradient w.r.t. the weight (written whole).
void conv2d_backward_filter(cudnnHandle_t handle, const ConvShape& s, const float* x,
                            const float* gy, float* gw, void* workspace,
                            std::size_t workspace_bytes, cudaStream_t stream);
// gb[co] = sum over n, oh, ow of gy[n, co, oh, ow].
void conv2d_backward_bias(cudnnHandle_t handle, const ConvShape& s, const float* gy, float* gb,
                          cudaStream_t stream);

}  // namespace glia::kernels::cudnn
