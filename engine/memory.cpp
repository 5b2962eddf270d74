// Allocation and copies for every device; see memory.h. Tested in tests/engine/device_test.cpp
// and tests/engine/tensor_test.cpp.
#include "engine/memory.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "engine/caching_allocator.h"

#if defined(GLIA_HAVE_CUDA)
#include "engine/cuda/allocator.h"
#include "engine/cuda/runtime.h"
#endif

namespace glia {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// aligned_alloc needs a multiple of the alignment, and a zero-size tensor still gets a distinct
// pointer.
void* host_malloc(std::size_t nbytes) {
  const std::size_t rounded = (nbytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  return std::aligned_alloc(kHostAlignment, rounded == 0 ? kHostAlignment : rounded);
}

struct HostMemory final : RawMemory {
  void* malloc(std::size_t bytes) override { return host_malloc(bytes); }
  void free(void* p) override { std::free(p); }
  std::string name() const override { return "cpu"; }
};

// GLIA_HOST_CACHE_MB, else a quarter of the physical memory; 0 when the cache is off.
std::size_t host_cache_limit() {
  if (kAddressSanitizer) return 0;
  if (const char* env = std::getenv("GLIA_HOST_CACHE_MB"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    if (*end != '\0') {
      throw std::invalid_argument(std::string("GLIA_HOST_CACHE_MB=") + env +
                                  ": expected a whole number of megabytes (0 turns the cache off)");
    }
    return static_cast<std::size_t>(mb) << 20;
  }
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::size_t{1} << 30;
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) / 4;
}

// The host block cache, or nullptr when it is off. Built on first use and never destroyed, so
// tensors freed during static destruction still find it.
CachingAllocator* host_cache() {
  static CachingAllocator* const cache = []() -> CachingAllocator* {
    const std::size_t limit = host_cache_limit();
    if (limit == 0) return nullptr;
    static HostMemory raw;
    return new CachingAllocator(raw, limit);  // NOLINT(cppcoreguidelines-owning-memory)
  }();
  return cache;
}

#if defined(GLIA_HAVE_CUDA)
// Makes `waiter`'s stream wait (on the GPU, the host does not block) until the work queued so far
// on `signaller`'s stream has finished. The event is released once it has completed.
void stream_wait(int waiter, int signaller) {
  cudaEvent_t event = nullptr;
  {
    cudart::DeviceGuard guard(signaller);
    GLIA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  }
  struct Destroy {
    cudaEvent_t e;
    ~Destroy() { (void)cudaEventDestroy(e); }
  } destroy{event};
  {
    cudart::DeviceGuard guard(signaller);
    GLIA_CUDA_CHECK(cudaEventRecord(event, cudart::stream(signaller)));
  }
  cudart::DeviceGuard guard(waiter);
  GLIA_CUDA_CHECK(cudaStreamWaitEvent(cudart::stream(waiter), event, 0));
}
#endif

}  // namespace

void* allocate_bytes(Device d, std::size_t nbytes, [[maybe_unused]] MemoryPool pool) {
  if (d.is_host()) {
    if (nbytes >= kHostCacheMinBytes) {
      if (CachingAllocator* cache = host_cache()) return cache->allocate(nbytes);
    }
    void* p = host_malloc(nbytes);
    if (p == nullptr) {
      throw std::bad_alloc();
    }
    return p;
  }
  check_device_usable(d);
#if defined(GLIA_HAVE_CUDA)
  return cudart::cached_malloc(d.index, nbytes, pool);
#else
  return nullptr;  // unreachable: check_device_usable throws
#endif
}

void free_bytes(Device d, void* p, std::size_t nbytes, [[maybe_unused]] MemoryPool pool) noexcept {
  if (d.is_host()) {
    if (nbytes >= kHostCacheMinBytes) {
      if (CachingAllocator* cache = host_cache()) return cache->deallocate(p, nbytes);
    }
    std::free(p);
    return;
  }
#if defined(GLIA_HAVE_CUDA)
  cudart::cached_free(d.index, p, nbytes, pool);
#else
  (void)nbytes;
#endif
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_host() && src_device.is_host()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  check_device_usable(dst_device);
  check_device_usable(src_device);
#if defined(GLIA_HAVE_CUDA)
  // Host buffers are pageable and may be freed right after the call: an upload is staged through
  // pinned memory first and returns without waiting for the stream (engine/cuda/runtime.h
  // upload); a download waits for completion.
  if (dst_device.is_cuda() && src_device.is_host()) {
    cudart::upload(dst_device.index, dst, src, nbytes);
  } else if (dst_device.is_host()) {
    cudart::DeviceGuard guard(src_device.index);
    cudaStream_t s = cudart::stream(src_device.index);
    GLIA_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, s));
    GLIA_CUDA_CHECK(cudaStreamSynchronize(s));
  } else if (dst_device == src_device) {
    cudart::DeviceGuard guard(dst_device.index);
    GLIA_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice,
                                    cudart::stream(dst_device.index)));
  } else {
    // Between GPUs the copy runs on the destination's stream. It must start after the work that
    // writes the source, and the source's stream must not reuse the block (freed to its cache
    // right after this call returns, perhaps) until the copy has read it: both ways an event.
    stream_wait(dst_device.index, src_device.index);
    {
      cudart::DeviceGuard guard(dst_device.index);
      GLIA_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes,
                                          cudart::stream(dst_device.index)));
    }
    stream_wait(src_device.index, dst_device.index);
  }
#endif
}

void empty_cache() {
  if (CachingAllocator* cache = host_cache()) cache->release_cache();
#if defined(GLIA_HAVE_CUDA)
  cudart::release_cache();
#endif
}

MemoryStats host_memory_stats() {
  const CachingAllocator* cache = host_cache();
  return cache != nullptr ? cache->stats() : MemoryStats{};
}

CudaMemoryStats cuda_memory_stats([[maybe_unused]] int device) {
#if defined(GLIA_HAVE_CUDA)
  return cudart::allocator_stats(device);
#else
  return {};
#endif
}

}  // namespace glia
