// The loss, dropout and channel-copy kernels on every backend against the cpu reference in
// double: BCE with logits (with and without pos_weight), soft Dice (smooth 1 and 0, an empty
// target with an empty prediction), the fused Dice + BCE, per-sample sums in one segment and in
// several (long samples, through the workspace; also with the whole loss in each sample's tail),
// cross-entropy (class weights, label smoothing) and focal loss (gamma 0, 0.5, 2; alpha) over
// C = 2, 3, 17 and 45 (more classes than a warp's lanes; logits of +-300 too), forward and
// backward, and out-of-range class targets on the device; dropout masks bit-identical to cpu;
// concat/split copies over NCHW and [N, F] parts. Batch 1 and > 1, odd and even sizes, outputs
// NaN-poisoned; sim under every lane order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::ChannelSlice;
using kernels::ClassShape;
using kernels::index_t;
using kernels::SampleShape;

// kernels::{cpu,sim,cuda}::name(args...) for backend B, appending the stream on sim and cuda.
#if defined(GLIA_HAVE_CUDA)
#define GLIA_CALL_CUDA(B, name, ...) \
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::name(__VA_ARGS__, nullptr);
#else
#define GLIA_CALL_CUDA(B, name, ...)
#endif
#define GLIA_CALL(B, name, ...)                                                  \
  do {                                                                           \
    if constexpr (is_cpu<B>) kernels::cpu::name(__VA_ARGS__);                    \
    if constexpr (is_sim<B>) kernels::sim::name(__VA_ARGS__, kernels::Stream{}); \
    GLIA_CALL_CUDA(B, name, __VA_ARGS__)                                         \
  } while (0)

// The same for sim and cuda only (kernels with a device-only overload).
#define GLIA_CALL_DEVICE(B, name, ...)                                           \
  do {                                                                           \
    if constexpr (is_sim<B>) kernels::sim::name(__VA_ARGS__, kernels::Stream{}); \
    GLIA_CALL_CUDA(B, name, __VA_ARGS__)                                         \
  } while (0)

template <class B, class T>
using Buf = typename B::template Buffer<T>;

// Floats of scratch the segmented per-sample sums of `s` use on backend B (none on cpu).
template <class B>
std::size_t workspace_size(const SampleShape& s) {
  if constexpr (is_sim<B>)
    return static_cast<std::size_t>(kernels::sim::sample_loss_workspace_size(s));
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    return static_cast<std::size_t>(kernels::cuda::sample_loss_workspace_size(s));
  }
#endif
  (void)s;
  return 0;
}

std::string describe(const SampleShape& s) {
  return "[samples " + std::to_string(s.samples) + ", elements " + std::to_string(s.elements) + "]";
}
std::string describe(const ClassShape& s) {
  return "[rows " + std::to_string(s.rows) + ", classes " + std::to_string(s.classes) + "]";
}

const std::vector<SampleShape>& sample_shapes() {
  // The last three split into several segments per sample (with a workspace).
  static const std::vector<SampleShape> all = {{1, 1},   {1, 7},    {3, 64},    {2, 1000}, {5, 33},
                                               {4, 257}, {1, 8193}, {2, 40000}, {1, 70001}};
  return all;
}

std::vector<float> binary_targets(std::size_t n, std::uint32_t seed) {
  std::vector<float> t = random_values(n, 0.0, 1.0, seed);
  for (float& v : t) v = v < 0.4f ? 1.0f : 0.0f;
  return t;
}

// Logits and targets whose loss terms all come from the last kTail elements of each sample: the
// rest have logits of -30 and target 0 (BCE terms and sigmoids below 1e-13), so a kernel that
// drops any element of a sample's tail (a segment that stops short) is off by far more than the
// tolerance.
constexpr index_t kTail = 300;
std::pair<std::vector<float>, std::vector<float>> tail_heavy(const SampleShape& s,
                                                             std::uint32_t seed) {
  const std::size_t n = static_cast<std::size_t>(s.samples * s.elements);
  std::vector<float> x(n, -30.0f), t(n, 0.0f);
  const std::vector<float> tail_x = random_values(n, -4.0, 4.0, seed);
  const std::vector<float> tail_t = binary_targets(n, seed + 1);
  for (index_t sample = 0; sample < s.samples; ++sample) {
    for (index_t e = s.elements - kTail; e < s.elements; ++e) {
      const auto i = static_cast<std::size_t>(sample * s.elements + e);
      x[i] = tail_x[i];
      t[i] = tail_t[i];
    }
  }
  return {x, t};
}

template <class B>
void check_bce(const SampleShape& s, const std::vector<float>& x, const std::vector<float>& t,
               float pos_weight, bool with_workspace, std::uint32_t seed) {
  SCOPED_TRACE(describe(s) + " pos_weight " + std::to_string(pos_weight) +
               (with_workspace ? " with workspace" : ""));
  const std::size_t n = x.size(), ns = static_cast<std::size_t>(s.samples);
  const std::vector<float> gl = random_values(ns, -1.0, 1.0, seed);

  std::vector<double> loss_ref(ns), gx_ref(n);
  kernels::cpu::bce_with_logits(to_double(x).data(), to_double(t).data(), loss_ref.data(), s,
                                double{pos_weight});
  kernels::cpu::bce_with_logits_backward(to_double(x).data(), to_double(t).data(),
                                         to_double(gl).data(), gx_ref.data(), s,
                                         double{pos_weight});
  const auto [loss, gx] = run_in_every_lane_order<B>([&] {
    const std::size_t scratch = with_workspace ? workspace_size<B>(s) : 0;
    Buf<B, float> dx(x), dt(t), dgl(gl), dloss(nan_poisoned(ns)), dgx(nan_poisoned(n)),
        dw(nan_poisoned(scratch));
    if (scratch > 0) {
      GLIA_CALL_DEVICE(B, bce_with_logits, dx.data(), dt.data(), dloss.data(), s, pos_weight,
                       dw.data());
    } else {
      GLIA_CALL(B, bce_with_logits, dx.data(), dt.data(), dloss.data(), s, pos_weight);
    }
    GLIA_CALL(B, bce_with_logits_backward, dx.data(), dt.data(), dgl.data(), dgx.data(), s,
              pos_weight);
    return std::tuple{dloss.to_host(), dgx.to_host()};
  });
  EXPECT_TRUE(all_close(loss, loss_ref));
  EXPECT_TRUE(all_close(gx, gx_ref));
}

template <class B>
void check_bce(const SampleShape& s, float pos_weight, bool with_workspace, std::uint32_t seed) {
  const std::size_t n = static_cast<std::size_t>(s.samples * s.elements);
  const std::vector<float> x = random_values(n, -6.0, 6.0, seed);
  // Soft targets in one half, hard ones in the other.
  std::vector<float> t = random_values(n, 0.0, 1.0, seed + 1);
  const std::vector<float> hard = binary_targets(n, seed + 2);
  for (std::size_t i = 0; i < n / 2; ++i) t[i] = hard[i];
  check_bce<B>(s, x, t, pos_weight, with_workspace, seed + 3);
}

template <class B>
void check_dice(const SampleShape& s, const std::vector<float>& x, const std::vector<float>& t,
                float smooth, bool with_workspace, std::uint32_t seed) {
  SCOPED_TRACE(describe(s) + " smooth " + std::to_string(smooth) +
               (with_workspace ? " with workspace" : ""));
  const std::size_t n = x.size(), ns = static_cast<std::size_t>(s.samples);
  const std::vector<float> gl = random_values(ns, -1.0, 1.0, seed);
  std::vector<double> sums_ref(3 * ns), loss_ref(ns), gx_ref(n);
  kernels::cpu::dice(to_double(x).data(), to_double(t).data(), sums_ref.data(), loss_ref.data(), s,
                     double{smooth});
  kernels::cpu::dice_backward(to_double(x).data(), to_double(t).data(), sums_ref.data(),
                              to_double(gl).data(), gx_ref.data(), s, double{smooth});
  const auto [sums, loss, gx] = run_in_every_lane_order<B>([&] {
    const std::size_t scratch = with_workspace ? workspace_size<B>(s) : 0;
    Buf<B, float> dx(x), dt(t), dgl(gl), dsums(nan_poisoned(3 * ns)), dloss(nan_poisoned(ns)),
        dgx(nan_poisoned(n)), dw(nan_poisoned(scratch));
    if (scratch > 0) {
      GLIA_CALL_DEVICE(B, dice, dx.data(), dt.data(), dsums.data(), dloss.data(), s, smooth,
                       dw.data());
    } else {
      GLIA_CALL(B, dice, dx.data(), dt.data(), dsums.data(), dloss.data(), s, smooth);
    }
    GLIA_CALL(B, dice_backward, dx.data(), dt.data(), dsums.data(), dgl.data(), dgx.data(), s,
              smooth);
    return std::tuple{dsums.to_host(), dloss.to_host(), dgx.to_host()};
  });
  EXPECT_TRUE(all_close(sums, sums_ref));
  EXPECT_TRUE(all_close(loss, loss_ref));
  EXPECT_TRUE(all_close(gx, gx_ref));
}

// The fused Dice + BCE against the cpu reference in double; the device always sums through its
// workspace (one segment per short sample, several per long one).
template <class B>
void check_dice_bce(const SampleShape& s, const std::vector<float>& x, const std::vector<float>& t,
                    float smooth, float pos_weight, std::uint32_t seed) {
  SCOPED_TRACE(describe(s) + " smooth " + std::to_string(smooth) + " pos_weight " +
               std::to_string(pos_weight));
  const float dice_weight = 0.3f, bce_weight = 0.7f;
  const std::size_t n = x.size(), ns = static_cast<std::size_t>(s.samples);
  const std::vector<float> gl = random_values(ns, -1.0, 1.0, seed);
  std::vector<double> sums_ref(3 * ns), loss_ref(ns), gx_ref(n);
  kernels::cpu::dice_bce(to_double(x).data(), to_double(t).data(), sums_ref.data(), loss_ref.data(),
                         s, double{dice_weight}, double{bce_weight}, double{smooth},
                         double{pos_weight});
  kernels::cpu::dice_bce_backward(to_double(x).data(), to_double(t).data(), sums_ref.data(),
                                  to_double(gl).data(), gx_ref.data(), s, double{dice_weight},
                                  double{bce_weight}, double{smooth}, double{pos_weight});
  const auto [sums, loss, gx] = run_in_every_lane_order<B>([&] {
    std::size_t scratch = 0;
    if constexpr (is_sim<B>)
      scratch = static_cast<std::size_t>(kernels::sim::dice_bce_workspace_size(s));
#if defined(GLIA_HAVE_CUDA)
    if constexpr (std::is_same_v<B, Cuda>) {
      scratch = static_cast<std::size_t>(kernels::cuda::dice_bce_workspace_size(s));
    }
#endif
    Buf<B, float> dx(x), dt(t), dgl(gl), dsums(nan_poisoned(3 * ns)), dloss(nan_poisoned(ns)),
        dgx(nan_poisoned(n)), dw(nan_poisoned(scratch));
    if constexpr (is_cpu<B>) {
      kernels::cpu::dice_bce(dx.data(), dt.data(), dsums.data(), dloss.data(), s, dice_weight,
                             bce_weight, smooth, pos_weight);
    } else {
      GLIA_CALL_DEVICE(B, dice_bce, dx.data(), dt.data(), dsums.data(), dloss.data(), s,
                       dice_weight, bce_weight, smooth, pos_weight, dw.data());
    }
    GLIA_CALL(B, dice_bce_backward, dx.data(), dt.data(), dsums.data(), dgl.data(), dgx.data(), s,
              dice_weight, bce_weight, smooth, pos_weight);
    return std::tuple{dsums.to_host(), dloss.to_host(), dgx.to_host()};
  });
  EXPECT_TRUE(all_close(sums, sums_ref));
  EXPECT_TRUE(all_close(loss, loss_ref));
  EXPECT_TRUE(all_close(gx, gx_ref));
}

template <class B>
void check_dice_bce(const SampleShape& s, float smooth, float pos_weight, std::uint32_t seed) {
  const std::size_t n = static_cast<std::size_t>(s.samples * s.elements);
  check_dice_bce<B>(s, random_values(n, -4.0, 4.0, seed), binary_targets(n, seed + 1), smooth,
                    pos_weight, seed + 2);
}

const std::vector<ClassShape>& class_shapes() {
  static const std::vector<ClassShape> all = {{1, 2},   {6, 2},  {1, 3}, {9, 3},
                                              {33, 17}, {4, 17}, {5, 45}};
  return all;
}

std::vector<std::int32_t> random_targets(const ClassShape& s, std::uint32_t seed) {
  const std::vector<double> u = random_values<double>(static_cast<std::size_t>(s.rows), 0.0,
                                                      static_cast<double>(s.classes), seed);
  std::vector<std::int32_t> t;
  for (double v : u) t.push_back(static_cast<std::int32_t>(v));
  return t;
}

template <class B>
void check_cross_entropy(const ClassShape& s, bool weighted, float smoothing, std::uint32_t seed,
                         double logit_range = 5.0) {
  SCOPED_TRACE(describe(s) + (weighted ? " weighted" : "") + " smoothing " +
               std::to_string(smoothing) + " logits +-" + std::to_string(logit_range));
  const std::size_t n = static_cast<std::size_t>(s.rows * s.classes);
  const std::size_t rows = static_cast<std::size_t>(s.rows);
  const std::vector<float> x = random_values(n, -logit_range, logit_range, seed);
  const std::vector<std::int32_t> t = random_targets(s, seed + 1);
  const std::vector<float> w =
      random_values(static_cast<std::size_t>(s.classes), 0.2, 2.0, seed + 2);
  const std::vector<float> gl = random_values(rows, -1.0, 1.0, seed + 3);
  const std::vector<double> wd = to_double(w);

  std::vector<double> loss_ref(rows), lse_ref(rows), tw_ref(rows), gx_ref(n);
  kernels::cpu::cross_entropy(to_double(x).data(), t.data(), weighted ? wd.data() : nullptr,
                              loss_ref.data(), lse_ref.data(), tw_ref.data(), s, double{smoothing});
  kernels::cpu::cross_entropy_backward(to_double(x).data(), t.data(),
                                       weighted ? wd.data() : nullptr, lse_ref.data(),
                                       to_double(gl).data(), gx_ref.data(), s, double{smoothing});
  const auto [loss, lse, tw, gx] = run_in_every_lane_order<B>([&] {
    Buf<B, float> dx(x), dw(w), dgl(gl), dloss(nan_poisoned(rows)), dlse(nan_poisoned(rows)),
        dtw(nan_poisoned(rows)), dgx(nan_poisoned(n));
    Buf<B, std::int32_t> dt(t);
    const float* pw = weighted ? dw.data() : nullptr;
    GLIA_CALL(B, cross_entropy, dx.data(), dt.data(), pw, dloss.data(), dlse.data(), dtw.data(), s,
              smoothing);
    GLIA_CALL(B, cross_entropy_backward, dx.data(), dt.data(), pw, dlse.data(), dgl.data(),
              dgx.data(), s, smoothing);
    return std::tuple{dloss.to_host(), dlse.to_host(), dtw.to_host(), dgx.to_host()};
  });
  EXPECT_TRUE(all_close(loss, loss_ref));
  EXPECT_TRUE(all_close(lse, lse_ref));
  EXPECT_TRUE(all_close(tw, tw_ref));
  EXPECT_TRUE(all_close(gx, gx_ref));
}

template <class B>
void check_focal(const ClassShape& s, bool with_alpha, float gamma, std::uint32_t seed,
                 double logit_range = 5.0) {
  SCOPED_TRACE(describe(s) + (with_alpha ? " alpha" : "") + " gamma " + std::to_string(gamma) +
               " logits +-" + std::to_string(logit_range));
  const std::size_t n = static_cast<std::size_t>(s.rows * s.classes);
  const std::size_t rows = static_cast<std::size_t>(s.rows);
  const std::vector<float> x = random_values(n, -logit_range, logit_range, seed);
  const std::vector<std::int32_t> t = random_targets(s, seed + 1);
  const std::vector<float> a =
      random_values(static_cast<std::size_t>(s.classes), 0.1, 1.0, seed + 2);
  const std::vector<float> gl = random_values(rows, -1.0, 1.0, seed + 3);
  const std::vector<double> ad = to_double(a);

  std::vector<double> loss_ref(rows), lse_ref(rows), gx_ref(n);
  kernels::cpu::focal(to_double(x).data(), t.data(), with_alpha ? ad.data() : nullptr,
                      loss_ref.data(), lse_ref.data(), s, double{gamma});
  kernels::cpu::focal_backward(to_double(x).data(), t.data(), with_alpha ? ad.data() : nullptr,
                               lse_ref.data(), to_double(gl).data(), gx_ref.data(), s,
                               double{gamma});
  const auto [loss, lse, gx] = run_in_every_lane_order<B>([&] {
    Buf<B, float> dx(x), da(a), dgl(gl), dloss(nan_poisoned(rows)), dlse(nan_poisoned(rows)),
        dgx(nan_poisoned(n));
    Buf<B, std::int32_t> dt(t);
    const float* pa = with_alpha ? da.data() : nullptr;
    GLIA_CALL(B, focal, dx.data(), dt.data(), pa, dloss.data(), dlse.data(), s, gamma);
    GLIA_CALL(B, focal_backward, dx.data(), dt.data(), pa, dlse.data(), dgl.data(), dgx.data(), s,
              gamma);
    return std::tuple{dloss.to_host(), dlse.to_host(), dgx.to_host()};
  });
  EXPECT_TRUE(all_close(loss, loss_ref));
  EXPECT_TRUE(all_close(lse, lse_ref));
  EXPECT_TRUE(all_close(gx, gx_ref));
}

template <class B>
class Loss : public BackendTest<B> {};
TYPED_TEST_SUITE(Loss, Backends, BackendNames);

TYPED_TEST(Loss, BceWithLogits) {
  std::uint32_t seed = 10;
  for (const SampleShape& s : sample_shapes()) {
    for (bool with_workspace : {true, false}) {
      check_bce<TypeParam>(s, 1.0f, with_workspace, seed += 10);
      check_bce<TypeParam>(s, 2.5f, with_workspace, seed += 10);
    }
  }
}

TYPED_TEST(Loss, Dice) {
  std::uint32_t seed = 200;
  for (const SampleShape& s : sample_shapes()) {
    const std::size_t n = static_cast<std::size_t>(s.samples * s.elements);
    const std::vector<float> x = random_values(n, -4.0, 4.0, ++seed);
    const std::vector<float> t = binary_targets(n, ++seed);
    for (bool with_workspace : {true, false}) {
      check_dice<TypeParam>(s, x, t, 1.0f, with_workspace, ++seed);
      check_dice<TypeParam>(s, x, t, 0.0f, with_workspace, ++seed);
    }
  }
}

TYPED_TEST(Loss, DiceBceFused) {
  std::uint32_t seed = 250;
  for (const SampleShape& s : sample_shapes()) {
    check_dice_bce<TypeParam>(s, 1.0f, 1.0f, seed += 10);
    check_dice_bce<TypeParam>(s, 0.0f, 2.5f, seed += 10);
  }
}

// Every loss term in the last kTail elements of each sample, on samples long enough for several
// segments (the last one shorter than the others), with and without the workspace.
TYPED_TEST(Loss, SegmentTailsCarryTheLoss) {
  std::uint32_t seed = 280;
  for (const SampleShape& s : {SampleShape{1, 8193}, SampleShape{1, 70001}, SampleShape{3, 9000}}) {
    const auto [x, t] = tail_heavy(s, seed += 10);
    for (bool with_workspace : {true, false}) {
      check_bce<TypeParam>(s, x, t, 1.5f, with_workspace, ++seed);
      check_dice<TypeParam>(s, x, t, 1.0f, with_workspace, ++seed);
    }
    check_dice_bce<TypeParam>(s, x, t, 1.0f, 1.5f, ++seed);
  }
}

// Sample 0 has an empty target and (with logits of -inf) an exactly empty prediction: with
// smooth 0 that is 0 / 0, defined as a perfect match (loss 0, gradient 0), not NaN.
TYPED_TEST(Loss, DiceOfEmptyTargetAndPredictionIsZero) {
  for (float smooth : {0.0f, 1.0f}) {
    const SampleShape s{3, 37};
    const std::size_t n = 3 * 37;
    std::vector<float> x = random_values(n, -4.0, 4.0, 300);
    std::vector<float> t = binary_targets(n, 301);
    for (std::size_t e = 0; e < 37; ++e) {
      x[e] = -std::numeric_limits<float>::infinity();
      t[e] = 0.0f;
    }
    check_dice<TypeParam>(s, x, t, smooth, true, 302);
    std::vector<float> loss = nan_poisoned(3), sums = nan_poisoned(9);
    kernels::cpu::dice(x.data(), t.data(), sums.data(), loss.data(), s, smooth);
    EXPECT_EQ(loss[0], 0.0f);
  }
}

TYPED_TEST(Loss, CrossEntropy) {
  std::uint32_t seed = 400;
  for (const ClassShape& s : class_shapes()) {
    for (bool weighted : {false, true}) {
      for (float smoothing : {0.0f, 0.1f}) {
        check_cross_entropy<TypeParam>(s, weighted, smoothing, seed += 10);
      }
    }
  }
}

TYPED_TEST(Loss, Focal) {
  std::uint32_t seed = 600;
  for (const ClassShape& s : class_shapes()) {
    for (bool with_alpha : {false, true}) {
      for (float gamma : {0.0f, 0.5f, 2.0f})
        check_focal<TypeParam>(s, with_alpha, gamma, seed += 10);
    }
  }
}

// Logits of +-300, whose exp overflows float: only the max-subtracted log-sum-exp keeps the
// losses and gradients finite (a NaN or inf fails all_close).
TYPED_TEST(Loss, LargeLogitsStayFinite) {
  std::uint32_t seed = 700;
  for (const ClassShape& s : {ClassShape{6, 3}, ClassShape{5, 45}}) {
    check_cross_entropy<TypeParam>(s, true, 0.1f, seed += 10, 300.0);
    check_focal<TypeParam>(s, true, 2.0f, seed += 10, 300.0);
  }
}

// The device cannot throw: a target outside [0, classes) gives that row a NaN loss and gradient
// (the cpu reference throws instead, see tests/engine/loss_test.cpp).
TYPED_TEST(Loss, ClassTargetOutOfRangeIsNanOnTheDevice) {
  if constexpr (is_cpu<TypeParam>) GTEST_SKIP() << "the cpu kernels throw on a bad target";
  const ClassShape s{3, 5};
  const std::vector<float> x = random_values(15, -1.0, 1.0, 900), gl(3, 1.0f);
  const std::vector<std::int32_t> t = {1, 5, -1};
  Buf<TypeParam, float> dx(x), dgl(gl), dloss(nan_poisoned(3)), dlse(nan_poisoned(3)),
      dtw(nan_poisoned(3)), dgx(nan_poisoned(15)), dfocal(nan_poisoned(3));
  Buf<TypeParam, std::int32_t> dt(t);
  GLIA_CALL_DEVICE(TypeParam, cross_entropy, dx.data(), dt.data(), nullptr, dloss.data(),
                   dlse.data(), dtw.data(), s, 0.0f);
  GLIA_CALL_DEVICE(TypeParam, cross_entropy_backward, dx.data(), dt.data(), nullptr, dlse.data(),
                   dgl.data(), dgx.data(), s, 0.0f);
  GLIA_CALL_DEVICE(TypeParam, focal, dx.data(), dt.data(), nullptr, dfocal.data(), dlse.data(), s,
                   2.0f);
  const std::vector<float> loss = dloss.to_host(), gx = dgx.to_host(), focal = dfocal.to_host();
  EXPECT_FALSE(std::isnan(loss[0]));
  EXPECT_FALSE(std::isnan(focal[0]));
  for (int n : {1, 2}) {
    EXPECT_TRUE(std::isnan(loss[n])) << "row " << n;
    EXPECT_TRUE(std::isnan(focal[n])) << "row " << n;
    EXPECT_TRUE(std::isnan(gx[5 * n])) << "row " << n;
  }
}

// The mask is a pure function of (seed, offset, i): bit-identical to cpu on every backend.
TYPED_TEST(Loss, DropoutMatchesCpuBitForBit) {
  for (index_t n : {index_t{1}, index_t{7}, index_t{1000}, index_t{4099}}) {
    for (float p : {0.0f, 0.3f, 0.75f, 1.0f}) {
      SCOPED_TRACE("n " + std::to_string(n) + " p " + std::to_string(p));
      const std::size_t size = static_cast<std::size_t>(n);
      const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
      const std::vector<float> x = random_values(size, -2.0, 2.0, 700);
      const std::vector<float> gy = random_values(size, -2.0, 2.0, 701);
      std::vector<float> y_ref(size), gx_ref(size);
      std::vector<std::uint8_t> mask_ref(size);
      kernels::cpu::dropout(x.data(), y_ref.data(), mask_ref.data(), n, p, scale, 42, 5);
      kernels::cpu::dropout_backward(gy.data(), mask_ref.data(), gx_ref.data(), n, scale);
      const auto [y, mask, gx] = run_in_every_lane_order<TypeParam>([&] {
        Buf<TypeParam, float> dx(x), dy(nan_poisoned(size)), dgy(gy), dgx(nan_poisoned(size));
        Buf<TypeParam, std::uint8_t> dmask(std::vector<std::uint8_t>(size, 7));
        GLIA_CALL(TypeParam, dropout, dx.data(), dy.data(), dmask.data(), n, p, scale,
                  std::uint64_t{42}, std::uint64_t{5});
        GLIA_CALL(TypeParam, dropout_backward, dgy.data(), dmask.data(), dgx.data(), n, scale);
        return std::tuple{dy.to_host(), dmask.to_host(), dgx.to_host()};
      });
      EXPECT_TRUE(all_equal(mask, mask_ref));
      EXPECT_TRUE(all_equal(y, y_ref));
      EXPECT_TRUE(all_equal(gx, gx_ref));
    }
  }
}

// Parts of 1, 4 and 2 channels copied into a poisoned whole fill it exactly, and copying each
// range back out returns the parts. Planes of 64, 12 and 16 take the float4 path (the last two
// with more rows than sim's lowered grid limit), the others the scalar one.
TYPED_TEST(Loss, ChannelCopiesRoundTrip) {
  const std::vector<index_t> parts = {1, 4, 2};
  for (const auto& [outer, inner] :
       {std::pair<index_t, index_t>{1, 1}, {3, 1}, {2, 35}, {1, 64}, {4, 9}, {3, 12}, {5, 16}}) {
    SCOPED_TRACE("outer " + std::to_string(outer) + " inner " + std::to_string(inner));
    const index_t whole_channels = 7;
    const std::size_t whole_size = static_cast<std::size_t>(outer * whole_channels * inner);
    std::vector<std::vector<float>> values;
    std::vector<float> expected(whole_size);
    index_t offset = 0;
    for (index_t c : parts) {
      values.push_back(random_values(static_cast<std::size_t>(outer * c * inner), -1.0, 1.0,
                                     static_cast<std::uint32_t>(800 + offset)));
      const ChannelSlice s{outer, inner, c, whole_channels, offset};
      kernels::cpu::copy_into_channels(values.back().data(), expected.data(), s);
      offset += c;
    }
    const auto [whole, back] = run_in_every_lane_order<TypeParam>([&] {
      Buf<TypeParam, float> dwhole(nan_poisoned(whole_size));
      std::vector<float> round_trip;
      index_t at = 0;
      for (std::size_t k = 0; k < parts.size(); ++k) {
        Buf<TypeParam, float> dpart(values[k]);
        const ChannelSlice s{outer, inner, parts[k], whole_channels, at};
        GLIA_CALL(TypeParam, copy_into_channels, dpart.data(), dwhole.data(), s);
        at += parts[k];
      }
      at = 0;
      for (std::size_t k = 0; k < parts.size(); ++k) {
        Buf<TypeParam, float> dpart(nan_poisoned(values[k].size()));
        const ChannelSlice s{outer, inner, parts[k], whole_channels, at};
        GLIA_CALL(TypeParam, copy_from_channels, dwhole.data(), dpart.data(), s);
        const std::vector<float> part = dpart.to_host();
        round_trip.insert(round_trip.end(), part.begin(), part.end());
        at += parts[k];
      }
      return std::tuple{dwhole.to_host(), round_trip};
    });
    EXPECT_TRUE(all_equal(whole, expected));
    std::vector<float> all_parts;
    for (const auto& v : values) all_parts.insert(all_parts.end(), v.begin(), v.end());
    EXPECT_TRUE(all_equal(back, all_parts));
  }
}

}  // namespace
}  // namespace glia::testing
