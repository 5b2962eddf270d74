// The caching allocators behind cuda tensors (built only with GLIA_HAVE_CUDA): per device two
// CachingAllocators (engine/caching_allocator.h) over cudaMalloc / cudaFree, which synchronise the
// device and are slow.
// - The compute pool serves every tensor but uploads. Reuse needs no event: all work on a device
//   is queued on its one compute stream, so a block freed after a kernel was queued is handed out
//   only to later work on that stream (copies to another device make that stream wait for them:
//   engine/memory.cpp).
// - The upload pool serves the destinations of copies on the copy stream (engine/upload.h). Such a
//   block is read by the compute stream, so its free records an event there (a fence) and the
//   block is handed out again only once that event has completed: the copy stream never
//   overwrites a block that queued compute work still reads. If the event cannot be recorded, the
//   free waits for the compute stream instead.
// Out of memory in one pool first gives the other pool's cached blocks back to the driver.
// Tested by tests/engine/caching_allocator_test.cpp (the pools' logic, with fake drivers) and the
// Cuda tests of tests/engine/device_test.cpp and tests/engine/upload_test.cpp.
#pragma once

#include <cstddef>

#include "engine/memory.h"

namespace glia::cudart {

void* cached_malloc(int device, std::size_t nbytes, MemoryPool pool);
void cached_free(int device, void* p, std::size_t nbytes, MemoryPool pool) noexcept;
void release_cache();
CudaMemoryStats allocator_stats(int device);

}  // namespace glia::cudart
