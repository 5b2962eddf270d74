// Batch norm kernels on every backend against the cpu reference in double: training statistics
// (mean, inverse std, the running-statistics update with the unbiased variance) on data far from
// zero mean (a one-pass variance would cancel), the affine apply with and without weight / bias,
// and both backward kernels in training and evaluation mode. Shapes: batch 1 and > 1, channels
// 1, 3, 17 (64 on cpu only), odd and even planes, channels longer than one block's 256 threads.
// Outputs start as NaN; sim runs under every lane order and must agree bitwise. The split
// reductions (a workspace, many blocks per channel combined in a fixed order) and the fused
// BN + ReLU run on channels of 1, 2 and 3 whose chunks cross planes and end in a short tail, on
// float4-aligned and unaligned pointers, twice with bitwise equal results; so does the per-channel
// sum of the convolution bias gradient. The cuDNN fallback is checked against the same reference
// on a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/batchnorm.h"
#endif
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::BatchNormShape;
using kernels::index_t;

template <class B>
void stats_on(const float* x, float* mean, float* invstd, float* rm, float* rv,
              const BatchNormShape& s) {
  if constexpr (is_cpu<B>) kernels::cpu::batch_norm_stats(x, mean, invstd, rm, rv, s);
  if constexpr (is_sim<B>) kernels::sim::batch_norm_stats(x, mean, invstd, rm, rv, s, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::batch_norm_stats(x, mean, invstd, rm, rv, s, nullptr);
  }
#endif
}

template <class B>
void invstd_on(const float* var, float* invstd, const BatchNormShape& s) {
  if constexpr (is_cpu<B>) kernels::cpu::batch_norm_invstd(var, invstd, s);
  if constexpr (is_sim<B>) kernels::sim::batch_norm_invstd(var, invstd, s, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::batch_norm_invstd(var, invstd, s, nullptr);
#endif
}

template <class B>
void apply_on(const float* x, const float* mean, const float* invstd, const float* weight,
              const float* bias, float* y, const BatchNormShape& s) {
  if constexpr (is_cpu<B>) kernels::cpu::batch_norm_apply(x, mean, invstd, weight, bias, y, s);
  if constexpr (is_sim<B>) {
    kernels::sim::batch_norm_apply(x, mean, invstd, weight, bias, y, s, nullptr);
  }
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::batch_norm_apply(x, mean, invstd, weight, bias, y, s, nullptr);
  }
#endif
}

template <class B>
void backward_reduce_on(const float* x, const float* gy, const float* mean, const float* invstd,
                        float* sum_dy, float* sum_dy_xhat, const BatchNormShape& s) {
  if constexpr (is_cpu<B>) {
    kernels::cpu::batch_norm_backward_reduce(x, gy, mean, invstd, sum_dy, sum_dy_xhat, s);
  }
  if constexpr (is_sim<B>) {
    kernels::sim::batch_norm_backward_reduce(x, gy, mean, invstd, sum_dy, sum_dy_xhat, s, nullptr);
  }
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::batch_norm_backward_reduce(x, gy, mean, invstd, sum_dy, sum_dy_xhat, s, nullptr);
  }
#endif
}

template <class B>
void backward_input_on(const float* x, const float* gy, const float* mean, const float* invstd,
                       const float* weight, const float* sum_dy, const float* sum_dy_xhat,
                       float* gx, const BatchNormShape& s, bool training) {
  if constexpr (is_cpu<B>) {
    kernels::cpu::batch_norm_backward_input(x, gy, mean, invstd, weight, sum_dy, sum_dy_xhat, gx, s,
                                            training);
  }
  if constexpr (is_sim<B>) {
    kernels::sim::batch_norm_backward_input(x, gy, mean, invstd, weight, sum_dy, sum_dy_xhat, gx, s,
                                            training, nullptr);
  }
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::batch_norm_backward_input(x, gy, mean, invstd, weight, sum_dy, sum_dy_xhat, gx,
                                             s, training, nullptr);
  }
#endif
}

// The split (workspace) and fused-ReLU entry points; cpu has no workspace and runs its reference.
template <class B>
index_t workspace_size_on(const BatchNormShape& s) {
  if constexpr (is_sim<B>) return kernels::sim::batch_norm_workspace_size(s);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) return kernels::cuda::batch_norm_workspace_size(s);
#endif
  return 0;
}

template <class B>
void split_stats_on(const float* x, float* mean, float* invstd, float* rm, float* rv,
                    const BatchNormShape& s, float* ws) {
  if constexpr (is_cpu<B>) kernels::cpu::batch_norm_stats(x, mean, invstd, rm, rv, s);
  if constexpr (is_sim<B>) kernels::sim::batch_norm_stats(x, mean, invstd, rm, rv, s, ws, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::batch_norm_stats(x, mean, invstd, rm, rv, s, ws, nullptr);
  }
#endif
}

template <class B>
void relu_apply_on(const float* x, const float* mean, const float* invstd, const float* weight,
                   const float* bias, float* y, const BatchNormShape& s) {
  GLIA_ON_BACKEND(batch_norm_relu_apply, x, mean, invstd, weight, bias, y, s);
}

template <class B>
void relu_backward_reduce_on(const float* x, const float* gy, const float* y, const float* mean,
                             const float* invstd, float* sum_dy, float* sum_dy_xhat,
                             const BatchNormShape& s, float* ws) {
  if constexpr (is_cpu<B>) {
    kernels::cpu::batch_norm_relu_backward_reduce(x, gy, y, mean, invstd, sum_dy, sum_dy_xhat, s);
  }
  if constexpr (is_sim<B>) {
    kernels::sim::batch_norm_relu_backward_reduce(x, gy, y, mean, invstd, sum_dy, sum_dy_xhat, s,
                                                  ws, nullptr);
  }
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::batch_norm_relu_backward_reduce(x, gy, y, mean, invstd, sum_dy, sum_dy_xhat, s,
                                                   ws, nullptr);
  }
#endif
}

template <class B>
void relu_backward_input_on(const float* x, const float* gy, const float* y, const float* mean,
                            const float* invstd, const float* weight, const float* sum_dy,
                            const float* sum_dy_xhat, float* gx, const BatchNormShape& s,
                            bool training) {
  GLIA_ON_BACKEND(batch_norm_relu_backward_input, x, gy, y, mean, invstd, weight, sum_dy,
                  sum_dy_xhat, gx, s, training);
}

BatchNormShape shape(index_t n, index_t c, index_t h, index_t w) {
  BatchNormShape s;
  s.n = n;
  s.c = c;
  s.h = h;
  s.w = w;
  s.momentum = 0.3;  // not the default, so a wrong factor shows
  return s;
}

std::string describe(const BatchNormShape& s) {
  return "[" + std::to_string(s.n) + ", " + std::to_string(s.c) + ", " + std::to_string(s.h) +
         ", " + std::to_string(s.w) + "]";
}

// Batch 1 and > 1, channels 1, 3, 17, odd and even planes, and channels of more than 256
// elements (several per thread of the channel's block) and of over 16384 (a 1024-thread block);
// 64 channels on cpu only.
template <class B>
std::vector<BatchNormShape> shapes() {
  std::vector<BatchNormShape> all = {shape(1, 1, 5, 5),  shape(2, 3, 7, 6),   shape(3, 17, 4, 5),
                                     shape(1, 3, 8, 8),  shape(4, 3, 16, 17), shape(2, 1, 1, 3),
                                     shape(2, 1, 96, 96)};
  if constexpr (is_cpu<B>) all.push_back(shape(2, 64, 5, 3));
  return all;
}

std::size_t numel(const BatchNormShape& s) {
  return static_cast<std::size_t>(s.numel());
}
std::size_t channels(const BatchNormShape& s) {
  return static_cast<std::size_t>(s.c);
}

// Inputs of one case: x centred far from 0 (3 +- 1), so the variance is small next to mean^2.
struct Inputs {
  Inputs(const BatchNormShape& s, std::uint32_t seed)
      : x(random_values(numel(s), 2.0, 4.0, seed)),
        gy(random_values(numel(s), -1.0, 1.0, seed + 1)),
        weight(random_values(channels(s), 0.5, 1.5, seed + 2)),
        bias(random_values(channels(s), -0.5, 0.5, seed + 3)),
        running_mean(random_values(channels(s), -1.0, 1.0, seed + 4)),
        running_var(random_values(channels(s), 0.5, 2.0, seed + 5)) {}
  std::vector<float> x, gy, weight, bias, running_mean, running_var;
};

// Normalised values are O(1) and the statistics sum a few thousand float terms.
constexpr Tolerance kTol{1e-4, 1e-4};

template <class B>
class BatchNorm : public BackendTest<B> {};
TYPED_TEST_SUITE(BatchNorm, Backends, BackendNames);

TYPED_TEST(BatchNorm, StatsAndRunningUpdate) {
  using B = TypeParam;
  std::uint32_t seed = 10;
  for (const BatchNormShape& s : shapes<B>()) {
    SCOPED_TRACE(describe(s));
    const Inputs in(s, seed += 10);
    const std::size_t c = channels(s);
    std::vector<double> mean(c), invstd(c), rm = to_double(in.running_mean),
                                            rv = to_double(in.running_var);
    kernels::cpu::batch_norm_stats(to_double(in.x).data(), mean.data(), invstd.data(), rm.data(),
                                   rv.data(), s);
    const auto [got_mean, got_invstd, got_rm, got_rv] = run_in_every_lane_order<B>([&] {
      typename B::template Buffer<float> dx(in.x), dmean(nan_poisoned(c)), dinvstd(nan_poisoned(c)),
          drm(in.running_mean), drv(in.running_var);
      stats_on<B>(dx.data(), dmean.data(), dinvstd.data(), drm.data(), drv.data(), s);
      return std::tuple{dmean.to_host(), dinvstd.to_host(), drm.to_host(), drv.to_host()};
    });
    EXPECT_TRUE(all_close(got_mean, mean, kTol));
    EXPECT_TRUE(all_close(got_invstd, invstd, kTol));
    EXPECT_TRUE(all_close(got_rm, rm, kTol));
    EXPECT_TRUE(all_close(got_rv, rv, kTol));
  }
}

TYPED_TEST(BatchNorm, StatsWithoutRunningStatistics) {
  using B = TypeParam;
  const BatchNormShape s = shape(2, 3, 7, 6);
  const Inputs in(s, 5);
  std::vector<double> mean(3), invstd(3);
  kernels::cpu::batch_norm_stats(to_double(in.x).data(), mean.data(), invstd.data(),
                                 static_cast<double*>(nullptr), static_cast<double*>(nullptr), s);
  const auto [got_mean, got_invstd] = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(in.x), dmean(nan_poisoned(3)), dinvstd(nan_poisoned(3));
    stats_on<B>(dx.data(), dmean.data(), dinvstd.data(), nullptr, nullptr, s);
    return std::tuple{dmean.to_host(), dinvstd.to_host()};
  });
  EXPECT_TRUE(all_close(got_mean, mean, kTol));
  EXPECT_TRUE(all_close(got_invstd, invstd, kTol));
}

TYPED_TEST(BatchNorm, InvstdOfRunningVariance) {
  using B = TypeParam;
  const BatchNormShape s = shape(1, 17, 1, 1);
  const std::vector<float> var = random_values(17, 0.0, 3.0, 7);
  std::vector<double> expected(17);
  kernels::cpu::batch_norm_invstd(to_double(var).data(), expected.data(), s);
  const std::vector<float> got = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dvar(var), dinvstd(nan_poisoned(17));
    invstd_on<B>(dvar.data(), dinvstd.data(), s);
    return dinvstd.to_host();
  });
  EXPECT_TRUE(all_close(got, expected));
}

TYPED_TEST(BatchNorm, ApplyWithAndWithoutAffine) {
  using B = TypeParam;
  std::uint32_t seed = 100;
  for (const BatchNormShape& s : shapes<B>()) {
    SCOPED_TRACE(describe(s));
    const Inputs in(s, seed += 10);
    const std::size_t c = channels(s);
    const std::vector<float> mean = random_values(c, 2.5, 3.5, seed + 7);
    const std::vector<float> invstd = random_values(c, 0.5, 3.0, seed + 8);
    for (const bool affine : {true, false}) {
      SCOPED_TRACE(affine ? "affine" : "no affine");
      std::vector<double> expected(numel(s));
      const std::vector<double> w = to_double(in.weight), b = to_double(in.bias);
      kernels::cpu::batch_norm_apply(to_double(in.x).data(), to_double(mean).data(),
                                     to_double(invstd).data(), affine ? w.data() : nullptr,
                                     affine ? b.data() : nullptr, expected.data(), s);
      const std::vector<float> got = run_in_every_lane_order<B>([&] {
        typename B::template Buffer<float> dx(in.x), dmean(mean), dinvstd(invstd), dw(in.weight),
            db(in.bias), dy(nan_poisoned(numel(s)));
        apply_on<B>(dx.data(), dmean.data(), dinvstd.data(), affine ? dw.data() : nullptr,
                    affine ? db.data() : nullptr, dy.data(), s);
        return dy.to_host();
      });
      EXPECT_TRUE(all_close(got, expected, kTol));
    }
  }
}

// Both backward kernels, fed the statistics of the batch (training) or arbitrary running ones
// (evaluation), against the cpu in double.
TYPED_TEST(BatchNorm, BackwardInTrainingAndEvaluation) {
  using B = TypeParam;
  std::uint32_t seed = 200;
  for (const BatchNormShape& s : shapes<B>()) {
    SCOPED_TRACE(describe(s));
    const Inputs in(s, seed += 10);
    const std::size_t c = channels(s);
    std::vector<float> mean(c), invstd(c);
    kernels::cpu::batch_norm_stats(in.x.data(), mean.data(), invstd.data(),
                                   static_cast<float*>(nullptr), static_cast<float*>(nullptr), s);
    for (const bool training : {true, false}) {
      SCOPED_TRACE(training ? "training" : "evaluation");
      const std::vector<double> x = to_double(in.x), gy = to_double(in.gy), m = to_double(mean),
                                is = to_double(invstd), w = to_double(in.weight);
      std::vector<double> sum_dy(c), sum_dy_xhat(c), gx(numel(s));
      kernels::cpu::batch_norm_backward_reduce(x.data(), gy.data(), m.data(), is.data(),
                                               sum_dy.data(), sum_dy_xhat.data(), s);
      kernels::cpu::batch_norm_backward_input(x.data(), gy.data(), m.data(), is.data(), w.data(),
                                              sum_dy.data(), sum_dy_xhat.data(), gx.data(), s,
                                              training);
      const auto [got_dy, got_dy_xhat, got_gx] = run_in_every_lane_order<B>([&] {
        typename B::template Buffer<float> dx(in.x), dgy(in.gy), dmean(mean), dinvstd(invstd),
            dw(in.weight), dsum(nan_poisoned(c)), dsum_xhat(nan_poisoned(c)),
            dgx(nan_poisoned(numel(s)));
        backward_reduce_on<B>(dx.data(), dgy.data(), dmean.data(), dinvstd.data(), dsum.data(),
                              dsum_xhat.data(), s);
        backward_input_on<B>(dx.data(), dgy.data(), dmean.data(), dinvstd.data(), dw.data(),
                             dsum.data(), dsum_xhat.data(), dgx.data(), s, training);
        return std::tuple{dsum.to_host(), dsum_xhat.to_host(), dgx.to_host()};
      });
      // Sums of up to ~18000 signed O(1) terms in float: absolute error well below 1e-3.
      const Tolerance sums{1e-3, 1e-4};
      EXPECT_TRUE(all_close(got_dy, sum_dy, sums));
      EXPECT_TRUE(all_close(got_dy_xhat, sum_dy_xhat, sums));
      EXPECT_TRUE(all_close(got_gx, gx, kTol));
    }
  }
}

// Shapes whose channels split over several blocks: C = 1 with float4 planes (96 x 96), C = 1 with
// odd planes whose chunks cross planes and end in a short tail (23 x 29), C = 2 with float4 planes
// split mid-plane, and C = 3 (more channels than sim's lowered grid limit).
std::vector<BatchNormShape> split_shapes() {
  return {shape(2, 1, 96, 96), shape(5, 1, 23, 29), shape(3, 2, 48, 60), shape(2, 3, 48, 44)};
}

// The whole fused forward and backward (split statistics, BN + ReLU, split backward sums) against
// the cpu reference in double, on aligned pointers (the float4 path where planes allow) and on
// pointers one float past alignment (the scalar path), in every lane order, and twice bitwise.
TYPED_TEST(BatchNorm, SplitReductionsWithFusedRelu) {
  using B = TypeParam;
  std::uint32_t seed = 400;
  for (const BatchNormShape& s : split_shapes()) {
    SCOPED_TRACE(describe(s));
    if constexpr (!is_cpu<B>) {
      EXPECT_GT(workspace_size_on<B>(s), 0) << "the shape must take the split path";
    }
    const Inputs in(s, seed += 10);
    const std::size_t c = channels(s), e = numel(s);
    const auto ws_floats = static_cast<std::size_t>(workspace_size_on<B>(s));
    for (const std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
      SCOPED_TRACE(offset == 0 ? "aligned" : "unaligned");
      // x, gy in buffers `offset` floats in; x centred near 0 so the ReLU cuts about half.
      std::vector<float> x(offset), gy(offset);
      for (const float v : in.x) x.push_back(v - 3.0f);
      gy.insert(gy.end(), in.gy.begin(), in.gy.end());
      auto run = [&] {
        typename B::template Buffer<float> dx(x), dgy(gy), dw(in.weight), db(in.bias),
            drm(in.running_mean), drv(in.running_var), dmean(nan_poisoned(c)),
            dinvstd(nan_poisoned(c)), dy(nan_poisoned(e + offset)), dsum(nan_poisoned(c)),
            dsum_xhat(nan_poisoned(c)), dgx(nan_poisoned(e + offset)), dws(nan_poisoned(ws_floats));
        split_stats_on<B>(dx.data() + offset, dmean.data(), dinvstd.data(), drm.data(), drv.data(),
                          s, dws.data());
        relu_apply_on<B>(dx.data() + offset, dmean.data(), dinvstd.data(), dw.data(), db.data(),
                         dy.data() + offset, s);
        relu_backward_reduce_on<B>(dx.data() + offset, dgy.data() + offset, dy.data() + offset,
                                   dmean.data(), dinvstd.data(), dsum.data(), dsum_xhat.data(), s,
                                   dws.data());
        relu_backward_input_on<B>(dx.data() + offset, dgy.data() + offset, dy.data() + offset,
                                  dmean.data(), dinvstd.data(), dw.data(), dsum.data(),
                                  dsum_xhat.data(), dgx.data() + offset, s, true);
        std::vector<float> y = dy.to_host(), gx = dgx.to_host();
        y.erase(y.begin(), y.begin() + static_cast<std::ptrdiff_t>(offset));
        gx.erase(gx.begin(), gx.begin() + static_cast<std::ptrdiff_t>(offset));
        return std::tuple{dmean.to_host(),
                          dinvstd.to_host(),
                          drm.to_host(),
                          drv.to_host(),
                          y,
                          dsum.to_host(),
                          dsum_xhat.to_host(),
                          gx};
      };
      const auto got = run_in_every_lane_order<B>(run);
      EXPECT_TRUE(same_bits(B::in_lane_order(0, run), got)) << "a second run differs";
      const auto& [got_mean, got_invstd, got_rm, got_rv, got_y, got_dy, got_dy_xhat, got_gx] = got;

      const std::vector<double> xd = converted<double>(std::vector<float>(
                                    x.begin() + static_cast<std::ptrdiff_t>(offset), x.end())),
                                gyd = to_double(in.gy), w = to_double(in.weight),
                                b = to_double(in.bias);
      std::vector<double> mean(c), invstd(c), rm = to_double(in.running_mean),
                                              rv = to_double(in.running_var), y(e);
      kernels::cpu::batch_norm_stats(xd.data(), mean.data(), invstd.data(), rm.data(), rv.data(),
                                     s);
      kernels::cpu::batch_norm_relu_apply(xd.data(), mean.data(), invstd.data(), w.data(), b.data(),
                                          y.data(), s);
      EXPECT_TRUE(all_close(got_mean, mean, kTol));
      EXPECT_TRUE(all_close(got_invstd, invstd, kTol));
      EXPECT_TRUE(all_close(got_rm, rm, kTol));
      EXPECT_TRUE(all_close(got_rv, rv, kTol));
      EXPECT_TRUE(all_close(got_y, y, kTol));
      // The backward from the backend's own statistics and output, so the ReLU mask is the same
      // (an output within rounding of 0 may fall on either side of the kink).
      const std::vector<double> gm = to_double(got_mean), gis = to_double(got_invstd),
                                gyo = to_double(got_y);
      std::vector<double> sum_dy(c), sum_dy_xhat(c), gx(e);
      kernels::cpu::batch_norm_relu_backward_reduce(xd.data(), gyd.data(), gyo.data(), gm.data(),
                                                    gis.data(), sum_dy.data(), sum_dy_xhat.data(),
                                                    s);
      kernels::cpu::batch_norm_relu_backward_input(xd.data(), gyd.data(), gyo.data(), gm.data(),
                                                   gis.data(), w.data(), sum_dy.data(),
                                                   sum_dy_xhat.data(), gx.data(), s, true);
      const Tolerance sums{1e-3, 1e-4};
      EXPECT_TRUE(all_close(got_dy, sum_dy, sums));
      EXPECT_TRUE(all_close(got_dy_xhat, sum_dy_xhat, sums));
      EXPECT_TRUE(all_close(got_gx, gx, kTol));
    }
  }
}

// The fused ReLU against its definition: relu(apply) forward, and the plain backward of gy masked
// where the output is not positive.
TYPED_TEST(BatchNorm, FusedReluIsReluOfApply) {
  using B = TypeParam;
  const BatchNormShape s = shape(2, 3, 7, 6);
  const Inputs in(s, 77);
  const std::size_t c = channels(s), e = numel(s);
  std::vector<float> mean(c), invstd(c);
  kernels::cpu::batch_norm_stats(in.x.data(), mean.data(), invstd.data(),
                                 static_cast<float*>(nullptr), static_cast<float*>(nullptr), s);
  const std::vector<double> x = to_double(in.x), m = to_double(mean), is = to_double(invstd),
                            w = to_double(in.weight), b = to_double(in.bias), gy = to_double(in.gy);
  std::vector<double> z(e), y(e), masked(e), sum_dy(c), sum_dy_xhat(c), gx(e);
  kernels::cpu::batch_norm_apply(x.data(), m.data(), is.data(), w.data(), b.data(), z.data(), s);
  for (std::size_t i = 0; i < e; ++i) {
    y[i] = z[i] < 0.0 ? 0.0 : z[i];
    masked[i] = y[i] > 0.0 ? gy[i] : 0.0;
  }
  kernels::cpu::batch_norm_backward_reduce(x.data(), masked.data(), m.data(), is.data(),
                                           sum_dy.data(), sum_dy_xhat.data(), s);
  kernels::cpu::batch_norm_backward_input(x.data(), masked.data(), m.data(), is.data(), w.data(),
                                          sum_dy.data(), sum_dy_xhat.data(), gx.data(), s, true);
  const std::vector<float> yf = converted<float>(y);
  const auto [got_y, got_gx] = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(in.x), dgy(in.gy), dyf(yf), dmean(mean), dinvstd(invstd),
        dw(in.weight), db(in.bias), dy(nan_poisoned(e)), dsum(nan_poisoned(c)),
        dsum_xhat(nan_poisoned(c)), dgx(nan_poisoned(e));
    relu_apply_on<B>(dx.data(), dmean.data(), dinvstd.data(), dw.data(), db.data(), dy.data(), s);
    relu_backward_reduce_on<B>(dx.data(), dgy.data(), dyf.data(), dmean.data(), dinvstd.data(),
                               dsum.data(), dsum_xhat.data(), s, nullptr);
    relu_backward_input_on<B>(dx.data(), dgy.data(), dyf.data(), dmean.data(), dinvstd.data(),
                              dw.data(), dsum.data(), dsum_xhat.data(), dgx.data(), s, true);
    return std::tuple{dy.to_host(), dgx.to_host()};
  });
  EXPECT_TRUE(all_close(got_y, y, kTol));
  EXPECT_TRUE(all_close(got_gx, gx, kTol));
}

// The per-channel sum (the convolution bias gradient) against the cpu in double: split over many
// blocks (workspace) and one block per channel (none), aligned and unaligned, in every lane order
// and twice bitwise; C = 1 at 96 x 96 is the 1-channel head's case.
TYPED_TEST(BatchNorm, ChannelSumSplitAndWhole) {
  using B = TypeParam;
  std::uint32_t seed = 500;
  std::vector<BatchNormShape> all = split_shapes();
  all.push_back(shape(3, 17, 4, 5));
  all.push_back(shape(2, 1, 1, 3));
  for (const BatchNormShape& s : all) {
    SCOPED_TRACE(describe(s));
    const std::size_t c = channels(s);
    const std::vector<float> g = random_values(numel(s), -1.0, 1.0, seed += 10);
    std::vector<double> expected(c);
    kernels::cpu::channel_sum(to_double(g).data(), expected.data(), s);
    const auto ws_floats = static_cast<std::size_t>(workspace_size_on<B>(s));
    for (const bool split : {true, false}) {
      for (const std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
        SCOPED_TRACE(std::string(split ? "split" : "whole") + (offset ? ", unaligned" : ""));
        std::vector<float> shifted(offset);
        shifted.insert(shifted.end(), g.begin(), g.end());
        auto run = [&] {
          typename B::template Buffer<float> dg(shifted), dsum(nan_poisoned(c)),
              dws(nan_poisoned(ws_floats));
          float* ws = split ? dws.data() : nullptr;
          if constexpr (is_cpu<B>) kernels::cpu::channel_sum(dg.data() + offset, dsum.data(), s);
          if constexpr (is_sim<B>) {
            kernels::sim::channel_sum(dg.data() + offset, dsum.data(), s, ws, nullptr);
          }
#if defined(GLIA_HAVE_CUDA)
          if constexpr (std::is_same_v<B, Cuda>) {
            kernels::cuda::channel_sum(dg.data() + offset, dsum.data(), s, ws, nullptr);
          }
#endif
          return dsum.to_host();
        };
        const std::vector<float> got = run_in_every_lane_order<B>(run);
        EXPECT_TRUE(same_bits(B::in_lane_order(0, run), got)) << "a second run differs";
        EXPECT_TRUE(all_close(got, expected, Tolerance{1e-3, 1e-4}));
      }
    }
  }
}

#if defined(GLIA_HAVE_CUDA)
// The cuDNN fallback: training forward (y, saved statistics, running update), inference forward
// and the training backward, against the cpu reference in double.
TEST(CudaCudnnBatchNorm, MatchesReference) {
  std::string reason;
  if (!cuda_device_present(&reason)) GTEST_SKIP() << reason;
  cudnnHandle_t handle = nullptr;
  ASSERT_EQ(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
  std::uint32_t seed = 300;
  for (const BatchNormShape& s : shapes<Cuda>()) {
    SCOPED_TRACE(describe(s));
    const Inputs in(s, seed += 10);
    const std::size_t c = channels(s), e = numel(s);
    const std::vector<double> x = to_double(in.x), gy = to_double(in.gy), w = to_double(in.weight),
                              b = to_double(in.bias);
    std::vector<double> mean(c), invstd(c), rm = to_double(in.running_mean),
                                            rv = to_double(in.running_var), y(e), eval_invstd(c),
                                            eval_y(e), sum_dy(c), sum_dy_xhat(c), gx(e);
    kernels::cpu::batch_norm_stats(x.data(), mean.data(), invstd.data(), rm.data(), rv.data(), s);
    kernels::cpu::batch_norm_apply(x.data(), mean.data(), invstd.data(), w.data(), b.data(),
                                   y.data(), s);
    kernels::cpu::batch_norm_backward_reduce(x.data(), gy.data(), mean.data(), invstd.data(),
                                             sum_dy.data(), sum_dy_xhat.data(), s);
    kernels::cpu::batch_norm_backward_input(x.data(), gy.data(), mean.data(), invstd.data(),
                                            w.data(), sum_dy.data(), sum_dy_xhat.data(), gx.data(),
                                            s, true);
    // Inference with the updated running statistics.
    kernels::cpu::batch_norm_invstd(rv.data(), eval_invstd.data(), s);
    kernels::cpu::batch_norm_apply(x.data(), rm.data(), eval_invstd.data(), w.data(), b.data(),
                                   eval_y.data(), s);

    CudaBuffer<float> dx(in.x), dgy(in.gy), dw(in.weight), db(in.bias), drm(in.running_mean),
        drv(in.running_var), dy(nan_poisoned(e)), dmean(nan_poisoned(c)), dinvstd(nan_poisoned(c)),
        deval(nan_poisoned(e)), dgx(nan_poisoned(e)), dgw(nan_poisoned(c)), dgb(nan_poisoned(c));
    kernels::cudnn::batch_norm_forward_training(handle, s, dx.data(), dw.data(), db.data(),
                                                dy.data(), drm.data(), drv.data(), dmean.data(),
                                                dinvstd.data(), nullptr);
    kernels::cudnn::batch_norm_forward_inference(handle, s, dx.data(), dw.data(), db.data(),
                                                 drm.data(), drv.data(), deval.data(), nullptr);
    kernels::cudnn::batch_norm_backward(handle, s, dx.data(), dgy.data(), dw.data(), dmean.data(),
                                        dinvstd.data(), dgx.data(), dgw.data(), dgb.data(),
                                        nullptr);
    EXPECT_TRUE(all_close(dy.to_host(), y, kTol));
    EXPECT_TRUE(all_close(dmean.to_host(), mean, kTol));
    EXPECT_TRUE(all_close(dinvstd.to_host(), invstd, kTol));
    EXPECT_TRUE(all_close(drm.to_host(), rm, kTol));
    EXPECT_TRUE(all_close(drv.to_host(), rv, kTol));
    EXPECT_TRUE(all_close(deval.to_host(), eval_y, kTol));
    EXPECT_TRUE(all_close(dgx.to_host(), gx, kTol));
    const Tolerance sums{1e-3, 1e-4};
    EXPECT_TRUE(all_close(dgw.to_host(), sum_dy_xhat, sums));
    EXPECT_TRUE(all_close(dgb.to_host(), sum_dy, sums));
  }
  EXPECT_EQ(cudnnDestroy(handle), CUDNN_STATUS_SUCCESS);
}
#endif

}  // namespace
}  // namespace glia::testing
