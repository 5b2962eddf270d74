// The size-class block cache behind cuda tensors, free of CUDA types so that its failure paths
// are tested without a GPU (tests/engine/caching_allocator_test.cpp, with a fake driver).
// engine/cuda/allocator.cpp gives it cudaMalloc / cudaFree as its RawMemory, and, for the pool of
// upload destinations, CUDA events as its Fences. Guarantees:
// - release never frees a block twice: each block leaves the cache before its free is tried, so
//   a free that throws midway leaves exactly the blocks not yet freed cached;
// - deallocate never throws and never allocates: every block handed out has its free-list slot
//   reserved when it is allocated;
// - out of memory releases cached blocks largest first, only as many as the request needs, and
//   retries after each batch, instead of dropping the whole cache at once;
// - a block freed behind a fence (GPU work of another stream may still use it) is handed out again
//   only once the fence has completed; out of memory waits for fences before it gives up.
#pragma once

#include <cstddef>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/memory.h"

namespace glia {

// The driver under the cache: one device's raw allocations.
class RawMemory {
 public:
  virtual ~RawMemory() = default;
  // nullptr when the device is out of memory; throws on any other error.
  virtual void* malloc(std::size_t bytes) = 0;
  // May throw (a driver error); the block is then in an unknown state and is not retried.
  virtual void free(void* p) = 0;
  // Names the device in error messages ("cuda:0").
  virtual std::string name() const = 0;
};

// Markers of a point in a GPU stream (events): a fence is done once the work queued on its stream
// before it has finished. Whoever frees a block behind a fence created it; the cache owns it from
// then on and releases it once done.
class Fences {
 public:
  using Fence = void*;
  virtual ~Fences() = default;
  // Whether the fence has completed; may throw (a driver error).
  virtual bool done(Fence f) = 0;
  // Blocks the host until the fence has completed; may throw.
  virtual void wait(Fence f) = 0;
  virtual void release(Fence f) noexcept = 0;
};

class CachingAllocator {
 public:
  // Freed blocks beyond `max_cached_bytes` of cache go back to the driver at once. `fences` is
  // needed only by deallocate with a fence.
  explicit CachingAllocator(RawMemory& raw,
                            std::size_t max_cached_bytes = std::numeric_limits<std::size_t>::max(),
                            Fences* fences = nullptr)
      : raw_(raw), max_cached_bytes_(max_cached_bytes), fences_(fences) {}
  ~CachingAllocator() = default;  // cached blocks stay with the driver's context
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Size classes: multiples of 512 bytes up to 1 MiB, then multiples of 2 MiB, so tensors of
  // nearly equal size share blocks while large blocks waste under 2 MiB each.
  static std::size_t size_class(std::size_t nbytes);

  // A block of at least `nbytes`; throws std::runtime_error naming the device when even an empty
  // cache leaves too little memory.
  void* allocate(std::size_t nbytes);
  // `nbytes` as given to allocate. Caches the block for reuse, or, when that would take the cache
  // past its limit, frees it (a free that throws then drops the block: its state is unknown).
  void deallocate(void* p, std::size_t nbytes) noexcept;
  // As deallocate, once `fence` is done: until then the block is neither handed out nor freed
  // (each allocate collects the blocks whose fences are done). The cache takes the fence.
  void deallocate(void* p, std::size_t nbytes, Fences::Fence fence) noexcept;
  // Frees every cached block, first waiting for the fences of blocks freed behind one. If a free
  // throws, the error propagates and the blocks not yet freed stay cached (the failing one is
  // dropped: its state is unknown).
  void release_cache();
  CudaMemoryStats stats() const;

 private:
  struct SizeClass {
    std::vector<void*> free;  // capacity >= free.size() + in_use, so deallocate never allocates
    std::size_t in_use = 0;
  };
  struct Fenced {
    void* p;
    std::size_t bytes;  // its size class
    Fences::Fence fence;
  };
  // Returns a block that left the tensors to its free list, or to the driver past the limit.
  void cache_locked(SizeClass& c, std::size_t bytes, void* p) noexcept;
  // Moves the fenced blocks whose fences are done (all of them, waiting, when `wait`) to their
  // free lists. The caller holds mutex_.
  void collect_locked(bool wait);
  // Frees cached blocks, largest class first, until at least `bytes` were released or the cache
  // is empty; returns the bytes released. The caller holds mutex_.
  std::size_t release_locked(std::size_t bytes);

  RawMemory& raw_;
  const std::size_t max_cached_bytes_;
  Fences* const fences_;
  mutable std::mutex mutex_;
  std::map<std::size_t, SizeClass> classes_;
  std::vector<Fenced> fenced_;  // capacity >= fenced_.size() + blocks in use, as the free lists
  std::size_t in_use_ = 0;
  CudaMemoryStats stats_;
};

}  // namespace glia
