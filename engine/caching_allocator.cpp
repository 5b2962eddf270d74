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
  if (!fenced_.empty()) collect_locked(false);
  SizeClass& c = classes_[bytes];
  // The slots this block takes when it comes back, in the free list and behind a fence (may
  // throw bad_alloc: here, before anything changed, not in deallocate).
  c.free.reserve(c.free.size() + c.in_use + 1);
  if (fences_ != nullptr) fenced_.reserve(fenced_.size() + in_use_ + 1);
  void* p = nullptr;
  bool from_cache = !c.free.empty();
  if (from_cache) {
    p = c.free.back();
    c.free.pop_back();
  } else {
    p = raw_.malloc(bytes);
    // Out of memory: wait for the fenced blocks (the request's class may then have one), then
    // give cached blocks back to the driver a batch at a time, largest first, retrying after
    // each, so a near miss costs a few blocks and not the whole cache.
    while (p == nullptr && (!fenced_.empty() || stats_.cached_bytes > 0)) {
      if (!fenced_.empty()) {
        collect_locked(true);
        if (!c.free.empty()) {
          p = c.free.back();
          c.free.pop_back();
          from_cache = true;
          break;
        }
      } else {
        release_locked(bytes);
      }
      p = raw_.malloc(bytes);
    }
    if (p == nullptr) {
      throw std::runtime_error("out of memory on " + raw_.name() + ": cannot allocate " +
                               std::to_string(bytes) + " bytes (" +
                               std::to_string(stats_.allocated_bytes) +
                               " bytes in use by tensors, nothing left cached)");
    }
  }
  if (from_cache) {
    stats_.cached_bytes -= bytes;
    ++stats_.cache_hits;
  } else {
    ++stats_.raw_allocations;
  }
  ++c.in_use;
  ++in_use_;
  stats_.allocated_bytes += bytes;
  if (stats_.allocated_bytes > stats_.peak_allocated_bytes) {
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }
  return p;
}

void CachingAllocator::cache_locked(SizeClass& c, std::size_t bytes, void* p) noexcept {
  --c.in_use;
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

void CachingAllocator::deallocate(void* p, std::size_t nbytes) noexcept {
  if (p == nullptr) return;
  const std::size_t bytes = size_class(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = classes_.find(bytes);
  if (it == classes_.end() || it->second.in_use == 0 || in_use_ == 0) return;  // not ours
  --in_use_;
  stats_.allocated_bytes -= bytes;
  cache_locked(it->second, bytes, p);
}

void CachingAllocator::deallocate(void* p, std::size_t nbytes, Fences::Fence fence) noexcept {
  if (fence == nullptr) {
    deallocate(p, nbytes);
    return;
  }
  if (fences_ == nullptr)
    return;  // a misuse: no Fences to wait on or release; the block is dropped
  const std::size_t bytes = size_class(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = classes_.find(bytes);
  if (p == nullptr || it == classes_.end() || it->second.in_use == 0 || in_use_ == 0) {
    fences_->release(fence);
    return;
  }
  // The block keeps its class's in_use count (and so its free-list slot) until collected.
  --in_use_;
  stats_.allocated_bytes -= bytes;
  stats_.fenced_bytes += bytes;
  fenced_.push_back({p, bytes, fence});  // within the capacity reserved by allocate
}

void CachingAllocator::collect_locked(bool wait) {
  for (std::size_t i = 0; i < fenced_.size();) {
    const Fenced f = fenced_[i];
    if (!fences_->done(f.fence)) {
      if (!wait) {
        ++i;
        continue;
      }
      fences_->wait(f.fence);
    }
    fences_->release(f.fence);
    fenced_[i] = fenced_.back();
    fenced_.pop_back();
    stats_.fenced_bytes -= f.bytes;
    cache_locked(classes_.find(f.bytes)->second, f.bytes, f.p);
  }
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
  if (!fenced_.empty()) collect_locked(true);
  release_locked(std::numeric_limits<std::size_t>::max());
}

CudaMemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace glia
