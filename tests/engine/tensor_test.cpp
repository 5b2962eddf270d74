// Tensors on every device: creation and host read-back, moves between devices and dtypes,
// clone, reshape/view sharing storage, transpose, and the messages of misuse. Each device test
// runs as Cpu/..., Sim/... and Cuda/... (the latter skipped without a GPU). Tests engine/tensor.h
// and engine/ops/{creation,copy,shape}.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "engine/ops.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using testing::error_of;

class TensorOnDevice : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(GetParam()); }
  Device device() const { return GetParam(); }
};

TEST_P(TensorOnDevice, CreationAndReadBack) {
  const Tensor z = zeros({2, 3}, {.device = device()});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.device(), device());
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(ones({4}, {.device = device()}).to_vector<float>(), std::vector<float>(4, 1.0f));
  EXPECT_EQ(full({3}, 2.5, {.device = device()}).to_vector<float>(),
            (std::vector<float>{2.5f, 2.5f, 2.5f}));
  EXPECT_EQ(full({2}, 7, {.dtype = DType::i32, .device = device()}).to_vector<std::int32_t>(),
            (std::vector<std::int32_t>{7, 7}));
  EXPECT_EQ(full({2}, 200, {.dtype = DType::u8, .device = device()}).to_vector<std::uint8_t>(),
            (std::vector<std::uint8_t>{200, 200}));
  EXPECT_EQ(arange(0, 5, 1, {.device = device()}).to_vector<float>(),
            (std::vector<float>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(10, 0, -3, {.dtype = DType::i32, .device = device()}).to_vector<std::int32_t>(),
            (std::vector<std::int32_t>{10, 7, 4, 1}));
  EXPECT_EQ(arange(0, 1, 0.25, {.device = device()}).numel(), 4);
  EXPECT_EQ(full({}, 3.0, {.device = device()}).item<float>(), 3.0f);
  EXPECT_EQ(zeros({0, 4}, {.device = device()}).numel(), 0);
}

TEST_P(TensorOnDevice, FromVectorRoundTripsEveryDType) {
  const std::vector<float> f{1.5f, -2.25f, 3.0f, 1e-7f, -0.0f, 42.0f};
  EXPECT_EQ(from_vector(f, {2, 3}, device()).to_vector<float>(), f);
  const std::vector<std::int32_t> i{-5, 0, 7, 2147483647};
  EXPECT_EQ(from_vector(i, {4}, device()).to_vector<std::int32_t>(), i);
  const std::vector<std::uint8_t> u{0, 1, 128, 255};
  EXPECT_EQ(from_vector(u, {2, 2}, device()).to_vector<std::uint8_t>(), u);
}

TEST_P(TensorOnDevice, ToDeviceRoundTripsAndIsExplicit) {
  const std::vector<float> values{0.5f, -1.0f, 2.0f, 4.5f, 8.0f, -16.0f};
  const Tensor host = from_vector(values, {3, 2});
  const Tensor there = host.to(device());
  EXPECT_EQ(there.device(), device());
  EXPECT_EQ(there.shape(), host.shape());
  const Tensor back = there.to(Device::cpu());
  EXPECT_EQ(back.to_vector<float>(), values);
  // Moving to the device a tensor is on is a no-op that returns the same tensor.
  EXPECT_TRUE(there.to(device()).shares_storage_with(there));
  if (!device().is_cpu()) {
    EXPECT_FALSE(back.shares_storage_with(host));
  }
}

TEST_P(TensorOnDevice, ToDTypeMatchesTheCpuCast) {
  const std::vector<float> values{-2.7f, 0.5f, 3.9f, 200.2f, 0.0f, 17.0f};
  const Tensor x = from_vector(values, {6}, device());
  const Tensor as_int = x.to(DType::i32);
  EXPECT_EQ(as_int.dtype(), DType::i32);
  EXPECT_EQ(as_int.to_vector<std::int32_t>(), (std::vector<std::int32_t>{-2, 0, 3, 200, 0, 17}));
  const Tensor as_u8 = as_int.to(DType::u8);
  EXPECT_EQ(as_u8.dtype(), DType::u8);
  EXPECT_EQ(as_u8.to_vector<std::uint8_t>()[3], 200);
  EXPECT_EQ(as_u8.to(DType::f32).to_vector<float>()[5], 17.0f);
  EXPECT_EQ(as_int.to(DType::f32).to_vector<float>(),
            (std::vector<float>{-2.0f, 0.0f, 3.0f, 200.0f, 0.0f, 17.0f}));
  EXPECT_TRUE(x.to(DType::f32).shares_storage_with(x));
}

TEST_P(TensorOnDevice, CloneOwnsItsStorage) {
  const Tensor x = arange(0, 6, 1, {.device = device()});
  const Tensor c = x.clone();
  EXPECT_FALSE(c.shares_storage_with(x));
  EXPECT_EQ(c.to_vector<float>(), x.to_vector<float>());
  Tensor x_handle = x;
  fill_(x_handle, -1.0);
  EXPECT_EQ(c.to_vector<float>()[5], 5.0f);
  EXPECT_EQ(x.to_vector<float>()[5], -1.0f);  // handles alias
}

TEST_P(TensorOnDevice, ReshapeAndViewShareStorage) {
  const Tensor x = arange(0, 24, 1, {.device = device()});
  const Tensor r = x.reshape({2, 3, 4});
  const Tensor v = x.view({4, -1});
  EXPECT_EQ(r.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(v.shape(), (Shape{4, 6}));
  EXPECT_TRUE(r.shares_storage_with(x));
  EXPECT_TRUE(v.shares_storage_with(x));
  Tensor x_handle = x;
  fill_(x_handle, 3.0);
  EXPECT_EQ(r.to_vector<float>(), std::vector<float>(24, 3.0f));
  EXPECT_EQ(x.reshape({-1, 2, 2}).shape(), (Shape{6, 2, 2}));
  EXPECT_EQ(full({}, 1.0, {.device = device()}).reshape({1, 1}).shape(), (Shape{1, 1}));
}

TEST_P(TensorOnDevice, TransposeSwapsTheLastTwoDims) {
  const Tensor x = arange(0, 2 * 3 * 5, 1, {.device = device()}).reshape({2, 3, 5});
  const Tensor t = x.transpose();
  EXPECT_EQ(t.shape(), (Shape{2, 5, 3}));
  const std::vector<float> xs = x.to_vector<float>(), ts = t.to_vector<float>();
  for (int b = 0; b < 2; ++b) {
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 5; ++c) EXPECT_EQ(ts[(b * 5 + c) * 3 + r], xs[(b * 3 + r) * 5 + c]);
    }
  }
  EXPECT_EQ(t.transpose().to_vector<float>(), xs);
}

INSTANTIATE_TEST_SUITE_P(Cpu, TensorOnDevice, ::testing::Values(Device::cpu()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Sim, TensorOnDevice, ::testing::Values(Device::sim()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, TensorOnDevice, ::testing::Values(Device::cuda()),
                         glia::testing::device_param_name);

TEST(TensorTest, F64RoundTripsOnCpu) {
  const std::vector<double> values{1.0 / 3.0, -2.5, 1e-300};
  const Tensor x = from_vector(values, {3});
  EXPECT_EQ(x.dtype(), DType::f64);
  EXPECT_EQ(x.to_vector<double>(), values);
  EXPECT_EQ(x.to(DType::f32).to(DType::f64).to_vector<double>()[1], -2.5);
}

TEST(TensorTest, DescribeNamesDTypeShapeAndDevice) {
  EXPECT_EQ(zeros({2, 3}).describe(), "f32 tensor [2, 3] on cpu");
  EXPECT_EQ(zeros({}, {.dtype = DType::i32}).describe(), "i32 tensor [] on cpu");
  EXPECT_EQ(Tensor().describe(), "undefined tensor");
}

TEST(TensorTest, ReshapeErrorsShowBothShapes) {
  const Tensor x = zeros({2, 3});
  std::string msg = error_of([&] { (void)x.reshape({4, 2}); });
  EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 2]"), std::string::npos) << msg;
  msg = error_of([&] { (void)x.reshape({-1, 4}); });
  EXPECT_NE(msg.find("[-1, 4]"), std::string::npos) << msg;
  msg = error_of([&] { (void)x.reshape({-1, -1}); });
  EXPECT_NE(msg.find("only one size can be -1"), std::string::npos) << msg;
}

TEST(TensorTest, MisuseMessagesNameTheTensor) {
  const Tensor x = zeros({2, 3});
  std::string msg = error_of([&] { (void)x.to_vector<double>(); });
  EXPECT_NE(msg.find("f32 tensor [2, 3] on cpu"), std::string::npos) << msg;
  EXPECT_NE(msg.find("f64"), std::string::npos) << msg;
  msg = error_of([&] { (void)x.item<float>(); });
  EXPECT_NE(msg.find("one-element"), std::string::npos) << msg;
  msg = error_of([&] { (void)from_vector(std::vector<float>(5), {2, 3}); });
  EXPECT_NE(msg.find("5 values"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  msg = error_of([&] { (void)zeros({1, 1, 1, 1, 1, 1}); });
  EXPECT_NE(msg.find("at most 5"), std::string::npos) << msg;
  msg = error_of([&] { (void)zeros({3}).transpose(); });
  EXPECT_NE(msg.find("f32 tensor [3] on cpu"), std::string::npos) << msg;
  msg = error_of([&] { (void)arange(0, 4, 1, {.dtype = DType::u8}); });
  EXPECT_NE(msg.find("u8"), std::string::npos) << msg;
}

TEST(TensorTest, F64FillsAndRangesOnCpu) {
  EXPECT_EQ(arange(0, 1, 0.5, {.dtype = DType::f64}).to_vector<double>(),
            (std::vector<double>{0.0, 0.5}));
  EXPECT_EQ(full({2}, 0.1, {.dtype = DType::f64}).to_vector<double>()[0], 0.1);
}

}  // namespace
}  // namespace glia
