// Raw memory of every device and byte copies between them. Host memory (cpu, sim) is 64-byte
// aligned so kernels may vectorise; cuda memory comes from a caching allocator over cudaMalloc
// (engine/cuda/allocator.cpp) whose cache and counters are exposed here without CUDA types.
// Tested in tests/engine/device_test.cpp and tests/engine/tensor_test.cpp.
#pragma once

#include <cstddef>

#include "engine/device.h"

namespace glia {

inline constexpr std::size_t kHostAlignment = 64;

void* allocate_bytes(Device d, std::size_t nbytes);
// `nbytes` must be the size given to allocate_bytes (it selects the cache's size class).
void free_bytes(Device d, void* p, std::size_t nbytes) noexcept;
// Copies between any two devices. A copy to the host has finished on return; one from the host to
// a GPU is queued on the GPU's stream from pinned staging, so the host source may be reused at
// once and later work on that stream sees the data; a copy within one GPU is queued on its
// stream, one between GPUs on the destination's stream, and the source's stream waits for it, so
// the source block may be freed at once.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                std::size_t nbytes);

struct CudaMemoryStats {
  std::size_t allocated_bytes = 0;       // in use by tensors, rounded to size classes
  std::size_t peak_allocated_bytes = 0;  // the high-water mark of allocated_bytes
  std::size_t cached_bytes = 0;          // freed by tensors, kept for reuse
  std::size_t cuda_malloc_calls = 0;
  std::size_t cache_hits = 0;
};

// Returns every cached (unused) GPU block to the driver. A no-op without CUDA.
void empty_cache();
// Counters of the caching allocator of cuda:`device`; all zero without CUDA.
CudaMemoryStats cuda_memory_stats(int device = 0);

}  // namespace glia
