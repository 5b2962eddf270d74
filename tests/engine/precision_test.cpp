// The precision setting (engine/precision.h) on conv2d, conv_transpose2d and linear, on every
// device: the output and the gradients of x, w and bias under tf32, bf16 and fp16 equal (bit for
// bit on cpu; within FP32 accumulation order on sim and cuda, whose convolution passes and GEMM
// products run on the tensor-core kernels) the FP32 op applied to operands rounded on the host
// beforehand (kernels/half.h: x and w for the forward, the upstream gradient too for the data and
// filter gradients; the bias gradient from the unrounded upstream gradient). A float64 reference
// then shows each format's error within its bound (two roundings per product: 2u, u the format's
// unit roundoff, plus FP32 accumulation) and ordered as the epsilons are: fp32 < tf32 = fp16 (u =
// 2^-11) < bf16 (2^-8). Also the setting's names, parsing, scoping, and that f64 tensors are never
// rounded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/losses.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "kernels/half.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using testing::error_of;
using testing::random_tensor;

constexpr Precision kLow[] = {Precision::tf32, Precision::bf16, Precision::fp16};

// The format's rounding of one float, on the host.
float host_round(float x, Precision p) {
  switch (p) {
    case Precision::fp32:
      return x;
    case Precision::tf32:
      return round_to_tf32(x);
    case Precision::bf16:
      return static_cast<float>(bf16(x));
    case Precision::fp16:
      return static_cast<float>(f16(x));
  }
  return x;
}

Tensor host_rounded(const Tensor& t, Precision p) {
  std::vector<float> v = t.to(Device::cpu()).to_vector<float>();
  for (float& x : v) x = host_round(x, p);
  return from_vector(v, t.shape(), t.device());
}

// The unit roundoff of each format (half the distance from 1 to the next value).
double unit_roundoff(Precision p) {
  switch (p) {
    case Precision::fp32:
      return std::ldexp(1.0, -24);
    case Precision::tf32:
    case Precision::fp16:
      return std::ldexp(1.0, -11);
    case Precision::bf16:
      return std::ldexp(1.0, -8);
  }
  return 0;
}

// One op under test: y = op(x, w, bias) with its shapes.
struct OpCase {
  std::string name;
  Shape x, w, bias;
  std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)> run;
  int reduction;  // terms per output element (for the error bound)
};

std::vector<OpCase> op_cases() {
  Conv2dParams strided;
  strided.stride = {2, 1};
  strided.padding = {1, 2};
  Conv2dParams up;
  up.stride = {2, 2};
  up.padding = {1, 1};
  up.output_padding = {1, 0};
  return {
      {"conv2d",
       {2, 3, 7, 9},
       {5, 3, 3, 3},
       {5},
       [=](const Tensor& x, const Tensor& w, const Tensor& b) { return conv2d(x, w, b, strided); },
       27},
      {"conv_transpose2d",
       {2, 4, 5, 6},
       {4, 3, 3, 3},
       {3},
       [=](const Tensor& x, const Tensor& w, const Tensor& b) {
         return conv_transpose2d(x, w, b, up);
       },
       36},
      {"linear",
       {6, 33},
       {7, 33},
       {7},
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return linear(x, w, b); },
       33},
  };
}

struct Grads {
  Tensor y, gx, gw, gb;
};

// y = op(x, w, b) and, after y.backward(gy), the three gradients, all on the host.
Grads run_op(const OpCase& op, const Tensor& x, const Tensor& w, const Tensor& b,
             const Tensor& gy) {
  Tensor xl = x.detach().set_requires_grad(true);
  Tensor wl = w.detach().set_requires_grad(true);
  Tensor bl = b.detach().set_requires_grad(true);
  const Tensor y = op.run(xl, wl, bl);
  y.backward(gy);
  return {y.to(Device::cpu()), xl.grad().to(Device::cpu()), wl.grad().to(Device::cpu()),
          bl.grad().to(Device::cpu())};
}

std::vector<float> host(const Tensor& t) {
  return t.to(Device::cpu()).to_vector<float>();
}

// |got - ref| <= 2^-16 magnitude element by element (magnitude: sum|a b| of the element).
void expect_within_accumulation(const std::vector<float>& got, const std::vector<float>& ref,
                                const std::vector<float>& magnitude, const char* what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double worst = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double excess = std::fabs(static_cast<double>(got[i]) - ref[i]) -
                          std::ldexp(static_cast<double>(magnitude[i]), -16);
    if (excess > worst) worst = excess, at = i;
  }
  EXPECT_EQ(worst, 0.0) << what << "[" << at << "]: got " << got[at] << ", want " << ref[at]
                        << " within 2^-16 * " << magnitude[at];
}

class PrecisionOnDevice : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(GetParam()); }
  Device device() const { return GetParam(); }
};

TEST_P(PrecisionOnDevice, OutputsAndGradientsEqualTheFp32OpOnRoundedOperands) {
  unsigned seed = 100;
  for (const OpCase& op : op_cases()) {
    const Tensor x = random_tensor(op.x, -2.0, 2.0, ++seed, DType::f32, device());
    const Tensor w = random_tensor(op.w, -1.0, 1.0, ++seed, DType::f32, device());
    const Tensor b = random_tensor(op.bias, -1.0, 1.0, ++seed, DType::f32, device());
    const Shape y_shape = op.run(x, w, b).shape();
    const Tensor gy = random_tensor(y_shape, -1.0, 1.0, ++seed, DType::f32, device());
    const Grads fp32 = run_op(op, x, w, b, gy);
    for (const Precision p : kLow) {
      SCOPED_TRACE(op.name + " in " + precision_name(p));
      Grads got;
      {
        const ScopedPrecision scope(p);
        got = run_op(op, x, w, b, gy);
      }
      // The reference: fp32 on operands rounded on the host.
      const Tensor xr = host_rounded(x, p), wr = host_rounded(w, p), gyr = host_rounded(gy, p);
      const Grads ref = run_op(op, xr, wr, b, gyr);
      const Grads ref_bias = run_op(op, xr, wr, b, gy);
      if (device().is_cpu()) {
        EXPECT_EQ(host(got.y), host(ref.y));
        EXPECT_EQ(host(got.gx), host(ref.gx));
        EXPECT_EQ(host(got.gw), host(ref.gw));
      } else {
        // sim and cuda run the conv passes and GEMM products on the tensor-core kernels, which sum
        // the same exact products of rounded operands in another order: equal within FP32
        // accumulation, (K + 2) 2^-24 sum|a b| per element with K <= 254 terms in these cases,
        // sum|a b| from the same op on the operands' absolute values.
        const Tensor zero_bias = b.detach() * 0.0;
        const Grads size =
            run_op(op, abs(xr.detach()), abs(wr.detach()), zero_bias, abs(gyr.detach()));
        expect_within_accumulation(host(got.y), host(ref.y), host(size.y), "y");
        expect_within_accumulation(host(got.gx), host(ref.gx), host(size.gx), "gx");
        expect_within_accumulation(host(got.gw), host(ref.gw), host(size.gw), "gw");
      }
      EXPECT_EQ(host(got.gb), host(ref_bias.gb));
      // The rounding took place: the result is not the fp32 one.
      EXPECT_NE(host(got.y), host(fp32.y));
      EXPECT_NE(host(got.gx), host(fp32.gx));
      EXPECT_NE(host(got.gw), host(fp32.gw));
    }
  }
}

TEST_P(PrecisionOnDevice, TheForwardPrecisionServesItsBackward) {
  // autocast semantics: a backward run after the scope ends still rounds as its forward did.
  const OpCase op = op_cases()[0];
  const Tensor x = random_tensor(op.x, -2.0, 2.0, 7, DType::f32, device());
  const Tensor w = random_tensor(op.w, -1.0, 1.0, 8, DType::f32, device());
  const Tensor b = random_tensor(op.bias, -1.0, 1.0, 9, DType::f32, device());
  const Tensor gy = random_tensor(op.run(x, w, b).shape(), -1.0, 1.0, 10, DType::f32, device());
  Tensor xl = x.detach().set_requires_grad(true);
  Tensor y;
  {
    const ScopedPrecision scope(Precision::bf16);
    y = op.run(xl, w, b);
  }
  y.backward(gy);
  // The reference runs forward and backward inside the scope: the same kernels (on sim and cuda
  // the tensor-core ones, whose summation order differs from the FP32 kernels') on the same
  // rounded operands, so equal bit for bit.
  Tensor xr = x.detach().set_requires_grad(true);
  {
    const ScopedPrecision scope(Precision::bf16);
    op.run(xr, w, b).backward(gy);
  }
  EXPECT_EQ(host(xl.grad()), host(xr.grad()));
  // And the rounding took place.
  Tensor xf = x.detach().set_requires_grad(true);
  op.run(xf, w, b).backward(gy);
  EXPECT_NE(host(xl.grad()), host(xf.grad()));
}

INSTANTIATE_TEST_SUITE_P(Cpu, PrecisionOnDevice, ::testing::Values(Device::cpu()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Sim, PrecisionOnDevice, ::testing::Values(Device::sim()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, PrecisionOnDevice, ::testing::Values(Device::cuda()),
                         glia::testing::device_param_name);

// Largest |y_p - y64| / sum_k |x_k w_k| over the outputs, with y64 and the denominators from the
// unrounded operands in float64.
TEST(Precision, ErrorAgainstFloat64GrowsWithTheFormatsEpsilon) {
  unsigned seed = 300;
  for (const OpCase& op : op_cases()) {
    SCOPED_TRACE(op.name);
    const Tensor x = random_tensor(op.x, -2.0, 2.0, ++seed);
    const Tensor w = random_tensor(op.w, -1.0, 1.0, ++seed);
    const Tensor zero_bias = zeros(op.bias);
    const std::vector<double> ref =
        testing::host_doubles(op.run(x.to(DType::f64), w.to(DType::f64), zero_bias.to(DType::f64)));
    const std::vector<double> scale = testing::host_doubles(
        op.run(abs(x).to(DType::f64), abs(w).to(DType::f64), zero_bias.to(DType::f64)));
    std::map<Precision, double> error;
    for (const Precision p : {Precision::fp32, Precision::tf32, Precision::bf16, Precision::fp16}) {
      const ScopedPrecision scope(p);
      const std::vector<double> got = testing::host_doubles(op.run(x, w, zero_bias));
      double worst = 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        worst = std::max(worst, std::abs(got[i] - ref[i]) / scale[i]);
      }
      error[p] = worst;
      const double u = unit_roundoff(p), u32 = unit_roundoff(Precision::fp32);
      // Each product carries two roundings of relative size u; the FP32 sum adds at most
      // (terms - 1) u32 of the sum of magnitudes (Higham's gamma_n), the product one u32 more.
      const double bound = (p == Precision::fp32 ? 0.0 : 2 * u + u * u) + (op.reduction + 1) * u32;
      EXPECT_LE(worst, bound) << precision_name(p);
      // And the format's error shows: well above FP32's, within a small factor of u.
      if (p != Precision::fp32) {
        EXPECT_GE(worst, u / 16) << precision_name(p);
      }
    }
    EXPECT_LT(error[Precision::fp32] * 64, error[Precision::tf32]);
    EXPECT_LT(error[Precision::tf32] * 2, error[Precision::bf16]);
    EXPECT_LT(error[Precision::fp16] * 2, error[Precision::bf16]);
  }
}

TEST(Precision, F64TensorsAreNeverRounded) {
  const Tensor a = random_tensor({3, 4}, -1.0, 1.0, 1, DType::f64);
  const Tensor b = random_tensor({4, 2}, -1.0, 1.0, 2, DType::f64);
  const std::vector<double> fp32 = testing::host_doubles(matmul(a, b));
  const ScopedPrecision scope(Precision::bf16);
  EXPECT_EQ(testing::host_doubles(matmul(a, b)), fp32);
}

TEST(Precision, NamesParseAndScopesRestore) {
  for (const Precision p : {Precision::fp32, Precision::tf32, Precision::bf16, Precision::fp16}) {
    EXPECT_EQ(parse_precision(precision_name(p)), p);
  }
  const std::string error = error_of([] { (void)parse_precision("fp8"); });
  EXPECT_NE(error.find("'fp8'"), std::string::npos) << error;
  EXPECT_NE(error.find("fp32, tf32, bf16 or fp16"), std::string::npos) << error;
  EXPECT_EQ(precision(), Precision::fp32);
  {
    const ScopedPrecision outer(Precision::tf32);
    {
      const ScopedPrecision inner(Precision::fp16);
      EXPECT_EQ(precision(), Precision::fp16);
    }
    EXPECT_EQ(precision(), Precision::tf32);
  }
  EXPECT_EQ(precision(), Precision::fp32);
}

}  // namespace
}  // namespace glia
