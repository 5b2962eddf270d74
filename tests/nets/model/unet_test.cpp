// The multi-task U-Net: parameter counts against the closed form of the architecture, names,
// output shapes, the input-size error, freezing with batch norms held in eval, an f64 gradient
// check of a tiny model (input by tests/common/gradcheck.h, every parameter tensor by central
// differences on sampled elements), and sim against cpu for forward and backward.
#include "nets/model/unet.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/grad_mode.h"
#include "engine/losses.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "tests/common/gradcheck.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia::nets {
namespace {

using glia::testing::all_close;
using glia::testing::error_of;
using glia::testing::host_doubles;
using glia::testing::random_tensor;

// Parameters of the architecture in closed form, from the layer shapes of unet.h.
struct Expected {
  std::int64_t encoder = 0, decoder = 0, cls_head = 0;
};
Expected closed_form(const UNetConfig& c) {
  auto ch = [&](int i) -> std::int64_t { return std::int64_t{c.base_filters} << i; };
  auto double_conv = [](std::int64_t cin, std::int64_t cout) {
    return cin * cout * 9 + 2 * cout + cout * cout * 9 + 2 * cout;  // two convs, two affine bns
  };
  Expected e;
  e.encoder = double_conv(c.in_channels, ch(0));
  for (int i = 1; i <= c.depth; ++i) e.encoder += double_conv(ch(i - 1), ch(i));
  for (int i = c.depth; i >= 1; --i) {
    e.decoder += ch(i) * ch(i - 1) * 4 + ch(i - 1) + double_conv(ch(i), ch(i - 1));
  }
  e.decoder += ch(0) * c.out_channels + c.out_channels;
  e.cls_head =
      ch(c.depth) * c.cls_hidden + c.cls_hidden + c.cls_hidden * c.num_classes + c.num_classes;
  return e;
}

TEST(UNetTest, ParameterCountsMatchTheArchitecture) {
  for (const UNetConfig& c : {UNetConfig{}, UNetConfig{.base_filters = 64, .depth = 4},
                              UNetConfig{.in_channels = 3, .base_filters = 4, .depth = 2}}) {
    MultiTaskUNet model(c);
    const ParameterCounts n = model.parameter_counts();
    const Expected e = closed_form(c);
    EXPECT_EQ(n.encoder, e.encoder);
    EXPECT_EQ(n.decoder, e.decoder);
    EXPECT_EQ(n.cls_head, e.cls_head);
    EXPECT_EQ(n.total, e.encoder + e.decoder + e.cls_head);
  }
  // The figures the issue states for the default and the large model.
  const Expected d = closed_form(UNetConfig{});
  EXPECT_EQ(d.encoder + d.decoder + d.cls_head, 1992739);
  EXPECT_EQ(d.encoder, 1172640);
  EXPECT_EQ(d.decoder, 753793);
  EXPECT_EQ(d.cls_head, 66306);
  const Expected big = closed_form(UNetConfig{.base_filters = 64, .depth = 4});
  EXPECT_EQ(big.encoder + big.decoder + big.cls_head, 31299395);
}

TEST(UNetTest, NamesArePyTorchDottedPaths) {
  MultiTaskUNet model(UNetConfig{.base_filters = 4, .depth = 2});
  const auto state = model.state_dict();
  for (const char* key : {"encoder.blocks.0.conv1.weight", "encoder.blocks.2.bn2.running_var",
                          "encoder.blocks.1.bn1.bias", "decoder.ups.0.weight", "decoder.ups.1.bias",
                          "decoder.blocks.1.conv2.weight", "decoder.head.weight",
                          "decoder.head.bias", "cls_head.fc1.weight", "cls_head.fc2.bias"}) {
    EXPECT_TRUE(state.count(key)) << key;
  }
  EXPECT_FALSE(state.count("encoder.blocks.0.conv1.bias")) << "convs before a bn have no bias";
  EXPECT_EQ(state.at("decoder.ups.0.weight").shape(), (Shape{16, 8, 2, 2}));
  EXPECT_EQ(state.at("decoder.blocks.0.conv1.weight").shape(), (Shape{8, 16, 3, 3}));
  EXPECT_EQ(state.at("cls_head.fc1.weight").shape(), (Shape{256, 16}));
}

TEST(UNetTest, OutputShapesAndFlags) {
  MultiTaskUNet model(UNetConfig{.base_filters = 4, .depth = 2});
  const Tensor x = random_tensor({3, 1, 16, 24}, -1, 1, 1);
  MultiTaskOutput out = model.forward(x, true, true);
  EXPECT_EQ(out.seg_logits.shape(), (Shape{3, 1, 16, 24}));
  EXPECT_EQ(out.cls_logits.shape(), (Shape{3, 2}));
  ASSERT_EQ(out.features.size(), 3u);
  EXPECT_EQ(out.features.back().shape(), (Shape{3, 16, 4, 6}));
  out = model.forward(x, false, true);
  EXPECT_FALSE(out.seg_logits.defined());
  EXPECT_TRUE(out.cls_logits.defined());
  out = model.forward(x, true, false);
  EXPECT_FALSE(out.cls_logits.defined());
}

TEST(UNetTest, InputNotDivisibleByTwoToTheDepthIsAnError) {
  MultiTaskUNet model(UNetConfig{.base_filters = 2, .depth = 3});
  const std::string msg = error_of([&] { model.forward(zeros({1, 1, 20, 16}), true, true); });
  EXPECT_NE(msg.find("[1, 1, 20, 16]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("8"), std::string::npos) << msg;
  EXPECT_FALSE(error_of([&] { model.forward(zeros({1, 2, 16, 16}), true, true); }).empty());
  EXPECT_FALSE(error_of([] { MultiTaskUNet bad(UNetConfig{.depth = 0}); }).empty());
}

TEST(UNetTest, SameSeedSameModel) {
  Generator g1(5), g2(5), g3(6);
  MultiTaskUNet a(UNetConfig{.base_filters = 2, .depth = 2}, &g1);
  MultiTaskUNet b(UNetConfig{.base_filters = 2, .depth = 2}, &g2);
  MultiTaskUNet c(UNetConfig{.base_filters = 2, .depth = 2}, &g3);
  const auto sa = a.state_dict(), sb = b.state_dict(), sc = c.state_dict();
  bool any_differs = false;
  for (const auto& [name, t] : sa) {
    EXPECT_TRUE(glia::testing::all_equal(sb.at(name).to_vector<float>(), t.to_vector<float>()))
        << name;
    if (sc.at(name).to_vector<float>() != t.to_vector<float>()) any_differs = true;
  }
  EXPECT_TRUE(any_differs);
}

TEST(UNetTest, FreezeStopsGradientsAndHoldsBatchNormsInEval) {
  MultiTaskUNet model(UNetConfig{.base_filters = 2, .depth = 2, .cls_dropout = 0.0});
  model.train();
  model.freeze(Component::encoder);
  EXPECT_TRUE(model.is_frozen(Component::encoder));
  const Tensor bn_mean = model.state_dict().at("encoder.blocks.0.bn1.running_mean");
  const Tensor dec_mean = model.state_dict().at("decoder.blocks.0.bn1.running_mean");
  const std::vector<float> enc_before = bn_mean.to_vector<float>();
  const std::vector<float> dec_before = dec_mean.to_vector<float>();

  const Tensor x = random_tensor({2, 1, 8, 8}, -1, 1, 3);
  MultiTaskOutput out = model.forward(x, true, true);
  sum(out.seg_logits).backward();
  sum(out.cls_logits).backward();
  for (const auto& [name, p] : model.named_parameters()) {
    const bool in_encoder = name.rfind("encoder.", 0) == 0;
    EXPECT_EQ(p.requires_grad(), !in_encoder) << name;
    EXPECT_EQ(p.grad().defined(), !in_encoder) << name;
  }
  // The frozen encoder's statistics stay; the trained decoder's move.
  EXPECT_EQ(bn_mean.to_vector<float>(), enc_before);
  EXPECT_NE(dec_mean.to_vector<float>(), dec_before);
  EXPECT_FALSE(model.submodule("encoder.blocks.1.bn2")->is_training());
  EXPECT_TRUE(model.submodule("decoder.blocks.0.bn2")->is_training());

  // Re-entering train mode keeps the rule; unfreezing lifts it.
  model.eval();
  model.train();
  EXPECT_FALSE(model.submodule("encoder.blocks.0.bn1")->is_training());
  model.unfreeze(Component::encoder);
  EXPECT_TRUE(model.submodule("encoder.blocks.0.bn1")->is_training());
  for (const auto& [name, p] : model.named_parameters()) EXPECT_TRUE(p.requires_grad()) << name;

  // Without frozen_bn_eval, a frozen component's batch norms follow the model's mode.
  model.set_frozen_bn_eval(false);
  model.freeze(Component::cls_head);
  model.freeze(Component::decoder);
  EXPECT_TRUE(model.submodule("decoder.blocks.0.bn1")->is_training());
  model.set_frozen_bn_eval(true);
  EXPECT_FALSE(model.submodule("decoder.blocks.0.bn1")->is_training());
  EXPECT_TRUE(model.submodule("encoder.blocks.0.bn1")->is_training());
}

// Converts every parameter and buffer to f64 in place (handles stay valid), for gradient checks.
void to_f64(nn::Module& m) {
  auto convert = [](Tensor t) {
    const Tensor c = t.detach().to(DType::f64);
    t.impl()->storage = c.impl()->storage;
    t.impl()->offset = c.impl()->offset;
    t.impl()->dtype = DType::f64;
  };
  for (auto& [name, t] : m.named_parameters()) convert(t);
  for (auto& [name, t] : m.named_buffers()) convert(t);
}

// Scalar loss of both heads with fixed weights, so every output element matters.
Tensor joint_objective(MultiTaskUNet& model, const Tensor& x, const Tensor& wseg,
                       const Tensor& wcls) {
  MultiTaskOutput out = model.forward(x, true, true);
  return add(sum(mul(out.seg_logits, wseg)), sum(mul(out.cls_logits, wcls)));
}

TEST(UNetTest, GradcheckF64TinyModel) {
  const UNetConfig config{.base_filters = 2, .depth = 2, .cls_hidden = 8, .cls_dropout = 0.0};
  Generator gen(11);
  MultiTaskUNet model(config, &gen);
  to_f64(model);
  // Train mode: the batch-statistics backward of every batch norm is part of the check (the
  // running-statistics updates each probe makes do not enter the output).
  model.train();
  const Tensor x = random_tensor({2, 1, 8, 8}, -1, 1, 21, DType::f64);
  const Tensor wseg = random_tensor({2, 1, 8, 8}, -1, 1, 22, DType::f64);
  const Tensor wcls = random_tensor({2, 2}, -1, 1, 23, DType::f64);

  // The input gradient through both heads.
  for (const bool seg : {true, false}) {
    const GradcheckResult r = gradcheck(
        [&](const std::vector<Tensor>& in) {
          MultiTaskOutput out = model.forward(in[0], seg, !seg);
          return seg ? out.seg_logits : out.cls_logits;
        },
        {x});
    EXPECT_TRUE(r.ok) << (seg ? "seg: " : "cls: ") << r.message;
    EXPECT_GT(r.checked, 100u);
  }

  // Every parameter tensor: its backward gradient against central differences on a few elements.
  Tensor xin = x.detach();
  model.zero_grad();
  joint_objective(model, xin, wseg, wcls).backward();
  const double eps = 1e-6;
  std::size_t checked = 0;
  for (auto& [name, p] : model.named_parameters()) {
    const std::vector<double> grad = p.grad().to_vector<double>();
    double* data = p.data<double>();
    const std::size_t n = grad.size();
    for (std::size_t k : {std::size_t{0}, n / 2, n - 1}) {
      NoGradGuard no_grad;
      const double saved = data[k];
      data[k] = saved + eps;
      const double up = joint_objective(model, xin, wseg, wcls).item<double>();
      data[k] = saved - eps;
      const double down = joint_objective(model, xin, wseg, wcls).item<double>();
      data[k] = saved;
      const double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(grad[k], numeric, 1e-5 + 1e-4 * std::fabs(numeric)) << name << "[" << k << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 3u * 30);
}

// A binary mask drawn on the host.
Tensor random_mask(const Shape& shape, unsigned seed, Device device) {
  std::vector<float> v = random_tensor(shape, 0, 1, seed).to_vector<float>();
  for (float& e : v) e = e < 0.3f ? 1.0f : 0.0f;
  return from_vector(v, shape, device);
}

// A train-mode step of the small model on `device`: seg and cls logits, loss and every gradient.
struct StepResult {
  std::vector<double> seg, cls, loss;
  std::map<std::string, std::vector<double>> grads, buffers;
};
StepResult train_step(Device device) {
  Generator gen(3);
  MultiTaskUNet model(UNetConfig{.base_filters = 4, .depth = 2, .cls_dropout = 0.0}, &gen);
  model.to(device);
  model.train();
  const Tensor x = random_tensor({2, 1, 32, 32}, -1, 1, 31, DType::f32, device);
  const Tensor mask = random_mask({2, 1, 32, 32}, 32, device);
  MultiTaskOutput out = model.forward(x, true, true);
  const Tensor target = from_vector<std::int32_t>({1, 0}, {2}, device);
  const Tensor loss =
      add(dice_bce_loss(out.seg_logits, mask), cross_entropy(out.cls_logits, target));
  loss.backward();
  StepResult r{
      host_doubles(out.seg_logits), host_doubles(out.cls_logits), host_doubles(loss), {}, {}};
  for (const auto& [name, p] : model.named_parameters()) r.grads[name] = host_doubles(p.grad());
  for (const auto& [name, b] : model.named_buffers()) r.buffers[name] = host_doubles(b);
  return r;
}

// The sim device runs the CUDA kernels; one small batch keeps it quick.
TEST(UNetTest, SimMatchesCpuForwardAndBackward) {
  // Results are read back as doubles; the comparison is of f32 computations.
  constexpr glia::testing::Tolerance kF32 = glia::testing::default_tolerance<float>();
  const StepResult cpu = train_step(Device::cpu());
  const StepResult sim = train_step(Device::sim());
  EXPECT_TRUE(all_close(sim.seg, cpu.seg, kF32));
  EXPECT_TRUE(all_close(sim.cls, cpu.cls, kF32));
  EXPECT_TRUE(all_close(sim.loss, cpu.loss, kF32));
  ASSERT_EQ(sim.grads.size(), cpu.grads.size());
  for (const auto& [name, g] : cpu.grads)
    EXPECT_TRUE(all_close(sim.grads.at(name), g, kF32)) << name;
  for (const auto& [name, b] : cpu.buffers)
    EXPECT_TRUE(all_close(sim.buffers.at(name), b, kF32)) << name;
}

}  // namespace
}  // namespace glia::nets
