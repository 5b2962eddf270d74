// Launch-shape helpers shared by the kernels/cuda files: the 1-D grid of a grid-stride loop and a
// thread's place in it. Included by the .cu files after portable.cuh, so it is compiled into both
// the cuda and the sim namespace. Tested through tests/kernels/*.
#pragma once

#include "kernels/cuda/portable.cuh"
#include "kernels/types.h"

namespace glia::kernels::GLIA_KERNEL_NS {

inline constexpr int kThreadsPerBlock = 256;
// A grid-stride loop needs no more blocks than fill the largest GPU a few times over.
inline constexpr index_t kMaxGridStrideBlocks = 4096;

inline unsigned grid_stride_blocks(index_t n) {
  const index_t blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<unsigned>(blocks < kMaxGridStrideBlocks ? blocks : kMaxGridStrideBlocks);
}

__device__ inline index_t global_thread_index() {
  return static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ inline index_t grid_thread_count() {
  return static_cast<index_t>(gridDim.x) * blockDim.x;
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
