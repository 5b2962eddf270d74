// Block-wide float sums for kernels that give one block to one reduction (a batch-norm channel, a
// pooled plane): a warp-shuffle tree inside each warp, then the warps' partial sums through shared
// memory reduced by warp 0. The order of the additions depends on blockDim alone, so the result is
// deterministic. Included by the .cu files after portable.cuh (compiled for cuda and sim). Tested
// through tests/kernels/batchnorm_test.cpp and pool_test.cpp.
#pragma once

#include "kernels/cuda/portable.cuh"

namespace glia::kernels::GLIA_KERNEL_NS::block_reduce {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullWarp = 0xffffffffu;

__device__ inline float warp_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_down_sync(kFullWarp, v, offset);
  }
  return v;
}

// The sum of v over the block, returned to every thread. blockDim.x is a multiple of 32 and every
// thread of the block calls it (it holds two barriers). Consecutive calls need no barrier between
// them: a thread can only overwrite the shared slots after all have read the previous total.
__device__ inline float sum(float v) {
  __shared__ float warp_sums[kWarpSize];
  __shared__ float total;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  v = warp_sum(v);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / kWarpSize;
    v = warp_sum(lane < warps ? warp_sums[lane] : 0.0f);
    if (lane == 0) total = v;
  }
  __syncthreads();
  return total;
}

}  // namespace glia::kernels::GLIA_KERNEL_NS::block_reduce
