// Tests of what the SIMT emulator (kernels/simt) models for the tiled GEMM kernels: cp.async with
// commit and wait groups (kernels/cuda/async_copy.cuh), static shared arrays declared through
// GLIA_STATIC_SHARED, launch bounds and aligned float4 accesses. A double-buffered pipeline
// matches a host loop under every lane order; a read before the covering wait sees the poison; a
// wait leaves the newest groups and uncommitted copies in flight; and each misuse (no wait before
// exit, misaligned or non-shared addresses, more source than copied bytes, a block over its
// launch bounds, static shared memory over 48 KiB alone or with dynamic memory, a misaligned
// float4) is a SimtError naming the kernel and the call site.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <string>
#include <vector>

#include "kernels/cuda/portable.cuh"

#include "kernels/cuda/async_copy.cuh"

namespace glia::simt::testing {
namespace {

using kernels::sim::cp_async;
using kernels::sim::cp_async_commit;
using kernels::sim::cp_async_wait;
using kernels::sim::load_float4;

const Config kOrders[] = {Config{LaneOrder::forward, 0, 0}, Config{LaneOrder::reverse, 0, 0},
                          Config{LaneOrder::random, 1, 0}, Config{LaneOrder::random, 2, 1}};

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

bool contains(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern));
}

constexpr int kLanes = 64;

// out[block][t] = sum over chunks c of src[c][(t + 1) % 64]: chunk c + 1 is copied into one stage
// while chunk c is read from the other, so it needs both the wait and the two barriers.
__global__ void __launch_bounds__(kLanes) pipelined_sum(const float* src, int chunks, float* out) {
  GLIA_STATIC_SHARED(float[2][kLanes], stage);
  const int t = threadIdx.x;
  float total = 0.0f;
  cp_async<4>(&stage[0][t], src + t, 4);
  cp_async_commit();
  for (int c = 0; c < chunks; ++c) {
    if (c + 1 < chunks) cp_async<4>(&stage[(c + 1) % 2][t], src + (c + 1) * kLanes + t, 4);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    total += stage[c % 2][(t + 1) % kLanes];
    __syncthreads();
  }
  out[blockIdx.x * kLanes + t] = total;
}
GLIA_LAUNCH_BOUNDS(pipelined_sum, kLanes);

TEST(SimtAsyncCopyTest, DoubleBufferedPipelineMatchesHostUnderEveryOrder) {
  constexpr int kChunks = 5;
  std::vector<float> src(kChunks * kLanes);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i % 97) * 0.25f;
  for (const Config& config : kOrders) {
    ScopedConfig scoped(config);
    constexpr int kBlocks = 3;  // blocks on one worker reuse the stages
    std::vector<float> out(kBlocks * kLanes, NAN);
    GLIA_LAUNCH(pipelined_sum, kBlocks, kLanes, 0, nullptr, src.data(), kChunks, out.data());
    for (int t = 0; t < kBlocks * kLanes; ++t) {
      float want = 0.0f;
      for (int c = 0; c < kChunks; ++c) want += src[c * kLanes + (t + 1) % kLanes];
      ASSERT_EQ(out[t], want) << "thread " << t;
    }
  }
}

// Thread 0 copies 16 bytes of which `src_bytes` come from src, then reports what it saw before
// and after the wait.
__global__ void zero_fill(const float* src, int src_bytes, float* out) {
  GLIA_STATIC_SHARED(float[4], dst);
  dst[0] = 9.0f;  // what was there before the copy is gone as well
  cp_async<16>(dst, src, src_bytes);
  cp_async_commit();
  out[0] = dst[0];  // before the wait: poison
  cp_async_wait<0>();
  for (int i = 0; i < 4; ++i) out[1 + i] = dst[i];
}

TEST(SimtAsyncCopyTest, ReadBeforeTheWaitSeesPoisonAndTheTailIsZeroFilled) {
  alignas(16) const float src[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<float> out(5, 7.0f);
  GLIA_LAUNCH(zero_fill, 1, 1, 0, nullptr, src, 8, out.data());
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], 2.0f);
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_EQ(out[4], 0.0f);
}

// Group 0 (src[0]), group 1 (src[1]), then an uncommitted copy (src[2]): wait_group 1 completes
// group 0 only; wait_group 0 completes group 1 but not the uncommitted copy.
__global__ void wait_groups(const float* src, float* out) {
  GLIA_STATIC_SHARED(float[3], dst);
  cp_async<4>(&dst[0], &src[0], 4);
  cp_async_commit();
  cp_async<4>(&dst[1], &src[1], 4);
  cp_async_commit();
  cp_async<4>(&dst[2], &src[2], 4);
  cp_async_wait<1>();
  out[0] = dst[0];
  out[1] = dst[1];
  cp_async_wait<0>();
  out[2] = dst[1];
  out[3] = dst[2];
  cp_async_commit();
  cp_async_wait<0>();
  out[4] = dst[2];
}

TEST(SimtAsyncCopyTest, WaitGroupLeavesTheNewestGroupsAndUncommittedCopiesInFlight) {
  const float src[3] = {5.0f, 6.0f, 7.0f};
  std::vector<float> out(5, 0.0f);
  GLIA_LAUNCH(wait_groups, 1, 1, 0, nullptr, src, out.data());
  EXPECT_EQ(out[0], 5.0f);
  EXPECT_TRUE(std::isnan(out[1]));
  EXPECT_EQ(out[2], 6.0f);
  EXPECT_TRUE(std::isnan(out[3]));
  EXPECT_EQ(out[4], 7.0f);
}

__global__ void exits_without_waiting(const float* src) {
  GLIA_STATIC_SHARED(float[32], dst);
  cp_async<4>(&dst[threadIdx.x], src + threadIdx.x, 4);
  cp_async_commit();
}

__global__ void copies_misaligned(const float* src) {
  GLIA_STATIC_SHARED(float[8], dst);
  cp_async<16>(&dst[1], src, 16);
  cp_async_wait<0>();
}

__global__ void copies_to_global(const float* src, float* global) {
  cp_async<4>(global, src, 4);
  cp_async_wait<0>();
}

__global__ void copies_too_much_source(const float* src) {
  GLIA_STATIC_SHARED(float[1], dst);
  cp_async<4>(dst, src, 8);
  cp_async_wait<0>();
}

TEST(SimtAsyncCopyTest, MisuseIsAnError) {
  alignas(16) float src[32] = {};
  const std::string exits =
      error_of([&] { GLIA_LAUNCH(exits_without_waiting, 1, 32, 0, nullptr, src); });
  EXPECT_TRUE(contains(exits,
                       "`exits_without_waiting`.*exited with 1 cp.async copies it never "
                       "waited for \\(the first issued at [^ ]*simt_async_test.cpp:[0-9]+"))
      << exits;
  const std::string misaligned =
      error_of([&] { GLIA_LAUNCH(copies_misaligned, 1, 1, 0, nullptr, src); });
  EXPECT_TRUE(contains(misaligned,
                       "cp.async of 16 bytes at [^ ]*simt_async_test.cpp:[0-9]+ has a "
                       "destination or source address not aligned"))
      << misaligned;
  std::vector<float> global(1);
  const std::string to_global =
      error_of([&] { GLIA_LAUNCH(copies_to_global, 1, 1, 0, nullptr, src, global.data()); });
  EXPECT_TRUE(contains(to_global, "writes outside the block's shared memory")) << to_global;
  const std::string too_much =
      error_of([&] { GLIA_LAUNCH(copies_too_much_source, 1, 1, 0, nullptr, src); });
  EXPECT_TRUE(contains(too_much, "reads 8 source bytes, more than it copies")) << too_much;
}

// --- Launch bounds --------------------------------------------------------------------------
TEST(SimtLaunchBoundsTest, ABlockOverTheBoundsIsRefused) {
  std::vector<float> src(2 * kLanes, 1.0f), out(2 * kLanes);
  const std::string e = error_of(
      [&] { GLIA_LAUNCH(pipelined_sum, 1, 2 * kLanes, 0, nullptr, src.data(), 1, out.data()); });
  EXPECT_TRUE(contains(e,
                       "`pipelined_sum` launched at [^ ]*simt_async_test.cpp:[0-9]+: block "
                       "\\(128,1,1\\) has 128 threads, more than the kernel's "
                       "__launch_bounds__ of 64"))
      << e;
}

// Instances of a kernel template register their own bounds: at namespace scope (a template-id
// with two arguments in parentheses) or in the launcher template before the launch.
template <int kScale, class T>
__global__ void __launch_bounds__(kLanes* kScale) scaled_copy(const T* src, T* out) {
  out[threadIdx.x] = src[threadIdx.x];
}
GLIA_LAUNCH_BOUNDS((scaled_copy<1, float>), kLanes);

template <int kScale>
void launch_scaled_copy(unsigned threads, const float* src, float* out) {
  GLIA_LAUNCH_BOUNDS((scaled_copy<kScale, float>), kLanes * kScale);
  GLIA_LAUNCH((scaled_copy<kScale, float>), 1, threads, 0, nullptr, src, out);
}

TEST(SimtLaunchBoundsTest, TemplateInstancesHaveTheirOwnBounds) {
  std::vector<float> src(2 * kLanes, 1.0f), out(2 * kLanes);
  launch_scaled_copy<2>(2 * kLanes, src.data(), out.data());
  EXPECT_EQ(out, src);
  EXPECT_TRUE(contains(error_of([&] { launch_scaled_copy<2>(4 * kLanes, src.data(), out.data()); }),
                       "has 256 threads, more than the kernel's __launch_bounds__ of 128"));
  const std::string e = error_of([&] {
    GLIA_LAUNCH((scaled_copy<1, float>), 1, 2 * kLanes, 0, nullptr, src.data(), out.data());
  });
  EXPECT_TRUE(contains(e, "has 128 threads, more than the kernel's __launch_bounds__ of 64")) << e;
}

// --- Static shared memory -----------------------------------------------------------------------
// out[block] = the first element of a static array before any write: poison in every block,
// although the previous block on the same worker wrote it.
__global__ void reads_static_before_writing(float* out) {
  GLIA_STATIC_SHARED(float[16], values);
  out[blockIdx.x] = values[0];
  values[0] = 1.0f;
}

TEST(SimtStaticSharedTest, IsPoisonedInEveryBlock) {
  ScopedConfig serial(Config{LaneOrder::forward, 0, 1});
  std::vector<float> out(4, 0.0f);
  GLIA_LAUNCH(reads_static_before_writing, 4, 1, 0, nullptr, out.data());
  for (float v : out) EXPECT_TRUE(std::isnan(v));
}

struct Big {
  float values[25 * 256];  // 25 KiB
};

__global__ void two_big_static_arrays(float* out) {
  GLIA_STATIC_SHARED(Big, first);
  GLIA_STATIC_SHARED(Big, second);
  first.values[0] = 1.0f;
  second.values[0] = 2.0f;
  out[0] = first.values[0] + second.values[0];
}

__global__ void static_and_dynamic(float* out) {
  GLIA_STATIC_SHARED(Big, one);
  GLIA_DYNAMIC_SHARED(float, dynamic);
  one.values[0] = 1.0f;
  dynamic[0] = 2.0f;
  out[0] = one.values[0] + dynamic[0];
}

TEST(SimtStaticSharedTest, CountsAgainstTheLimits) {
  std::vector<float> out(1);
  const std::string both =
      error_of([&] { GLIA_LAUNCH(two_big_static_arrays, 1, 1, 0, nullptr, out.data()); });
  EXPECT_TRUE(contains(both,
                       "`two_big_static_arrays`.*static shared array `second` "
                       "\\([^ ]*simt_async_test.cpp:[0-9]+, 25600 bytes\\) brings the "
                       "block's static shared memory to 51200 bytes, more than the limit "
                       "of 49152"))
      << both;
  GLIA_LAUNCH(static_and_dynamic, 1, 1, 23 * 1024, nullptr, out.data());  // 48 KiB in all
  EXPECT_EQ(out[0], 3.0f);
  const std::string over =
      error_of([&] { GLIA_LAUNCH(static_and_dynamic, 1, 1, 23 * 1024 + 4, nullptr, out.data()); });
  EXPECT_TRUE(contains(over,
                       "static plus dynamic shared memory to 49156 bytes, more than its "
                       "limit of 49152"))
      << over;
}

// --- Vector accesses
// ------------------------------------------------------------------------------
__global__ void loads_float4(const float* p, float* out) {
  const float4 v = load_float4(p);
  out[0] = v.x + v.y + v.z + v.w;
}

TEST(SimtVectorTest, Float4AccessesMustBeAligned) {
  alignas(16) const float values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<float> out(1);
  GLIA_LAUNCH(loads_float4, 1, 1, 0, nullptr, values + 4, out.data());
  EXPECT_EQ(out[0], 26.0f);
  const std::string e =
      error_of([&] { GLIA_LAUNCH(loads_float4, 1, 1, 0, nullptr, values + 1, out.data()); });
  EXPECT_TRUE(contains(e,
                       "float4 load at [^ ]*simt_async_test.cpp:[0-9]+ of a pointer that is not "
                       "aligned to 16 bytes"))
      << e;
}

}  // namespace
}  // namespace glia::simt::testing
