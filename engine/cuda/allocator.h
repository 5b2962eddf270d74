// The caching allocator behind cuda tensors (built only with GLIA_HAVE_CUDA): one
// CachingAllocator (engine/caching_allocator.h) per device over cudaMalloc / cudaFree, which
// synchronise the device and are slow. Reuse needs no event: all work on a device is queued on
// its one stream, so a block freed after a kernel was queued is handed out only to later work on
// that stream (copies to another device make that stream wait for them: engine/memory.cpp).
// Tested by tests/engine/caching_allocator_test.cpp and the Cuda tests of
// tests/engine/device_test.cpp.
#pragma once

#include <cstddef>

#include "engine/memory.h"

namespace glia::cudart {

void* cached_malloc(int device, std::size_t nbytes);
void cached_free(int device, void* p, std::size_t nbytes) noexcept;
void release_cache();
CudaMemoryStats allocator_stats(int device);

}  // namespace glia::cudart
