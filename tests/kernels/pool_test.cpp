// Pooling kernels on every backend against the cpu reference in double: max (values and indices
// bitwise; ties resolved to the first index, NaN propagated, windows over the padding), average
// with and without padding in the divisor, global average, and every backward (the cuda kernels
// gather what the cpu reference scatters, so overlapping windows are covered). Shapes: batch 1 and
// > 1, channels 1, 3, 17 (64 on cpu only), odd and even planes, kernel 2 and 3, stride 1 and 2,
// padding 0 and 1. Outputs start as NaN; sim runs under every lane order and must agree bitwise.
// The cuDNN fallback is checked against the same reference on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/pool.h"
#endif
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::index_t;
using kernels::Pool2dShape;

template <class B>
void max_pool_on(const float* x, float* y, std::int32_t* idx, const Pool2dShape& s) {
  GLIA_ON_BACKEND(max_pool2d, x, y, idx, s);
}
template <class B>
void max_pool_backward_on(const float* gy, const std::int32_t* idx, float* gx,
                          const Pool2dShape& s) {
  GLIA_ON_BACKEND(max_pool2d_backward, gy, idx, gx, s);
}
template <class B>
void avg_pool_on(const float* x, float* y, const Pool2dShape& s) {
  GLIA_ON_BACKEND(avg_pool2d, x, y, s);
}
template <class B>
void avg_pool_backward_on(const float* gy, float* gx, const Pool2dShape& s) {
  GLIA_ON_BACKEND(avg_pool2d_backward, gy, gx, s);
}
template <class B>
void global_avg_on(const float* x, float* y, const Pool2dShape& s) {
  GLIA_ON_BACKEND(global_avg_pool2d, x, y, s);
}
template <class B>
void global_avg_backward_on(const float* gy, float* gx, const Pool2dShape& s) {
  GLIA_ON_BACKEND(global_avg_pool2d_backward, gy, gx, s);
}

std::string describe(const Pool2dShape& s) {
  return "[" + std::to_string(s.n) + ", " + std::to_string(s.c) + ", " + std::to_string(s.h) +
         ", " + std::to_string(s.w) + "] kernel " + std::to_string(s.kernel_h) + " stride " +
         std::to_string(s.stride_h) + " padding " + std::to_string(s.pad_h) +
         (s.count_include_pad ? "" : " (padding not counted)");
}

// Every combination of kernel 2 / 3, stride 1 / 2, padding 0 / 1 over planes odd and even in each
// direction, batch 1 and > 1, channels 1, 3, 17 (and 64 on cpu).
template <class B>
std::vector<Pool2dShape> shapes(bool count_include_pad = true) {
  struct Input {
    index_t n, c, h, w;
  };
  std::vector<Input> inputs = {{1, 1, 7, 7}, {2, 3, 8, 6}, {1, 17, 5, 9}, {2, 3, 6, 8}};
  if constexpr (is_cpu<B>) inputs.push_back({2, 64, 9, 7});
  std::vector<Pool2dShape> all;
  for (const Input& in : inputs) {
    for (const index_t kernel : {2, 3}) {
      for (const index_t stride : {1, 2}) {
        for (const index_t padding : {0, 1}) {
          all.push_back(Pool2dShape::make(in.n, in.c, in.h, in.w, kernel, stride, padding,
                                          count_include_pad));
        }
      }
    }
  }
  return all;
}

std::size_t in_size(const Pool2dShape& s) {
  return static_cast<std::size_t>(s.in_numel());
}
std::size_t out_size(const Pool2dShape& s) {
  return static_cast<std::size_t>(s.out_numel());
}

template <class B>
void check_max(const Pool2dShape& s, const std::vector<float>& x) {
  SCOPED_TRACE(describe(s));
  ASSERT_TRUE(s.valid());
  std::vector<double> expected(out_size(s));
  std::vector<std::int32_t> expected_idx(out_size(s));
  kernels::cpu::max_pool2d(to_double(x).data(), expected.data(), expected_idx.data(), s);
  const auto [got, got_idx] = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(x), dy(nan_poisoned(out_size(s)));
    typename B::template Buffer<std::int32_t> didx(
        std::vector<std::int32_t>(out_size(s), std::numeric_limits<std::int32_t>::min()));
    max_pool_on<B>(dx.data(), dy.data(), didx.data(), s);
    return std::tuple{dy.to_host(), didx.to_host()};
  });
  EXPECT_TRUE(all_equal(converted<double>(got), expected));
  EXPECT_TRUE(all_equal(got_idx, expected_idx));
}

template <class B>
class Pool : public BackendTest<B> {};
TYPED_TEST_SUITE(Pool, Backends, BackendNames);

TYPED_TEST(Pool, MaxForward) {
  std::uint32_t seed = 10;
  for (const Pool2dShape& s : shapes<TypeParam>()) {
    check_max<TypeParam>(s, random_values(in_size(s), -1.0, 1.0, ++seed));
  }
}

// Few distinct values (and all negative, so padding's -inf must never win): most windows hold
// their maximum more than once, and the first in row-major order must win.
TYPED_TEST(Pool, MaxTiesPickTheFirstIndex) {
  std::uint32_t seed = 100;
  for (const Pool2dShape& s : shapes<TypeParam>()) {
    std::vector<float> x = random_values(in_size(s), -3.0, 0.0, ++seed);
    for (float& v : x) v = std::floor(v);
    check_max<TypeParam>(s, x);
  }
}

// A NaN anywhere in a window makes its output NaN with the first NaN's index; -inf inputs are
// ordinary values.
TYPED_TEST(Pool, MaxPropagatesNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const Pool2dShape& s :
       {Pool2dShape::make(2, 3, 7, 6, 3, 2, 1), Pool2dShape::make(1, 1, 6, 6, 2, 1, 0)}) {
    std::vector<float> x = random_values(in_size(s), -1.0, 1.0, 7);
    x[0] = nan;
    x[3] = nan;
    x[s.w + 1] = nan;
    x[in_size(s) - 1] = -inf;
    x[in_size(s) - 2] = -inf;
    check_max<TypeParam>(s, x);
  }
}

TYPED_TEST(Pool, MaxBackward) {
  using B = TypeParam;
  std::uint32_t seed = 200;
  for (const Pool2dShape& s : shapes<B>()) {
    SCOPED_TRACE(describe(s));
    // Ties included: the gradient follows the saved index whatever it is.
    std::vector<float> x = random_values(in_size(s), -3.0, 0.0, ++seed);
    for (float& v : x) v = std::floor(v);
    const std::vector<float> gy = random_values(out_size(s), -1.0, 1.0, ++seed);
    std::vector<float> y(out_size(s));
    std::vector<std::int32_t> idx(out_size(s));
    kernels::cpu::max_pool2d(x.data(), y.data(), idx.data(), s);
    std::vector<double> expected(in_size(s));
    kernels::cpu::max_pool2d_backward(to_double(gy).data(), idx.data(), expected.data(), s);
    const std::vector<float> got = run_in_every_lane_order<B>([&] {
      typename B::template Buffer<float> dgy(gy), dgx(nan_poisoned(in_size(s)));
      typename B::template Buffer<std::int32_t> didx(idx);
      max_pool_backward_on<B>(dgy.data(), didx.data(), dgx.data(), s);
      return dgx.to_host();
    });
    EXPECT_TRUE(all_close(got, expected));
  }
}

TYPED_TEST(Pool, AvgForwardAndBackward) {
  using B = TypeParam;
  std::uint32_t seed = 300;
  for (const bool count_include_pad : {true, false}) {
    for (const Pool2dShape& s : shapes<B>(count_include_pad)) {
      SCOPED_TRACE(describe(s));
      const std::vector<float> x = random_values(in_size(s), -1.0, 1.0, ++seed);
      const std::vector<float> gy = random_values(out_size(s), -1.0, 1.0, ++seed);
      std::vector<double> y(out_size(s)), gx(in_size(s));
      kernels::cpu::avg_pool2d(to_double(x).data(), y.data(), s);
      kernels::cpu::avg_pool2d_backward(to_double(gy).data(), gx.data(), s);
      const auto [got_y, got_gx] = run_in_every_lane_order<B>([&] {
        typename B::template Buffer<float> dx(x), dy(nan_poisoned(out_size(s))), dgy(gy),
            dgx(nan_poisoned(in_size(s)));
        avg_pool_on<B>(dx.data(), dy.data(), s);
        avg_pool_backward_on<B>(dgy.data(), dgx.data(), s);
        return std::tuple{dy.to_host(), dgx.to_host()};
      });
      EXPECT_TRUE(all_close(got_y, y));
      EXPECT_TRUE(all_close(got_gx, gx));
    }
  }
}

// Planes smaller and larger than the 256 threads of a plane's block.
TYPED_TEST(Pool, GlobalAverageForwardAndBackward) {
  using B = TypeParam;
  std::uint32_t seed = 400;
  for (const Pool2dShape& s :
       {Pool2dShape::global(1, 1, 1, 1), Pool2dShape::global(2, 3, 5, 7),
        Pool2dShape::global(1, 17, 8, 8), Pool2dShape::global(2, 3, 19, 23)}) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> x = random_values(in_size(s), -1.0, 1.0, ++seed);
    const std::vector<float> gy = random_values(out_size(s), -1.0, 1.0, ++seed);
    std::vector<double> y(out_size(s)), gx(in_size(s));
    kernels::cpu::global_avg_pool2d(to_double(x).data(), y.data(), s);
    kernels::cpu::global_avg_pool2d_backward(to_double(gy).data(), gx.data(), s);
    const auto [got_y, got_gx] = run_in_every_lane_order<B>([&] {
      typename B::template Buffer<float> dx(x), dy(nan_poisoned(out_size(s))), dgy(gy),
          dgx(nan_poisoned(in_size(s)));
      global_avg_on<B>(dx.data(), dy.data(), s);
      global_avg_backward_on<B>(dgy.data(), dgx.data(), s);
      return std::tuple{dy.to_host(), dgx.to_host()};
    });
    EXPECT_TRUE(all_close(got_y, y));
    EXPECT_TRUE(all_close(got_gx, gx));
  }
}

TYPED_TEST(Pool, InvalidShapesThrow) {
  using B = TypeParam;
  if constexpr (is_cpu<B>) {
    GTEST_SKIP() << "the cpu reference trusts its caller (the engine checks every window)";
  } else {
    // Padding over half the kernel: a window could lie wholly in the padding.
    const Pool2dShape s = Pool2dShape::make(1, 1, 4, 4, 2, 1, 2);
    EXPECT_FALSE(s.valid());
    EXPECT_THROW(avg_pool_on<B>(nullptr, nullptr, s), std::invalid_argument);
    EXPECT_THROW(max_pool_on<B>(nullptr, nullptr, nullptr, s), std::invalid_argument);
  }
}

#if defined(GLIA_HAVE_CUDA)
// The cuDNN fallback against the cpu reference: max (without ties, since cuDNN's backward finds
// the maximum again), average with and without padding in the divisor, and global average.
TEST(CudaCudnnPool, MatchesReference) {
  std::string reason;
  if (!cuda_device_present(&reason)) GTEST_SKIP() << reason;
  using kernels::cudnn::PoolMode;
  cudnnHandle_t handle = nullptr;
  ASSERT_EQ(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
  std::uint32_t seed = 500;
  std::vector<Pool2dShape> all = shapes<Cuda>(true);
  for (const Pool2dShape& s : shapes<Cuda>(false)) all.push_back(s);
  all.push_back(Pool2dShape::global(2, 3, 19, 23));
  for (const Pool2dShape& s : all) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> x = random_values(in_size(s), -1.0, 1.0, ++seed);
    const std::vector<float> gy = random_values(out_size(s), -1.0, 1.0, ++seed);
    for (const PoolMode mode : {PoolMode::max, PoolMode::average}) {
      SCOPED_TRACE(mode == PoolMode::max ? "max" : "average");
      std::vector<double> y(out_size(s)), gx(in_size(s));
      if (mode == PoolMode::max) {
        std::vector<std::int32_t> idx(out_size(s));
        kernels::cpu::max_pool2d(to_double(x).data(), y.data(), idx.data(), s);
        kernels::cpu::max_pool2d_backward(to_double(gy).data(), idx.data(), gx.data(), s);
      } else {
        kernels::cpu::avg_pool2d(to_double(x).data(), y.data(), s);
        kernels::cpu::avg_pool2d_backward(to_double(gy).data(), gx.data(), s);
      }
      CudaBuffer<float> dx(x), dy(nan_poisoned(out_size(s))), dgy(gy),
          dgx(nan_poisoned(in_size(s)));
      kernels::cudnn::pool2d_forward(handle, mode, s, dx.data(), dy.data(), nullptr);
      kernels::cudnn::pool2d_backward(handle, mode, s, dx.data(), dy.data(), dgy.data(), dgx.data(),
                                      nullptr);
      EXPECT_TRUE(all_close(dy.to_host(), y));
      EXPECT_TRUE(all_close(dgx.to_host(), gx));
    }
  }
  EXPECT_EQ(cudnnDestroy(handle), CUDNN_STATUS_SUCCESS);
}
#endif

}  // namespace
}  // namespace glia::testing
