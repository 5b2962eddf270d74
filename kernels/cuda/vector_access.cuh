// Vector loads and stores for the memory-bound kernels: V consecutive floats (V = 1 or 4) read or
// written as one access, float4 when V is 4 (one 16-byte transaction instead of four). A kernel
// takes the V = 4 path only when every pointer it touches is 16-byte aligned and every run of
// elements it walks (a plane) is a whole number of float4s; the wrappers check that with
// aligned16 and fall back to V = 1. Included by the .cu files after portable.cuh (compiled for
// cuda and sim). Tested through tests/kernels/batchnorm_test.cpp (aligned and unaligned inputs).
#pragma once

#include "kernels/cuda/portable.cuh"

#include <cstdint>

namespace glia::kernels::GLIA_KERNEL_NS {

// True when p may be read as float4 (null counts as aligned: the kernel does not read it).
inline bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

template <int V>
__device__ inline void load(const float* p, float (&v)[V]) {
  if constexpr (V == 4) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
  } else {
    for (int k = 0; k < V; ++k) v[k] = p[k];
  }
}

template <int V>
__device__ inline void store(float* p, const float (&v)[V]) {
  if constexpr (V == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  } else {
    for (int k = 0; k < V; ++k) p[k] = v[k];
  }
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
