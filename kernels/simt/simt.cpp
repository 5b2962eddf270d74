// The SIMT emulator's launch path: configuration (with its environment defaults), launch limits
// and the dynamic shared memory opt-in, and the pool of persistent worker threads that run a
// launch's blocks (block.cpp runs each block). Tested in tests/simt.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <string>
#include <thread>
#include <unordered_map>

#include "kernels/simt/runtime.h"
#include "kernels/simt/tsan.h"

namespace glia::simt {
namespace {

constexpr std::size_t kDefaultSharedLimit = 48 * 1024;
constexpr std::size_t kMaxSharedOptIn = 227 * 1024;  // an H100's per-block maximum

Config config_from_environment() {
  Config c;
  if (const char* order = std::getenv("GLIA_SIMT_ORDER")) {
    const std::string s = order;
    if (s == "forward") {
      c.order = LaneOrder::forward;
    } else if (s == "reverse") {
      c.order = LaneOrder::reverse;
    } else if (s == "random") {
      c.order = LaneOrder::random;
    } else {
      throw SimtError("GLIA_SIMT_ORDER=" + s + ": expected forward, reverse or random");
    }
  }
  if (const char* seed = std::getenv("GLIA_SIMT_SEED")) c.seed = std::strtoull(seed, nullptr, 0);
  if (const char* threads = std::getenv("GLIA_SIMT_THREADS")) {
    c.threads = std::atoi(threads);
    if (c.threads < 0) throw SimtError("GLIA_SIMT_THREADS must not be negative");
  }
  if (const char* limit = std::getenv("GLIA_SIMT_GRID_LIMIT")) {
    c.grid_limit = static_cast<unsigned>(std::strtoul(limit, nullptr, 0));
  }
  return c;
}

std::mutex& config_mutex() {
  static std::mutex m;
  return m;
}

Config& config_storage() {
  static Config c = config_from_environment();
  return c;
}

std::atomic<std::uint64_t>& launches() {
  static std::atomic<std::uint64_t> count{0};
  return count;
}

std::mutex& opt_in_mutex() {
  static std::mutex m;
  return m;
}

std::unordered_map<const void*, std::size_t>& opt_ins() {
  static std::unordered_map<const void*, std::size_t> m;
  return m;
}

// Kernels' __launch_bounds__ maxima, guarded by opt_in_mutex().
std::unordered_map<const void*, unsigned>& launch_bounds() {
  static std::unordered_map<const void*, unsigned> m;
  return m;
}

std::string launch_head(const LaunchSite& site) {
  return std::string("SIMT error in kernel `") + site.kernel + "` launched at " + site.file + ":" +
         std::to_string(site.line) + ": ";
}

std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

// The limits of an H100 (compute capability 9.0) and the kernel's launch bounds; returns the
// shared memory (static plus dynamic) one block of the kernel may use.
std::size_t check_limits(const LaunchSite& site, const detail::KernelCall& call, dim3 grid,
                         dim3 block, std::size_t shared) {
  const auto fail = [&](const std::string& what) { throw SimtError(launch_head(site) + what); };
  if (block.x == 0 || block.y == 0 || block.z == 0) fail("empty block " + dims(block));
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) fail("empty grid " + dims(grid));
  if (block.x > 1024 || block.y > 1024 || block.z > 64) {
    fail("block " + dims(block) + " exceeds the per-dimension limits (1024,1024,64)");
  }
  const std::uint64_t threads = std::uint64_t{block.x} * block.y * block.z;
  if (threads > 1024) {
    fail("block " + dims(block) + " has " + std::to_string(threads) + " threads, more than 1024");
  }
  if (grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
    fail("grid " + dims(grid) + " exceeds the limits (2147483647,65535,65535)");
  }
  std::size_t limit = kDefaultSharedLimit;
  unsigned bound = 0;
  {
    std::lock_guard lock(opt_in_mutex());
    const auto it = opt_ins().find(call.kernel);
    if (it != opt_ins().end()) limit = it->second;
    const auto b = launch_bounds().find(call.kernel);
    if (b != launch_bounds().end()) bound = b->second;
  }
  if (bound != 0 && threads > bound) {
    fail("block " + dims(block) + " has " + std::to_string(threads) +
         " threads, more than the kernel's __launch_bounds__ of " + std::to_string(bound));
  }
  if (shared > limit) {
    fail("asks for " + std::to_string(shared) + " bytes of dynamic shared memory, more than its " +
         "limit of " + std::to_string(limit) +
         (limit == kDefaultSharedLimit ? " (opt in with GLIA_SET_MAX_DYNAMIC_SHARED, up to " +
                                             std::to_string(kMaxSharedOptIn) + ")"
                                       : ""));
  }
  return limit;
}

// Persistent worker threads; a launch hands its blocks to the first `participants` of them. The
// pool is never destroyed: its threads wait on a condition variable until the process exits.
class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool;
    return *pool;
  }

  void run(detail::LaunchState& launch, unsigned participants) {
    std::unique_lock lock(mutex_);
    while (threads_.size() < participants) {
      const auto index = static_cast<unsigned>(threads_.size());
      threads_.emplace_back([this, index] { work(index); });
      threads_.back().detach();
    }
    launch_ = &launch;
    participants_ = participants;
    running_ = participants;
    ++generation_;
    start_.notify_all();
    done_.wait(lock, [this] { return running_ == 0; });
    launch_ = nullptr;
  }

 private:
  void work(unsigned index) {
    detail::Worker worker;
    detail::tl_worker = &worker;
    worker.tsan_scheduler = detail::tsan::current_fiber();
    // The emulator's bookkeeping is invisible to TSan; kernels run in fibers that stop ignoring.
    detail::tsan::ignore_begin();
    std::uint64_t seen = 0;
    for (;;) {
      detail::LaunchState* launch = nullptr;
      {
        std::unique_lock lock(mutex_);
        start_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (index >= participants_) continue;
        launch = launch_;
      }
      run_blocks(worker, *launch);
      std::lock_guard lock(mutex_);
      if (--running_ == 0) done_.notify_all();
    }
  }

  static void run_blocks(detail::Worker& worker, detail::LaunchState& launch) {
    while (!launch.failed.load(std::memory_order_relaxed)) {
      const std::uint64_t block = launch.next_block.fetch_add(1, std::memory_order_relaxed);
      if (block >= launch.block_count) return;
      try {
        worker.run_block(launch, block);
      } catch (const SimtError& e) {
        launch.record_error(block, e.what());
      } catch (const std::exception& e) {
        launch.record_error(
            block, std::string("SIMT error in kernel `") + launch.site.kernel + "`: " + e.what());
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable start_;
  std::condition_variable done_;
  std::vector<std::thread> threads_;
  detail::LaunchState* launch_ = nullptr;
  unsigned participants_ = 0;
  unsigned running_ = 0;
  std::uint64_t generation_ = 0;
};

// Launches are serialised: the pool runs one at a time, as a single stream would.
std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

Config config() {
  std::lock_guard lock(config_mutex());
  return config_storage();
}

void set_config(const Config& c) {
  if (c.threads < 0) throw SimtError("SIMT config: threads must not be negative");
  std::lock_guard lock(config_mutex());
  config_storage() = c;
}

std::uint64_t launch_count() {
  return launches().load(std::memory_order_relaxed);
}

void* dynamic_shared() {
  if (detail::tl_thread == nullptr) {
    throw SimtError("SIMT error: dynamic shared memory used outside a kernel");
  }
  return detail::tl_block.dynamic_shared;
}

void set_max_dynamic_shared(const void* kernel, std::size_t bytes) {
  if (bytes > kMaxSharedOptIn) {
    throw SimtError("SIMT error: cannot opt in to " + std::to_string(bytes) +
                    " bytes of dynamic shared memory, more than the maximum of " +
                    std::to_string(kMaxSharedOptIn));
  }
  std::lock_guard lock(opt_in_mutex());
  opt_ins()[kernel] = bytes < kDefaultSharedLimit ? kDefaultSharedLimit : bytes;
}

bool set_launch_bounds(const void* kernel, unsigned max_threads) {
  if (max_threads == 0 || max_threads > 1024) {
    throw SimtError("SIMT error: __launch_bounds__ of " + std::to_string(max_threads) +
                    " threads is outside 1..1024");
  }
  std::lock_guard lock(opt_in_mutex());
  launch_bounds()[kernel] = max_threads;
  return true;
}

namespace detail {

void LaunchState::record_error(std::uint64_t block_linear, std::string message) {
  std::lock_guard lock(error_mutex);
  if (error.empty() || block_linear < error_block) {
    error = std::move(message);
    error_block = block_linear;
  }
  failed.store(true, std::memory_order_relaxed);
}

void launch(const LaunchSite& site, const KernelCall& call, dim3 grid, dim3 block,
            std::size_t dynamic_shared_bytes) {
  launches().fetch_add(1, std::memory_order_relaxed);
  if (tl_thread != nullptr) {
    throw SimtError(launch_head(site) + "launched from inside a kernel (dynamic parallelism is " +
                    "not supported)");
  }
  const std::size_t shared_limit = check_limits(site, call, grid, block, dynamic_shared_bytes);
  LaunchState state;
  // Without an opt-in static and dynamic memory share 48 KiB; with one, the block's maximum.
  state.shared_limit = shared_limit > kDefaultSharedLimit ? kMaxSharedOptIn : kDefaultSharedLimit;
  state.site = site;
  state.call = call;
  state.grid = grid;
  state.block = block;
  state.dynamic_shared_bytes = dynamic_shared_bytes;
  state.config = config();
  state.block_count = std::uint64_t{grid.x} * grid.y * grid.z;
  std::uint64_t workers = state.config.threads > 0
                              ? static_cast<unsigned>(state.config.threads)
                              : std::max(1u, std::thread::hardware_concurrency());
  if (workers > state.block_count) workers = state.block_count;

  std::lock_guard lock(launch_mutex());
  tsan::release(&state.tsan_begin);
  Pool::instance().run(state, static_cast<unsigned>(workers));
  tsan::acquire(&state.tsan_end);
  if (!state.error.empty()) throw SimtError(state.error);
}

#if defined(GLIA_TSAN)
// TSan does not model standalone fences; an acquire-release read-modify-write on one global
// stands in, ordering the fences of all threads (which may hide races around them, never invent
// one).
void thread_fence() {
  static std::atomic<int> fence{0};
  fence.fetch_add(0, std::memory_order_acq_rel);
}
#else
void thread_fence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}
#endif

}  // namespace detail
}  // namespace glia::simt
