// Launch-shape helpers shared by the kernels/cuda files: the 1-D grid of a grid-stride loop, a
// thread's place in it, and the cap on grids that kernels grid-stride beyond. Included by the .cu
// files after portable.cuh, so it is compiled into both the cuda and the sim namespace. Tested
// through tests/kernels/* (whose sim runs include one under a lowered grid limit).
#pragma once

#include "kernels/cuda/portable.cuh"
#include "kernels/types.h"

namespace glia::kernels::GLIA_KERNEL_NS {

inline constexpr int kThreadsPerBlock = 256;
// A grid-stride loop needs no more blocks than fill the largest GPU a few times over.
inline constexpr index_t kMaxGridStrideBlocks = 4096;

// `limit`, the most blocks a grid dimension gets where the kernel grid-strides beyond it. On sim a
// test setting (simt::Config::grid_limit) may lower it, so that small inputs make blocks take the
// loop's later passes, which only large inputs reach on a GPU.
inline index_t grid_limit(index_t limit) {
#if defined(__CUDACC__)
  return limit;
#else
  const index_t lowered = ::glia::simt::config().grid_limit;
  return lowered > 0 && lowered < limit ? lowered : limit;
#endif
}

inline unsigned grid_stride_blocks(index_t n) {
  const index_t blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
  const index_t limit = grid_limit(kMaxGridStrideBlocks);
  return static_cast<unsigned>(blocks < limit ? blocks : limit);
}

__device__ inline index_t global_thread_index() {
  return static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ inline index_t grid_thread_count() {
  return static_cast<index_t>(gridDim.x) * blockDim.x;
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
