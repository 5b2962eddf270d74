// 2-D convolution on every backend against the cpu reference in double: forward (with and without
// bias), backward data, and backward filter and bias (each unsplit and split over a workspace).
// Shapes cover batch 1 and 2, channels 1, 3, 17, 66, 70, 129 and 130 (and 64 where the emulator
// is not involved), odd and even and non-square planes that do not divide the 128-wide tiles of
// kernels/cuda/conv.cu, stride 1, 2 and 3, padding 0, 1 and 2, kernels 1 to 5, dilation 2 and 3
// and per-dimension parameters; the strided cases reach every kind of stride phase of the data
// gradient (several taps, one tap as in a ConvTranspose2d with kernel == stride, none); a 1-channel
// output over three 29x31 planes, and the bias pass alone on longer channels, split the bias
// gradient over many blocks. Outputs and workspaces start as NaN; sim runs under every lane order
// and must agree bitwise. The oneDNN passes (kernels/dnnl) and the cuDNN fallback meet the same
// reference on the same cases.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/conv_shape.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/conv.h"
#include "kernels/cudnn/settings.h"
#endif
#if defined(GLIA_HAVE_DNNL)
#include "kernels/dnnl/conv.h"
#endif
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::ConvShape;
using kernels::index_t;

// Float sums of up to ~1200 products of magnitude below 1 (the filter gradient's reduction over
// n * out_h * out_w) taken in different orders: a few 1e-5 apart near zero.
constexpr Tolerance kConvTolerance{1e-4, 1e-4};

struct Case {
  index_t n, c_in, h, w, c_out, kh, kw;
  index_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  bool large = false;  // 64 channels: skipped on the emulator to keep it fast
};

ConvShape shape_of(const Case& c) {
  return kernels::make_conv_shape(c.n, c.c_in, c.h, c.w, c.c_out, c.kh, c.kw, c.stride_h,
                                  c.stride_w, c.pad_h, c.pad_w, c.dil_h, c.dil_w);
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {1, 1, 5, 5, 1, 1, 1},                              // pointwise, one channel
      {2, 3, 8, 8, 17, 3, 3, 1, 1, 1, 1},                 // 3x3 same, even plane
      {2, 17, 7, 9, 3, 3, 3, 2, 2, 1, 1},                 // strided, odd plane
      {1, 3, 10, 7, 17, 2, 2, 2, 2},                      // U-Net style 2x2 stride 2
      {2, 3, 9, 11, 5, 5, 5, 1, 1, 1, 1},                 // 5x5
      {1, 3, 11, 10, 4, 3, 3, 1, 1, 1, 1, 2, 2},          // dilation 2
      {2, 3, 9, 8, 6, 3, 2, 2, 1, 1, 0, 1, 2},            // per-dimension parameters
      {2, 17, 9, 9, 17, 1, 1, 2, 2},                      // 1x1 stride 2
      {2, 3, 24, 24, 5, 3, 3, 1, 1, 1, 1},                // long filter reduction: split
      {2, 64, 12, 12, 64, 3, 3, 1, 1, 1, 1, 1, 1, true},  // tiles full along channels
      {1, 64, 13, 9, 70, 5, 5, 2, 2, 1, 1, 1, 1, true},   // channels over one tile
      // Small planes with 70 channels, so that sim too covers weight rows and gradient rows of
      // the second 64-channel tile.
      {1, 3, 5, 4, 70, 3, 3, 1, 1, 1, 1},   // c_out over one tile
      {1, 70, 4, 5, 66, 2, 2, 1, 1, 1, 1},  // c_in and c_out over one tile
      // Over the 128-wide tiles of kernels/cuda/conv.cu: channels, patch entries and pixels.
      {1, 3, 5, 4, 130, 3, 3, 1, 1, 1, 1},    // c_out over one tile
      {1, 130, 4, 3, 129, 2, 2, 1, 1, 1, 1},  // c_in, c_out and the patch over one tile
      // The 64-row tile (M = c_out, or c_in for the data gradient, at most 64) beside the
      // 128-row one: a U-Net 32-channel level on odd planes with a K tail (patch 45), a full
      // 64-row tile, and M on both sides of the switch (63 and 65).
      {2, 5, 13, 11, 32, 3, 3, 1, 1, 1, 1},  // c_out 32, c_in 5
      {1, 32, 9, 7, 47, 3, 3, 2, 2, 1, 1},   // c_in 32, c_out 47, strided
      {1, 64, 6, 5, 64, 3, 3, 1, 1, 1, 1},   // c_in and c_out 64: full 64-row tiles
      {1, 65, 5, 3, 63, 1, 1},               // c_in 65 (128-row tile), c_out 63 (64-row tile)
      // The stride phases of the data gradient: more than one tile of pixels per phase, phases
      // with different tap counts, phases that no tap reaches, strides with dilation.
      {2, 5, 23, 25, 6, 3, 3, 2, 2, 1, 1},        // 3x3 stride 2, odd planes
      {2, 4, 16, 18, 3, 2, 2, 2, 2},              // ConvTranspose2d k=2 s=2: one tap per phase
      {1, 1, 7, 6, 1, 3, 3, 2, 2, 1, 1},          // one channel in, one out, strided
      {1, 2, 10, 9, 2, 4, 4, 3, 3, 2, 1},         // stride 3, kernel 4: two or one taps
      {1, 2, 8, 7, 3, 2, 2, 3, 3},                // stride 3, kernel 2: phases without taps
      {1, 3, 11, 10, 4, 3, 3, 2, 2, 1, 1, 2, 2},  // stride 2, dilation 2: odd phases empty
      {1, 2, 9, 9, 3, 3, 3, 2, 2, 1, 1, 3, 3},    // stride 2, dilation 3: taps alternate
      // A 1-channel head whose bias gradient splits the channel over 2 blocks, in chunks that
      // straddle samples; it stays last (ConvShapeTest.SplitBiasGradientAsksForAWorkspace).
      // Longer channels, for the bias pass alone: Conv.BiasGradientOfLongChannels.
      {3, 1, 29, 31, 1, 3, 3, 1, 1, 1, 1},  // 3 x 899 values
  };
  return all;
}

// The reference passes in double on the same (float) inputs.
struct Reference {
  std::vector<double> y, y_bias, gx, gw, gb;
};

struct Inputs {
  std::vector<float> x, w, bias, gy;
};

Inputs make_inputs(const ConvShape& s, std::uint32_t seed) {
  return {random_values(static_cast<std::size_t>(s.x_numel()), -1.0, 1.0, seed),
          random_values(static_cast<std::size_t>(s.w_numel()), -1.0, 1.0, seed + 1),
          random_values(static_cast<std::size_t>(s.c_out), -1.0, 1.0, seed + 2),
          random_values(static_cast<std::size_t>(s.y_numel()), -1.0, 1.0, seed + 3)};
}

Reference reference(const ConvShape& s, const Inputs& in) {
  Reference r;
  const auto x = to_double(in.x), w = to_double(in.w), b = to_double(in.bias),
             gy = to_double(in.gy);
  r.y = nan_poisoned<double>(static_cast<std::size_t>(s.y_numel()));
  r.y_bias = r.y;
  r.gx = nan_poisoned<double>(static_cast<std::size_t>(s.x_numel()));
  r.gw = nan_poisoned<double>(static_cast<std::size_t>(s.w_numel()));
  r.gb = nan_poisoned<double>(static_cast<std::size_t>(s.c_out));
  kernels::cpu::conv2d_forward(s, x.data(), w.data(), static_cast<const double*>(nullptr),
                               r.y.data());
  kernels::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), r.y_bias.data());
  kernels::cpu::conv2d_backward_data(s, gy.data(), w.data(), r.gx.data());
  kernels::cpu::conv2d_backward_filter(s, x.data(), gy.data(), r.gw.data());
  kernels::cpu::conv2d_backward_bias(s, gy.data(), r.gb.data());
  return r;
}

// The launch wrappers of the sim or cuda build of kernels/cuda/conv.cu (one signature for both).
struct DeviceConv {
  index_t (*workspace_size)(const ConvShape&);
  void (*forward)(const ConvShape&, const float*, const float*, const float*, float*,
                  kernels::Stream);
  void (*backward_data)(const ConvShape&, const float*, const float*, float*, kernels::Stream);
  void (*backward_filter)(const ConvShape&, const float*, const float*, float*, float*,
                          kernels::Stream);
  index_t (*bias_workspace_size)(const ConvShape&);
  void (*backward_bias)(const ConvShape&, const float*, float*, float*, kernels::Stream);
};

template <class B>
DeviceConv device_conv() {
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    namespace k = kernels::cuda;
    return {&k::conv2d_backward_filter_workspace_size,
            &k::conv2d_forward,
            &k::conv2d_backward_data,
            &k::conv2d_backward_filter,
            &k::conv2d_backward_bias_workspace_size,
            &k::conv2d_backward_bias};
  }
#endif
  namespace k = kernels::sim;
  return {&k::conv2d_backward_filter_workspace_size,
          &k::conv2d_forward,
          &k::conv2d_backward_data,
          &k::conv2d_backward_filter,
          &k::conv2d_backward_bias_workspace_size,
          &k::conv2d_backward_bias};
}

// Every pass of backend B on its own memory; the filter and bias gradients without a workspace and
// with one (the bias gradient's second run only where the shape splits it).
template <class B>
auto run_passes(const ConvShape& s, const Inputs& in) {
  using Buffer = typename B::template Buffer<float>;
  Buffer x(in.x), w(in.w), bias(in.bias), gy(in.gy);
  Buffer y(nan_poisoned(in.gy.size())), y_bias(nan_poisoned(in.gy.size()));
  Buffer gx(nan_poisoned(in.x.size())), gw(nan_poisoned(in.w.size())),
      gw_split(nan_poisoned(in.w.size())), gb(nan_poisoned(in.bias.size())),
      gb_split(nan_poisoned(in.bias.size()));
  bool bias_split = false;
  if constexpr (is_cpu<B>) {
    namespace k = kernels::cpu;
    k::conv2d_forward(s, x.data(), w.data(), static_cast<const float*>(nullptr), y.data());
    k::conv2d_forward(s, x.data(), w.data(), bias.data(), y_bias.data());
    k::conv2d_backward_data(s, gy.data(), w.data(), gx.data());
    k::conv2d_backward_filter(s, x.data(), gy.data(), gw.data());
    k::conv2d_backward_filter(s, x.data(), gy.data(), gw_split.data());
    k::conv2d_backward_bias(s, gy.data(), gb.data());
  } else {
    const DeviceConv k = device_conv<B>();
    const index_t ws_size = k.workspace_size(s);
    Buffer workspace(nan_poisoned(static_cast<std::size_t>(ws_size)));
    k.forward(s, x.data(), w.data(), nullptr, y.data(), nullptr);
    k.forward(s, x.data(), w.data(), bias.data(), y_bias.data(), nullptr);
    k.backward_data(s, gy.data(), w.data(), gx.data(), nullptr);
    k.backward_filter(s, x.data(), gy.data(), gw.data(), nullptr, nullptr);
    k.backward_filter(s, x.data(), gy.data(), gw_split.data(),
                      ws_size > 0 ? workspace.data() : nullptr, nullptr);
    k.backward_bias(s, gy.data(), gb.data(), nullptr, nullptr);
    // Where the shape takes no split, the call with a workspace would repeat the one above.
    const index_t bias_ws_size = k.bias_workspace_size(s);
    if (bias_ws_size > 0) {
      Buffer bias_workspace(nan_poisoned(static_cast<std::size_t>(bias_ws_size)));
      k.backward_bias(s, gy.data(), gb_split.data(), bias_workspace.data(), nullptr);
      bias_split = true;
    }
  }
  return std::make_tuple(y.to_host(), y_bias.to_host(), gx.to_host(), gw.to_host(),
                         gw_split.to_host(), gb.to_host(), (bias_split ? gb_split : gb).to_host());
}

template <class B>
class Conv : public BackendTest<B> {};
TYPED_TEST_SUITE(Conv, Backends, BackendNames);

TYPED_TEST(Conv, AllPassesMatchReference) {
  std::uint32_t seed = 700;
  for (const Case& c : cases()) {
    if (c.large && is_sim<TypeParam>) continue;
    const ConvShape s = shape_of(c);
    SCOPED_TRACE(s.describe());
    const Inputs in = make_inputs(s, seed += 5);
    const Reference want = reference(s, in);
    const auto [y, y_bias, gx, gw, gw_split, gb, gb_split] =
        run_in_every_lane_order<TypeParam>([&] { return run_passes<TypeParam>(s, in); });
    EXPECT_TRUE(all_close(y, want.y, kConvTolerance)) << "forward";
    EXPECT_TRUE(all_close(y_bias, want.y_bias, kConvTolerance)) << "forward with bias";
    EXPECT_TRUE(all_close(gx, want.gx, kConvTolerance)) << "backward data";
    EXPECT_TRUE(all_close(gw, want.gw, kConvTolerance)) << "backward filter";
    EXPECT_TRUE(all_close(gw_split, want.gw, kConvTolerance)) << "backward filter, split";
    EXPECT_TRUE(all_close(gb, want.gb, kConvTolerance)) << "backward bias";
    EXPECT_TRUE(all_close(gb_split, want.gb, kConvTolerance)) << "backward bias, split";
  }
}

// The bias pass alone on channels long enough to split over many blocks (the other passes would
// make these shapes slow on sim): one channel of odd planes (scalar loads, 8 chunks) and of planes
// of whole float4s (float4 loads), two and three channels; chunks straddle samples. Without and
// with the workspace, against the cpu reference in double.
TYPED_TEST(Conv, BiasGradientOfLongChannels) {
  std::uint32_t seed = 900;
  for (const ConvShape& s : {kernels::make_conv_shape(4, 1, 61, 63, 1, 1, 1, 1, 1, 0, 0, 1, 1),
                             kernels::make_conv_shape(5, 1, 60, 68, 1, 1, 1, 1, 1, 0, 0, 1, 1),
                             kernels::make_conv_shape(3, 1, 53, 41, 2, 1, 1, 1, 1, 0, 0, 1, 1),
                             kernels::make_conv_shape(2, 1, 96, 96, 3, 1, 1, 1, 1, 0, 0, 1, 1)}) {
    SCOPED_TRACE(s.describe());
    const std::vector<float> gy =
        random_values(static_cast<std::size_t>(s.y_numel()), -1.0, 1.0, seed += 7);
    std::vector<double> want(static_cast<std::size_t>(s.c_out));
    kernels::cpu::conv2d_backward_bias(s, to_double(gy).data(), want.data());
    using Buffer = typename TypeParam::template Buffer<float>;
    const auto [gb, gb_split] = run_in_every_lane_order<TypeParam>([&] {
      Buffer dgy(gy), dgb(nan_poisoned(want.size())), dgb_split(nan_poisoned(want.size()));
      if constexpr (is_cpu<TypeParam>) {
        kernels::cpu::conv2d_backward_bias(s, dgy.data(), dgb.data());
        kernels::cpu::conv2d_backward_bias(s, dgy.data(), dgb_split.data());
      } else {
        const DeviceConv k = device_conv<TypeParam>();
        const index_t ws_size = k.bias_workspace_size(s);
        EXPECT_GT(ws_size, 0);
        Buffer workspace(nan_poisoned(static_cast<std::size_t>(ws_size)));
        k.backward_bias(s, dgy.data(), dgb.data(), nullptr, nullptr);
        k.backward_bias(s, dgy.data(), dgb_split.data(), workspace.data(), nullptr);
      }
      return std::make_tuple(dgb.to_host(), dgb_split.to_host());
    });
    EXPECT_TRUE(all_close(gb, want, kConvTolerance)) << "backward bias";
    EXPECT_TRUE(all_close(gb_split, want, kConvTolerance)) << "backward bias, split";
  }
}

// An empty batch has a bias gradient of zeros (sums of nothing), written whole on every backend.
TYPED_TEST(Conv, EmptyBatchBiasGradientIsZero) {
  const ConvShape s = kernels::make_conv_shape(0, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1);
  const auto got = run_in_every_lane_order<TypeParam>([&] {
    typename TypeParam::template Buffer<float> gy(std::vector<float>{}),
        gb(nan_poisoned(static_cast<std::size_t>(s.c_out)));
    if constexpr (is_cpu<TypeParam>) {
      kernels::cpu::conv2d_backward_bias(s, gy.data(), gb.data());
    } else {
      device_conv<TypeParam>().backward_bias(s, gy.data(), gb.data(), nullptr, nullptr);
    }
    return gb.to_host();
  });
  EXPECT_TRUE(
      all_close(got, std::vector<double>(static_cast<std::size_t>(s.c_out), 0.0), kConvTolerance));
}

TEST(ConvShapeTest, OutputSizeAndErrors) {
  const ConvShape s = kernels::make_conv_shape(2, 3, 9, 8, 6, 3, 2, 2, 1, 1, 0, 1, 2);
  EXPECT_EQ(s.out_h, 5);  // (9 + 2 - 3) / 2 + 1
  EXPECT_EQ(s.out_w, 6);  // (8 + 0 - 3) / 1 + 1: kernel 2 at dilation 2 spans 3
  EXPECT_EQ(s.patch(), 3 * 3 * 2);
  try {
    kernels::make_conv_shape(1, 3, 2, 2, 4, 5, 5, 1, 1, 0, 0, 1, 1);
    ADD_FAILURE() << "an empty output must throw";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("x [1, 3, 2, 2]"), std::string::npos) << what;
    EXPECT_NE(what.find("output is empty"), std::string::npos) << what;
  }
  EXPECT_THROW(kernels::make_conv_shape(1, 3, 8, 8, 4, 3, 3, 0, 1, 0, 0, 1, 1),
               std::invalid_argument);
  EXPECT_THROW(kernels::make_conv_shape(1, 3, 8, 8, 4, 3, 3, 1, 1, 0, 0, 1, 0),
               std::invalid_argument);
}

TEST(ConvShapeTest, SplitFilterGradientAsksForAWorkspace) {
  // The split case above must really take the split path on the device.
  EXPECT_GT(kernels::sim::conv2d_backward_filter_workspace_size(shape_of(cases()[8])), 0);
  EXPECT_EQ(kernels::sim::conv2d_backward_filter_workspace_size(shape_of(cases()[0])), 0);
}

// The 1-channel head at the end of cases() is long enough to split the bias gradient, so
// AllPassesMatchReference runs its split path; a 5x5 plane is not.
TEST(ConvShapeTest, SplitBiasGradientAsksForAWorkspace) {
  ASSERT_EQ(cases().back().c_out, 1);
  EXPECT_GT(kernels::sim::conv2d_backward_bias_workspace_size(shape_of(cases().back())), 0);
  EXPECT_EQ(kernels::sim::conv2d_backward_bias_workspace_size(shape_of(cases()[0])), 0);
}

#if defined(GLIA_HAVE_DNNL)
// The oneDNN passes of kernels/dnnl under the same cases, outputs poisoned, bias and no bias, and
// both gradients from the one call that shares gy's blocked copy.
TEST(CpuDnnlConv, MatchesReference) {
  std::uint32_t seed = 1100;
  for (const Case& c : cases()) {
    const ConvShape s = shape_of(c);
    SCOPED_TRACE(s.describe());
    const Inputs in = make_inputs(s, seed += 5);
    const Reference want = reference(s, in);
    std::vector<float> y = nan_poisoned(in.gy.size()), y_bias = y;
    std::vector<float> gx = nan_poisoned(in.x.size()), gw = nan_poisoned(in.w.size());
    kernels::dnnl::conv2d_forward(s, in.x.data(), in.w.data(), static_cast<const float*>(nullptr),
                                  y.data());
    kernels::dnnl::conv2d_forward(s, in.x.data(), in.w.data(), in.bias.data(), y_bias.data());
    kernels::dnnl::conv2d_backward_data(s, in.gy.data(), in.w.data(), gx.data());
    kernels::dnnl::conv2d_backward_filter(s, in.x.data(), in.gy.data(), gw.data());
    std::vector<float> gx_both = nan_poisoned(in.x.size()), gw_both = nan_poisoned(in.w.size());
    kernels::dnnl::conv2d_backward(s, in.x.data(), in.gy.data(), in.w.data(), gx_both.data(),
                                   gw_both.data());
    EXPECT_TRUE(all_close(gx_both, want.gx, kConvTolerance)) << "both gradients: data";
    EXPECT_TRUE(all_close(gw_both, want.gw, kConvTolerance)) << "both gradients: filter";
    EXPECT_TRUE(all_close(y, want.y, kConvTolerance)) << "forward";
    EXPECT_TRUE(all_close(y_bias, want.y_bias, kConvTolerance)) << "forward with bias";
    EXPECT_TRUE(all_close(gx, want.gx, kConvTolerance)) << "backward data";
    EXPECT_TRUE(all_close(gw, want.gw, kConvTolerance)) << "backward filter";
  }
}
#endif

#if defined(GLIA_HAVE_CUDA)
// The cuDNN fallback of kernels/cudnn under the same cases.
TEST(CudaCudnnConv, MatchesReference) {
  std::string reason;
  if (!cuda_device_present(&reason)) GTEST_SKIP() << reason;
  cudnnHandle_t handle = nullptr;
  ASSERT_EQ(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
  std::uint32_t seed = 900;
  for (const Case& c : cases()) {
    const ConvShape s = shape_of(c);
    SCOPED_TRACE(s.describe());
    const Inputs in = make_inputs(s, seed += 5);
    const Reference want = reference(s, in);
    const auto workspace_of = [](std::size_t bytes) {
      return CudaBuffer<float>(nan_poisoned(bytes / sizeof(float) + 1));
    };
    const std::size_t fwd_bytes = kernels::cudnn::conv2d_forward_workspace_size(handle, s);
    const std::size_t data_bytes = kernels::cudnn::conv2d_backward_data_workspace_size(handle, s);
    const std::size_t filter_bytes =
        kernels::cudnn::conv2d_backward_filter_workspace_size(handle, s);
    CudaBuffer<float> fwd_ws = workspace_of(fwd_bytes), data_ws = workspace_of(data_bytes),
                      filter_ws = workspace_of(filter_bytes);
    CudaBuffer<float> x(in.x), w(in.w), bias(in.bias), gy(in.gy);
    CudaBuffer<float> y_bias(nan_poisoned(in.gy.size())), gx(nan_poisoned(in.x.size())),
        gw(nan_poisoned(in.w.size())), gb(nan_poisoned(in.bias.size()));
    kernels::cudnn::conv2d_forward(handle, s, x.data(), w.data(), bias.data(), y_bias.data(),
                                   fwd_ws.data(), fwd_bytes, nullptr);
    kernels::cudnn::conv2d_backward_data(handle, s, gy.data(), w.data(), gx.data(), data_ws.data(),
                                         data_bytes, nullptr);
    kernels::cudnn::conv2d_backward_filter(handle, s, x.data(), gy.data(), gw.data(),
                                           filter_ws.data(), filter_bytes, nullptr);
    kernels::cudnn::conv2d_backward_bias(handle, s, gy.data(), gb.data(), nullptr);
    EXPECT_TRUE(all_close(y_bias.to_host(), want.y_bias, kConvTolerance)) << "forward with bias";
    EXPECT_TRUE(all_close(gx.to_host(), want.gx, kConvTolerance)) << "backward data";
    EXPECT_TRUE(all_close(gw.to_host(), want.gw, kConvTolerance)) << "backward filter";
    EXPECT_TRUE(all_close(gb.to_host(), want.gb, kConvTolerance)) << "backward bias";
  }
  EXPECT_EQ(cudnnDestroy(handle), CUDNN_STATUS_SUCCESS);
}
#endif

#if defined(GLIA_HAVE_CUDA)
// The cuDNN / cuBLAS settings (host code, no GPU needed): FP32, deterministic and heuristics by
// default, the math names, the cuBLAS math modes, and set/restore.
TEST(CudnnSettings, DefaultsNamesAndMathModes) {
  using kernels::cudnn::Math;
  using kernels::cudnn::Settings;
  const Settings defaults;
  EXPECT_EQ(defaults.math, Math::fp32);
  EXPECT_TRUE(defaults.deterministic);
  EXPECT_FALSE(defaults.find);
  EXPECT_EQ(kernels::cudnn::parse_math("fp32"), Math::fp32);
  EXPECT_EQ(kernels::cudnn::parse_math("tf32"), Math::tf32);
  EXPECT_THROW(kernels::cudnn::parse_math("fp16"), std::invalid_argument);
  EXPECT_STREQ(kernels::cudnn::math_name(Math::tf32), "tf32");
  EXPECT_EQ(kernels::cudnn::cublas_math(Math::fp32), CUBLAS_DEFAULT_MATH);
  EXPECT_EQ(kernels::cudnn::cublas_math(Math::tf32), CUBLAS_TF32_TENSOR_OP_MATH);
  const Settings saved = kernels::cudnn::settings();
  const Settings changed{Math::tf32, false, true};
  kernels::cudnn::set_settings(changed);
  EXPECT_EQ(kernels::cudnn::settings(), changed);
  kernels::cudnn::set_settings(saved);
  EXPECT_EQ(kernels::cudnn::settings(), saved);
}
#endif

}  // namespace
}  // namespace glia::testing
