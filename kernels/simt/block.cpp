// The block scheduler of the SIMT emulator: runs one block's threads as fibers on the calling
// worker thread, in passes over a lane-order permutation, switching only at barriers and warp
// collectives; checks barriers and warp rendezvous and explains deadlocks as SimtError messages
// naming the kernel, block, threads and call sites. Tested in tests/simt.
//
// A runner fiber runs a thread until it blocks or exits. When it exits and the next thread in
// the order has not started, the same runner starts it in place, so a barrier-free block costs one
// pair of context switches in all (except under TSan, where each thread needs its own fiber).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "kernels/simt/asan.h"
#include "kernels/simt/runtime.h"
#include "kernels/simt/tsan.h"

namespace glia::simt::detail {
namespace {

#if defined(GLIA_TSAN)
constexpr std::size_t kStackBytes = 256 * 1024;  // instrumented code needs deeper stacks
#else
constexpr std::size_t kStackBytes = 64 * 1024;
#endif

// Under TSan each thread of a block gets its own runner (so its own TSan fiber): a runner that
// ran several threads one after another would order them for TSan and hide their races.
constexpr bool kRunInPlace = !tsan::enabled;

// Thrown into the blocked threads of a block that failed, so their fibers unwind and idle.
struct Unwind {};

// The runner owns its stack mapping; the fiber must not free it.
struct KeepStack {
  void deallocate(boost::context::stack_context&) noexcept {}
};

const char* op_name(BlockSync op) {
  switch (op) {
    case BlockSync::plain:
      return "__syncthreads";
    case BlockSync::count:
      return "__syncthreads_count";
    case BlockSync::all:
      return "__syncthreads_and";
    case BlockSync::any:
      return "__syncthreads_or";
  }
  return "?";
}

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::syncwarp:
      return "__syncwarp";
    case WarpOp::shfl:
      return "__shfl_sync";
    case WarpOp::shfl_up:
      return "__shfl_up_sync";
    case WarpOp::shfl_down:
      return "__shfl_down_sync";
    case WarpOp::shfl_xor:
      return "__shfl_xor_sync";
    case WarpOp::ballot:
      return "__ballot_sync";
    case WarpOp::any:
      return "__any_sync";
    case WarpOp::all:
      return "__all_sync";
    case WarpOp::matrix:
      return "a warp matrix instruction";
  }
  return "?";
}

// The name of a warp collective in messages: a matrix instruction's own PTX name.
std::string op_label(WarpOp op, const WarpMatrixOp* matrix) {
  return op == WarpOp::matrix && matrix != nullptr ? matrix->name : op_name(op);
}

bool is_shuffle(WarpOp op) {
  return op == WarpOp::shfl || op == WarpOp::shfl_up || op == WarpOp::shfl_down ||
         op == WarpOp::shfl_xor;
}

bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         (a.file_name() == b.file_name() || std::strcmp(a.file_name(), b.file_name()) == 0);
}

std::string hex(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", mask);
  return text;
}

// "lanes 0-15,17" for a lane mask.
std::string lanes_string(unsigned mask) {
  std::string out = std::popcount(mask) == 1 ? "lane " : "lanes ";
  bool first = true;
  for (unsigned lane = 0; lane < 32;) {
    if (!(mask >> lane & 1u)) {
      ++lane;
      continue;
    }
    unsigned last = lane;
    while (last + 1 < 32 && (mask >> (last + 1) & 1u)) ++last;
    out += (first ? "" : ",") + std::to_string(lane);
    if (last > lane) out += "-" + std::to_string(last);
    first = false;
    lane = last + 1;
  }
  return out;
}

// "lane 3 waits" or "lanes 0-2 wait".
std::string lanes_wait(unsigned mask) {
  return lanes_string(mask) + (std::popcount(mask) == 1 ? " waits" : " wait");
}

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void suspend_to_scheduler(Worker& w) {
  void* fake_stack = nullptr;
  asan::start_switch(&fake_stack, w.asan_scheduler_bottom, w.asan_scheduler_size);
  tsan::switch_to(w.tsan_scheduler);
  w.scheduler = std::move(w.scheduler).resume();
  asan::finish_switch(fake_stack, &w.asan_scheduler_bottom, &w.asan_scheduler_size);
}

// The next thread of the current pass, if it has not started: a runner whose thread exited runs
// it in place instead of switching back to the scheduler.
Thread* take_unstarted(BlockState& b) {
  if (b.cursor >= b.size) return nullptr;
  Thread& t = b.threads[b.order[b.cursor]];
  if (t.status != Status::unstarted) return nullptr;
  ++b.cursor;
  return &t;
}

// Runs the runner's thread, then (outside TSan) the following unstarted threads, until one blocks
// for good (its fiber stays on this stack) or none is left. Runs with TSan ignoring accesses,
// except while the kernel itself runs.
void run_threads(Worker& w, Runner& r) {
  BlockState& b = w.block;
  LaunchState& launch = *b.launch;
  Thread* t = r.thread;
  for (;;) {
    t->status = Status::running;
    t->runner = &r;
    tl_thread = t;
    tl_thread_idx = t->idx;
    tsan::acquire(&launch.tsan_begin);
    tsan::acquire(&w.tsan_block[(w.block_sequence + 1) % 2]);
    const KernelCall call = launch.call;
    tsan::ignore_end();
    bool completed = false;
    std::string fault;
    try {
      call.invoke(call.closure);
      completed = true;
    } catch (const Unwind&) {
      // the block failed elsewhere; this thread's fiber only needs to unwind
    } catch (const boost::context::detail::forced_unwind&) {
      throw;  // the runner itself is being destroyed
    } catch (const std::exception& e) {
      fault = "thread " + index_string(t->idx) + " threw: " + e.what();
    } catch (...) {
      fault = "thread " + index_string(t->idx) + " threw an exception";
    }
    // Also when it failed: the host goes on after the launch, reusing what the thread touched.
    tsan::release(&launch.tsan_end);
    tsan::release(&w.tsan_block[w.block_sequence % 2]);
    tsan::ignore_begin();
    if (completed && !t->async_copies.empty()) {
      fault = "thread " + index_string(t->idx) + " exited with " +
              std::to_string(t->async_copies.size()) +
              " cp.async copies it never waited for (the first issued at " +
              site_string(t->async_copies.front().site) + ")";
      completed = false;
    }
    if (!completed) {
      if (!fault.empty()) b.fault = std::move(fault);
      t->runner = nullptr;
      return;
    }
    t->status = Status::exited;
    t->runner = nullptr;
    ++b.exited;
    tl_thread = nullptr;
    if (!kRunInPlace) return;
    t = take_unstarted(b);
    if (t == nullptr) return;
    r.thread = t;
  }
}

boost::context::fiber runner_main(Runner& r, boost::context::fiber&& scheduler) {
  tsan::ignore_begin();  // the runner's own code is bookkeeping; only kernels are watched
  Worker& w = *tl_worker;
  asan::finish_switch(nullptr, &w.asan_scheduler_bottom, &w.asan_scheduler_size);
  w.scheduler = std::move(scheduler);
  for (;;) {
    if (r.thread != nullptr) run_threads(w, r);
    r.thread = nullptr;
    suspend_to_scheduler(w);  // idle until given a thread
  }
}

// The error message's head: which kernel, launched where, which block.
std::string error_head(const BlockState& b) {
  const LaunchSite& s = b.launch->site;
  return std::string("SIMT error in kernel `") + s.kernel + "` launched at " + s.file + ":" +
         std::to_string(s.line) + ", block " + index_string(b.idx) + ": ";
}

[[noreturn]] void fail(const BlockState& b, const std::string& what) {
  throw SimtError(error_head(b) + what);
}

std::string thread_string(const Thread& t) {
  return "thread " + index_string(t.idx);
}

std::string lane_string(const Thread& t) {
  return "lane " + std::to_string(t.lane) + " (" + thread_string(t) + ")";
}

// Where a blocked or finished thread is, for deadlock messages.
std::string whereabouts(const Thread& t) {
  switch (t.status) {
    case Status::exited:
      return "has exited";
    case Status::at_barrier:
      return std::string("waits at ") + op_name(t.block_op) + " (" + site_string(t.site) + ")";
    case Status::at_warp:
      return "waits at " + op_label(t.warp_op, t.matrix) + " (" + site_string(t.site) +
             ") with mask " + hex(t.mask);
    default:
      return "is still running";
  }
}

}  // namespace

std::string site_string(const std::source_location& s) {
  return std::string(s.file_name()) + ":" + std::to_string(s.line());
}

std::string index_string(const uint3& v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

Runner::Runner() {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  stack_bytes = kStackBytes + page;
  stack = mmap(nullptr, stack_bytes, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) throw SimtError("SIMT error: cannot map a fiber stack");
  // A guard page below the stack turns an overflow into a fault instead of silent corruption.
  mprotect(stack, page, PROT_NONE);
  boost::context::stack_context sctx;
  sctx.size = kStackBytes;
  sctx.sp = static_cast<char*>(stack) + stack_bytes;
  stack_bottom = static_cast<char*>(stack) + page;
  stack_size = kStackBytes;
  context = boost::context::fiber(std::allocator_arg,
                                  boost::context::preallocated(sctx.sp, sctx.size, sctx),
                                  KeepStack{}, [this](boost::context::fiber&& scheduler) {
                                    return runner_main(*this, std::move(scheduler));
                                  });
  tsan_fiber = tsan::create_fiber();
}

Runner::~Runner() {
  if (context) {
    // Unwinding runs on the fiber's stack and comes back here.
    void* fake_stack = nullptr;
    asan::start_switch(&fake_stack, stack_bottom, stack_size);
    context = boost::context::fiber();  // unwinds the fiber's stack before it is unmapped
    asan::finish_switch(fake_stack, nullptr, nullptr);
  }
  munmap(stack, stack_bytes);
}

int block_sync(BlockSync op, int predicate, const std::source_location& where) {
  Thread* t = tl_thread;
  if (t == nullptr) {
    throw SimtError(std::string("SIMT error: ") + op_name(op) + " called outside a kernel at " +
                    site_string(where));
  }
  tsan::ignore_begin();
  Worker& w = *tl_worker;
  BlockState& b = w.block;
  const void* token = &b.tsan_barrier[t->barrier_count % 2];
  tsan::release(token);
  t->status = Status::at_barrier;
  t->site = where;
  t->block_op = op;
  t->value = predicate != 0;
  suspend_to_scheduler(w);
  if (b.aborting) {
    tsan::ignore_end();
    throw Unwind{};
  }
  tsan::acquire(token);
  ++t->barrier_count;
  const int result = static_cast<int>(t->result);
  tsan::ignore_end();
  return result;
}

std::uint64_t warp_sync(WarpOp op, unsigned mask, std::uint64_t value, int lane_arg, int width,
                        const std::source_location& where) {
  Thread* t = tl_thread;
  if (t == nullptr) {
    throw SimtError(std::string("SIMT error: ") + op_name(op) + " called outside a kernel at " +
                    site_string(where));
  }
  tsan::ignore_begin();
  Worker& w = *tl_worker;
  BlockState& b = w.block;
  const void* token = nullptr;
  if constexpr (tsan::enabled) {
    // The rendezvous the scheduler will put this lane in: an open one that shares lanes with its
    // mask, or the next one the warp opens.
    t->rendezvous = b.warp_opened[t->warp];
    for (const Rendezvous& rv : b.warps[t->warp]) {
      if ((rv.mask & mask) != 0) {
        t->rendezvous = rv.number;
        break;
      }
    }
    token = &b.tsan_rendezvous[t->warp * BlockState::kRendezvousRing +
                               t->rendezvous % BlockState::kRendezvousRing];
    tsan::release(token);
  }
  t->status = Status::at_warp;
  t->site = where;
  t->warp_op = op;
  t->mask = mask;
  t->value = value;
  t->lane_arg = lane_arg;
  t->width = width;
  suspend_to_scheduler(w);
  if (b.aborting) {
    tsan::ignore_end();
    throw Unwind{};
  }
  tsan::acquire(token);
  const std::uint64_t result = t->result;
  tsan::ignore_end();
  return result;
}

void warp_matrix(const WarpMatrixOp& op, const std::uint32_t* in, std::uint32_t* out,
                 const std::source_location& where) {
  Thread* t = tl_thread;
  if (t == nullptr) {
    throw SimtError(std::string("SIMT error: ") + op.name + " called outside a kernel at " +
                    site_string(where));
  }
  tsan::ignore_begin();
  t->matrix = &op;
  std::copy(in, in + op.in_words, t->words_in);
  tsan::ignore_end();
  // The whole warp, as the instruction has no mask; the rendezvous checks that it exists.
  warp_sync(WarpOp::matrix, 0xffffffffu, 0, 0, warpSize, where);
  tsan::ignore_begin();
  std::copy(t->words_out, t->words_out + op.out_words, out);
  tsan::ignore_end();
}

namespace {

// The scheduler side, on the worker's own stack.
class Scheduler {
 public:
  Scheduler(Worker& w) : w_(w), b_(w.block) {}

  void run() {
    const LaneOrder order = b_.launch->config.order;
    std::uint64_t coin = splitmix(b_.launch->config.seed ^ splitmix(~b_.linear));
    for (;;) {
      for (b_.cursor = 0; b_.cursor < b_.size;) {
        Thread& t = b_.threads[b_.order[b_.cursor++]];
        const unsigned ready_before = b_.ready - (t.status == Status::ready ? 1u : 0u);
        if (t.status == Status::unstarted) {
          Runner& r = take_runner(t);
          r.thread = &t;
          resume(r);
        } else if (t.status == Status::ready) {
          --b_.ready;
          resume(*t.runner);
        } else {
          continue;
        }
        // Under the random order, threads that this one released (a warp collective or a
        // barrier it completed) may run ahead at once instead of at the next pass: so warps do
        // not advance in step, and a shared tile overwritten without a barrier while another
        // warp still reads it shows, as it can on a GPU.
        if (order == LaneOrder::random && b_.ready > ready_before) {
          coin = splitmix(coin);
          if (coin & 1u) b_.cursor = 0;
        }
      }
      if (b_.exited == b_.size) return;
      if (b_.ready == 0) explain_deadlock();
      ++b_.pass;
      if (order == LaneOrder::random) shuffle_order();
    }
  }

  // Unwinds the fibers of the threads that are still blocked, so their runners can be reused.
  void abort() {
    b_.aborting = true;
    for (Thread& t : b_.threads) {
      if (t.runner == nullptr || t.status == Status::exited) continue;
      Runner& r = *t.runner;
      switch_to(r);
      t.runner = nullptr;
      t.status = Status::exited;
      if (kRunInPlace) w_.idle.push_back(&r);
    }
    b_.aborting = false;
  }

  void shuffle_order() {
    std::uint64_t state =
        splitmix(b_.launch->config.seed ^ splitmix(b_.linear) ^ splitmix(0x5157ull + b_.pass));
    for (unsigned i = b_.size; i > 1; --i) {
      state = splitmix(state);
      const auto j = static_cast<unsigned>(state % i);
      std::swap(b_.order[i - 1], b_.order[j]);
    }
  }

 private:
  Runner& take_runner(const Thread& t) {
    if (!kRunInPlace) {
      while (w_.runners.size() <= t.linear) w_.runners.push_back(std::make_unique<Runner>());
      return *w_.runners[t.linear];
    }
    if (!w_.idle.empty()) {
      Runner* r = w_.idle.back();
      w_.idle.pop_back();
      return *r;
    }
    w_.runners.push_back(std::make_unique<Runner>());
    return *w_.runners.back();
  }

  void switch_to(Runner& r) {
    tl_thread = r.thread;
    if (r.thread != nullptr) tl_thread_idx = r.thread->idx;
    void* fake_stack = nullptr;
    asan::start_switch(&fake_stack, r.stack_bottom, r.stack_size);
    tsan::switch_to(r.tsan_fiber);
    r.context = std::move(r.context).resume();
    asan::finish_switch(fake_stack, nullptr, nullptr);
    tl_thread = nullptr;
  }

  // Resumes a runner and takes note of why it came back: idle, blocked or failed.
  void resume(Runner& r) {
    switch_to(r);
    if (r.thread == nullptr) {
      if (kRunInPlace) w_.idle.push_back(&r);
      if (!b_.fault.empty()) fail(b_, b_.fault);
      return;
    }
    Thread& t = *r.thread;
    if (t.status == Status::at_barrier) {
      arrive_at_barrier(t);
    } else if (t.status == Status::at_warp) {
      arrive_at_rendezvous(t);
    }
  }

  void arrive_at_barrier(Thread& t) {
    Barrier& bar = b_.barrier;
    if (!bar.open) {
      bar.open = true;
      bar.op = t.block_op;
      bar.site = t.site;
      bar.first_thread = t.linear;
      bar.arrived = 0;
      bar.true_count = 0;
    } else if (bar.op != t.block_op || !same_site(bar.site, t.site)) {
      const Thread& first = b_.threads[bar.first_thread];
      fail(b_, "threads of the block wait at different barriers: " + thread_string(first) + " at " +
                   op_name(bar.op) + " (" + site_string(bar.site) + ") and " + thread_string(t) +
                   " at " + op_name(t.block_op) + " (" + site_string(t.site) + ")");
    }
    ++bar.arrived;
    bar.true_count += static_cast<unsigned>(t.value);
    if (bar.arrived < b_.size) return;
    std::uint64_t result = 0;
    switch (bar.op) {
      case BlockSync::plain:
        break;
      case BlockSync::count:
        result = bar.true_count;
        break;
      case BlockSync::all:
        result = bar.true_count == b_.size;
        break;
      case BlockSync::any:
        result = bar.true_count != 0;
        break;
    }
    for (Thread& u : b_.threads) {
      u.status = Status::ready;
      u.result = result;
    }
    b_.ready += b_.size;
    bar.open = false;
  }

  void arrive_at_rendezvous(Thread& t) {
    const unsigned bit = 1u << t.lane;
    const unsigned lanes = b_.warp_lanes[t.warp];
    const bool bad_width = is_shuffle(t.warp_op) &&
                           (t.width < 1 || t.width > warpSize || (t.width & (t.width - 1)) != 0);
    if (t.warp_op == WarpOp::matrix && lanes != 0xffffffffu) {
      fail(b_, "warp " + std::to_string(t.warp) + ": " + lane_string(t) + " calls " +
                   t.matrix->name + " (" + site_string(t.site) +
                   "), which needs all 32 lanes of the warp, but the warp has only " +
                   lanes_string(lanes) + " (the block has " + std::to_string(b_.size) +
                   " threads)");
    }
    if ((t.mask & bit) == 0 || (t.mask & ~lanes) != 0 || bad_width) {
      const std::string who = "warp " + std::to_string(t.warp) + ": " + lane_string(t) + " calls " +
                              op_name(t.warp_op) + " (" + site_string(t.site) + ") with mask " +
                              hex(t.mask);
      if ((t.mask & bit) == 0) fail(b_, who + ", which does not include its own lane");
      if ((t.mask & ~lanes) != 0) {
        fail(b_, who + ", which names " + lanes_string(t.mask & ~lanes) +
                     " that do not exist (the block has " + std::to_string(b_.size) + " threads)");
      }
      fail(b_, who + " and width " + std::to_string(t.width) +
                   ", which is not a power of two from 1 to 32");
    }
    std::vector<Rendezvous>& open = b_.warps[t.warp];
    std::size_t k = 0;
    while (k < open.size() && (open[k].mask & t.mask) == 0) ++k;
    const WarpMatrixOp* matrix = t.warp_op == WarpOp::matrix ? t.matrix : nullptr;
    if (k == open.size()) {
      open.push_back(
          Rendezvous{b_.warp_opened[t.warp]++, t.warp_op, t.mask, 0, t.site, t.lane, matrix});
    } else {
      const Rendezvous& rv = open[k];
      if (rv.mask != t.mask || rv.op != t.warp_op || !same_site(rv.site, t.site) ||
          rv.matrix != matrix) {
        fail(b_, "warp " + std::to_string(t.warp) + ": " + lanes_wait(rv.arrived) + " at " +
                     op_label(rv.op, rv.matrix) + " (" + site_string(rv.site) + ") with mask " +
                     hex(rv.mask) + ", but " + lane_string(t) + " arrives at " +
                     op_label(t.warp_op, matrix) + " (" + site_string(t.site) + ") with mask " +
                     hex(t.mask));
      }
    }
    open[k].arrived |= bit;
    if (open[k].arrived != open[k].mask) return;
    const Rendezvous rv = open[k];
    open.erase(open.begin() + static_cast<std::ptrdiff_t>(k));
    complete(t.warp, rv);
  }

  // Every lane of the mask arrived: compute each lane's result and release them all.
  void complete(unsigned warp, const Rendezvous& rv) {
    Thread* lanes = &b_.threads[warp * warpSize];
    if (rv.op == WarpOp::matrix) {
      // The mask is the whole warp (arrive_at_rendezvous checked that it exists).
      MatrixWords in[warpSize], out[warpSize] = {};
      for (unsigned i = 0; i < warpSize; ++i) std::copy_n(lanes[i].words_in, kMatrixWords, in[i]);
      rv.matrix->compute(in, out);
      for (unsigned i = 0; i < warpSize; ++i) {
        std::copy_n(out[i], kMatrixWords, lanes[i].words_out);
        lanes[i].result = 0;
        lanes[i].status = Status::ready;
      }
      b_.ready += warpSize;
      return;
    }
    std::uint64_t bits = 0;
    for (unsigned m = rv.mask; m != 0; m &= m - 1) {
      const auto i = static_cast<unsigned>(std::countr_zero(m));
      if (lanes[i].value != 0) bits |= 1ull << i;
    }
    for (unsigned m = rv.mask; m != 0; m &= m - 1) {
      const auto i = static_cast<unsigned>(std::countr_zero(m));
      Thread& t = lanes[i];
      switch (rv.op) {
        case WarpOp::syncwarp:
          t.result = 0;
          break;
        case WarpOp::ballot:
          t.result = bits;
          break;
        case WarpOp::any:
          t.result = bits != 0;
          break;
        case WarpOp::all:
          t.result = bits == rv.mask;
          break;
        default:
          t.result = lanes[source_lane(t, rv)].value;
          break;
      }
    }
    for (unsigned m = rv.mask; m != 0; m &= m - 1) {
      Thread& t = lanes[std::countr_zero(m)];
      t.status = Status::ready;
      ++b_.ready;
    }
  }

  // The lane a shuffle reads, as PTX shfl.sync defines it for CUDA's width argument: outside
  // the lane's segment of `width` lanes, a lane keeps its own value.
  unsigned source_lane(const Thread& t, const Rendezvous& rv) {
    const unsigned lane = t.lane;
    const auto segmask = static_cast<unsigned>(warpSize - t.width) & 31u;
    const unsigned clamp = rv.op == WarpOp::shfl_up ? 0u : 31u;
    const unsigned max_lane = (lane & segmask) | (clamp & ~segmask);
    const unsigned min_lane = lane & segmask;
    const unsigned arg = static_cast<unsigned>(t.lane_arg) & 31u;
    int j = 0;
    bool inside = false;
    switch (rv.op) {
      case WarpOp::shfl_up:
        j = static_cast<int>(lane) - static_cast<int>(arg);
        inside = j >= static_cast<int>(max_lane);
        break;
      case WarpOp::shfl_down:
        j = static_cast<int>(lane + arg);
        inside = j <= static_cast<int>(max_lane);
        break;
      case WarpOp::shfl_xor:
        j = static_cast<int>(lane ^ arg);
        inside = j <= static_cast<int>(max_lane);
        break;
      default:
        j = static_cast<int>(min_lane | (arg & ~segmask));
        inside = j <= static_cast<int>(max_lane);
        break;
    }
    if (!inside) return lane;
    const auto src = static_cast<unsigned>(j);
    if ((rv.mask >> src & 1u) == 0) {
      fail(b_, "warp " + std::to_string(t.warp) + ": " + lane_string(t) + " reads lane " +
                   std::to_string(src) + " with " + op_name(rv.op) + " (" + site_string(rv.site) +
                   "), but lane " + std::to_string(src) + " is not in mask " + hex(rv.mask) +
                   " (inactive)");
    }
    return src;
  }

  // No thread can run but some have not exited: say who waits where, and for whom.
  [[noreturn]] void explain_deadlock() {
    for (unsigned warp = 0; warp < b_.warps.size(); ++warp) {
      for (const Rendezvous& rv : b_.warps[warp]) {
        const unsigned missing = rv.mask & ~rv.arrived;
        const Thread& absent = b_.threads[warp * warpSize + std::countr_zero(missing)];
        fail(b_, "warp " + std::to_string(warp) + ": " + lanes_wait(rv.arrived) + " at " +
                     op_label(rv.op, rv.matrix) + " (" + site_string(rv.site) + ") with mask " +
                     hex(rv.mask) + ", but " + lane_string(absent) + " " + whereabouts(absent));
      }
    }
    const Barrier& bar = b_.barrier;
    if (bar.open) {
      const Thread& waiting = b_.threads[bar.first_thread];
      for (const Thread& t : b_.threads) {
        if (t.status != Status::exited) continue;
        fail(b_, thread_string(t) + " exited while " + std::to_string(bar.arrived) +
                     " threads wait at " + op_name(bar.op) + " (" + site_string(bar.site) +
                     "), e.g. " + thread_string(waiting));
      }
    }
    fail(b_, "no thread can run, but " + std::to_string(b_.size - b_.exited) +
                 " threads have not exited");
  }

  Worker& w_;
  BlockState& b_;
};

constexpr std::size_t kStaticSharedLimit = 48 * 1024;

// The emulator's bookkeeping called from kernel code is invisible to TSan, as the scheduler's is;
// only the kernel's own memory accesses (and the copies it asked for) are watched.
struct TsanIgnored {
  TsanIgnored() { tsan::ignore_begin(); }
  ~TsanIgnored() { tsan::ignore_end(); }
  TsanIgnored(const TsanIgnored&) = delete;
  TsanIgnored& operator=(const TsanIgnored&) = delete;
};

std::uintptr_t address(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}

Thread& current_thread(const char* what) {
  if (tl_thread == nullptr || tl_worker == nullptr) {
    throw SimtError(std::string("SIMT error: ") + what + " used outside a kernel");
  }
  return *tl_thread;
}

// Whether [p, p + bytes) lies in the dynamic or a declared static shared array of block b.
bool in_shared_memory(const BlockState& b, const void* p, std::size_t bytes) {
  const std::uintptr_t begin = address(p), end = begin + bytes;
  const std::uintptr_t dynamic = address(tl_block.dynamic_shared);
  if (dynamic != 0 && begin >= dynamic && end <= dynamic + b.launch->dynamic_shared_bytes) {
    return true;
  }
  for (const auto& [array, size] : b.static_shared) {
    if (begin >= address(array) && end <= address(array) + size) return true;
  }
  return false;
}

}  // namespace

void note_static_shared(void* array, std::size_t bytes, const char* name,
                        const std::source_location& where) {
  current_thread("GLIA_STATIC_SHARED");
  const TsanIgnored ignored;
  BlockState& b = tl_worker->block;
  for (const auto& declared : b.static_shared) {
    if (declared.first == array) return;
  }
  b.static_shared.emplace_back(array, bytes);
  b.static_shared_bytes += bytes;
  const std::string what = std::string("static shared array `") + name + "` (" +
                           site_string(where) + ", " + std::to_string(bytes) + " bytes)";
  if (b.static_shared_bytes > kStaticSharedLimit) {
    throw SimtError(what + " brings the block's static shared memory to " +
                    std::to_string(b.static_shared_bytes) + " bytes, more than the limit of " +
                    std::to_string(kStaticSharedLimit));
  }
  const std::size_t total = b.static_shared_bytes + b.launch->dynamic_shared_bytes;
  if (total > b.launch->shared_limit) {
    throw SimtError(what + " brings the block's static plus dynamic shared memory to " +
                    std::to_string(total) + " bytes, more than its limit of " +
                    std::to_string(b.launch->shared_limit));
  }
  // Poisoned, as dynamic shared memory is; invisible to TSan, as the block's threads do not
  // order their first use of the array after this thread's declaration.
  std::memset(array, 0xFF, bytes);
}

void async_copy(void* dst, const void* src, unsigned bytes, unsigned src_bytes,
                const std::source_location& where) {
  Thread& t = current_thread("cp.async");
  {
    const TsanIgnored ignored;
    const auto fail_copy = [&](const std::string& why) {
      throw SimtError("cp.async of " + std::to_string(bytes) + " bytes at " + site_string(where) +
                      " " + why);
    };
    if (bytes != 4 && bytes != 8 && bytes != 16) fail_copy("(the size must be 4, 8 or 16)");
    if (src_bytes > bytes) {
      fail_copy("reads " + std::to_string(src_bytes) + " source bytes, more than it copies");
    }
    if (address(dst) % bytes != 0 || address(src) % bytes != 0) {
      fail_copy("has a destination or source address not aligned to its size");
    }
    if (!in_shared_memory(tl_worker->block, dst, bytes)) {
      fail_copy("writes outside the block's shared memory (GLIA_DYNAMIC_SHARED or " +
                std::string("GLIA_STATIC_SHARED arrays)"));
    }
    t.async_copies.push_back(AsyncCopy{dst, src, bytes, src_bytes, AsyncCopy::kUncommitted, where});
  }
  // Unreadable until the wait that covers it: a write of this thread, as far as TSan is concerned.
  std::memset(dst, 0xFF, bytes);
}

void async_commit() {
  Thread& t = current_thread("cp.async.commit_group");
  const TsanIgnored ignored;
  for (AsyncCopy& c : t.async_copies) {
    if (c.group == AsyncCopy::kUncommitted) c.group = t.async_groups;
  }
  ++t.async_groups;
}

void async_wait(unsigned pending_groups) {
  Thread& t = current_thread("cp.async.wait_group");
  tsan::ignore_begin();
  const std::uint64_t done = t.async_groups > pending_groups ? t.async_groups - pending_groups : 0;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < t.async_copies.size(); ++i) {
    const AsyncCopy c = t.async_copies[i];
    if (c.group != AsyncCopy::kUncommitted && c.group < done) {
      // The copy itself is this thread's read of global and write of shared memory.
      tsan::ignore_end();
      auto* d = static_cast<unsigned char*>(c.dst);
      std::memcpy(d, c.src, c.src_bytes);
      std::memset(d + c.src_bytes, 0, c.bytes - c.src_bytes);
      tsan::ignore_begin();
    } else {
      t.async_copies[kept++] = c;
    }
  }
  t.async_copies.resize(kept);
  tsan::ignore_end();
}

void check_shared(const void* p, std::size_t bytes, const char* access,
                  const std::source_location& where) {
  current_thread(access);
  const TsanIgnored ignored;
  if (in_shared_memory(tl_worker->block, p, bytes)) return;
  throw SimtError(std::string(access) + " at " + site_string(where) + " reads " +
                  std::to_string(bytes) + " bytes outside the block's shared memory " +
                  "(GLIA_DYNAMIC_SHARED or GLIA_STATIC_SHARED arrays)");
}

void check_alignment(const void* p, std::size_t alignment, const char* access,
                     const std::source_location& where) {
  if (address(p) % alignment == 0) return;
  throw SimtError(std::string(access) + " at " + site_string(where) + " of a pointer that is " +
                  "not aligned to " + std::to_string(alignment) + " bytes");
}

void Worker::run_block(LaunchState& launch, std::uint64_t linear) {
  BlockState& b = block;
  const dim3 bd = launch.block;
  const dim3 gd = launch.grid;
  b.launch = &launch;
  b.linear = linear;
  b.idx = uint3{static_cast<unsigned>(linear % gd.x), static_cast<unsigned>(linear / gd.x % gd.y),
                static_cast<unsigned>(linear / (std::uint64_t{gd.x} * gd.y))};
  b.size = bd.x * bd.y * bd.z;
  b.threads.resize(b.size);
  b.order.resize(b.size);
  unsigned linear_thread = 0;
  for (unsigned z = 0; z < bd.z; ++z) {
    for (unsigned y = 0; y < bd.y; ++y) {
      for (unsigned x = 0; x < bd.x; ++x, ++linear_thread) {
        Thread& t = b.threads[linear_thread];
        t.idx = uint3{x, y, z};
        t.linear = linear_thread;
        t.warp = linear_thread / warpSize;
        t.lane = linear_thread % warpSize;
        t.status = Status::unstarted;
        t.runner = nullptr;
        t.rendezvous = 0;
        t.barrier_count = 0;
        t.async_copies.clear();
        t.async_groups = 0;
      }
    }
  }
  const LaneOrder order = launch.config.order;
  for (unsigned i = 0; i < b.size; ++i)
    b.order[i] = order == LaneOrder::reverse ? b.size - 1 - i : i;
  const unsigned warps = (b.size + warpSize - 1) / warpSize;
  b.warps.resize(warps);
  b.warp_lanes.resize(warps);
  b.warp_opened.assign(warps, 0);
  if (tsan::enabled) b.tsan_rendezvous.resize(warps * BlockState::kRendezvousRing);
  for (unsigned i = 0; i < warps; ++i) {
    b.warps[i].clear();
    const unsigned lanes = b.size - i * warpSize;
    b.warp_lanes[i] = lanes >= 32 ? 0xffffffffu : (1u << lanes) - 1;
  }
  b.cursor = 0;
  b.ready = 0;
  b.exited = 0;
  b.pass = 0;
  b.barrier = Barrier{};
  b.aborting = false;
  b.fault.clear();
  b.static_shared.clear();
  b.static_shared_bytes = 0;

  // Poisoned, so a read before any write gives NaN as float and 0xFF.. as integers.
  const std::size_t bytes = launch.dynamic_shared_bytes;
  if (shared == nullptr || shared_capacity < bytes) {
    shared_capacity = bytes < 256 ? 256 : bytes;
    shared.reset(new unsigned char[shared_capacity]);  // 16-byte aligned, as CUDA promises
  }
  std::memset(shared.get(), 0xFF, bytes);
  tl_block = BlockView{b.idx, bd, gd, shared.get()};
  ++block_sequence;

  Scheduler scheduler(*this);
  if (order == LaneOrder::random) scheduler.shuffle_order();
  try {
    scheduler.run();
  } catch (...) {  // a SimtError, or no memory for a runner: unwind the blocked threads first
    scheduler.abort();
    tl_block = BlockView{};
    throw;
  }
  tl_block = BlockView{};
}

}  // namespace glia::simt::detail
