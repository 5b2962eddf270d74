// The size-class block cache; see caching_allocator.h. Tested in
// tests/engine/caching_allocator_test.cpp.
#include "engine/caching_allocator.h"

#include <limits>
#include <stdexcept>

namespace glia {
namespace {

constexpr std::size_t kSmallGranule = 512;
constexpr std::size_t kSmallLimit = std::size_t{1} << 20;
constexpr std::size_t kLargeGranule = std::size_t{2} << 20;

}  // namespace

std::size_t CachingAllocator::size_class(std::size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  const std::size_t granule = nbytes <= kSmallLimit ? kSmallGranule : kLargeGranule;
  return (nbytes + granule - 1) / granule * granule;
}

void* CachingAllocator::allocate(std::size_t nbytes) {
  const std::size_t bytes = size_class(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  SizeClass& c = classes_[bytes];
  // The slot this block takes in the free list when it comes back (may throw bad_alloc: here,
  // before anything changed, not in deallocate).
  c.free.reserve(c.free.size() + c.in_use + 1);
  void* p = nullptr;
  if (!c.free.empty()) {
    p = c.free.back();
    c.free.pop_back();
    stats_.cached_bytes -= bytes;
    ++stats_.cache_hits;
  } else {
    p = raw_.malloc(bytes);
    // Out of memory: give cached blocks back to the driver a batch at a time, largest first,
    // retrying after each, so a near miss costs a few blocks and not the whole cache.
    while (p == nullptr && stats_.cached_bytes > 0) {
      release_locked(bytes);
      p = raw_.malloc(bytes);
    }
    if (p == nullptr) {
      throw std::runtime_error("out of memory on " + raw_.name() + ": cannot allocate " +
                               std::to_string(bytes) + " bytes (" +
                               std::to_string(stats_.allocated_bytes) +
                               " bytes in use by tensors, nothing left cached)");
    }
    ++stats_.raw_allocations;
  }
  ++c.in_use;
  stats_.allocated_bytes += bytes;
  if (stats_.allocated_bytes > stats_.peak_allocated_bytes) {
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }
  return p;
}

void CachingAllocator::deallocate(void* p, std::size_t nbytes) noexcept {
  if (p == nullptr) return;
  const std::size_t bytes = size_class(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = classes_.find(bytes);
  if (it == classes_.end() || it->second.in_use == 0) return;  // not ours: nothing safe to do
  SizeClass& c = it->second;
  --c.in_use;
  stats_.allocated_bytes -= bytes;
  if (stats_.cached_bytes + bytes > max_cached_bytes_) {
    ++stats_.uncached_frees;
    try {
      raw_.free(p);
    } catch (...) {  // NOLINT(bugprone-empty-catch): the block's state is unknown; drop it
    }
    return;
  }
  c.free.push_back(p);  // within the capacity reserved by allocate
  stats_.cached_bytes += bytes;
}

std::size_t CachingAllocator::release_locked(std::size_t bytes) {
  std::size_t released = 0;
  for (auto it = classes_.rbegin(); it != classes_.rend() && released < bytes; ++it) {
    std::vector<void*>& free = it->second.free;
    while (!free.empty() && released < bytes) {
      // Out of the cache before the free is tried: a throwing free cannot leave it behind to be
      // freed again.
      void* p = free.back();
      free.pop_back();
      stats_.cached_bytes -= it->first;
      released += it->first;
      raw_.free(p);
    }
  }
  return released;
}

void CachingAllocator::release_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_locked(std::numeric_limits<std::size_t>::max());
}

CudaMemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace glia
