// Asynchronous global-to-shared copies (cp.async) and aligned float4 accesses, one source for both
// compilers (DESIGN.md section 3):
//   cp_async<B>(dst, src, n)   copies n of B bytes (B = 4, 8, 16) from global src to shared dst and
//                              zero-fills the other B - n; both addresses aligned to B
//   cp_async_commit()          closes the group of copies issued since the last commit
//   cp_async_wait<N>()         waits until at most the newest N committed groups are in flight;
//                              the copies of the older groups are then visible to this thread (and,
//                              after a __syncthreads, to the block)
//   load_float4 / store_float4 16-byte accesses; the pointer must be 16-byte aligned
// Under nvcc for sm_80+ these are the PTX instructions; below sm_80 the copy is synchronous (and
// the group calls do nothing), which satisfies the same contract. In the emulator the copy happens
// at the wait that covers it and its destination reads as NaN until then, so a kernel that reads
// before waiting fails; misaligned addresses and destinations outside shared memory are errors.
// Tested in tests/simt/simt_kernels_test.cpp and through the GEMM and convolution kernels.
#pragma once

#include "kernels/cuda/portable.cuh"

namespace glia::kernels::GLIA_KERNEL_NS {

#if defined(__CUDACC__)

template <int Bytes>
__device__ __forceinline__ void cp_async(void* dst, const void* src, int src_bytes) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const auto shared = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  if constexpr (Bytes == 16) {
    // .cg: bypass L1, as the tile is read once from shared memory.
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared), "l"(src),
                 "r"(src_bytes)
                 : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(shared), "l"(src),
                 "n"(Bytes), "r"(src_bytes)
                 : "memory");
  }
#else
  // Word by word: the kernels copy whole floats (src_bytes a multiple of 4).
  auto* d = static_cast<unsigned*>(dst);
  const auto* s = static_cast<const unsigned*>(src);
  for (int i = 0; i < Bytes / 4; ++i) d[i] = 4 * i < src_bytes ? s[i] : 0u;
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

__device__ __forceinline__ float4 load_float4(const float* p) {
  return *reinterpret_cast<const float4*>(p);
}

__device__ __forceinline__ void store_float4(float* p, float4 v) {
  *reinterpret_cast<float4*>(p) = v;
}

#else  // the emulator

template <int Bytes>
inline void cp_async(void* dst, const void* src, int src_bytes,
                     std::source_location where = std::source_location::current()) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
  ::glia::simt::detail::async_copy(dst, src, Bytes, static_cast<unsigned>(src_bytes), where);
}

inline void cp_async_commit() {
  ::glia::simt::detail::async_commit();
}

template <int N>
inline void cp_async_wait() {
  static_assert(N >= 0, "cp.async.wait_group takes a non-negative count");
  ::glia::simt::detail::async_wait(N);
}

inline float4 load_float4(const float* p,
                          std::source_location where = std::source_location::current()) {
  ::glia::simt::detail::check_alignment(p, 16, "float4 load", where);
  return float4{p[0], p[1], p[2], p[3]};
}

inline void store_float4(float* p, float4 v,
                         std::source_location where = std::source_location::current()) {
  ::glia::simt::detail::check_alignment(p, 16, "float4 store", where);
  p[0] = v.x;
  p[1] = v.y;
  p[2] = v.z;
  p[3] = v.w;
}

#endif

}  // namespace glia::kernels::GLIA_KERNEL_NS
