// The SIMT emulator's public surface: the CUDA dialect that kernels/cuda/*.cu use (qualifiers,
// threadIdx & co, barriers, _sync warp intrinsics, atomics, math intrinsics) for the host compiler,
// and glia::simt::launch, which runs a kernel's grid on the CPU (DESIGN.md section 3). Kernel files
// include it through kernels/cuda/portable.cuh. Tested in tests/simt.
//
// Model: each block's threads run as fibers on one CPU thread and switch only at __syncthreads*
// and at warp-collective calls; blocks spread over a pool of worker threads. The emulator is
// stricter than a GPU: lanes never run in lockstep (__activemask() returns only the caller's bit),
// warp collectives meet at a rendezvous that checks masks and call sites, barriers check that the
// whole block arrives at the same call site, launches over the hardware limits are errors, dynamic
// shared memory is poisoned (0xFF bytes, NaN as float) at block start, and the order in which
// lanes run between barriers is a configurable permutation. Errors are thrown from launch() as
// SimtError naming the kernel, the launch site, the block, the threads and the call sites.
//
// Static shared arrays are `static thread_local` variables (a block never moves between worker
// threads and the blocks of one worker run one after another, so that is per-block storage).
// Declared through GLIA_STATIC_SHARED (kernels/cuda/portable.cuh) they are poisoned at block start
// and counted against the shared-memory limits (48 KiB of static memory; static plus dynamic within
// the kernel's limit); a plain `__shared__` declaration is neither (kernels/cuda uses only the
// macro, tests/kernels/kernel_source_rules.cmake checks that). Kernels that declare
// `__launch_bounds__` register them with GLIA_LAUNCH_BOUNDS, and a launch over them is an error.
// cp.async (kernels/cuda/async_copy.cuh) is performed lazily: the destination is poisoned when the
// copy is issued and written only by the cp.async.wait_group that covers it, so a read before the
// wait sees NaN; a thread that exits with copies it never waited for is an error. Vector accesses
// through the portable helpers check their alignment. mma.sync and ldmatrix (kernels/cuda/mma.cuh)
// meet at a rendezvous of the whole warp (warp_matrix) that computes the per-lane fragment layouts
// of the PTX ISA (kernels/simt/tensor_core.h); ldmatrix's rows are read by the lanes that address
// them, before they arrive, so TSan sees those reads as theirs.
//
// Known limits: not supported: launches from a kernel, cooperative groups, `extern __shared__` (use
// GLIA_DYNAMIC_SHARED), half types, textures. Timing, weak memory ordering between blocks and exact
// GPU float rounding are not modelled. Under TSan, the blocks that one worker runs are ordered
// (they reuse its shared memory) and __threadfence orders all fencing threads, so races between
// blocks may go unreported; races within a block are reported.
#pragma once

#include <math.h>  // the C math functions (expf, fminf, ...) unqualified, with float overloads

#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <source_location>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>

// --- Qualifiers ---------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __launch_bounds__(...)
// The GNU attribute, unlike alignas, may stand anywhere among the decl-specifiers, as __align__
// does in CUDA (`__shared__ __align__(16) float x[4];`, `struct __align__(16) S {}`).
#define __align__(n) __attribute__((aligned(n)))
// Per-block storage: see "Known limits" above.
#define __shared__ static thread_local

// --- Vector types and indices --------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

struct __align__(8) float2 {
  float x, y;
};
struct __align__(16) float4 {
  float x, y, z, w;
};
struct __align__(8) int2 {
  int x, y;
};
struct __align__(16) int4 {
  int x, y, z, w;
};
inline float2 make_float2(float x, float y) {
  return float2{x, y};
}
inline float4 make_float4(float x, float y, float z, float w) {
  return float4{x, y, z, w};
}
inline int2 make_int2(int x, int y) {
  return int2{x, y};
}
inline int4 make_int4(int x, int y, int z, int w) {
  return int4{x, y, z, w};
}

inline constexpr int warpSize = 32;

namespace glia::simt {

// Thrown by launch() (and by the intrinsics when called outside a kernel).
class SimtError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where a kernel was launched: named in every error about that launch.
struct LaunchSite {
  const char* kernel;
  const char* file;
  int line;
};

// The order in which the scheduler resumes the runnable threads of a block. A kernel that is
// correct gives the same result under every order; one that lacks a barrier usually does not.
// Under forward and reverse, the threads released by a barrier or warp collective run at the next
// pass, so warps advance in step; under random, they may also (seeded coin) run ahead at once.
enum class LaneOrder { forward, reverse, random };

struct Config {
  LaneOrder order = LaneOrder::forward;
  std::uint64_t seed = 0;  // of the random order (mixed with the block index and the phase)
  int threads = 0;         // worker threads; 0 = hardware concurrency, 1 = blocks run in order
  // A test setting: the most blocks along any grid dimension that a kernel which grid-strides
  // beyond its grid is given (kernels/cuda/grid.cuh grid_limit), so that small test inputs make
  // blocks loop as large inputs do on a GPU; 0 = the GPU's limits.
  unsigned grid_limit = 0;
};

// The configuration that the next launches use. Defaults come from the environment variables
// GLIA_SIMT_ORDER (forward|reverse|random), GLIA_SIMT_SEED, GLIA_SIMT_THREADS and
// GLIA_SIMT_GRID_LIMIT when set.
Config config();
void set_config(const Config& config);

// The number of launches this process has asked for so far (counted before the limits are
// checked), so a test can assert that an empty call launches nothing.
std::uint64_t launch_count();

// Sets a configuration for the lifetime of the object, then restores the previous one.
class ScopedConfig {
 public:
  explicit ScopedConfig(const Config& c) : saved_(config()) { set_config(c); }
  ~ScopedConfig() { set_config(saved_); }
  ScopedConfig(const ScopedConfig&) = delete;
  ScopedConfig& operator=(const ScopedConfig&) = delete;

 private:
  Config saved_;
};

// The dynamic shared memory of the calling thread's block (GLIA_DYNAMIC_SHARED).
void* dynamic_shared();

// Opts a kernel in to more than 48 KiB of dynamic shared memory, up to 227 KiB as on an H100.
void set_max_dynamic_shared(const void* kernel, std::size_t bytes);

// Records a kernel's __launch_bounds__ maximum of threads per block (GLIA_LAUNCH_BOUNDS); a launch
// of a larger block is then an error. Returns true, so it can initialise a namespace-scope flag.
bool set_launch_bounds(const void* kernel, unsigned max_threads);

namespace detail {

// A launch with its kernel and arguments type-erased, so the runtime is not a template.
struct KernelCall {
  const void* kernel;  // identity, for set_max_dynamic_shared
  void (*invoke)(const void* closure);
  const void* closure;
};

void launch(const LaunchSite& site, const KernelCall& call, dim3 grid, dim3 block,
            std::size_t dynamic_shared_bytes);

template <class... KArgs>
struct Closure {
  void (*kernel)(KArgs...);
  std::tuple<KArgs...> args;
  // Each thread gets its own copy of the arguments, as kernel parameters are per-thread values.
  static void invoke(const void* self) {
    const auto& c = *static_cast<const Closure*>(self);
    std::apply(c.kernel, c.args);
  }
};

// The calling thread's indices. Set by the scheduler before it resumes a thread; a block never
// leaves its worker thread, so thread_local is the block's (and, for the thread index, the
// running thread's) view.
struct BlockView {
  uint3 block_idx{0, 0, 0};
  dim3 block_dim{1, 1, 1};
  dim3 grid_dim{1, 1, 1};
  void* dynamic_shared = nullptr;
};
inline thread_local uint3 tl_thread_idx{0, 0, 0};
inline thread_local BlockView tl_block{};

inline const uint3& current_thread_idx() {
  return tl_thread_idx;
}
inline const uint3& current_block_idx() {
  return tl_block.block_idx;
}
inline const dim3& current_block_dim() {
  return tl_block.block_dim;
}
inline const dim3& current_grid_dim() {
  return tl_block.grid_dim;
}

enum class BlockSync { plain, count, all, any };
// Arrives at a block barrier; returns the reduction of the predicates (count/all/any).
int block_sync(BlockSync op, int predicate, const std::source_location& where);

enum class WarpOp { syncwarp, shfl, shfl_up, shfl_down, shfl_xor, ballot, any, all, matrix };
// Arrives at a warp rendezvous; returns this lane's result (bits of the shuffled value, or the
// ballot / any / all result) once every lane of `mask` arrived at the same call.
std::uint64_t warp_sync(WarpOp op, unsigned mask, std::uint64_t value, int lane_arg, int width,
                        const std::source_location& where);

// A warp-wide matrix instruction (mma.sync, ldmatrix: kernels/simt/tensor_core.h): every lane of
// the warp brings in_words 32-bit words; once all 32 lanes arrived at the same call with the same
// op, compute(in, out) maps the warp's words (in[lane][word]) to each lane's out_words results.
inline constexpr unsigned kMatrixWords = 16;
using MatrixWords = std::uint32_t[kMatrixWords];
struct WarpMatrixOp {
  const char* name;  // the PTX instruction, named in messages
  unsigned in_words;
  unsigned out_words;
  void (*compute)(const MatrixWords* in, MatrixWords* out);
};
// Arrives at a warp rendezvous of the whole warp (these instructions take no mask: every lane of
// the warp must execute them) with this lane's words `in`; returns with its words in `out`.
void warp_matrix(const WarpMatrixOp& op, const std::uint32_t* in, std::uint32_t* out,
                 const std::source_location& where);

template <class T>
inline constexpr bool is_shuffle_type =
    std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, long> ||
    std::is_same_v<T, unsigned long> || std::is_same_v<T, long long> ||
    std::is_same_v<T, unsigned long long> || std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T>
inline T shuffle(WarpOp op, unsigned mask, T var, int lane_arg, int width,
                 const std::source_location& where) {
  static_assert(is_shuffle_type<T>,
                "shuffles take int, unsigned, (unsigned) long (long), float "
                "or double, as in CUDA");
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const std::uint64_t out = warp_sync(op, mask, std::bit_cast<Bits>(var), lane_arg, width, where);
  return std::bit_cast<T>(static_cast<Bits>(out));
}

void thread_fence();

// A static shared array of the calling thread's block (GLIA_STATIC_SHARED): the first thread of a
// block to declare it poisons it and counts its bytes against the shared-memory limits.
void note_static_shared(void* array, std::size_t bytes, const char* name,
                        const std::source_location& where);

// cp.async: copies `src_bytes` of `bytes` (4, 8 or 16; both addresses aligned to it) from global
// memory to the shared memory at dst and zero-fills the rest, at the cp.async.wait_group that
// covers it; until then dst reads as poison.
void async_copy(void* dst, const void* src, unsigned bytes, unsigned src_bytes,
                const std::source_location& where);
// cp.async.commit_group: the copies issued since the last commit form one group.
void async_commit();
// cp.async.wait_group n: completes every committed group but the newest n.
void async_wait(unsigned pending_groups);

// Throws a SimtError unless [p, p + bytes) lies in the calling block's shared memory (dynamic, or
// a GLIA_STATIC_SHARED array), naming the access and the call site.
void check_shared(const void* p, std::size_t bytes, const char* access,
                  const std::source_location& where);

// Throws a SimtError unless p is a multiple of `alignment`, naming the access and the call site.
void check_alignment(const void* p, std::size_t alignment, const char* access,
                     const std::source_location& where);

}  // namespace detail

// Runs kernel over grid x block threads with `dynamic_shared_bytes` of dynamic shared memory and
// returns when every block is done; throws SimtError on a launch over the limits or on any error
// detected while the kernel runs. The arguments are converted to the kernel's parameter types.
template <class... KArgs, class... Args>
void launch(LaunchSite site, void (*kernel)(KArgs...), dim3 grid, dim3 block,
            std::size_t dynamic_shared_bytes, Args&&... args) {
  static_assert(sizeof...(KArgs) == sizeof...(Args), "wrong number of kernel arguments");
  const detail::Closure<KArgs...> closure{kernel,
                                          std::tuple<KArgs...>(std::forward<Args>(args)...)};
  detail::launch(site,
                 detail::KernelCall{reinterpret_cast<const void*>(kernel),
                                    &detail::Closure<KArgs...>::invoke, &closure},
                 grid, block, dynamic_shared_bytes);
}

}  // namespace glia::simt

#define threadIdx (::glia::simt::detail::current_thread_idx())
#define blockIdx (::glia::simt::detail::current_block_idx())
#define blockDim (::glia::simt::detail::current_block_dim())
#define gridDim (::glia::simt::detail::current_grid_dim())

// --- Barriers ------------------------------------------------------------------------------------
// The default source_location argument records the call site, which the barrier checks.
inline void __syncthreads(std::source_location where = std::source_location::current()) {
  ::glia::simt::detail::block_sync(::glia::simt::detail::BlockSync::plain, 0, where);
}
inline int __syncthreads_count(int predicate,
                               std::source_location where = std::source_location::current()) {
  return ::glia::simt::detail::block_sync(::glia::simt::detail::BlockSync::count, predicate, where);
}
inline int __syncthreads_and(int predicate,
                             std::source_location where = std::source_location::current()) {
  return ::glia::simt::detail::block_sync(::glia::simt::detail::BlockSync::all, predicate, where);
}
inline int __syncthreads_or(int predicate,
                            std::source_location where = std::source_location::current()) {
  return ::glia::simt::detail::block_sync(::glia::simt::detail::BlockSync::any, predicate, where);
}

// --- Warp collectives (only the _sync forms exist)
// ------------------------------------------------
inline void __syncwarp(unsigned mask = 0xffffffffu,
                       std::source_location where = std::source_location::current()) {
  ::glia::simt::detail::warp_sync(::glia::simt::detail::WarpOp::syncwarp, mask, 0, 0, warpSize,
                                  where);
}

template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
                     std::source_location where = std::source_location::current()) {
  return ::glia::simt::detail::shuffle(::glia::simt::detail::WarpOp::shfl, mask, var, src_lane,
                                       width, where);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                        std::source_location where = std::source_location::current()) {
  return ::glia::simt::detail::shuffle(::glia::simt::detail::WarpOp::shfl_up, mask, var,
                                       static_cast<int>(delta), width, where);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                          std::source_location where = std::source_location::current()) {
  return ::glia::simt::detail::shuffle(::glia::simt::detail::WarpOp::shfl_down, mask, var,
                                       static_cast<int>(delta), width, where);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                         std::source_location where = std::source_location::current()) {
  return ::glia::simt::detail::shuffle(::glia::simt::detail::WarpOp::shfl_xor, mask, var, lane_mask,
                                       width, where);
}

inline unsigned __ballot_sync(unsigned mask, int predicate,
                              std::source_location where = std::source_location::current()) {
  return static_cast<unsigned>(::glia::simt::detail::warp_sync(
      ::glia::simt::detail::WarpOp::ballot, mask, predicate != 0, 0, warpSize, where));
}
inline int __any_sync(unsigned mask, int predicate,
                      std::source_location where = std::source_location::current()) {
  return static_cast<int>(::glia::simt::detail::warp_sync(::glia::simt::detail::WarpOp::any, mask,
                                                          predicate != 0, 0, warpSize, where));
}
inline int __all_sync(unsigned mask, int predicate,
                      std::source_location where = std::source_location::current()) {
  return static_cast<int>(::glia::simt::detail::warp_sync(::glia::simt::detail::WarpOp::all, mask,
                                                          predicate != 0, 0, warpSize, where));
}
// Lanes never run in lockstep here, so the only lane known to be active is the caller.
inline unsigned __activemask() {
  const uint3& t = threadIdx;
  const dim3& b = blockDim;
  const unsigned linear = (t.z * b.y + t.y) * b.x + t.x;
  return 1u << (linear % warpSize);
}

// --- Memory fences and loads
// -----------------------------------------------------------------------
inline void __threadfence() {
  ::glia::simt::detail::thread_fence();
}
inline void __threadfence_block() {
  ::glia::simt::detail::thread_fence();
}
template <class T>
inline T __ldg(const T* p) {
  return *p;
}

// --- Atomics: relaxed, like CUDA's, and real since blocks run in parallel
// ----------------------------
namespace glia::simt::detail {
template <class T>
inline T atomic_add(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v, std::memory_order_relaxed);
}
template <class T>
inline T atomic_sub(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_sub(v, std::memory_order_relaxed);
}
template <class T, class Better>
inline T atomic_update_if(T* p, T v, Better better) {
  std::atomic_ref<T> ref(*p);
  T old = ref.load(std::memory_order_relaxed);
  while (better(v, old) && !ref.compare_exchange_weak(old, v, std::memory_order_relaxed)) {
  }
  return old;
}
template <class T>
inline T atomic_cas(T* p, T expected, T desired) {
  std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired, std::memory_order_relaxed);
  return expected;  // the old value, whether or not the swap happened
}
template <class T>
inline T atomic_exch(T* p, T v) {
  return std::atomic_ref<T>(*p).exchange(v, std::memory_order_relaxed);
}
}  // namespace glia::simt::detail

inline int atomicAdd(int* p, int v) {
  return ::glia::simt::detail::atomic_add(p, v);
}
inline unsigned atomicAdd(unsigned* p, unsigned v) {
  return ::glia::simt::detail::atomic_add(p, v);
}
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return ::glia::simt::detail::atomic_add(p, v);
}
inline float atomicAdd(float* p, float v) {
  return ::glia::simt::detail::atomic_add(p, v);
}
inline double atomicAdd(double* p, double v) {
  return ::glia::simt::detail::atomic_add(p, v);
}
inline int atomicSub(int* p, int v) {
  return ::glia::simt::detail::atomic_sub(p, v);
}
inline unsigned atomicSub(unsigned* p, unsigned v) {
  return ::glia::simt::detail::atomic_sub(p, v);
}
inline int atomicMax(int* p, int v) {
  return ::glia::simt::detail::atomic_update_if(p, v, [](int a, int b) { return a > b; });
}
inline unsigned atomicMax(unsigned* p, unsigned v) {
  return ::glia::simt::detail::atomic_update_if(p, v, [](unsigned a, unsigned b) { return a > b; });
}
inline int atomicMin(int* p, int v) {
  return ::glia::simt::detail::atomic_update_if(p, v, [](int a, int b) { return a < b; });
}
inline unsigned atomicMin(unsigned* p, unsigned v) {
  return ::glia::simt::detail::atomic_update_if(p, v, [](unsigned a, unsigned b) { return a < b; });
}
inline int atomicCAS(int* p, int expected, int desired) {
  return ::glia::simt::detail::atomic_cas(p, expected, desired);
}
inline unsigned atomicCAS(unsigned* p, unsigned expected, unsigned desired) {
  return ::glia::simt::detail::atomic_cas(p, expected, desired);
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long expected,
                                    unsigned long long desired) {
  return ::glia::simt::detail::atomic_cas(p, expected, desired);
}
inline int atomicExch(int* p, int v) {
  return ::glia::simt::detail::atomic_exch(p, v);
}
inline unsigned atomicExch(unsigned* p, unsigned v) {
  return ::glia::simt::detail::atomic_exch(p, v);
}
inline float atomicExch(float* p, float v) {
  return ::glia::simt::detail::atomic_exch(p, v);
}
inline int atomicAnd(int* p, int v) {
  return std::atomic_ref<int>(*p).fetch_and(v, std::memory_order_relaxed);
}
inline unsigned atomicAnd(unsigned* p, unsigned v) {
  return std::atomic_ref<unsigned>(*p).fetch_and(v, std::memory_order_relaxed);
}
inline int atomicOr(int* p, int v) {
  return std::atomic_ref<int>(*p).fetch_or(v, std::memory_order_relaxed);
}
inline unsigned atomicOr(unsigned* p, unsigned v) {
  return std::atomic_ref<unsigned>(*p).fetch_or(v, std::memory_order_relaxed);
}
inline int atomicXor(int* p, int v) {
  return std::atomic_ref<int>(*p).fetch_xor(v, std::memory_order_relaxed);
}
inline unsigned atomicXor(unsigned* p, unsigned v) {
  return std::atomic_ref<unsigned>(*p).fetch_xor(v, std::memory_order_relaxed);
}

// --- Math intrinsics: the fast-math forms compute the accurate function --------------------------
inline float __expf(float x) {
  return ::expf(x);
}
inline float __logf(float x) {
  return ::logf(x);
}
inline float __sinf(float x) {
  return ::sinf(x);
}
inline float __cosf(float x) {
  return ::cosf(x);
}
inline float __tanf(float x) {
  return ::tanf(x);
}
inline float __powf(float x, float y) {
  return ::powf(x, y);
}
inline float __fdividef(float x, float y) {
  return x / y;
}
inline float rsqrtf(float x) {
  return 1.0f / ::sqrtf(x);
}
inline double rsqrt(double x) {
  return 1.0 / ::sqrt(x);
}
inline float __frsqrt_rn(float x) {
  return 1.0f / ::sqrtf(x);
}
inline float __fsqrt_rn(float x) {
  return ::sqrtf(x);
}
inline float __saturatef(float x) {
  return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f);
}  // NaN -> 0
inline float __fmaf_rn(float x, float y, float z) {
  return ::fmaf(x, y, z);
}
inline float __fadd_rn(float x, float y) {
  return x + y;
}
inline float __fmul_rn(float x, float y) {
  return x * y;
}
inline int __float_as_int(float x) {
  return std::bit_cast<int>(x);
}
inline float __int_as_float(int x) {
  return std::bit_cast<float>(x);
}
inline unsigned __float_as_uint(float x) {
  return std::bit_cast<unsigned>(x);
}
inline float __uint_as_float(unsigned x) {
  return std::bit_cast<float>(x);
}
inline long long __double_as_longlong(double x) {
  return std::bit_cast<long long>(x);
}
inline double __longlong_as_double(long long x) {
  return std::bit_cast<double>(x);
}
inline int __float2int_rn(float x) {
  return static_cast<int>(::nearbyintf(x));
}
inline int __float2int_rz(float x) {
  return static_cast<int>(x);
}
inline int __popc(unsigned x) {
  return std::popcount(x);
}
inline int __popcll(unsigned long long x) {
  return std::popcount(x);
}
inline int __clz(int x) {
  return std::countl_zero(static_cast<unsigned>(x));
}
inline int __ffs(int x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1;
}
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
  return (x >> 16) | (x << 16);
}

// CUDA's global min/max overloads, mixed signedness included as CUDA has them.
inline int min(int a, int b) {
  return b < a ? b : a;
}
inline unsigned min(unsigned a, unsigned b) {
  return b < a ? b : a;
}
inline unsigned min(int a, unsigned b) {
  return min(static_cast<unsigned>(a), b);
}
inline unsigned min(unsigned a, int b) {
  return min(a, static_cast<unsigned>(b));
}
inline long min(long a, long b) {
  return b < a ? b : a;
}
inline unsigned long min(unsigned long a, unsigned long b) {
  return b < a ? b : a;
}
inline long long min(long long a, long long b) {
  return b < a ? b : a;
}
inline unsigned long long min(unsigned long long a, unsigned long long b) {
  return b < a ? b : a;
}
inline float min(float a, float b) {
  return ::fminf(a, b);
}
inline double min(double a, double b) {
  return ::fmin(a, b);
}
inline int max(int a, int b) {
  return a < b ? b : a;
}
inline unsigned max(unsigned a, unsigned b) {
  return a < b ? b : a;
}
inline unsigned max(int a, unsigned b) {
  return max(static_cast<unsigned>(a), b);
}
inline unsigned max(unsigned a, int b) {
  return max(a, static_cast<unsigned>(b));
}
inline long max(long a, long b) {
  return a < b ? b : a;
}
inline unsigned long max(unsigned long a, unsigned long b) {
  return a < b ? b : a;
}
inline long long max(long long a, long long b) {
  return a < b ? b : a;
}
inline unsigned long long max(unsigned long long a, unsigned long long b) {
  return a < b ? b : a;
}
inline float max(float a, float b) {
  return ::fmaxf(a, b);
}
inline double max(double a, double b) {
  return ::fmax(a, b);
}
