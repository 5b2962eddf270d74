// Tests of the SIMT emulator (kernels/simt) running CUDA-style kernels written here: tiled matrix
// product, block reduction with shuffles, dynamic shared memory, atomics across blocks, thread and
// block indices, __syncthreads_count/and/or, warp votes and shuffles with width, results that do
// not depend on the lane order or the number of worker threads, against host references, and the
// grid-limit test setting and launch count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cuda/portable.cuh"

#include "kernels/cuda/grid.cuh"
#include "tests/common/tolerance.h"
#include "tests/simt/planted_kernels.h"

namespace glia::simt::testing {
namespace {

constexpr unsigned kFull = 0xffffffffu;

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

const Config kOrders[] = {
    Config{LaneOrder::forward, 0, 0}, Config{LaneOrder::reverse, 0, 0},
    Config{LaneOrder::random, 1, 0},  Config{LaneOrder::random, 2, 0},
    Config{LaneOrder::forward, 0, 1}, Config{LaneOrder::random, 3, 1},
};

// --- Tiled matrix product: c[m][n] = sum_k a[m][k] * b[k][n] ---------------------------------
constexpr int kTile = 16;

// Launch: (ceil(N/16), ceil(M/16)) blocks of 16x16 threads; each thread computes one c[m][n].
__global__ void tiled_matmul(const float* a, const float* b, float* c, int M, int N, int K) {
  __shared__ float a_tile[kTile][kTile];
  __shared__ float b_tile[kTile][kTile + 1];
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  const int m = static_cast<int>(blockIdx.y) * kTile + ty;
  const int n = static_cast<int>(blockIdx.x) * kTile + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += kTile) {
    a_tile[ty][tx] = (m < M && k0 + tx < K) ? a[m * K + k0 + tx] : 0.0f;
    b_tile[ty][tx] = (n < N && k0 + ty < K) ? b[(k0 + ty) * N + n] : 0.0f;
    __syncthreads();
    for (int k = 0; k < kTile; ++k) acc += a_tile[ty][k] * b_tile[k][tx];
    __syncthreads();  // the tiles are reloaded next step
  }
  if (m < M && n < N) c[m * N + n] = acc;
}

std::vector<float> run_matmul(const std::vector<float>& a, const std::vector<float>& b, int M,
                              int N, int K) {
  std::vector<float> c(static_cast<std::size_t>(M) * N, NAN);
  const dim3 grid((N + kTile - 1) / kTile, (M + kTile - 1) / kTile);
  GLIA_LAUNCH(tiled_matmul, grid, dim3(kTile, kTile), 0, nullptr, a.data(), b.data(), c.data(), M,
              N, K);
  return c;
}

TEST(SimtKernelTest, TiledMatmulMatchesHostLoop) {
  const int M = 37, N = 29, K = 41;
  const auto a = random_floats(static_cast<std::size_t>(M) * K, 1);
  const auto b = random_floats(static_cast<std::size_t>(K) * N, 2);
  std::vector<double> ref(static_cast<std::size_t>(M) * N, 0.0);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) ref[m * N + n] += double{a[m * K + k]} * b[k * N + n];
  EXPECT_TRUE(glia::testing::all_close(run_matmul(a, b, M, N, K), ref));
}

// --- Block reduction: warp shuffles, then one value per warp through shared memory -------------
__device__ float warp_sum(float v) {
  for (int offset = warpSize / 2; offset > 0; offset /= 2) v += __shfl_down_sync(kFull, v, offset);
  return v;
}

// Launch: any grid of 256-thread blocks; partial[blockIdx.x] = sum of the block's grid-stride
// share of x.
__global__ void block_sum(const float* x, int n, float* partial) {
  __shared__ float warp_sums[32];
  float v = 0.0f;
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n;
       i += static_cast<int>(gridDim.x * blockDim.x)) {
    v += x[i];
  }
  v = warp_sum(v);
  const unsigned lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < blockDim.x / warpSize ? warp_sums[lane] : 0.0f;
    v = warp_sum(v);
    if (lane == 0) partial[blockIdx.x] = v;
  }
}

std::vector<float> run_block_sum(const std::vector<float>& x, int blocks) {
  std::vector<float> partial(blocks, NAN);
  GLIA_LAUNCH(block_sum, blocks, 256, 0, nullptr, x.data(), static_cast<int>(x.size()),
              partial.data());
  return partial;
}

TEST(SimtKernelTest, ShuffleReductionMatchesHostSum) {
  const auto x = random_floats(10007, 3);
  const auto partial = run_block_sum(x, 7);
  const double got = std::accumulate(partial.begin(), partial.end(), 0.0);
  const double ref = std::accumulate(x.begin(), x.end(), 0.0);
  EXPECT_NEAR(got, ref, 1e-3);
}

// --- Dynamic shared memory ----------------------------------------------------------------------
// Launch: blocks of n threads, n floats of dynamic shared memory; reverses each block's slice and
// reports whether the shared memory read as NaN before it was written.
__global__ void reverse_in_shared(const float* x, float* y, int* saw_poison) {
  GLIA_DYNAMIC_SHARED(float, buffer);
  const unsigned t = threadIdx.x, n = blockDim.x;
  if (std::isnan(buffer[t])) atomicAdd(saw_poison, 1);
  __syncthreads();  // every read of the poison before any write
  buffer[t] = x[blockIdx.x * n + t];
  __syncthreads();
  y[blockIdx.x * n + t] = buffer[n - 1 - t];
}

TEST(SimtKernelTest, DynamicSharedMemoryIsPoisonedAndUsable) {
  const unsigned n = 96, blocks = 5;
  const auto x = random_floats(n * blocks, 4);
  std::vector<float> y(x.size(), NAN);
  int saw_poison = 0;
  GLIA_LAUNCH(reverse_in_shared, blocks, n, n * sizeof(float), nullptr, x.data(), y.data(),
              &saw_poison);
  EXPECT_EQ(saw_poison, static_cast<int>(n * blocks));
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < n; ++t) EXPECT_EQ(y[b * n + t], x[b * n + n - 1 - t]);
}

// Launch: one block; touches the last byte of 64 KiB of dynamic shared memory.
__global__ void large_shared(int* out) {
  GLIA_DYNAMIC_SHARED(unsigned char, bytes);
  bytes[64 * 1024 - 1 - threadIdx.x] = 1;
  out[threadIdx.x] = bytes[64 * 1024 - 1 - threadIdx.x];
}

TEST(SimtKernelTest, OptInAllowsMoreThan48KiBOfSharedMemory) {
  std::vector<int> out(32, 0);
  GLIA_SET_MAX_DYNAMIC_SHARED(large_shared, 64 * 1024);
  GLIA_LAUNCH(large_shared, 1, 32, 64 * 1024, nullptr, out.data());
  EXPECT_EQ(std::count(out.begin(), out.end(), 1), 32);
}

// --- Atomics across blocks
// ------------------------------------------------------------------------
struct AtomicResults {
  int counter = 0;
  float sum = 0.0f;
  double dsum = 0.0;
  int max = -1;
  unsigned umin = 0xffffffffu;
  unsigned cas_counter = 0;
  unsigned long long wide = 0;
  int down = 0;
};

// Launch: any grid; every thread adds 1 in each way and offers its global index to max/min.
__global__ void atomics(AtomicResults* r) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(&r->counter, 1);
  atomicAdd(&r->sum, 1.0f);
  atomicAdd(&r->dsum, 0.5);
  atomicMax(&r->max, i);
  atomicMin(&r->umin, static_cast<unsigned>(i) + 3u);
  atomicAdd(&r->wide, 1ull << 33);
  atomicSub(&r->down, 2);
  unsigned seen = 0;  // a lock-free increment built on compare-and-swap, from any first guess
  for (;;) {
    const unsigned old = atomicCAS(&r->cas_counter, seen, seen + 1);
    if (old == seen) break;
    seen = old;
  }
}

TEST(SimtKernelTest, AtomicsAreExactAcrossParallelBlocks) {
  const int blocks = 64, threads = 96, total = blocks * threads;
  AtomicResults r;
  GLIA_LAUNCH(atomics, blocks, threads, 0, nullptr, &r);
  EXPECT_EQ(r.counter, total);
  EXPECT_EQ(r.sum, static_cast<float>(total));  // integers below 2^24 add exactly in any order
  EXPECT_EQ(r.dsum, 0.5 * total);
  EXPECT_EQ(r.max, total - 1);
  EXPECT_EQ(r.umin, 3u);
  EXPECT_EQ(r.cas_counter, static_cast<unsigned>(total));
  EXPECT_EQ(r.wide, static_cast<unsigned long long>(total) << 33);
  EXPECT_EQ(r.down, -2 * total);
}

// --- Indices
// ------------------------------------------------------------------------------------------
struct Seen {
  unsigned thread[3], block[3], block_dim[3], grid_dim[3];
};

// Launch: any grid and block shape; out[global linear index] = what the thread sees.
__global__ void record_indices(Seen* out) {
  const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  Seen& s = out[block * (blockDim.x * blockDim.y * blockDim.z) + thread];
  s = Seen{{threadIdx.x, threadIdx.y, threadIdx.z},
           {blockIdx.x, blockIdx.y, blockIdx.z},
           {blockDim.x, blockDim.y, blockDim.z},
           {gridDim.x, gridDim.y, gridDim.z}};
}

TEST(SimtKernelTest, GridsAndBlocksIn1D2D3DSeeTheirIndices) {
  const dim3 shapes[][2] = {
      {dim3(5), dim3(33)}, {dim3(3, 2), dim3(8, 5)}, {dim3(2, 3, 2), dim3(4, 3, 5)}};
  for (const auto& shape : shapes) {
    const dim3 grid = shape[0], block = shape[1];
    const unsigned per_block = block.x * block.y * block.z;
    std::vector<Seen> seen(grid.x * grid.y * grid.z * per_block);
    GLIA_LAUNCH(record_indices, grid, block, 0, nullptr, seen.data());
    std::size_t i = 0;
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx)
          for (unsigned tz = 0; tz < block.z; ++tz)
            for (unsigned ty = 0; ty < block.y; ++ty)
              for (unsigned tx = 0; tx < block.x; ++tx, ++i) {
                const Seen& s = seen[i];
                ASSERT_EQ(s.thread[0], tx);
                ASSERT_EQ(s.thread[1], ty);
                ASSERT_EQ(s.thread[2], tz);
                ASSERT_EQ(s.block[0], bx);
                ASSERT_EQ(s.block[1], by);
                ASSERT_EQ(s.block[2], bz);
                ASSERT_EQ(s.block_dim[0], block.x);
                ASSERT_EQ(s.block_dim[2], block.z);
                ASSERT_EQ(s.grid_dim[1], grid.y);
                ASSERT_EQ(s.grid_dim[2], grid.z);
              }
  }
}

// --- Barrier reductions
// ------------------------------------------------------------------------------ Launch: one block;
// out[t] = {count of t % 3 == 0, and of t < n, or of t == n - 1, and of t > 0}.
__global__ void barrier_votes(int* out) {
  const unsigned t = threadIdx.x, n = blockDim.x;
  out[4 * t + 0] = __syncthreads_count(t % 3 == 0);
  out[4 * t + 1] = __syncthreads_and(t < n);
  out[4 * t + 2] = __syncthreads_or(t == n - 1);
  out[4 * t + 3] = __syncthreads_and(t > 0);
}

TEST(SimtKernelTest, SyncthreadsCountAndOr) {
  const unsigned n = 100;
  std::vector<int> out(4 * n, -1);
  GLIA_LAUNCH(barrier_votes, 1, n, 0, nullptr, out.data());
  for (unsigned t = 0; t < n; ++t) {
    EXPECT_EQ(out[4 * t + 0], 34);
    EXPECT_NE(out[4 * t + 1], 0);
    EXPECT_NE(out[4 * t + 2], 0);
    EXPECT_EQ(out[4 * t + 3], 0);
  }
}

// --- Warp votes and shuffles
// ----------------------------------------------------------------------
struct WarpSeen {
  unsigned ballot;
  int any, all, none;
  int idx, up, down, xr;
  double wide;
  long long wide_int;
  unsigned active;
};

// Launch: blocks of 64 threads (two warps); each lane records the collectives' results with
// shuffle width `width`.
__global__ void warp_collectives(WarpSeen* out, int width) {
  const unsigned t = threadIdx.x, lane = t % warpSize;
  const int v = static_cast<int>(100 * blockIdx.x + t);
  WarpSeen s;
  s.ballot = __ballot_sync(kFull, lane % 3 == 0);
  s.any = __any_sync(kFull, lane == 7);
  s.all = __all_sync(kFull, lane < 32);
  s.none = __any_sync(kFull, lane > 40);
  s.idx = __shfl_sync(kFull, v, 3, width);
  s.up = __shfl_up_sync(kFull, v, 2, width);
  s.down = __shfl_down_sync(kFull, v, 5, width);
  s.xr = __shfl_xor_sync(kFull, v, 1, width);
  s.wide = __shfl_sync(kFull, 0.25 * v, static_cast<int>(lane) + 1, width);
  s.wide_int = __shfl_down_sync(kFull, (1ll << 40) + v, 1, width);
  s.active = __activemask();
  __syncwarp();
  out[blockIdx.x * blockDim.x + t] = s;
}

TEST(SimtKernelTest, WarpVotesAndShufflesWithWidth) {
  const unsigned blocks = 2, threads = 64;
  for (const int width : {32, 16, 8, 1}) {
    SCOPED_TRACE("width " + std::to_string(width));
    std::vector<WarpSeen> out(blocks * threads);
    GLIA_LAUNCH(warp_collectives, blocks, threads, 0, nullptr, out.data(), width);
    for (unsigned b = 0; b < blocks; ++b) {
      for (unsigned t = 0; t < threads; ++t) {
        const WarpSeen& s = out[b * threads + t];
        const int lane = static_cast<int>(t % 32), base = static_cast<int>(100 * b + t) - lane;
        const int seg = lane / width * width;  // the first lane of this lane's segment
        const auto value = [&](int l) { return base + l; };
        EXPECT_EQ(s.ballot, 0x49249249u);
        EXPECT_EQ(s.any, 1);
        EXPECT_EQ(s.all, 1);
        EXPECT_EQ(s.none, 0);
        EXPECT_EQ(s.idx, value(seg + 3 % width));
        EXPECT_EQ(s.up, lane - 2 >= seg ? value(lane - 2) : value(lane));
        EXPECT_EQ(s.down, lane + 5 < seg + width ? value(lane + 5) : value(lane));
        EXPECT_EQ(s.xr, (lane ^ 1) < seg + width ? value(lane ^ 1) : value(lane));
        EXPECT_EQ(s.wide, 0.25 * value(seg + (lane + 1) % width));
        EXPECT_EQ(s.wide_int,
                  (1ll << 40) + (lane + 1 < seg + width ? value(lane + 1) : value(lane)));
        EXPECT_EQ(s.active, 1u << lane);
      }
    }
  }
}

// --- Lane order and worker count do not change a correct kernel's result
// --------------------------
TEST(SimtOrderTest, ResultsAreIdenticalUnderEveryOrderAndThreadCount) {
  const int M = 33, N = 20, K = 50;
  const auto a = random_floats(static_cast<std::size_t>(M) * K, 5);
  const auto b = random_floats(static_cast<std::size_t>(K) * N, 6);
  const auto x = random_floats(5000, 7);
  std::vector<float> matmul_ref, sum_ref;
  std::vector<int> rotate_ref;
  for (const Config& c : kOrders) {
    SCOPED_TRACE("order " + std::to_string(static_cast<int>(c.order)) + " seed " +
                 std::to_string(c.seed) + " threads " + std::to_string(c.threads));
    ScopedConfig scoped(c);
    const auto matmul = run_matmul(a, b, M, N, K);
    const auto sums = run_block_sum(x, 5);
    std::vector<int> rotated(3 * 64, -1);
    GLIA_LAUNCH(rotate_through_shared, 3, 64, 64 * sizeof(int), nullptr, rotated.data(), true);
    if (matmul_ref.empty()) {
      matmul_ref = matmul;
      sum_ref = sums;
      rotate_ref = rotated;
      for (unsigned t = 0; t < rotated.size(); ++t)
        ASSERT_EQ(rotated[t], rotate_value((t + 1) % 64));
    } else {
      // Bitwise: the summation order of a correct kernel is fixed by its code, not by the order.
      EXPECT_EQ(matmul, matmul_ref);
      EXPECT_EQ(sums, sum_ref);
      EXPECT_EQ(rotated, rotate_ref);
    }
  }
}

TEST(SimtOrderTest, AMissingBarrierChangesTheResult) {
#if defined(GLIA_TSAN)
  GTEST_SKIP() << "the racy kernel is run by simt_tsan_race, where TSan must report it";
#else
  const unsigned n = 64;
  std::vector<int> ref(n);
  for (unsigned t = 0; t < n; ++t) ref[t] = rotate_value((t + 1) % n);
  for (const Config& c : kOrders) {
    SCOPED_TRACE("order " + std::to_string(static_cast<int>(c.order)));
    ScopedConfig scoped(c);
    std::vector<int> with(n, -1), without(n, -1);
    GLIA_LAUNCH(rotate_through_shared, 1, n, n * sizeof(int), nullptr, with.data(), true);
    GLIA_LAUNCH(rotate_through_shared, 1, n, n * sizeof(int), nullptr, without.data(), false);
    EXPECT_EQ(with, ref);
    EXPECT_NE(without, ref);
  }
#endif
}

// Two warps refill a shared tile each round and read the other warp's half, with a __syncwarp
// between the read and the next refill; only the first barrier keeps a warp from refilling the
// tile while the other warp has yet to read it. out[t] = the sum over rounds of the value read.
[[maybe_unused]] __global__ void refill_shared_tile(int* out, bool with_first_barrier) {
  GLIA_STATIC_SHARED(int[64], tile);
  const int t = static_cast<int>(threadIdx.x);
  int sum = 0;
  for (int round = 0; round < 4; ++round) {
    if (with_first_barrier) __syncthreads();
    tile[t] = round * 100 + t;
    __syncthreads();
    const int v = tile[(t + 32) % 64];
    __syncwarp();
    sum += v;
  }
  out[blockIdx.x * 64 + t] = sum;
}

// Under forward and reverse the warps advance in step, so the missing barrier goes unseen; under
// random a released warp may run ahead, and some seed shows it.
TEST(SimtOrderTest, UnderTheRandomOrderAReleasedWarpRunsAhead) {
#if defined(GLIA_TSAN)
  GTEST_SKIP() << "the racy kernel would be reported by TSan";
#else
  constexpr int kBlocks = 4;
  std::vector<int> ref(kBlocks * 64);
  for (int i = 0; i < kBlocks * 64; ++i) ref[i] = 600 + 4 * ((i % 64 + 32) % 64);
  bool caught = false;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    ScopedConfig scoped(Config{LaneOrder::random, seed, 1});
    std::vector<int> with(kBlocks * 64, -1), without(kBlocks * 64, -1);
    GLIA_LAUNCH(refill_shared_tile, kBlocks, 64, 0, nullptr, with.data(), true);
    GLIA_LAUNCH(refill_shared_tile, kBlocks, 64, 0, nullptr, without.data(), false);
    EXPECT_EQ(with, ref) << "seed " << seed;
    caught = caught || without != ref;
  }
  EXPECT_TRUE(caught);
#endif
}

// --- The grid-limit test setting and the launch count -----------------------------------------

__global__ void iota_grid_stride(int* y, kernels::index_t n) {
  using kernels::sim::global_thread_index;
  using kernels::sim::grid_thread_count;
  for (kernels::index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    y[i] = static_cast<int>(i);
  }
}

// grid_stride_blocks (kernels/cuda/grid.cuh) gives the GPU's grid unless the setting lowers it;
// a grid-stride loop under the lowered limit still covers every element, and each launch counts.
TEST(SimtConfigTest, GridLimitLowersGridStrideGridsAndLaunchesAreCounted) {
  using kernels::sim::grid_stride_blocks;
  Config c = config();
  c.grid_limit = 0;
  {
    ScopedConfig scoped(c);
    EXPECT_EQ(grid_stride_blocks(100000), 391u);
    EXPECT_EQ(grid_stride_blocks(kernels::index_t{1} << 40), 4096u);
  }
  c.grid_limit = 2;
  ScopedConfig scoped(c);
  EXPECT_EQ(grid_stride_blocks(100000), 2u);
  EXPECT_EQ(grid_stride_blocks(100), 1u);
  std::vector<int> y(5000, -1);
  const std::uint64_t before = launch_count();
  GLIA_LAUNCH(iota_grid_stride, grid_stride_blocks(5000), 256, 0, nullptr, y.data(),
              kernels::index_t{5000});
  EXPECT_EQ(launch_count(), before + 1);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(y[static_cast<std::size_t>(i)], i);
}

TEST(SimtConfigTest, ScopedConfigRestoresThePreviousOne) {
  const Config before = config();
  {
    ScopedConfig scoped(Config{LaneOrder::reverse, 42, 1});
    EXPECT_EQ(config().order, LaneOrder::reverse);
    EXPECT_EQ(config().seed, 42u);
    EXPECT_EQ(config().threads, 1);
  }
  EXPECT_EQ(config().order, before.order);
  EXPECT_EQ(config().threads, before.threads);
}

}  // namespace
}  // namespace glia::simt::testing
