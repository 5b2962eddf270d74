// The one header every kernels/cuda/*.cu file includes first. The same kernel source is compiled
// twice (DESIGN.md section 3): by nvcc into namespace glia::kernels::cuda, and by g++ with the SIMT
// emulator (kernels/simt) into namespace glia::kernels::sim. Kernel files use only:
//   namespace glia::kernels::GLIA_KERNEL_NS { ... }          the backend's namespace
//   GLIA_LAUNCH(kernel, grid, block, shmem_bytes, stream, args...)   instead of <<<...>>>
//   GLIA_DYNAMIC_SHARED(type, name);                           a pointer to dynamic shared memory
//   GLIA_SET_MAX_DYNAMIC_SHARED(kernel, bytes);                opt in to more than 48 KiB
//   GLIA_STATIC_SHARED(type, name);                            a static shared array, which the
//                                                              emulator poisons and counts
//   GLIA_LAUNCH_BOUNDS(kernel, max_threads);                   after a kernel declared with
//                                                              __launch_bounds__(max_threads), at
//                                                              namespace scope once per template
//                                                              instance ((k<1, T>) in parentheses)
//                                                              or in a launcher template
//   GLIA_UNROLL                                                #pragma unroll under nvcc
// plus __global__/__device__, threadIdx & co, __syncthreads*, the _sync warp intrinsics, atomics
// and the float math intrinsics. No host runtime calls, no CUB/Thrust. Shared memory is declared
// only through the two macros (a raw `__shared__` outside this file fails the test
// cpu:kernels.source_rules, tests/kernels/kernel_source_rules.cmake).
#pragma once

namespace glia::kernels {
// `type` of GLIA_STATIC_SHARED(type, name), spelt so that it may be an array type (float[2][64]).
template <class T>
using Declared = T;
}  // namespace glia::kernels

#if defined(__CUDACC__)

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define GLIA_KERNEL_NS cuda

// Before a loop of a constant trip count whose arrays must stay in registers.
#define GLIA_UNROLL _Pragma("unroll")

namespace glia::kernels::cuda {
// Turns a failed launch into an exception naming the kernel and the call site.
inline void check_launch(const char* kernel, const char* file, int line) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA launch of ") + kernel + " at " + file + ":" +
                             std::to_string(line) + " failed: " + cudaGetErrorString(err));
  }
}
}  // namespace glia::kernels::cuda

#define GLIA_LAUNCH(kernel, grid, block, shmem, stream, ...)                              \
  do {                                                                                    \
    kernel<<<(grid), (block), (shmem), static_cast<cudaStream_t>(stream)>>>(__VA_ARGS__); \
    ::glia::kernels::cuda::check_launch(#kernel, __FILE__, __LINE__);                     \
  } while (0)

#define GLIA_DYNAMIC_SHARED(type, name)                                 \
  extern __shared__ __align__(16) unsigned char glia_dynamic_shared_[]; \
  type* name = reinterpret_cast<type*>(glia_dynamic_shared_)

#define GLIA_STATIC_SHARED(type, name) __shared__ __align__(16)::glia::kernels::Declared<type> name

#define GLIA_LAUNCH_BOUNDS(kernel, max_threads) \
  static_assert((max_threads) > 0 && (max_threads) <= 1024, "launch bounds of " #kernel)

#define GLIA_SET_MAX_DYNAMIC_SHARED(kernel, bytes)                                            \
  do {                                                                                        \
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (bytes)) != \
        cudaSuccess)                                                                          \
      ::glia::kernels::cuda::check_launch("cudaFuncSetAttribute(" #kernel ")", __FILE__,      \
                                          __LINE__);                                          \
  } while (0)

#else  // compiled by the host compiler for the sim device

#include "kernels/simt/simt.h"

#define GLIA_KERNEL_NS sim

#define GLIA_UNROLL

#define GLIA_LAUNCH(kernel, grid, block, shmem, stream, ...)                                    \
  do {                                                                                          \
    (void)(stream);                                                                             \
    ::glia::simt::launch(::glia::simt::LaunchSite{#kernel, __FILE__, __LINE__}, kernel, (grid), \
                         (block), (shmem), __VA_ARGS__);                                        \
  } while (0)

#define GLIA_DYNAMIC_SHARED(type, name) \
  type* name = reinterpret_cast<type*>(::glia::simt::dynamic_shared())

#define GLIA_SET_MAX_DYNAMIC_SHARED(kernel, bytes) \
  ::glia::simt::set_max_dynamic_shared(reinterpret_cast<const void*>(&kernel), (bytes))

#define GLIA_STATIC_SHARED(type, name)                                   \
  static thread_local __align__(16)::glia::kernels::Declared<type> name; \
  ::glia::simt::detail::note_static_shared(&name, sizeof(name), #name,   \
                                           std::source_location::current())

// Registered before main runs, so every launch of the kernel is checked against its bounds. The
// flag's name is made unique by the line, so that `kernel` may be a template-id.
#define GLIA_LAUNCH_BOUNDS_FLAG_(line) glia_launch_bounds_##line
#define GLIA_LAUNCH_BOUNDS_FLAG(line) GLIA_LAUNCH_BOUNDS_FLAG_(line)
#define GLIA_LAUNCH_BOUNDS(kernel, max_threads)                          \
  [[maybe_unused]] static const bool GLIA_LAUNCH_BOUNDS_FLAG(__LINE__) = \
      ::glia::simt::set_launch_bounds(reinterpret_cast<const void*>(&kernel), (max_threads))

#endif
