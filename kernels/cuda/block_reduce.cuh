// Warp and block float reductions for kernels that give one warp or one block to one reduction (a
// row of a reduce_sum, a batch-norm channel, a pooled plane, a sample's loss terms): a
// warp-shuffle tree inside each warp, then the warps' partial sums through shared memory reduced
// by warp 0. The order of the additions depends on blockDim alone, so results are deterministic.
// Included by the .cu files after portable.cuh (compiled for cuda and sim). Tested through
// tests/kernels/reduce_test.cpp, loss_test.cpp, batchnorm_test.cpp and pool_test.cpp.
#pragma once

#include "kernels/cuda/portable.cuh"

#include <cmath>

namespace glia::kernels::GLIA_KERNEL_NS::block_reduce {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullWarp = 0xffffffffu;

// The warp's sum, valid in lane 0.
__device__ inline float warp_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_down_sync(kFullWarp, v, offset);
  }
  return v;
}

// The warp's sum and max in every lane (butterfly), so the whole warp can use them.
__device__ inline float warp_all_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(kFullWarp, v, offset);
  }
  return v;
}
__device__ inline float warp_all_max(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(kFullWarp, v, offset));
  }
  return v;
}

// The block-wide sums of K values, valid in thread 0 (one barrier). blockDim.x is a multiple of
// 32 and every thread of the block calls it.
template <int K>
__device__ inline void sums_in_thread0(float (&v)[K]) {
  GLIA_STATIC_SHARED(float[K][kWarpSize], warp_sums);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  for (int k = 0; k < K; ++k) v[k] = warp_sum(v[k]);
  if (lane == 0) {
    for (int k = 0; k < K; ++k) warp_sums[k][warp] = v[k];
  }
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / kWarpSize;
    for (int k = 0; k < K; ++k) v[k] = warp_sum(lane < warps ? warp_sums[k][lane] : 0.0f);
  }
}
__device__ inline float sum_in_thread0(float v) {
  float values[1] = {v};
  sums_in_thread0(values);
  return values[0];
}

// The sum of v over the block, returned to every thread. blockDim.x is a multiple of 32 and every
// thread of the block calls it (it holds two barriers). Consecutive calls need no barrier between
// them: a thread can only overwrite the shared slots after all have read the previous total.
__device__ inline float sum(float v) {
  GLIA_STATIC_SHARED(float[kWarpSize], warp_sums);
  GLIA_STATIC_SHARED(float, total);
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

// The max of v over the block, returned to every thread; the same contract as sum (used by the
// block-per-row softmax, tested through tests/kernels/softmax_test.cpp).
__device__ inline float max(float v) {
  GLIA_STATIC_SHARED(float[kWarpSize], warp_maxes);
  GLIA_STATIC_SHARED(float, total);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  v = warp_all_max(v);
  if (lane == 0) warp_maxes[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / kWarpSize;
    v = warp_all_max(lane < warps ? warp_maxes[lane] : -INFINITY);
    if (lane == 0) total = v;
  }
  __syncthreads();
  return total;
}

}  // namespace glia::kernels::GLIA_KERNEL_NS::block_reduce
