// Tests of the SIMT emulator's (kernels/simt) errors: one kernel per mistake (launch limits, shared
// memory limit, divergent barriers, exit at a barrier, warp collectives with a wrong mask, a
// mismatched partner, an inactive source lane, a bad width), each checking that the SimtError
// names the kernel, the launch or call site, and the threads involved; and that the emulator
// keeps working after an error.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "kernels/cuda/portable.cuh"

namespace glia::simt::testing {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// The message of the SimtError that `launch` throws; fails the test if it throws none.
template <class F>
std::string error_of(F launch) {
  try {
    launch();
  } catch (const SimtError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no SimtError was thrown";
  return {};
}

// Matches "simt_errors_test.cpp:<line>", the call sites the emulator reports.
const std::string kSite = "[^ ]*simt_errors_test\\.cpp:[0-9]+";

bool contains(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern));
}

__global__ void noop(int* out) {
  if (out != nullptr) out[0] = 1;
}

// --- Launch limits ------------------------------------------------------------------------------
TEST(SimtLaunchErrorTest, TooManyThreadsPerBlock) {
  const std::string e = error_of([] { GLIA_LAUNCH(noop, 1, dim3(32, 33), 0, nullptr, nullptr); });
  EXPECT_TRUE(contains(e, "kernel `noop` launched at " + kSite)) << e;
  EXPECT_TRUE(contains(e, "1056 threads, more than 1024")) << e;
}

TEST(SimtLaunchErrorTest, BadDimensions) {
  const std::string z = error_of([] { GLIA_LAUNCH(noop, 1, dim3(1, 1, 65), 0, nullptr, nullptr); });
  EXPECT_TRUE(contains(z, "`noop`.*block \\(1,1,65\\) exceeds")) << z;
  const std::string x = error_of([] { GLIA_LAUNCH(noop, 1, 1025, 0, nullptr, nullptr); });
  EXPECT_TRUE(contains(x, "block \\(1025,1,1\\) exceeds")) << x;
  const std::string g = error_of([] { GLIA_LAUNCH(noop, dim3(1, 65536), 1, 0, nullptr, nullptr); });
  EXPECT_TRUE(contains(g, "grid \\(1,65536,1\\) exceeds")) << g;
  const std::string empty = error_of([] { GLIA_LAUNCH(noop, 0, 32, 0, nullptr, nullptr); });
  EXPECT_TRUE(contains(empty, "`noop` launched at " + kSite + ": empty grid")) << empty;
  const std::string empty_block =
      error_of([] { GLIA_LAUNCH(noop, 1, dim3(4, 0), 0, nullptr, nullptr); });
  EXPECT_TRUE(contains(empty_block, "empty block")) << empty_block;
}

__global__ void shared_user(int* out) {
  GLIA_DYNAMIC_SHARED(int, s);
  s[threadIdx.x] = 1;
  out[threadIdx.x] = s[threadIdx.x];
}

__global__ void opted_in_shared_user(int* out) {
  GLIA_DYNAMIC_SHARED(int, s);
  s[threadIdx.x] = 2;
  out[threadIdx.x] = s[threadIdx.x];
}

TEST(SimtLaunchErrorTest, SharedMemoryOverTheLimitUnlessOptedIn) {
  std::vector<int> out(32);
  const std::string e =
      error_of([&] { GLIA_LAUNCH(shared_user, 1, 32, 48 * 1024 + 4, nullptr, out.data()); });
  EXPECT_TRUE(contains(e, "`shared_user` launched at " + kSite)) << e;
  EXPECT_TRUE(contains(e, "49156 bytes of dynamic shared memory, more than its limit of 49152"))
      << e;
  GLIA_LAUNCH(shared_user, 1, 32, 48 * 1024, nullptr, out.data());  // exactly the limit is fine

  GLIA_SET_MAX_DYNAMIC_SHARED(opted_in_shared_user, 100 * 1024);
  GLIA_LAUNCH(opted_in_shared_user, 1, 32, 100 * 1024, nullptr, out.data());
  EXPECT_EQ(out[31], 2);
  const std::string over = error_of(
      [&] { GLIA_LAUNCH(opted_in_shared_user, 1, 32, 100 * 1024 + 1, nullptr, out.data()); });
  EXPECT_TRUE(contains(over, "more than its limit of 102400")) << over;
  const std::string too_much =
      error_of([] { GLIA_SET_MAX_DYNAMIC_SHARED(opted_in_shared_user, 228 * 1024); });
  EXPECT_TRUE(contains(too_much, "more than the maximum of 232448")) << too_much;
}

// --- Barriers ------------------------------------------------------------------------------------
__global__ void divergent_barriers(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

TEST(SimtBarrierErrorTest, ThreadsAtDifferentBarriers) {
  std::vector<int> out(64);
  for (const LaneOrder order : {LaneOrder::forward, LaneOrder::reverse, LaneOrder::random}) {
    ScopedConfig scoped(Config{order, 9, 0});
    const std::string e =
        error_of([&] { GLIA_LAUNCH(divergent_barriers, dim3(2, 1), 64, 0, nullptr, out.data()); });
    EXPECT_TRUE(
        contains(e, "kernel `divergent_barriers` launched at " + kSite + ", block \\(0,0,0\\)"))
        << e;
    EXPECT_TRUE(contains(e, "different barriers: thread \\([0-9]+,0,0\\) at __syncthreads \\(.*" +
                                kSite + "\\) and thread \\([0-9]+,0,0\\) at __syncthreads \\(.*" +
                                kSite + "\\)"))
        << e;
    // The two sites are different lines.
    std::smatch m;
    const std::regex lines(
        "simt_errors_test\\.cpp:([0-9]+)\\).*simt_errors_test\\.cpp:([0-9]+)\\)");
    ASSERT_TRUE(std::regex_search(e, m, lines)) << e;
    EXPECT_NE(m[1].str(), m[2].str()) << e;
  }
}

__global__ void exit_before_barrier(int* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

TEST(SimtBarrierErrorTest, ThreadExitsWhileOthersWait) {
  std::vector<int> out(32);
  for (const LaneOrder order : {LaneOrder::forward, LaneOrder::reverse}) {
    ScopedConfig scoped(Config{order, 0, 0});
    const std::string e =
        error_of([&] { GLIA_LAUNCH(exit_before_barrier, 1, 32, 0, nullptr, out.data()); });
    EXPECT_TRUE(contains(e, "`exit_before_barrier` launched at " + kSite)) << e;
    EXPECT_TRUE(contains(
        e,
        "thread \\(5,0,0\\) exited while 31 threads wait at __syncthreads \\(.*" + kSite + "\\)"))
        << e;
  }
}

// --- Warp collectives ----------------------------------------------------------------------------
__global__ void caller_not_in_mask(int* out) {
  out[threadIdx.x] = __shfl_sync(0x1u, static_cast<int>(threadIdx.x), 0);
}

TEST(SimtWarpErrorTest, CallerNotInItsMask) {
  std::vector<int> out(32);
  const std::string e =
      error_of([&] { GLIA_LAUNCH(caller_not_in_mask, 1, 32, 0, nullptr, out.data()); });
  EXPECT_TRUE(contains(e, "`caller_not_in_mask` launched at " + kSite)) << e;
  EXPECT_TRUE(contains(e, "warp 0: lane 1 \\(thread \\(1,0,0\\)\\) calls __shfl_sync \\(.*" +
                              kSite + "\\) with mask 0x00000001, which does not include its own"))
      << e;
}

__global__ void mismatched_sites(int* out) {
  const unsigned lane = threadIdx.x % warpSize;
  int v = static_cast<int>(lane);
  if (lane < 16) {
    v = __shfl_xor_sync(kFull, v, 1);
  } else {
    v = __shfl_xor_sync(kFull, v, 2);
  }
  out[threadIdx.x] = v;
}

__global__ void mismatched_masks(int* out) {
  const unsigned lane = threadIdx.x % warpSize;
  const unsigned mask = lane < 16 ? kFull : 0xffff0000u;
  out[threadIdx.x] = __shfl_xor_sync(mask, static_cast<int>(lane), 1);
}

TEST(SimtWarpErrorTest, MismatchedSites) {
  std::vector<int> out(64);
  for (const LaneOrder order : {LaneOrder::forward, LaneOrder::reverse, LaneOrder::random}) {
    ScopedConfig scoped(Config{order, 5, 0});
    const std::string e =
        error_of([&] { GLIA_LAUNCH(mismatched_sites, 1, 64, 0, nullptr, out.data()); });
    EXPECT_TRUE(contains(e, "`mismatched_sites` launched at " + kSite)) << e;
    EXPECT_TRUE(contains(e, "warp [01]: lanes? [0-9,-]+ waits? at __shfl_xor_sync \\(.*" + kSite +
                                "\\) with mask 0xffffffff, but lane [0-9]+ \\(thread "
                                "\\([0-9]+,0,0\\)\\) arrives at __shfl_xor_sync \\(.*" +
                                kSite + "\\) with mask 0xffffffff"))
        << e;
  }
}

TEST(SimtWarpErrorTest, MismatchedMasks) {
  std::vector<int> out(32);
  ScopedConfig scoped(Config{LaneOrder::forward, 0, 0});
  const std::string e =
      error_of([&] { GLIA_LAUNCH(mismatched_masks, 1, 32, 0, nullptr, out.data()); });
  EXPECT_TRUE(contains(e, "`mismatched_masks` launched at " + kSite)) << e;
  EXPECT_TRUE(contains(e, "warp 0: lanes 0-15 wait at __shfl_xor_sync \\(.*" + kSite +
                              "\\) with mask 0xffffffff, but lane 16 \\(thread \\(16,0,0\\)\\) "
                              "arrives at __shfl_xor_sync \\(.*" +
                              kSite + "\\) with mask 0xffff0000"))
      << e;
}

__global__ void collective_meets_barrier(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x % warpSize == 3) {
    __syncthreads();
  } else {
    v = __shfl_down_sync(kFull, v, 1);
    __syncthreads();
  }
  out[threadIdx.x] = v;
}

TEST(SimtWarpErrorTest, MaskedLaneWaitsAtABarrierInstead) {
  std::vector<int> out(32);
  const std::string e =
      error_of([&] { GLIA_LAUNCH(collective_meets_barrier, 1, 32, 0, nullptr, out.data()); });
  EXPECT_TRUE(contains(e, "`collective_meets_barrier` launched at " + kSite)) << e;
  EXPECT_TRUE(contains(e, "warp 0: lanes 0-2,4-31 wait at __shfl_down_sync \\(.*" + kSite +
                              "\\) with mask 0xffffffff, but lane 3 \\(thread \\(3,0,0\\)\\) "
                              "waits at __syncthreads"))
      << e;
}

__global__ void masked_lane_exits(int* out) {
  if (threadIdx.x == 7) return;
  __syncwarp();
  out[threadIdx.x] = 1;
}

TEST(SimtWarpErrorTest, MaskedLaneExits) {
  std::vector<int> out(32);
  const std::string e =
      error_of([&] { GLIA_LAUNCH(masked_lane_exits, 1, 32, 0, nullptr, out.data()); });
  EXPECT_TRUE(contains(e, "wait at __syncwarp \\(.*" + kSite +
                              "\\) with mask 0xffffffff, but lane 7 \\(thread \\(7,0,0\\)\\) has "
                              "exited"))
      << e;
}

__global__ void inactive_source_lane(int* out) {
  const unsigned lane = threadIdx.x % warpSize;
  if (lane < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, static_cast<int>(lane), 20);
}

TEST(SimtWarpErrorTest, ShuffleFromAnInactiveLane) {
  std::vector<int> out(32);
  const std::string e =
      error_of([&] { GLIA_LAUNCH(inactive_source_lane, 1, 32, 0, nullptr, out.data()); });
  EXPECT_TRUE(contains(e, "`inactive_source_lane` launched at " + kSite)) << e;
  EXPECT_TRUE(contains(e, "lane 0 \\(thread \\(0,0,0\\)\\) reads lane 20 with __shfl_sync \\(.*" +
                              kSite + "\\), but lane 20 is not in mask 0x0000ffff \\(inactive\\)"))
      << e;
}

__global__ void bad_width(int* out) {
  out[threadIdx.x] = __shfl_down_sync(kFull, 1, 1, 12);
}

__global__ void full_mask_in_partial_warp(int* out) {
  out[threadIdx.x] = __shfl_down_sync(kFull, 1, 1);
}

TEST(SimtWarpErrorTest, BadWidthAndLanesThatDoNotExist) {
  std::vector<int> out(32);
  const std::string w = error_of([&] { GLIA_LAUNCH(bad_width, 1, 32, 0, nullptr, out.data()); });
  EXPECT_TRUE(contains(w, "`bad_width`.*width 12, which is not a power of two")) << w;
  const std::string p =
      error_of([&] { GLIA_LAUNCH(full_mask_in_partial_warp, 1, 16, 0, nullptr, out.data()); });
  EXPECT_TRUE(contains(p, "names lanes 16-31 that do not exist \\(the block has 16 threads\\)"))
      << p;
}

// --- Misuse outside kernels, and recovery
// -----------------------------------------------------------
TEST(SimtMisuseTest, IntrinsicsOutsideAKernel) {
  const std::string e = error_of([] { __syncthreads(); });
  EXPECT_TRUE(contains(e, "__syncthreads called outside a kernel at " + kSite)) << e;
  EXPECT_THROW(__syncwarp(), SimtError);
}

__global__ void fill_ones(int* out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

TEST(SimtMisuseTest, TheEmulatorRecoversAfterAnError) {
  std::vector<int> out(8 * 128, 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_THROW(GLIA_LAUNCH(collective_meets_barrier, 8, 128, 0, nullptr, out.data()), SimtError);
    EXPECT_THROW(GLIA_LAUNCH(divergent_barriers, 8, 128, 0, nullptr, out.data()), SimtError);
  }
  GLIA_LAUNCH(fill_ones, 8, 128, 0, nullptr, out.data());
  for (int v : out) ASSERT_EQ(v, 1);
}

}  // namespace
}  // namespace glia::simt::testing
