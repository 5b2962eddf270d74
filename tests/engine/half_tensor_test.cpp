// bf16 and f16 tensors (engine/dtype.h, engine/ops/copy.cpp): casts to and from f32 on every device
// and f64 on cpu equal kernels/half.h's conversion of each element (so cpu, sim and cuda agree bit
// for bit), the gradient of a cast is cast back, dtype names print, and every op other than a cast
// or a byte move refuses a 16-bit tensor with an error that names the op and the dtype.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "kernels/half.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using testing::error_of;

const std::vector<float> kValues{0.0f,
                                 -0.0f,
                                 1.0f,
                                 -1.5f,
                                 3.14159265f,
                                 65504.0f,
                                 65520.0f,
                                 1e-7f,
                                 -3e-8f,
                                 1e30f,
                                 -2.5e-40f,
                                 1.00390625f,
                                 1.0009765625f,
                                 std::numeric_limits<float>::infinity(),
                                 -std::numeric_limits<float>::infinity(),
                                 std::numeric_limits<float>::quiet_NaN()};

template <class H>
std::vector<std::uint16_t> bits_of(const std::vector<H>& v) {
  std::vector<std::uint16_t> out;
  for (const H& h : v) out.push_back(h.bits);
  return out;
}

template <class H>
std::vector<std::uint16_t> expected_bits(const std::vector<float>& v) {
  std::vector<std::uint16_t> out;
  for (const float x : v) out.push_back(H(x).bits);
  return out;
}

class HalfTensorOnDevice : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(GetParam()); }
  Device device() const { return GetParam(); }
};

template <class H>
void check_round_trip(Device device, DType dtype) {
  const Tensor x = from_vector(kValues, {4, 4}, device);
  const Tensor h = x.to(dtype);
  EXPECT_EQ(h.dtype(), dtype);
  EXPECT_EQ(h.device(), device);
  EXPECT_EQ(h.shape(), x.shape());
  EXPECT_EQ(bits_of(h.to_vector<H>()), expected_bits<H>(kValues));
  const std::vector<float> back = h.to(DType::f32).to_vector<float>();
  for (std::size_t i = 0; i < kValues.size(); ++i) {
    const float want = static_cast<float>(H(kValues[i]));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(back[i])) << i;
    } else {
      EXPECT_EQ(std::signbit(back[i]), std::signbit(want)) << i;
      EXPECT_EQ(back[i], want) << i;
    }
  }
}

TEST_P(HalfTensorOnDevice, CastsToBf16AndBackMatchHalfH) {
  check_round_trip<bf16>(device(), DType::bf16);
}

TEST_P(HalfTensorOnDevice, CastsToF16AndBackMatchHalfH) {
  check_round_trip<f16>(device(), DType::f16);
}

TEST_P(HalfTensorOnDevice, HalfTensorsMoveBetweenDevicesUnchanged) {
  const Tensor h = from_vector(kValues, {16}).to(DType::f16);
  const Tensor there = h.to(device());
  EXPECT_EQ(there.dtype(), DType::f16);
  EXPECT_EQ(bits_of(there.to(Device::cpu()).to_vector<f16>()), bits_of(h.to_vector<f16>()));
  EXPECT_EQ(bits_of(there.clone().to_vector<f16>()), bits_of(h.to_vector<f16>()));
  EXPECT_EQ(there.reshape({4, 4}).shape(), (Shape{4, 4}));
}

TEST_P(HalfTensorOnDevice, GradientOfACastIsCastBack) {
  Tensor x = from_vector(std::vector<float>{1.0f, 2.0f, 3.0f}, {3}, device(), true);
  const Tensor h = x.to(DType::bf16);
  h.backward(
      from_vector(std::vector<float>{0.5f, 1.00390625f, -2.0f}, {3}, device()).to(DType::bf16));
  // 1.00390625 = 1 + 2^-8 is halfway between two bf16 values: nearest even rounds it to 1.
  EXPECT_EQ(x.grad().dtype(), DType::f32);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0.5f, 1.0f, -2.0f}));
}

TEST_P(HalfTensorOnDevice, OpsRefuseHalfTensorsNamingTheOpAndDType) {
  const Tensor h = from_vector(kValues, {16}, device()).to(DType::bf16);
  const std::string sum = error_of([&] { (void)add(h, h); });
  EXPECT_NE(sum.find("add"), std::string::npos) << sum;
  EXPECT_NE(sum.find("bf16"), std::string::npos) << sum;
  EXPECT_NE(sum.find(".to(DType::f32)"), std::string::npos) << sum;
  const Tensor f = from_vector(kValues, {16}, device()).to(DType::f16);
  const std::string relu_error = error_of([&] { (void)relu(f); });
  EXPECT_NE(relu_error.find("relu"), std::string::npos) << relu_error;
  EXPECT_NE(relu_error.find("f16"), std::string::npos) << relu_error;
  const Tensor x4 = from_vector(std::vector<float>(16, 1.0f), {1, 1, 4, 4}, device());
  const Tensor w = from_vector(std::vector<float>(9, 1.0f), {1, 1, 3, 3}, device());
  const std::string conv = error_of([&] { (void)conv2d(x4.to(DType::bf16), w, Tensor(), {}); });
  EXPECT_NE(conv.find("conv2d"), std::string::npos) << conv;
  EXPECT_NE(conv.find("bf16"), std::string::npos) << conv;
  const std::string mm = error_of([&] { (void)matmul(h.reshape({4, 4}), h.reshape({4, 4})); });
  EXPECT_NE(mm.find("matmul"), std::string::npos) << mm;
  const std::string fill =
      error_of([&] { (void)zeros({2}, {.dtype = DType::f16, .device = device()}); });
  EXPECT_NE(fill.find("f16"), std::string::npos) << fill;
}

TEST_P(HalfTensorOnDevice, CastsWithIntegersAndBetweenHalvesAreRefused) {
  const Tensor i = from_vector(std::vector<std::int32_t>{1, 2}, {2}, device());
  const std::string error = error_of([&] { (void)i.to(DType::bf16); });
  EXPECT_NE(error.find("i32"), std::string::npos) << error;
  EXPECT_NE(error.find("through f32"), std::string::npos) << error;
  const Tensor h = from_vector(kValues, {16}, device()).to(DType::bf16);
  EXPECT_NE(error_of([&] { (void)h.to(DType::f16); }).find("through f32"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Cpu, HalfTensorOnDevice, ::testing::Values(Device::cpu()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Sim, HalfTensorOnDevice, ::testing::Values(Device::sim()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, HalfTensorOnDevice, ::testing::Values(Device::cuda()),
                         glia::testing::device_param_name);

TEST(HalfTensor, F64CastsOnCpuGoThroughFloat) {
  // 1 + 2^-11 + 2^-40 in double: rounding it to float drops the 2^-40, leaving an exact f16 tie
  // that nearest even rounds down to 1; PyTorch converts double to half through float alike.
  const std::vector<double> values{1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40), -0.1, 7e4};
  const Tensor x = from_vector(values, {3});
  const Tensor h = x.to(DType::f16);
  std::vector<std::uint16_t> want;
  for (const double v : values) want.push_back(f16(static_cast<float>(v)).bits);
  EXPECT_EQ(bits_of(h.to_vector<f16>()), want);
  EXPECT_EQ(h.to_vector<f16>()[0].bits, 0x3c00u);
  const std::vector<double> back = h.to(DType::f64).to_vector<double>();
  EXPECT_EQ(back[0], 1.0);
  EXPECT_TRUE(std::isinf(back[2]));
  EXPECT_EQ(x.to(DType::bf16).to(DType::f64).to_vector<double>()[1],
            static_cast<double>(static_cast<float>(bf16(-0.1f))));
  EXPECT_NE(error_of([&] { (void)h.to(Device::sim()).to(DType::f64); }).find("cpu"),
            std::string::npos);
}

TEST(HalfTensor, DTypeNamesSizesAndDescriptions) {
  EXPECT_STREQ(dtype_name(DType::bf16), "bf16");
  EXPECT_STREQ(dtype_name(DType::f16), "f16");
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::f16), 2u);
  EXPECT_TRUE(is_floating(DType::bf16) && is_floating(DType::f16));
  EXPECT_TRUE(is_half(DType::bf16) && is_half(DType::f16) && !is_half(DType::f32));
  EXPECT_EQ(dtype_v<bf16>, DType::bf16);
  EXPECT_EQ(dtype_v<f16>, DType::f16);
  EXPECT_EQ(Tensor({2, 3}, DType::bf16, Device::cpu()).describe(), "bf16 tensor [2, 3] on cpu");
  EXPECT_EQ(Tensor({5}, DType::f16, Device::sim()).describe(), "f16 tensor [5] on sim");
}

}  // namespace
}  // namespace glia
