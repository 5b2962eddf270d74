// The caching allocator's failure paths (engine/caching_allocator.h) over a fake driver that
// tracks live blocks, runs out of memory at a set capacity and fails a chosen free: a failed
// release frees no block twice, deallocate neither throws nor allocates, and out of memory gives
// back only as many cached blocks as the request needs; a block freed behind a fake fence is
// handed out again only once its fence is done. The cuda pools use this class as is; only the
// driver (and the fences: CUDA events) differ.
#include "engine/caching_allocator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <map>
#include <new>
#include <stdexcept>
#include <vector>

namespace {

// Global operator new fails while this is set on the calling thread, so a test can show that a
// noexcept path allocates nothing.
thread_local bool t_fail_new = false;

}  // namespace

void* operator new(std::size_t n) {
  if (t_fail_new) throw std::bad_alloc();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// GCC sees std::free on what its operator new returned, not knowing it is replaced here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#pragma GCC diagnostic pop

namespace glia {
namespace {

class FakeMemory final : public RawMemory {
 public:
  explicit FakeMemory(std::size_t capacity) : capacity_(capacity) {}
  ~FakeMemory() override {
    for (const auto& [p, bytes] : live_) std::free(p);
  }
  void* malloc(std::size_t bytes) override {
    ++mallocs;
    if (used_ + bytes > capacity_) return nullptr;
    void* p = std::malloc(bytes);
    live_[p] = bytes;
    used_ += bytes;
    return p;
  }
  void free(void* p) override {
    if (fail_free_countdown > 0 && --fail_free_countdown == 0) {
      throw std::runtime_error("injected cudaFree failure");
    }
    const auto it = live_.find(p);
    if (it == live_.end()) {
      ADD_FAILURE() << "free of a block that is not live (a double free)";
      return;
    }
    used_ -= it->second;
    live_.erase(it);
    std::free(p);
    ++frees;
  }
  std::string name() const override { return "fake:0"; }

  std::size_t live_blocks() const { return live_.size(); }
  int fail_free_countdown = 0;  // the n-th free from now throws
  int mallocs = 0, frees = 0;

 private:
  std::size_t capacity_;
  std::size_t used_ = 0;
  std::map<void*, std::size_t> live_;
};

constexpr std::size_t kBlock = 4096;  // a size class of its own

// Fences that complete when a test says so; waiting completes them (as the GPU would, in time).
class FakeFences final : public Fences {
 public:
  ~FakeFences() override { EXPECT_EQ(live(), 0) << "fences the cache never released"; }
  Fence make() {
    states_.push_back(State::pending);
    return reinterpret_cast<Fence>(states_.size());  // 1-based: never nullptr
  }
  void complete(Fence f) { state(f) = State::done; }
  bool done(Fence f) override {
    if (fail_done) throw std::runtime_error("injected cudaEventQuery failure");
    EXPECT_NE(state(f), State::released) << "query of a released fence";
    return state(f) == State::done;
  }
  void wait(Fence f) override {
    ++waits;
    complete(f);
  }
  void release(Fence f) noexcept override {
    EXPECT_NE(state(f), State::released) << "a fence released twice";
    state(f) = State::released;
  }
  int live() const {
    int n = 0;
    for (State s : states_) n += s != State::released ? 1 : 0;
    return n;
  }
  bool fail_done = false;
  int waits = 0;

 private:
  enum class State { pending, done, released };
  State& state(Fence f) { return states_.at(reinterpret_cast<std::size_t>(f) - 1); }
  std::vector<State> states_;
};

TEST(CachingAllocatorTest, ReusesFreedBlocksOfTheSameSizeClass) {
  FakeMemory raw(1 << 20);
  CachingAllocator cache(raw);
  void* a = cache.allocate(1000);
  cache.deallocate(a, 1000);
  void* b = cache.allocate(999);  // the same 1 KiB class
  EXPECT_EQ(a, b);
  EXPECT_EQ(raw.mallocs, 1);
  EXPECT_EQ(cache.stats().cache_hits, 1u);
  cache.deallocate(b, 999);
  cache.release_cache();
  EXPECT_EQ(raw.live_blocks(), 0u);
  EXPECT_EQ(cache.stats().cached_bytes, 0u);
}

TEST(CachingAllocatorTest, BlocksBeyondTheCacheLimitAreFreedAtOnce) {
  FakeMemory raw(1 << 20);
  CachingAllocator cache(raw, 2 * kBlock);
  std::vector<void*> blocks;
  for (int i = 0; i < 3; ++i) blocks.push_back(cache.allocate(kBlock));
  for (void* p : blocks) cache.deallocate(p, kBlock);
  EXPECT_EQ(cache.stats().cached_bytes, 2 * kBlock);
  EXPECT_EQ(cache.stats().uncached_frees, 1u);
  EXPECT_EQ(raw.frees, 1);
  EXPECT_EQ(raw.live_blocks(), 2u);
  // A free that throws at the limit drops the block and still returns normally.
  void* a = cache.allocate(2 * kBlock);
  raw.fail_free_countdown = 1;
  cache.deallocate(a, 2 * kBlock);
  EXPECT_EQ(cache.stats().allocated_bytes, 0u);
  EXPECT_EQ(cache.stats().cached_bytes, 2 * kBlock);
  cache.release_cache();
  EXPECT_EQ(raw.live_blocks(), 1u);  // the dropped block, freed by the fake's destructor
}

TEST(CachingAllocatorTest, AFreeThatThrowsMidwayLeavesNoBlockToBeFreedTwice) {
  FakeMemory raw(1 << 20);
  CachingAllocator cache(raw);
  std::vector<void*> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(cache.allocate(kBlock));
  for (void* p : blocks) cache.deallocate(p, kBlock);
  raw.fail_free_countdown = 2;  // the first free succeeds, the second throws
  EXPECT_THROW(cache.release_cache(), std::runtime_error);
  EXPECT_EQ(raw.frees, 1);
  // The block whose free failed is dropped; the other two are still cached and still live.
  EXPECT_EQ(cache.stats().cached_bytes, 2 * kBlock);
  cache.release_cache();  // the fake reports a double free as a failure
  EXPECT_EQ(raw.frees, 3);
  EXPECT_EQ(cache.stats().cached_bytes, 0u);
}

TEST(CachingAllocatorTest, DeallocateAllocatesNothing) {
  FakeMemory raw(1 << 20);
  CachingAllocator cache(raw);
  // Blocks of classes that have never been freed: the free lists are still empty.
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t bytes : {512u, 1536u, 4096u, 4096u, 70000u}) {
    blocks.emplace_back(cache.allocate(bytes), bytes);
  }
  t_fail_new = true;  // any allocation now throws, which in a noexcept function terminates
  for (const auto& [p, bytes] : blocks) cache.deallocate(p, bytes);
  t_fail_new = false;
  const CudaMemoryStats s = cache.stats();
  EXPECT_EQ(s.allocated_bytes, 0u);
  EXPECT_EQ(s.cached_bytes, 512u + 1536u + 2 * 4096u + 70144u);
  cache.release_cache();
  EXPECT_EQ(raw.live_blocks(), 0u);
}

TEST(CachingAllocatorTest, OutOfMemoryReleasesOnlyWhatTheRequestNeeds) {
  FakeMemory raw(8 * kBlock);
  CachingAllocator cache(raw);
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i) blocks.push_back(cache.allocate(kBlock));  // the device is full
  for (void* p : blocks) cache.deallocate(p, kBlock);
  // A request of two blocks' size in a class with nothing cached: two cached blocks go back.
  void* big = cache.allocate(2 * kBlock);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(raw.frees, 2);
  EXPECT_EQ(cache.stats().cached_bytes, 6 * kBlock);
  cache.deallocate(big, 2 * kBlock);
  cache.release_cache();
  EXPECT_EQ(raw.live_blocks(), 0u);
}

TEST(CachingAllocatorTest, OutOfMemoryWithNothingCachedNamesTheDevice) {
  FakeMemory raw(kBlock);
  CachingAllocator cache(raw);
  void* a = cache.allocate(kBlock);
  try {
    cache.allocate(kBlock);
    FAIL() << "expected an out-of-memory error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("out of memory on fake:0"), std::string::npos) << e.what();
  }
  cache.deallocate(a, kBlock);
  cache.release_cache();
}

TEST(CachingAllocatorTest, AFencedBlockIsReusedOnlyOnceItsFenceIsDone) {
  FakeMemory raw(1 << 20);
  FakeFences fences;
  CachingAllocator cache(raw, std::numeric_limits<std::size_t>::max(), &fences);
  void* a = cache.allocate(kBlock);
  const Fences::Fence f = fences.make();
  cache.deallocate(a, kBlock, f);
  EXPECT_EQ(cache.stats().allocated_bytes, 0u);
  EXPECT_EQ(cache.stats().fenced_bytes, kBlock);
  void* b = cache.allocate(kBlock);  // the fence is pending: a new block
  EXPECT_NE(b, a);
  EXPECT_EQ(raw.mallocs, 2);
  fences.complete(f);
  void* c = cache.allocate(kBlock);  // collected: the first block again
  EXPECT_EQ(c, a);
  EXPECT_EQ(cache.stats().cache_hits, 1u);
  EXPECT_EQ(cache.stats().fenced_bytes, 0u);
  EXPECT_EQ(fences.live(), 0);
  // An unfenced free is reusable at once, next to fenced ones.
  cache.deallocate(b, kBlock);
  cache.deallocate(c, kBlock, fences.make());
  EXPECT_EQ(cache.allocate(kBlock), b);
  EXPECT_EQ(cache.stats().fenced_bytes, kBlock);
  cache.deallocate(b, kBlock);
  cache.release_cache();  // waits for c's fence, then frees everything
  EXPECT_EQ(fences.waits, 1);
  EXPECT_EQ(raw.live_blocks(), 0u);
  EXPECT_EQ(cache.stats().fenced_bytes, 0u);
  EXPECT_EQ(cache.stats().cached_bytes, 0u);
}

TEST(CachingAllocatorTest, FencedDeallocateAllocatesNothing) {
  FakeMemory raw(1 << 20);
  FakeFences fences;
  CachingAllocator cache(raw, std::numeric_limits<std::size_t>::max(), &fences);
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t bytes : {512u, 4096u, 4096u, 70000u}) {
    blocks.emplace_back(cache.allocate(bytes), bytes);
  }
  std::vector<Fences::Fence> made;
  for (std::size_t i = 0; i < blocks.size(); ++i) made.push_back(fences.make());
  t_fail_new = true;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    cache.deallocate(blocks[i].first, blocks[i].second, made[i]);
  }
  t_fail_new = false;
  EXPECT_EQ(cache.stats().fenced_bytes, 512u + 2 * 4096u + 70144u);
  for (Fences::Fence f : made) fences.complete(f);
  // Every fenced block goes to its free list within the slot reserved for it.
  t_fail_new = true;
  cache.release_cache();
  t_fail_new = false;
  EXPECT_EQ(raw.live_blocks(), 0u);
  EXPECT_EQ(fences.waits, 0);  // all were done: nothing to wait for
}

TEST(CachingAllocatorTest, OutOfMemoryWaitsForFencedBlocksBeforeFailing) {
  FakeMemory raw(2 * kBlock);
  FakeFences fences;
  CachingAllocator cache(raw, std::numeric_limits<std::size_t>::max(), &fences);
  void* a = cache.allocate(kBlock);
  void* b = cache.allocate(kBlock);  // the device is full
  cache.deallocate(a, kBlock, fences.make());
  cache.deallocate(b, kBlock, fences.make());
  // The same class: after waiting, a fenced block serves it without a new malloc.
  void* c = cache.allocate(kBlock);
  EXPECT_TRUE(c == a || c == b);
  EXPECT_EQ(raw.mallocs, 3);  // two blocks, one failed try
  EXPECT_EQ(fences.waits, 2);
  // Another class: the cached block goes back to the driver first.
  cache.deallocate(c, kBlock, fences.make());
  void* big = cache.allocate(2 * kBlock);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(raw.frees, 2);
  cache.deallocate(big, 2 * kBlock);
  cache.release_cache();
  EXPECT_EQ(raw.live_blocks(), 0u);
}

TEST(CachingAllocatorTest, AFailingFenceQueryLeavesTheBlockFenced) {
  FakeMemory raw(1 << 20);
  FakeFences fences;
  CachingAllocator cache(raw, std::numeric_limits<std::size_t>::max(), &fences);
  void* a = cache.allocate(kBlock);
  const Fences::Fence f = fences.make();
  cache.deallocate(a, kBlock, f);
  fences.fail_done = true;
  EXPECT_THROW(cache.allocate(kBlock), std::runtime_error);
  fences.fail_done = false;
  EXPECT_EQ(cache.stats().fenced_bytes, kBlock);
  EXPECT_EQ(cache.stats().allocated_bytes, 0u);
  fences.complete(f);
  EXPECT_EQ(cache.allocate(kBlock), a);
  cache.deallocate(a, kBlock);
  cache.release_cache();
  EXPECT_EQ(raw.live_blocks(), 0u);
}

TEST(CachingAllocatorTest, SizeClasses) {
  EXPECT_EQ(CachingAllocator::size_class(0), 512u);
  EXPECT_EQ(CachingAllocator::size_class(513), 1024u);
  EXPECT_EQ(CachingAllocator::size_class(std::size_t{1} << 20), std::size_t{1} << 20);
  EXPECT_EQ(CachingAllocator::size_class((std::size_t{1} << 20) + 1), std::size_t{2} << 20);
}

}  // namespace
}  // namespace glia
