// A kernel that is correct only with its barrier, for the lane-order tests (simt_kernels_test.cpp)
// and the ThreadSanitizer tests (simt_tsan_race.cpp): each thread writes shared[t], then reads
// its neighbour's shared[(t + 1) % n]. Without the barrier the neighbour may not have written yet.
#pragma once

#include "kernels/cuda/portable.cuh"

namespace glia::simt::testing {

inline int rotate_value(unsigned t) {
  return static_cast<int>(t * t + 7);
}

// Launch: one block of n threads with n ints of dynamic shared memory; out[t] = value(t + 1 mod n).
__global__ void rotate_through_shared(int* out, bool with_barrier) {
  GLIA_DYNAMIC_SHARED(int, values);
  const unsigned t = threadIdx.x;
  const unsigned n = blockDim.x;
  values[t] = rotate_value(t);
  if (with_barrier) __syncthreads();
  out[blockIdx.x * n + t] = values[(t + 1) % n];
}

}  // namespace glia::simt::testing
