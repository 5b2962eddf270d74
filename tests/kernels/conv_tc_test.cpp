// The tensor-core convolution passes (kernels/cuda/conv_tc.cu) per operand format (tf32, bf16,
// f16) against the cpu reference passes in double on the operands rounded to the format: the
// forward with and without bias, the data gradient and the filter gradient. Batch 1 and 2,
// channels 1 to 70 (over one 64-wide tile of c_in or c_out), pixel counts that do not divide the
// 64-wide tiles, reductions that do not divide the 16-deep slices, stride 1 to 3, padding,
// dilation and per-dimension parameters; empty reductions. Outputs start as NaN; sim runs under
// every lane order and must agree bitwise (tests/kernels/backends.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/conv_shape.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#include "kernels/rounding.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::ConvShape;
using kernels::index_t;
using kernels::TensorFormat;

struct Case {
  index_t n, c_in, h, w, c_out, kh, kw;
  index_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {1, 1, 5, 5, 1, 1, 1},                      // pointwise, one channel
      {2, 3, 8, 8, 17, 3, 3, 1, 1, 1, 1},         // 3x3 same: 128 pixels, two full tiles
      {2, 17, 7, 9, 3, 3, 3, 2, 2, 1, 1},         // strided, odd plane, patch 153
      {1, 3, 10, 7, 17, 2, 2, 2, 2},              // U-Net style 2x2 stride 2
      {2, 3, 9, 11, 5, 5, 5, 1, 1, 2, 2},         // 5x5, padding 2
      {1, 3, 11, 10, 4, 3, 3, 1, 1, 1, 1, 2, 2},  // dilation 2
      {2, 3, 9, 8, 6, 3, 2, 2, 1, 1, 0, 1, 2},    // per-dimension parameters
      {1, 2, 10, 9, 2, 4, 4, 3, 3, 2, 1},         // stride 3, kernel 4
      {1, 3, 5, 4, 70, 3, 3, 1, 1, 1, 1},         // c_out over one tile
      {1, 70, 4, 5, 66, 2, 2, 1, 1, 1, 1},        // c_in and c_out over one tile
  };
  return all;
}

std::vector<double> rounded(TensorFormat f, const std::vector<float>& x, bool absolute) {
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double r = kernels::round_to_format(x[i], f);
    out[i] = absolute ? std::fabs(r) : r;
  }
  return out;
}

// As in gemm_tc_test.cpp: products of rounded operands are exact in FP32, so the error is the
// FP32 accumulation of `depth` products in any order (first order: depth u sum |a b|) and the
// bias addition; u = 2^-23 allows truncating tensor-core adders.
void expect_within_bound(const std::vector<float>& got, const std::vector<double>& expected,
                         const std::vector<double>& magnitude, index_t depth) {
  ASSERT_EQ(got.size(), expected.size());
  const double scale = (static_cast<double>(depth) + 2.0) * std::ldexp(1.0, -23);
  double worst = 0.0;
  std::size_t worst_at = 0, failures = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double error = std::fabs(got[i] - expected[i]);
    const double bound = scale * magnitude[i] + 1e-30;
    if (!(error <= bound)) ++failures;  // NaN (an unwritten output) fails too
    if (!(error / bound <= worst)) {
      worst = error / bound;
      worst_at = i;
    }
  }
  EXPECT_EQ(failures, 0u) << "largest error / bound " << worst << " at " << worst_at << ": got "
                          << got[worst_at] << ", reference " << expected[worst_at] << ", bound "
                          << scale * magnitude[worst_at];
}

template <class B>
void check_conv_tc(TensorFormat format, const Case& c, bool with_bias, std::uint32_t seed) {
  const ConvShape s =
      kernels::make_conv_shape(c.n, c.c_in, c.h, c.w, c.c_out, c.kh, c.kw, c.stride_h, c.stride_w,
                               c.pad_h, c.pad_w, c.dil_h, c.dil_w);
  SCOPED_TRACE(std::string(kernels::format_name(format)) + ": " + s.describe() +
               (with_bias ? ", bias" : ""));
  const auto count = [](index_t v) { return static_cast<std::size_t>(v); };
  const std::vector<float> x = random_values(count(s.x_numel()), -1.0, 1.0, seed);
  const std::vector<float> w = random_values(count(s.w_numel()), -1.0, 1.0, seed + 1);
  const std::vector<float> bias = random_values(count(s.c_out), -1.0, 1.0, seed + 2);

  // The reference on the rounded operands, and sum |w x| + |bias| for the bound.
  std::vector<double> expected(count(s.y_numel())), magnitude(count(s.y_numel()));
  const std::vector<double> bias_d = to_double(bias);
  std::vector<double> bias_abs(bias_d.size());
  for (std::size_t i = 0; i < bias_d.size(); ++i) bias_abs[i] = std::fabs(bias_d[i]);
  kernels::cpu::conv2d_forward(s, rounded(format, x, false).data(),
                               rounded(format, w, false).data(),
                               with_bias ? bias_d.data() : nullptr, expected.data());
  kernels::cpu::conv2d_forward(s, rounded(format, x, true).data(), rounded(format, w, true).data(),
                               with_bias ? bias_abs.data() : nullptr, magnitude.data());

  const std::vector<float> got = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(x), dw(w), db(bias), dy(nan_poisoned(count(s.y_numel())));
    const float* b = with_bias ? db.data() : nullptr;
    if constexpr (is_sim<B>) {
      kernels::sim::conv2d_forward_tc(s, format, dx.data(), dw.data(), b, dy.data(), nullptr);
    }
#if defined(GLIA_HAVE_CUDA)
    if constexpr (std::is_same_v<B, Cuda>) {
      kernels::cuda::conv2d_forward_tc(s, format, dx.data(), dw.data(), b, dy.data(), nullptr);
    }
#endif
    return dy.to_host();
  });

  expect_within_bound(got, expected, magnitude, s.patch());
}

// The data and filter gradients for a random gy.
template <class B>
void check_backward_tc(TensorFormat format, const Case& c, std::uint32_t seed) {
  const ConvShape s =
      kernels::make_conv_shape(c.n, c.c_in, c.h, c.w, c.c_out, c.kh, c.kw, c.stride_h, c.stride_w,
                               c.pad_h, c.pad_w, c.dil_h, c.dil_w);
  SCOPED_TRACE(std::string(kernels::format_name(format)) + ": backward, " + s.describe());
  const auto count = [](index_t v) { return static_cast<std::size_t>(v); };
  const std::vector<float> x = random_values(count(s.x_numel()), -1.0, 1.0, seed);
  const std::vector<float> w = random_values(count(s.w_numel()), -1.0, 1.0, seed + 1);
  const std::vector<float> gy = random_values(count(s.y_numel()), -1.0, 1.0, seed + 2);

  std::vector<double> gx(count(s.x_numel())), gx_magnitude(gx.size());
  std::vector<double> gw(count(s.w_numel())), gw_magnitude(gw.size());
  for (const bool absolute : {false, true}) {
    const std::vector<double> xr = rounded(format, x, absolute), wr = rounded(format, w, absolute),
                              gyr = rounded(format, gy, absolute);
    kernels::cpu::conv2d_backward_data(s, gyr.data(), wr.data(),
                                       (absolute ? gx_magnitude : gx).data());
    kernels::cpu::conv2d_backward_filter(s, xr.data(), gyr.data(),
                                         (absolute ? gw_magnitude : gw).data());
  }

  const std::vector<float> got_gx = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dgy(gy), dw(w), dgx(nan_poisoned(count(s.x_numel())));
    if constexpr (is_sim<B>) {
      kernels::sim::conv2d_backward_data_tc(s, format, dgy.data(), dw.data(), dgx.data(), nullptr);
    }
#if defined(GLIA_HAVE_CUDA)
    if constexpr (std::is_same_v<B, Cuda>) {
      kernels::cuda::conv2d_backward_data_tc(s, format, dgy.data(), dw.data(), dgx.data(), nullptr);
    }
#endif
    return dgx.to_host();
  });
  {
    SCOPED_TRACE("data gradient");
    expect_within_bound(got_gx, gx, gx_magnitude, s.c_out * s.kh * s.kw);
  }

  const std::vector<float> got_gw = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(x), dgy(gy), dgw(nan_poisoned(count(s.w_numel())));
    if constexpr (is_sim<B>) {
      kernels::sim::conv2d_backward_filter_tc(s, format, dx.data(), dgy.data(), dgw.data(),
                                              nullptr);
    }
#if defined(GLIA_HAVE_CUDA)
    if constexpr (std::is_same_v<B, Cuda>) {
      kernels::cuda::conv2d_backward_filter_tc(s, format, dx.data(), dgy.data(), dgw.data(),
                                               nullptr);
    }
#endif
    return dgw.to_host();
  });
  {
    SCOPED_TRACE("filter gradient");
    expect_within_bound(got_gw, gw, gw_magnitude, s.n * s.out_plane());
  }
}

template <class B>
void check_all_backward(TensorFormat format, std::uint32_t seed) {
  for (const Case& c : cases()) check_backward_tc<B>(format, c, seed += 3);
}

template <class B>
void check_all(TensorFormat format, std::uint32_t seed) {
  for (const Case& c : cases()) {
    check_conv_tc<B>(format, c, true, seed += 3);
    check_conv_tc<B>(format, c, false, seed += 3);
  }
}

#if defined(GLIA_HAVE_CUDA)
using TensorCoreBackends = ::testing::Types<Sim, Cuda>;
#else
using TensorCoreBackends = ::testing::Types<Sim>;
#endif

template <class B>
class ConvTc : public BackendTest<B> {};
TYPED_TEST_SUITE(ConvTc, TensorCoreBackends, BackendNames);

TYPED_TEST(ConvTc, ForwardTf32MatchesTheReferenceOnRoundedOperands) {
  check_all<TypeParam>(TensorFormat::tf32, 100);
}

TYPED_TEST(ConvTc, ForwardBf16MatchesTheReferenceOnRoundedOperands) {
  check_all<TypeParam>(TensorFormat::bf16, 200);
}

TYPED_TEST(ConvTc, ForwardF16MatchesTheReferenceOnRoundedOperands) {
  check_all<TypeParam>(TensorFormat::f16, 300);
}

TYPED_TEST(ConvTc, BackwardTf32MatchesTheReferenceOnRoundedOperands) {
  check_all_backward<TypeParam>(TensorFormat::tf32, 400);
}

TYPED_TEST(ConvTc, BackwardBf16MatchesTheReferenceOnRoundedOperands) {
  check_all_backward<TypeParam>(TensorFormat::bf16, 500);
}

TYPED_TEST(ConvTc, BackwardF16MatchesTheReferenceOnRoundedOperands) {
  check_all_backward<TypeParam>(TensorFormat::f16, 600);
}

// An empty reduction writes zeros: the filter gradient of an empty batch, the data gradient of a
// convolution without output channels.
TYPED_TEST(ConvTc, EmptyReductionsWriteZeros) {
  for (const TensorFormat f : {TensorFormat::tf32, TensorFormat::bf16, TensorFormat::f16}) {
    check_backward_tc<TypeParam>(f, {0, 3, 5, 5, 4, 3, 3}, 700);
    check_backward_tc<TypeParam>(f, {2, 3, 5, 5, 0, 3, 3}, 710);
  }
}

}  // namespace
}  // namespace glia::testing
