// The cuDNN fallback for 2-D pooling over NCHW (kernels/types.h Pool2dShape), with the contract of
// kernels/cuda's max_pool2d / avg_pool2d / global_avg_pool2d except that max pooling keeps no
// indices: cuDNN's backward finds the maximum again from x and y. NaN propagates
// (CUDNN_PROPAGATE_NAN). Used by the engine under the `cudnn` policy and as the benchmark
// yardstick. Tested in tests/kernels/pool_test.cpp (CudaCudnnPool, on a GPU only).
#pragma once

#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/types.h"

namespace glia::kernels::cudnn {

enum class PoolMode { max, average };

// y = pool(x): CUDNN_POOLING_MAX, or CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING /
// _EXCLUDE_PADDING by s.count_include_pad. A global average pool is s = Pool2dShape::global(...).
void pool2d_forward(cudnnHandle_t handle, PoolMode mode, const Pool2dShape& s, const float* x,
                    float* y, cudaStream_t stream);
// gx from gy, with the forward's x and y (max pooling reads both; average pooling neither, but
// cuDNN takes them all the same). gx is written whole.
void pool2d_backward(cudnnHandle_t handle, PoolMode mode, const Pool2dShape& s, const float* x,
                     const float* y, const float* gy, float* gx, cudaStream_t stream);

}  // namespace glia::kernels::cudnn
