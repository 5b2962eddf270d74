// The per-device caching allocators over cudaMalloc; see allocator.h. Tested by the Cuda tests
// of tests/engine/device_test.cpp and tests/engine/upload_test.cpp.
#include "engine/cuda/allocator.h"

#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/caching_allocator.h"
#include "engine/cuda/runtime.h"

namespace glia::cudart {
namespace {

class CudaMemory final : public RawMemory {
 public:
  explicit CudaMemory(int device) : device_(device) {}
  void* malloc(std::size_t bytes) override {
    DeviceGuard guard(device_);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // not sticky: clear it so later calls do not report it
      return nullptr;
    }
    GLIA_CUDA_CHECK(err);
    return p;
  }
  void free(void* p) override {
    DeviceGuard guard(device_);
    GLIA_CUDA_CHECK(cudaFree(p));
  }
  std::string name() const override { return "cuda:" + std::to_string(device_); }

 private:
  int device_;
};

// CUDA events recorded on the device's compute stream, kept in a free list for reuse.
class ComputeStreamFences final : public Fences {
 public:
  explicit ComputeStreamFences(int device) : device_(device) {}
  // A fence after the work queued on the compute stream so far.
  Fence record() {
    cudaEvent_t event = nullptr;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        event = free_.back();
        free_.pop_back();
      }
    }
    DeviceGuard guard(device_);
    if (event == nullptr) {
      GLIA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    }
    const cudaError_t err = cudaEventRecord(event, stream(device_));
    if (err != cudaSuccess) {
      (void)cudaEventDestroy(event);
      GLIA_CUDA_CHECK(err);
    }
    return event;
  }
  bool done(Fence f) override {
    const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(f));
    if (err == cudaErrorNotReady) {
      (void)cudaGetLastError();  // not an error: clear it so no later check reports it
      return false;
    }
    GLIA_CUDA_CHECK(err);
    return true;
  }
  void wait(Fence f) override {
    GLIA_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(f)));
  }
  void release(Fence f) noexcept override {
    auto* event = static_cast<cudaEvent_t>(f);
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      free_.push_back(event);
    } catch (...) {
      (void)cudaEventDestroy(event);
    }
  }

 private:
  int device_;
  std::mutex mutex_;
  std::vector<cudaEvent_t> free_;
};

struct DevicePool {
  explicit DevicePool(int device)
      : memory(device),
        fences(device),
        cache(memory),
        uploads(memory, std::numeric_limits<std::size_t>::max(), &fences) {}
  CudaMemory memory;
  ComputeStreamFences fences;
  CachingAllocator cache;    // the compute stream's
  CachingAllocator uploads;  // the copy stream's destinations
};

// One pool per device, created on first use and kept for the process (tensors may outlive
// main's locals, so pools are never destroyed).
std::mutex g_mutex;
std::vector<DevicePool*> g_pools;

DevicePool& device_pool(int device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (device >= static_cast<int>(g_pools.size())) g_pools.resize(device + 1, nullptr);
  if (g_pools[device] == nullptr) g_pools[device] = new DevicePool(device);
  return *g_pools[device];
}

}  // namespace

void* cached_malloc(int device, std::size_t nbytes, MemoryPool pool) {
  DevicePool& d = device_pool(device);
  CachingAllocator& mine = pool == MemoryPool::upload ? d.uploads : d.cache;
  CachingAllocator& other = pool == MemoryPool::upload ? d.cache : d.uploads;
  try {
    return mine.allocate(nbytes);
  } catch (const std::runtime_error&) {
    // Out of memory with nothing left in this pool's cache: the other pool's cached blocks go
    // back to the driver (waiting for the upload pool's fences), then one more try.
    if (other.stats().cached_bytes + other.stats().fenced_bytes == 0) throw;
    other.release_cache();
    return mine.allocate(nbytes);
  }
}

void cached_free(int device, void* p, std::size_t nbytes, MemoryPool pool) noexcept {
  // A block was allocated from this device's pool, which therefore exists: no allocation here.
  DevicePool* d = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (device >= 0 && device < static_cast<int>(g_pools.size())) d = g_pools[device];
  }
  if (d == nullptr) return;
  if (pool == MemoryPool::compute) {
    d->cache.deallocate(p, nbytes);
    return;
  }
  try {
    d->uploads.deallocate(p, nbytes, d->fences.record());
  } catch (...) {
    // No fence: wait until the compute stream's queued work is over, then the block is free. If
    // even that fails, the block's state is unknown: it is dropped.
    try {
      DeviceGuard guard(device);
      if (cudaStreamSynchronize(stream(device)) == cudaSuccess) d->uploads.deallocate(p, nbytes);
    } catch (...) {  // NOLINT(bugprone-empty-catch): see above
    }
  }
}

void release_cache() {
  std::vector<DevicePool*> pools;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    pools = g_pools;
  }
  for (DevicePool* d : pools) {
    if (d != nullptr) {
      d->cache.release_cache();
      d->uploads.release_cache();
    }
  }
}

CudaMemoryStats allocator_stats(int device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (device < 0 || device >= static_cast<int>(g_pools.size()) || g_pools[device] == nullptr) {
    return {};
  }
  const MemoryStats a = g_pools[device]->cache.stats(), b = g_pools[device]->uploads.stats();
  MemoryStats sum;
  sum.allocated_bytes = a.allocated_bytes + b.allocated_bytes;
  sum.peak_allocated_bytes = a.peak_allocated_bytes + b.peak_allocated_bytes;
  sum.cached_bytes = a.cached_bytes + b.cached_bytes;
  sum.fenced_bytes = a.fenced_bytes + b.fenced_bytes;
  sum.raw_allocations = a.raw_allocations + b.raw_allocations;
  sum.cache_hits = a.cache_hits + b.cache_hits;
  sum.uncached_frees = a.uncached_frees + b.uncached_frees;
  return sum;
}

}  // namespace glia::cudart
