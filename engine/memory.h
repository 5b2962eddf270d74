// Raw memory of every device and byte copies between them. Host memory (cpu, sim) is 64-byte
// aligned so kernels may vectorise; cuda memory comes from a caching allocator over cudaMalloc
// (engine/cuda/allocator.cpp) whose cache and counters are exposed here without CUDA types.
// Host blocks of kHostCacheMinBytes and more come from the same kind of cache over aligned_alloc:
// a training step frees and re-allocates the same activation sizes every step, and a fresh large
// block costs a page fault and a zeroed page per 4 KiB on first touch (as much as a ReLU over it).
// The host cache keeps at most GLIA_HOST_CACHE_MB megabytes of freed blocks (default: a quarter of
// the physical memory; 0 turns it off); AddressSanitizer builds never cache, so every freed block
// stays poisoned for ASan. Tested in tests/engine/device_test.cpp and tests/engine/tensor_test.cpp.
#pragma once

#include <cstddef>

#include "engine/device.h"

namespace glia {

inline constexpr std::size_t kHostAlignment = 64;
// Smaller host blocks go straight to the C library, whose own free lists serve them well.
inline constexpr std::size_t kHostCacheMinBytes = std::size_t{64} << 10;

// Which cache of a GPU a block comes from: the compute stream's (every tensor but uploads), or the
// upload pool, whose blocks the copy stream fills (engine/upload.h) and which are handed out again
// only once the compute stream's work queued before their free has finished. On the host both are
// the same.
enum class MemoryPool : unsigned char { compute, upload };

void* allocate_bytes(Device d, std::size_t nbytes, MemoryPool pool = MemoryPool::compute);
// `nbytes` and `pool` must be those given to allocate_bytes (they select the cache and its class).
void free_bytes(Device d, void* p, std::size_t nbytes,
                MemoryPool pool = MemoryPool::compute) noexcept;
// Copies between any two devices. A copy to the host has finished on return; one from the host to
// a GPU is queued on the GPU's stream from pinned staging, so the host source may be reused at
// once and later work on that stream sees the data; a copy within one GPU is queued on its
// stream, one between GPUs on the destination's stream, and the source's stream waits for it, so
// the source block may be freed at once.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                std::size_t nbytes);

// Counters of a caching allocator (cuda:N's, or the host's for its cached block sizes).
struct MemoryStats {
  std::size_t allocated_bytes = 0;       // in use by tensors, rounded to size classes
  std::size_t peak_allocated_bytes = 0;  // the high-water mark of allocated_bytes
  std::size_t cached_bytes = 0;          // freed by tensors, kept for reuse
  std::size_t fenced_bytes = 0;          // freed by tensors, waiting for GPU work of another stream
  std::size_t raw_allocations = 0;       // blocks taken from the driver (cudaMalloc, aligned_alloc)
  std::size_t cache_hits = 0;
  std::size_t uncached_frees = 0;  // freed blocks given back at once: the cache was at its limit
};
using CudaMemoryStats = MemoryStats;

// Returns every cached (unused) block, GPU and host, to the driver / the C library.
void empty_cache();
// Counters of the caching allocators of cuda:`device` (both pools added; the peak is the sum of
// the pools' peaks); all zero without CUDA.
CudaMemoryStats cuda_memory_stats(int device = 0);
// Counters of the host block cache (blocks of kHostCacheMinBytes and more); all zero when off.
MemoryStats host_memory_stats();

}  // namespace glia
