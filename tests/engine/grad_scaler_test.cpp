// Dynamic loss scaling (engine/optim/grad_scaler.h) against GradScaler's rules, on every device:
// unscaled gradients equal those of the unscaled loss (exactly, the scale being a power of two);
// an overflow (an inf or NaN gradient) skips the step, leaving parameters and optimiser state bit
// for bit as they were, and multiplies the scale by the backoff factor; the scale grows by the
// growth factor after exactly growth_interval clean steps and the count restarts after an
// overflow; a NaN anywhere in one tensor is found; the state round-trips; bad options are refused.
#include "engine/optim/grad_scaler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using optim::GradScaler;
using optim::GradScalerOptions;
using testing::error_of;

std::vector<float> host(const Tensor& t) {
  return t.to(Device::cpu()).to_vector<float>();
}

std::map<std::string, std::vector<float>> state_of(const optim::Optimizer& o) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : o.export_state()) {
    const Tensor c = t.to(Device::cpu());
    if (c.dtype() == DType::f64) {
      const std::vector<double> d = c.to_vector<double>();
      out[name] = std::vector<float>(d.begin(), d.end());
    } else {
      out[name] = c.to_vector<float>();
    }
  }
  return out;
}

class GradScalerOnDevice : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(GetParam()); }
  Device device() const { return GetParam(); }

  // loss = sum(w * x) for a parameter w; the gradient of w is x.
  Tensor loss_of(const Tensor& w, const std::vector<float>& x) const {
    return sum(mul(w, from_vector(x, {static_cast<index_t>(x.size())}, device())));
  }
};

TEST_P(GradScalerOnDevice, UnscaledGradientsEqualThoseOfTheUnscaledLoss) {
  const std::vector<float> x{0.5f, -3.0f, 1e-6f, 7.25f};
  Tensor w = from_vector(std::vector<float>{1, 2, 3, 4}, {4}, device(), true);
  GradScaler scaler;
  scaler.scale(loss_of(w, x)).backward();
  EXPECT_EQ(host(w.grad()),
            (std::vector<float>{32768.0f, -196608.0f, 1e-6f * 65536.0f, 475136.0f}));
  EXPECT_FALSE(scaler.unscale_({w}));
  EXPECT_EQ(host(w.grad()), x);
}

TEST_P(GradScalerOnDevice, AnOverflowSkipsTheStepAndHalvesTheScale) {
  Tensor w = from_vector(std::vector<float>{1, -2, 3, -4}, {4}, device(), true);
  Tensor other = from_vector(std::vector<float>{0.5f}, {1}, device(), true);
  optim::Adam adam({{.params = {w, other}, .lr = 0.1}});
  GradScaler scaler;
  // One clean step first, so the optimiser has state to keep.
  scaler.scale(add(loss_of(w, {1, 1, 1, 1}), sum(other))).backward();
  EXPECT_TRUE(scaler.step(adam, {w, other}));
  scaler.update();
  EXPECT_EQ(scaler.current_scale(), 65536.0);
  EXPECT_EQ(scaler.state().growth_tracker, 1);
  const std::vector<float> w_before = host(w), other_before = host(other);
  const auto state_before = state_of(adam);
  // 1e36 * 65536 overflows float: the gradient of w is inf in one element.
  adam.zero_grad();
  scaler.scale(add(loss_of(w, {1, 1e36f, 1, 1}), sum(other))).backward();
  EXPECT_TRUE(std::isinf(host(w.grad())[1]));
  EXPECT_FALSE(scaler.step(adam, {w, other}));
  scaler.update();
  EXPECT_EQ(host(w), w_before);
  EXPECT_EQ(host(other), other_before);
  EXPECT_EQ(state_of(adam), state_before);
  EXPECT_EQ(scaler.current_scale(), 32768.0);
  EXPECT_EQ(scaler.state().growth_tracker, 0);
  // A NaN in the last element of the last tensor is found too.
  adam.zero_grad();
  scaler.scale(add(loss_of(w, {1, 1, 1, 1}), mul(sum(other), std::nan("")))).backward();
  EXPECT_TRUE(scaler.unscale_({w, other}));
  EXPECT_FALSE(scaler.step(adam, {w, other}));
  scaler.update();
  EXPECT_EQ(host(w), w_before);
  EXPECT_EQ(scaler.current_scale(), 16384.0);
}

TEST_P(GradScalerOnDevice, TheScaleGrowsAfterExactlyGrowthIntervalCleanSteps) {
  Tensor w = from_vector(std::vector<float>{1, 2}, {2}, device(), true);
  optim::Adam adam({{.params = {w}, .lr = 0.01}});
  GradScaler scaler(
      {.init_scale = 8.0, .growth_factor = 4.0, .backoff_factor = 0.25, .growth_interval = 3});
  const auto clean_step = [&] {
    adam.zero_grad();
    scaler.scale(loss_of(w, {1, -1})).backward();
    EXPECT_TRUE(scaler.step(adam, {w}));
    scaler.update();
  };
  clean_step();
  clean_step();
  EXPECT_EQ(scaler.current_scale(), 8.0);
  clean_step();
  EXPECT_EQ(scaler.current_scale(), 32.0);
  EXPECT_EQ(scaler.state().growth_tracker, 0);
  clean_step();
  clean_step();
  // An overflow restarts the count.
  adam.zero_grad();
  scaler.scale(loss_of(w, {std::numeric_limits<float>::infinity(), 1})).backward();
  EXPECT_FALSE(scaler.step(adam, {w}));
  scaler.update();
  EXPECT_EQ(scaler.current_scale(), 8.0);
  clean_step();
  clean_step();
  EXPECT_EQ(scaler.current_scale(), 8.0);
  clean_step();
  EXPECT_EQ(scaler.current_scale(), 32.0);
}

INSTANTIATE_TEST_SUITE_P(Cpu, GradScalerOnDevice, ::testing::Values(Device::cpu()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Sim, GradScalerOnDevice, ::testing::Values(Device::sim()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, GradScalerOnDevice, ::testing::Values(Device::cuda()),
                         glia::testing::device_param_name);

TEST(GradScaler, StateRoundTripsAndBadValuesAreRefused) {
  GradScaler a({.growth_interval = 5});
  a.set_state({.scale = 1024.0, .growth_tracker = 3});
  GradScaler b({.growth_interval = 5});
  b.set_state(a.state());
  EXPECT_EQ(b.current_scale(), 1024.0);
  EXPECT_EQ(b.state().growth_tracker, 3);
  EXPECT_NE(error_of([&] { b.set_state({.scale = 0.0, .growth_tracker = 0}); }).find("scale"),
            std::string::npos);
  EXPECT_NE(error_of([] { GradScaler({.backoff_factor = 1.5}); }).find("backoff_factor"),
            std::string::npos);
  EXPECT_NE(error_of([] { GradScaler({.growth_interval = 0}); }).find("growth_interval"),
            std::string::npos);
  Tensor w = from_vector(std::vector<float>{1}, {1}, Device::cpu(), true);
  sum(w).backward();
  GradScaler c;
  c.unscale_({w});
  EXPECT_NE(error_of([&] { c.unscale_({w}); }).find("twice"), std::string::npos);
}

}  // namespace
}  // namespace glia
