// The size-class caching allocator over cudaMalloc; see allocator.h. Tested by the Cuda tests of
// tests/engine/device_test.cpp.
#include "engine/cuda/allocator.h"

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cuda/runtime.h"

namespace glia::cudart {
namespace {

constexpr std::size_t kSmallGranule = 512;
constexpr std::size_t kSmallLimit = std::size_t{1} << 20;
constexpr std::size_t kLargeGranule = std::size_t{2} << 20;

struct DevicePool {
  std::map<std::size_t, std::vector<void*>> free_blocks;  // size class -> cached blocks
  CudaMemoryStats stats;
};

std::mutex g_mutex;
std::map<int, DevicePool> g_pools;

// Frees the cached blocks of one pool; the caller holds g_mutex.
void release_pool(int device, DevicePool& pool) {
  DeviceGuard guard(device);
  for (auto& [bytes, blocks] : pool.free_blocks) {
    for (void* p : blocks) GLIA_CUDA_CHECK(cudaFree(p));
    pool.stats.cached_bytes -= bytes * blocks.size();
  }
  pool.free_blocks.clear();
}

}  // namespace

std::size_t size_class(std::size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  const std::size_t granule = nbytes <= kSmallLimit ? kSmallGranule : kLargeGranule;
  return (nbytes + granule - 1) / granule * granule;
}

void* cached_malloc(int device, std::size_t nbytes) {
  const std::size_t bytes = size_class(nbytes);
  std::lock_guard<std::mutex> lock(g_mutex);
  DevicePool& pool = g_pools[device];
  auto it = pool.free_blocks.find(bytes);
  void* p = nullptr;
  if (it != pool.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    pool.stats.cached_bytes -= bytes;
    ++pool.stats.cache_hits;
  } else {
    DeviceGuard guard(device);
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      // Out of memory: give the cached blocks back to the driver and try once more.
      (void)cudaGetLastError();
      release_pool(device, pool);
      err = cudaMalloc(&p, bytes);
    }
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw std::runtime_error(
          "cudaMalloc of " + std::to_string(bytes) + " bytes on cuda:" + std::to_string(device) +
          " failed: " + cudaGetErrorString(err) + " (" +
          std::to_string(pool.stats.allocated_bytes) + " bytes in use by tensors)");
    }
    ++pool.stats.cuda_malloc_calls;
  }
  pool.stats.allocated_bytes += bytes;
  if (pool.stats.allocated_bytes > pool.stats.peak_allocated_bytes) {
    pool.stats.peak_allocated_bytes = pool.stats.allocated_bytes;
  }
  return p;
}

void cached_free(int device, void* p, std::size_t nbytes) noexcept {
  if (p == nullptr) return;
  const std::size_t bytes = size_class(nbytes);
  std::lock_guard<std::mutex> lock(g_mutex);
  DevicePool& pool = g_pools[device];
  pool.free_blocks[bytes].push_back(p);
  pool.stats.allocated_bytes -= bytes;
  pool.stats.cached_bytes += bytes;
}

void release_cache() {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto& [device, pool] : g_pools) release_pool(device, pool);
}

CudaMemoryStats allocator_stats(int device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_pools.find(device);
  return it == g_pools.end() ? CudaMemoryStats{} : it->second.stats;
}

}  // namespace glia::cudart
