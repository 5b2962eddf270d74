// The caching allocator behind cuda tensors (built only with GLIA_HAVE_CUDA). cudaMalloc and
// cudaFree synchronise the device and are slow, so freed blocks go to per-device free lists keyed
// by size class and are reused. Reuse needs no event: all work on a device is queued on its one
// stream, so a block freed after a kernel was queued is handed out only to later work on that
// stream. Tested by the Cuda tests of tests/engine/device_test.cpp.
#pragma once

#include <cstddef>

#include "engine/memory.h"

namespace glia::cudart {

// Size classes: multiples of 512 bytes up to 1 MiB, then multiples of 2 MiB, so tensors of
// nearly equal size share blocks while large blocks waste under 2 MiB each.
std::size_t size_class(std::size_t nbytes);

void* cached_malloc(int device, std::size_t nbytes);
void cached_free(int device, void* p, std::size_t nbytes) noexcept;
void release_cache();
CudaMemoryStats allocator_stats(int device);

}  // namespace glia::cudart
