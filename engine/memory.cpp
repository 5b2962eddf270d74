// Allocation and copies for every device; see memory.h. Tested in tests/engine/device_test.cpp
// and tests/engine/tensor_test.cpp.
#include "engine/memory.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#if defined(GLIA_HAVE_CUDA)
#include "engine/cuda/allocator.h"
#include "engine/cuda/runtime.h"
#endif

namespace glia {
namespace {

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

void* allocate_bytes(Device d, std::size_t nbytes) {
  if (d.is_host()) {
    // aligned_alloc needs a multiple of the alignment, and a zero-size tensor still gets a
    // distinct pointer.
    const std::size_t rounded = (nbytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
    void* p = std::aligned_alloc(kHostAlignment, rounded == 0 ? kHostAlignment : rounded);
    if (p == nullptr) {
      throw std::bad_alloc();
    }
    return p;
  }
  check_device_usable(d);
#if defined(GLIA_HAVE_CUDA)
  return cudart::cached_malloc(d.index, nbytes);
#else
  return nullptr;  // unreachable: check_device_usable throws
#endif
}

void free_bytes(Device d, void* p, std::size_t nbytes) noexcept {
  if (d.is_host()) {
    std::free(p);
    return;
  }
#if defined(GLIA_HAVE_CUDA)
  cudart::cached_free(d.index, p, nbytes);
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
#if defined(GLIA_HAVE_CUDA)
  cudart::release_cache();
#endif
}

CudaMemoryStats cuda_memory_stats([[maybe_unused]] int device) {
#if defined(GLIA_HAVE_CUDA)
  return cudart::allocator_stats(device);
#else
  return {};
#endif
}

}  // namespace glia
