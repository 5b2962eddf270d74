// The per-device caching allocators over cudaMalloc; see allocator.h. Tested by the Cuda tests
// of tests/engine/device_test.cpp.
#include "engine/cuda/allocator.h"

#include <memory>
#include <mutex>
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

struct DevicePool {
  explicit DevicePool(int device) : memory(device), cache(memory) {}
  CudaMemory memory;
  CachingAllocator cache;
};

// One pool per device, created on first use and kept for the process (tensors may outlive
// main's locals, so pools are never destroyed).
std::mutex g_mutex;
std::vector<DevicePool*> g_pools;

CachingAllocator& pool(int device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (device >= static_cast<int>(g_pools.size())) g_pools.resize(device + 1, nullptr);
  if (g_pools[device] == nullptr) g_pools[device] = new DevicePool(device);
  return g_pools[device]->cache;
}

}  // namespace

void* cached_malloc(int device, std::size_t nbytes) {
  return pool(device).allocate(nbytes);
}

void cached_free(int device, void* p, std::size_t nbytes) noexcept {
  // A block was allocated from this device's pool, which therefore exists: no allocation here.
  DevicePool* d = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (device >= 0 && device < static_cast<int>(g_pools.size())) d = g_pools[device];
  }
  if (d != nullptr) d->cache.deallocate(p, nbytes);
}

void release_cache() {
  std::vector<DevicePool*> pools;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    pools = g_pools;
  }
  for (DevicePool* d : pools) {
    if (d != nullptr) d->cache.release_cache();
  }
}

CudaMemoryStats allocator_stats(int device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (device < 0 || device >= static_cast<int>(g_pools.size()) || g_pools[device] == nullptr) {
    return {};
  }
  return g_pools[device]->cache.stats();
}

}  // namespace glia::cudart
