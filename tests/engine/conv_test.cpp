// conv2d and conv_transpose2d (engine/ops/conv.cpp): the cpu f64 forward against a direct
// seven-loop definition; cpu backward against central finite differences in f64 w.r.t. x, w and
// bias; the sim and cuda forward and backward against cpu in f32 (Sim/..., Cuda/...; the latter
// skipped without a GPU), also on 1-channel outputs whose bias gradient splits (...SplitBias/...);
// the oneDNN and auto policies on cpu against the reference kernels, forward and backward
// (CpuDnnlConvPolicy); the U-Net's 2x2 stride-2 transposed convolution against its definition; and
// the errors of mismatched channels and bad shapes or parameters.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "engine/ops.h"
#include "engine/policy.h"
#include "tests/common/gradcheck.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using glia::testing::all_close;
using glia::testing::host_doubles;
using glia::testing::random_tensor;
using glia::testing::Tolerance;
using V = const std::vector<Tensor>&;

// Float sums of up to a few hundred products of values below 1 in magnitude.
constexpr Tolerance kConvTol{1e-4, 1e-4};

struct ConvCase {
  std::string name;
  bool transposed;
  Shape x, w;
  bool bias;
  Conv2dParams p;
};

void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << c.name;
}

Conv2dParams params(index_t stride, index_t pad, index_t dil = 1, index_t out_pad = 0) {
  Conv2dParams p;
  p.stride = {stride, stride};
  p.padding = {pad, pad};
  p.dilation = {dil, dil};
  p.output_padding = {out_pad, out_pad};
  return p;
}

std::vector<ConvCase> conv_cases() {
  Conv2dParams mixed;
  mixed.stride = {2, 1};
  mixed.padding = {1, 0};
  mixed.dilation = {1, 2};
  Conv2dParams transposed_mixed;
  transposed_mixed.stride = {2, 3};
  transposed_mixed.padding = {0, 1};
  transposed_mixed.output_padding = {1, 2};
  return {
      {"Conv3x3Same", false, {2, 3, 6, 5}, {4, 3, 3, 3}, true, params(1, 1)},
      {"Conv1x1NoBias", false, {1, 3, 4, 4}, {2, 3, 1, 1}, false, params(1, 0)},
      {"Conv2x2Stride2", false, {2, 1, 6, 7}, {3, 1, 2, 2}, true, params(2, 0)},
      {"Conv5x5Stride2", false, {1, 2, 9, 8}, {3, 2, 5, 5}, true, params(2, 1)},
      {"Conv3x3Dilated", false, {1, 2, 7, 7}, {2, 2, 3, 3}, true, params(1, 1, 2)},
      {"ConvMixedParams", false, {2, 2, 7, 6}, {3, 2, 3, 2}, true, mixed},
      {"Transposed2x2Stride2", true, {2, 3, 3, 4}, {3, 2, 2, 2}, true, params(2, 0)},
      {"Transposed3x3Stride2", true, {1, 2, 4, 3}, {2, 3, 3, 3}, true, params(2, 1, 1, 1)},
      {"Transposed3x3Dilated", true, {1, 2, 4, 4}, {2, 2, 3, 3}, false, params(1, 1, 2)},
      {"TransposedMixedParams", true, {1, 2, 3, 3}, {2, 2, 3, 3}, true, transposed_mixed},
  };
}

std::vector<Tensor> make_inputs(const ConvCase& c, DType dtype, Device device, bool grad) {
  const index_t out_channels = c.transposed ? c.w[1] : c.w[0];
  std::vector<Tensor> in = {
      random_tensor(c.x, -1, 1, 11, dtype, device), random_tensor(c.w, -1, 1, 12, dtype, device),
      c.bias ? random_tensor({out_channels}, -1, 1, 13, dtype, device) : Tensor()};
  if (grad) {
    for (Tensor& t : in) {
      if (t.defined()) t.set_requires_grad(true);
    }
  }
  return in;
}

Tensor run_conv(const ConvCase& c, const std::vector<Tensor>& in) {
  const Tensor bias = in.size() > 2 ? in[2] : Tensor();
  return c.transposed ? conv_transpose2d(in[0], in[1], bias, c.p) : conv2d(in[0], in[1], bias, c.p);
}

// y[n, co, oh, ow] = b[co] + sum w[co, c, i, j] x[n, c, oh s - p + i d, ow s - p + j d], as loops.
std::vector<double> direct_conv2d(const std::vector<double>& x, const Shape& xs,
                                  const std::vector<double>& w, const Shape& ws,
                                  const std::vector<double>& b, const Conv2dParams& p, index_t oh_n,
                                  index_t ow_n) {
  std::vector<double> y(static_cast<std::size_t>(xs[0] * ws[0] * oh_n * ow_n));
  for (index_t n = 0; n < xs[0]; ++n) {
    for (index_t co = 0; co < ws[0]; ++co) {
      for (index_t oh = 0; oh < oh_n; ++oh) {
        for (index_t ow = 0; ow < ow_n; ++ow) {
          double acc = b.empty() ? 0.0 : b[static_cast<std::size_t>(co)];
          for (index_t c = 0; c < xs[1]; ++c) {
            for (index_t i = 0; i < ws[2]; ++i) {
              for (index_t j = 0; j < ws[3]; ++j) {
                const index_t h = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
                const index_t wi = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
                if (h < 0 || h >= xs[2] || wi < 0 || wi >= xs[3]) continue;
                acc += w[static_cast<std::size_t>(((co * ws[1] + c) * ws[2] + i) * ws[3] + j)] *
                       x[static_cast<std::size_t>(((n * xs[1] + c) * xs[2] + h) * xs[3] + wi)];
              }
            }
          }
          y[static_cast<std::size_t>(((n * ws[0] + co) * oh_n + oh) * ow_n + ow)] = acc;
        }
      }
    }
  }
  return y;
}

// --- cpu forward against the definition ----------------------------------------------------------

TEST(ConvTest, Conv2dMatchesDirectDefinition) {
  for (const ConvCase& c : conv_cases()) {
    if (c.transposed) continue;
    SCOPED_TRACE(c.name);
    const std::vector<Tensor> in = make_inputs(c, DType::f64, Device::cpu(), false);
    const Tensor y = run_conv(c, in);
    const std::vector<double> want = direct_conv2d(
        host_doubles(in[0]), c.x, host_doubles(in[1]), c.w,
        c.bias ? host_doubles(in[2]) : std::vector<double>{}, c.p, y.size(2), y.size(3));
    EXPECT_TRUE(all_close(host_doubles(y), want));
  }
}

TEST(ConvTest, UNetUpsamplingMatchesDefinition) {
  // ConvTranspose2d(8, 4, kernel 2, stride 2): each input pixel paints its own 2x2 output block,
  // y[n, co, 2i + a, 2j + b] = bias[co] + sum_c x[n, c, i, j] w[c, co, a, b].
  const Tensor x = random_tensor({2, 8, 5, 3}, -1, 1, 21, DType::f64);
  const Tensor w = random_tensor({8, 4, 2, 2}, -1, 1, 22, DType::f64);
  const Tensor b = random_tensor({4}, -1, 1, 23, DType::f64);
  const Tensor y = conv_transpose2d(x, w, b, params(2, 0));
  ASSERT_EQ(y.shape(), (Shape{2, 4, 10, 6}));
  const auto xv = host_doubles(x), wv = host_doubles(w), bv = host_doubles(b);
  std::vector<double> want(static_cast<std::size_t>(y.numel()));
  for (index_t n = 0; n < 2; ++n) {
    for (index_t co = 0; co < 4; ++co) {
      for (index_t h = 0; h < 10; ++h) {
        for (index_t wi = 0; wi < 6; ++wi) {
          double acc = bv[static_cast<std::size_t>(co)];
          for (index_t c = 0; c < 8; ++c) {
            acc += xv[static_cast<std::size_t>(((n * 8 + c) * 5 + h / 2) * 3 + wi / 2)] *
                   wv[static_cast<std::size_t>(((c * 4 + co) * 2 + h % 2) * 2 + wi % 2)];
          }
          want[static_cast<std::size_t>(((n * 4 + co) * 10 + h) * 6 + wi)] = acc;
        }
      }
    }
  }
  EXPECT_TRUE(all_close(host_doubles(y), want));
}

// --- cpu backward against finite differences (f64) -------------------------------------------

class ConvGradcheck : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvGradcheck, MatchesFiniteDifferences) {
  const ConvCase& c = GetParam();
  std::vector<Tensor> in = make_inputs(c, DType::f64, Device::cpu(), true);
  if (!c.bias) in.pop_back();  // gradcheck wants defined inputs
  const GradcheckResult r = gradcheck([&](V xs) { return run_conv(c, xs); }, in);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_GT(r.checked, 0u) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Conv, ConvGradcheck, ::testing::ValuesIn(conv_cases()),
                         [](const auto& info) { return info.param.name; });

// --- sim and cuda against cpu (f32) -----------------------------------------------------------

class ConvVsCpu : public ::testing::TestWithParam<std::tuple<Device, ConvCase>> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(device()); }
  Device device() const { return std::get<0>(GetParam()); }
  const ConvCase& conv() const { return std::get<1>(GetParam()); }
};

TEST_P(ConvVsCpu, ForwardMatchesCpu) {
  const std::vector<Tensor> on_cpu = make_inputs(conv(), DType::f32, Device::cpu(), false);
  std::vector<Tensor> on_device;
  for (const Tensor& t : on_cpu) on_device.push_back(t.defined() ? t.to(device()) : Tensor());
  const Tensor want = run_conv(conv(), on_cpu);
  const Tensor got = run_conv(conv(), on_device);
  ASSERT_EQ(got.device(), device());
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_TRUE(all_close(host_doubles(got), host_doubles(want), kConvTol));
}

TEST_P(ConvVsCpu, BackwardMatchesCpu) {
  // The gradients of sum(f(x) * r) for fixed random weights r.
  auto grads = [&](Device d) {
    const std::vector<Tensor> in = make_inputs(conv(), DType::f32, d, true);
    const Tensor y = run_conv(conv(), in);
    const Tensor r = random_tensor(y.shape(), -1.0, 1.0, 99, DType::f32, d);
    sum(y * r).backward();
    std::vector<std::vector<double>> out;
    for (const Tensor& t : in) {
      if (!t.defined()) continue;
      EXPECT_TRUE(t.grad().defined());
      if (t.grad().defined()) out.push_back(host_doubles(t.grad()));
    }
    return out;
  };
  const auto want = grads(Device::cpu());
  const auto got = grads(device());
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(all_close(got[i], want[i], kConvTol)) << "gradient of input " << i;
  }
}

std::string vs_cpu_name(const ::testing::TestParamInfo<std::tuple<Device, ConvCase>>& info) {
  return std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Sim, ConvVsCpu,
                         ::testing::Combine(::testing::Values(Device::sim()),
                                            ::testing::ValuesIn(conv_cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(Cuda, ConvVsCpu,
                         ::testing::Combine(::testing::Values(Device::cuda()),
                                            ::testing::ValuesIn(conv_cases())),
                         vs_cpu_name);

// 1-channel outputs of two odd 45x47 planes, long enough that sim and cuda split the bias gradient
// over several blocks with a workspace, in chunks that straddle the samples: a 1x1 head (with the
// convolution's shape) and a transposed convolution (without). Not in conv_cases(): a
// finite-difference check over these inputs would be slow.
std::vector<ConvCase> split_bias_cases() {
  return {
      {"Conv1x1HeadSplitBias", false, {2, 3, 45, 47}, {1, 3, 1, 1}, true, params(1, 0)},
      {"Transposed3x3SplitBias", true, {2, 2, 23, 24}, {2, 1, 3, 3}, true, params(2, 1)},
  };
}

INSTANTIATE_TEST_SUITE_P(SimSplitBias, ConvVsCpu,
                         ::testing::Combine(::testing::Values(Device::sim()),
                                            ::testing::ValuesIn(split_bias_cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(CudaSplitBias, ConvVsCpu,
                         ::testing::Combine(::testing::Values(Device::cuda()),
                                            ::testing::ValuesIn(split_bias_cases())),
                         vs_cpu_name);

#if defined(GLIA_HAVE_DNNL)
// On cpu, oneDNN and auto_select give what the reference kernels give, forward and every
// gradient, with the policy set for the family (so the backward passes follow it too).
TEST(CpuDnnlConvPolicy, DnnlAndAutoMatchNative) {
  ScopedKernelPolicy restore;
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(c.name);
    auto run = [&](KernelPolicy policy) {
      set_kernel_policy(OpFamily::conv, PolicyDevice::cpu, policy);
      const std::vector<Tensor> in = make_inputs(c, DType::f32, Device::cpu(), true);
      const Tensor y = run_conv(c, in);
      const Tensor r = random_tensor(y.shape(), -1.0, 1.0, 99, DType::f32, Device::cpu());
      sum(y * r).backward();
      std::vector<std::vector<double>> out{host_doubles(y)};
      for (const Tensor& t : in) {
        if (t.defined()) out.push_back(host_doubles(t.grad()));
      }
      return out;
    };
    const auto native = run(KernelPolicy::native);
    for (KernelPolicy p : {KernelPolicy::dnnl, KernelPolicy::auto_select}) {
      const auto got = run(p);
      ASSERT_EQ(got.size(), native.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_TRUE(all_close(got[i], native[i], kConvTol))
            << kernel_policy_name(p)
            << (i == 0 ? std::string(" forward") : " gradient of input " + std::to_string(i - 1));
      }
    }
  }
}
#endif

#if defined(GLIA_HAVE_CUDA)
// cuDNN and auto_select give what our kernels give, forward and backward.
TEST(CudaConvPolicy, CudnnAndAutoMatchNative) {
  GLIA_SKIP_UNLESS_USABLE(Device::cuda());
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(c.name);
    const std::vector<Tensor> in = make_inputs(c, DType::f32, Device::cuda(), false);
    const Tensor bias = in[2];
    auto run = [&](KernelPolicy policy) {
      return c.transposed ? conv_transpose2d(in[0], in[1], bias, c.p, policy)
                          : conv2d(in[0], in[1], bias, c.p, policy);
    };
    const auto native = host_doubles(run(KernelPolicy::native));
    EXPECT_TRUE(all_close(host_doubles(run(KernelPolicy::cudnn)), native, kConvTol));
    EXPECT_TRUE(all_close(host_doubles(run(KernelPolicy::auto_select)), native, kConvTol));
  }
}
#endif

// --- errors ----------------------------------------------------------------------------------

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(what.find(part), std::string::npos) << "'" << part << "' not in: " << what;
    }
  }
}

TEST(ConvTest, ErrorsNameShapesAndArguments) {
  const Tensor x = random_tensor({2, 3, 8, 8}, -1, 1, 1);
  const Tensor w = random_tensor({4, 3, 3, 3}, -1, 1, 2);
  const Tensor w_bad = random_tensor({4, 5, 3, 3}, -1, 1, 3);
  expect_error([&] { conv2d(x, w_bad, Tensor()); },
               {"conv2d", "[2, 3, 8, 8]", "[4, 5, 3, 3]", "3 channels", "expects 5"});
  expect_error([&] { conv2d(x, w, random_tensor({3}, -1, 1, 4)); }, {"bias", "[4]"});
  expect_error([&] { conv2d(random_tensor({3, 8, 8}, -1, 1, 5), w, Tensor()); }, {"[n, c, h, w]"});
  expect_error(
      [&] {
        conv2d(random_tensor({1, 3, 2, 2}, -1, 1, 6), w, Tensor());
      },
      {"output is empty"});
  expect_error([&] { conv2d(x, w, Tensor(), params(0, 1)); }, {"stride", "at least 1"});
  expect_error([&] { conv2d(x, w, Tensor(), params(1, -1)); }, {"padding"});
  expect_error([&] { conv2d(x, w, Tensor(), params(1, 1, 1, 1)); }, {"output_padding"});
  expect_error([&] { conv2d(x, w.to(DType::f64), Tensor()); }, {"conv2d"});
  // The transpose's weight is [c_in, c_out, kh, kw]: w's 4 input channels do not match x's 3.
  expect_error([&] { conv_transpose2d(x, w, Tensor(), params(2, 0)); },
               {"conv_transpose2d", "3 channels", "expects 4"});
  const Tensor wt = random_tensor({3, 2, 2, 2}, -1, 1, 7);
  expect_error([&] { conv_transpose2d(x, wt, Tensor(), params(2, 0, 1, 2)); },
               {"output_padding must be smaller than the stride"});
  expect_error([&] { conv_transpose2d(x, wt, random_tensor({3}, -1, 1, 8), params(2, 0)); },
               {"bias must be [2]"});
}

}  // namespace
}  // namespace glia
