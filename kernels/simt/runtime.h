// Internals of the SIMT emulator shared by launch.cpp (limits, configuration, worker pool) and
// block.cpp (the scheduler that runs one block's threads as fibers): a launch's state, an emulated
// thread, a runner fiber with its stack, and a worker's reusable block state. Not part of the
// public surface (that is simt.h). Tested through tests/simt.
#pragma once

#include <array>
#include <atomic>
#include <boost/context/fiber.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

#include "kernels/simt/simt.h"

namespace glia::simt::detail {

// One kernel launch, shared by the workers that run its blocks.
struct LaunchState {
  LaunchSite site;
  KernelCall call;
  dim3 grid;
  dim3 block;
  std::size_t dynamic_shared_bytes = 0;
  std::size_t shared_limit = 0;  // static plus dynamic shared memory one block may use
  Config config;
  std::uint64_t block_count = 0;
  std::atomic<std::uint64_t> next_block{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::uint64_t error_block = 0;  // the lowest failing block wins, so messages are reproducible
  std::string error;
  // TSan: the host's writes before the launch happen before every GPU thread, and every GPU
  // thread happens before the host's reads after it.
  char tsan_begin = 0;
  char tsan_end = 0;

  void record_error(std::uint64_t block_linear, std::string message);
};

enum class Status : std::uint8_t { unstarted, running, ready, at_barrier, at_warp, exited };

struct Runner;

// A cp.async issued by a thread and not yet performed; `group` is the commit it belongs to, or
// kUncommitted.
struct AsyncCopy {
  static constexpr std::uint64_t kUncommitted = ~std::uint64_t{0};
  void* dst;
  const void* src;
  unsigned bytes;
  unsigned src_bytes;
  std::uint64_t group;
  std::source_location site;
};

// One emulated GPU thread. The request fields are written by the thread's fiber when it blocks
// and read by the scheduler; the result is written by the scheduler before it resumes the thread.
struct Thread {
  uint3 idx{};
  unsigned linear = 0;
  unsigned warp = 0;
  unsigned lane = 0;
  Status status = Status::unstarted;
  Runner* runner = nullptr;

  std::source_location site;
  BlockSync block_op = BlockSync::plain;
  WarpOp warp_op = WarpOp::syncwarp;
  unsigned mask = 0;
  std::uint64_t value = 0;
  int lane_arg = 0;
  int width = 0;
  std::uint64_t result = 0;
  // A warp matrix instruction's op and this lane's words in and out (WarpOp::matrix).
  const WarpMatrixOp* matrix = nullptr;
  MatrixWords words_in{};
  MatrixWords words_out{};

  // TSan: the rendezvous this thread waits at (its number within the warp), and the number of
  // barriers it passed; both pick the address that its arrival releases and its departure
  // acquires.
  unsigned rendezvous = 0;
  unsigned barrier_count = 0;

  // cp.async copies issued but not yet waited for, in issue order, and the groups committed.
  std::vector<AsyncCopy> async_copies;
  std::uint64_t async_groups = 0;
};

// A fiber with its own stack that runs emulated threads. It lives as long as its worker and is
// reused across blocks and launches: an idle runner costs nothing, creating one costs a stack.
struct Runner {
  Runner();
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  boost::context::fiber context;  // this runner, while suspended
  Thread* thread = nullptr;       // the thread it runs; null while idle
  void* tsan_fiber = nullptr;
  void* stack = nullptr;  // mapping: guard page, then the stack
  std::size_t stack_bytes = 0;
  const void* stack_bottom = nullptr;  // the usable stack, above the guard page (for ASan)
  std::size_t stack_size = 0;
};

// An open warp rendezvous: the lanes of `mask` that arrived so far at one collective call.
struct Rendezvous {
  unsigned number;  // counts the warp's rendezvous in this block
  WarpOp op;
  unsigned mask;
  unsigned arrived;
  std::source_location site;
  unsigned first_lane;
  const WarpMatrixOp* matrix;  // WarpOp::matrix only
};

struct Barrier {
  bool open = false;
  BlockSync op = BlockSync::plain;
  std::source_location site;
  unsigned first_thread = 0;
  unsigned arrived = 0;
  unsigned true_count = 0;
};

// The block a worker is running; its vectors are reused from block to block.
struct BlockState {
  LaunchState* launch = nullptr;
  std::uint64_t linear = 0;
  uint3 idx{};
  unsigned size = 0;
  std::vector<Thread> threads;
  std::vector<unsigned> order;  // the permutation of linear indices a pass resumes in
  unsigned cursor = 0;          // the next position of `order` in the current pass
  unsigned ready = 0;           // threads released from a barrier or rendezvous, not yet resumed
  unsigned exited = 0;
  unsigned pass = 0;
  Barrier barrier;
  std::vector<std::vector<Rendezvous>> warps;  // open rendezvous per warp
  std::vector<unsigned> warp_lanes;            // the lanes that exist, per warp
  std::vector<unsigned> warp_opened;           // rendezvous opened so far, per warp
  bool aborting = false;                       // blocked threads unwind when resumed
  // The static shared arrays declared so far in this block (GLIA_STATIC_SHARED) and their bytes.
  std::vector<std::pair<const void*, std::size_t>> static_shared;
  std::size_t static_shared_bytes = 0;
  std::string fault;  // set by a runner whose kernel code threw
  // TSan: arrival releases and departure acquires one address per barrier phase and per warp
  // rendezvous. Two barrier phases alternate, since no thread reaches the next barrier before
  // every thread left this one; rendezvous use a ring of kRendezvousRing per warp, as a lane
  // waits for at most one while its partners may have opened the next ones.
  static constexpr unsigned kRendezvousRing = 4;
  std::array<char, 2> tsan_barrier{};
  std::vector<char> tsan_rendezvous;
};

// Per worker thread: the scheduler's context, the runner pool, the dynamic shared memory.
struct Worker {
  boost::context::fiber scheduler;  // the scheduler, while a runner runs
  void* tsan_scheduler = nullptr;
  // ASan: the scheduler's stack (the worker thread's own), learnt when a runner is entered.
  const void* asan_scheduler_bottom = nullptr;
  std::size_t asan_scheduler_size = 0;
  std::vector<std::unique_ptr<Runner>> runners;
  std::vector<Runner*> idle;
  BlockState block;
  std::unique_ptr<unsigned char[]> shared;
  std::size_t shared_capacity = 0;
  // TSan: all threads of a block happen before all threads of the worker's next block, since the
  // blocks reuse the same shared memory (dynamic and static).
  std::uint64_t block_sequence = 0;
  std::array<char, 2> tsan_block{};

  // Runs block `linear` of the launch to completion; throws SimtError on an error.
  void run_block(LaunchState& launch, std::uint64_t linear);
};

// The emulated thread running on this worker thread, or null outside a kernel.
inline thread_local Thread* tl_thread = nullptr;
inline thread_local Worker* tl_worker = nullptr;

// Formats "file:line" of a call site and "(x,y,z)" of an index, for messages.
std::string site_string(const std::source_location& s);
std::string index_string(const uint3& v);

}  // namespace glia::simt::detail
