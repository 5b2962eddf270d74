// Grad-CAM and Grad-CAM++ against their definitions computed here from a second, identical model:
// the level's features with retain_grad, one backward of the sum of the target logits, then the
// weights, ReLU(sum_k w_k A_k), bilinear upsampling and min-max normalisation by hand. Also a
// level below the bottleneck, a fixed target class, sim against cpu, bad arguments, and that the
// model's modes, parameters, gradients and running statistics are exactly as before the call.
// The localisation scores and the overlay against hand-made masks and the colour map.
#include "nets/explain/gradcam.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "io/image_ops.h"
#include "nets/model/checkpoint.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia::nets {
namespace {

using glia::testing::all_close;
using glia::testing::error_of;
using glia::testing::random_tensor;

const UNetConfig kSmall{.base_filters = 4, .depth = 2, .cls_hidden = 16};

// Running statistics away from their initial values, so eval mode differs from train mode.
std::shared_ptr<MultiTaskUNet> trained_looking_model(std::uint64_t seed) {
  auto model = init_model(kSmall, seed);
  model->train();
  {
    NoGradGuard no_grad;
    for (int i = 0; i < 3; ++i)
      model->forward(random_tensor({4, 1, 32, 32}, -2, 2, 70 + i), true, true);
  }
  model->eval();
  return model;
}

// Every module's train flag in pre-order.
std::vector<bool> module_modes(const nn::Module& m) {
  std::vector<bool> out{m.is_training()};
  for (const auto& [name, child] : m.named_children()) {
    const std::vector<bool> sub = module_modes(*child);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

struct Reference {
  std::vector<float> raw, cams;
  std::vector<int> targets;
  int h = 0, w = 0;
};

// The definition on a fresh model: retain_grad on the level's features, one backward.
Reference reference_cam(std::uint64_t seed, const Tensor& x, int level, int target,
                        bool plus_plus) {
  auto model = trained_looking_model(seed);
  MultiTaskOutput out = model->forward(x, false, true);
  Tensor a = out.features[static_cast<std::size_t>(level)];
  a.retain_grad();
  const std::vector<float> logits = out.cls_logits.to_vector<float>();
  const index_t n = x.size(0);
  Reference ref;
  std::vector<float> seed_grad(logits.size(), 0.0f);
  for (index_t i = 0; i < n; ++i) {
    const int t = target >= 0 ? target : (logits[2 * i + 1] > logits[2 * i] ? 1 : 0);
    ref.targets.push_back(t);
    seed_grad[static_cast<std::size_t>(2 * i + t)] = 1.0f;
  }
  out.cls_logits.backward(from_vector(seed_grad, out.cls_logits.shape()));
  const std::vector<float> av = a.to_vector<float>(), gv = a.grad().to_vector<float>();
  const index_t k_count = a.size(1), h = a.size(2), w = a.size(3), plane = h * w;
  ref.h = static_cast<int>(h);
  ref.w = static_cast<int>(w);
  for (index_t i = 0; i < n; ++i) {
    std::vector<double> cam(static_cast<std::size_t>(plane), 0.0);
    for (index_t k = 0; k < k_count; ++k) {
      const std::size_t base = static_cast<std::size_t>((i * k_count + k) * plane);
      double weight = 0.0, a_sum = 0.0;
      for (index_t j = 0; j < plane; ++j) a_sum += av[base + j];
      for (index_t j = 0; j < plane; ++j) {
        const double g = gv[base + j];
        if (plus_plus) {
          const double d = 2 * g * g + a_sum * g * g * g;
          weight += (d != 0 ? g * g / d : 0.0) * std::max(g, 0.0);
        } else {
          weight += g / static_cast<double>(plane);
        }
      }
      for (index_t j = 0; j < plane; ++j) cam[static_cast<std::size_t>(j)] += weight * av[base + j];
    }
    std::vector<float> raw;
    for (double v : cam) raw.push_back(static_cast<float>(std::max(v, 0.0)));
    std::vector<float> up = io::resize_bilinear(raw, ref.h, ref.w, static_cast<int>(x.size(2)),
                                                static_cast<int>(x.size(3)));
    const float lo = *std::min_element(up.begin(), up.end());
    const float hi = *std::max_element(up.begin(), up.end());
    for (float& v : up) v = hi > lo ? (v - lo) / (hi - lo) : 0.0f;
    ref.raw.insert(ref.raw.end(), raw.begin(), raw.end());
    ref.cams.insert(ref.cams.end(), up.begin(), up.end());
  }
  return ref;
}

void expect_matches(const GradCamResult& got, const Reference& ref, index_t n, index_t size) {
  ASSERT_EQ(got.raw.shape(), (Shape{n, 1, ref.h, ref.w}));
  ASSERT_EQ(got.cams.shape(), (Shape{n, 1, size, size}));
  EXPECT_EQ(got.target_classes, ref.targets);
  const std::vector<float> raw = got.raw.to_vector<float>();
  // Raw maps are small (gradients of a logit through a few layers): the absolute tolerance
  // scales with the map, so a wrong factor in the weights cannot hide under it.
  const double scale = *std::max_element(ref.raw.begin(), ref.raw.end());
  EXPECT_TRUE(all_close(raw, ref.raw, {1e-5 * scale, 1e-4}));
  EXPECT_TRUE(all_close(got.cams.to_vector<float>(), ref.cams, {1e-4, 1e-4}));
  EXPECT_GT(*std::max_element(raw.begin(), raw.end()), 0.0f) << "an all-zero CAM tests nothing";
}

TEST(GradCamTest, BottleneckMatchesTheDefinition) {
  const Tensor x = random_tensor({3, 1, 32, 32}, -2, 2, 5);
  auto model = trained_looking_model(11);
  const GradCamResult got = grad_cam(*model, x);
  expect_matches(got, reference_cam(11, x, 2, -1, false), 3, 32);
  // Probabilities are softmax class 1 of the eval forward.
  NoGradGuard no_grad;
  const std::vector<float> logits = model->forward(x, false, true).cls_logits.to_vector<float>();
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(got.probabilities[i], 1.0 / (1.0 + std::exp(logits[2 * i] - logits[2 * i + 1])),
                1e-6);
  }
}

TEST(GradCamTest, PlusPlusMatchesItsFormula) {
  const Tensor x = random_tensor({2, 1, 32, 32}, -2, 2, 6);
  auto model = trained_looking_model(12);
  const GradCamResult got = grad_cam(*model, x, {.plus_plus = true});
  expect_matches(got, reference_cam(12, x, 2, -1, true), 2, 32);
  // Different weights from plain Grad-CAM on the same input.
  EXPECT_FALSE(all_close(got.raw.to_vector<float>(), grad_cam(*model, x).raw.to_vector<float>(),
                         {1e-6, 1e-4}));
}

TEST(GradCamTest, ALowerLevelAndAFixedClass) {
  const Tensor x = random_tensor({2, 1, 32, 32}, -2, 2, 7);
  auto model = trained_looking_model(13);
  for (int target : {0, 1}) {
    SCOPED_TRACE(target);
    const GradCamResult got = grad_cam(*model, x, {.level = 1, .target_class = target});
    expect_matches(got, reference_cam(13, x, 1, target, false), 2, 32);
    EXPECT_EQ(got.raw.size(2), 16);
  }
  const GradCamResult top = grad_cam(*model, x, {.level = 0, .plus_plus = true});
  expect_matches(top, reference_cam(13, x, 0, -1, true), 2, 32);
}

TEST(GradCamTest, LeavesTheModelAsItWas) {
  auto model = trained_looking_model(14);
  model->train();
  // Gradients from an earlier backward, which Grad-CAM must neither use nor change.
  const Tensor x = random_tensor({2, 1, 32, 32}, -2, 2, 8);
  {
    MultiTaskOutput out = model->forward(x, true, true);
    sum(out.seg_logits).backward();
  }
  // A mixed state must come back exactly: the frozen decoder's batch norms in eval, the head in
  // eval, the rest training.
  model->freeze(Component::decoder);
  model->cls_head().eval();
  std::map<std::string, std::vector<float>> values, grads;
  std::map<std::string, bool> records;
  for (const auto& [name, t] : model->state_dict()) values[name] = t.to_vector<float>();
  for (const auto& [name, p] : model->named_parameters()) {
    records[name] = p.requires_grad();
    if (p.grad().defined()) grads[name] = p.grad().to_vector<float>();
  }
  ASSERT_FALSE(grads.empty());
  const std::vector<bool> modes = module_modes(*model);
  ASSERT_NE(std::count(modes.begin(), modes.end(), true), 0);
  ASSERT_NE(std::count(modes.begin(), modes.end(), false), 0);
  grad_cam(*model, x, {.plus_plus = true});
  grad_cam(*model, x, {.level = 0});
  EXPECT_EQ(module_modes(*model), modes);
  for (const auto& [name, t] : model->state_dict())
    EXPECT_EQ(t.to_vector<float>(), values[name]) << name;
  for (const auto& [name, p] : model->named_parameters()) {
    EXPECT_EQ(p.requires_grad(), records[name]) << name;
    ASSERT_EQ(p.grad().defined(), grads.count(name) == 1) << name;
    if (p.grad().defined()) {
      EXPECT_EQ(p.grad().to_vector<float>(), grads[name]) << name;
    }
  }
}

TEST(GradCamTest, SimMatchesCpu) {
  const Tensor x = random_tensor({2, 1, 32, 32}, -2, 2, 9);
  auto cpu = trained_looking_model(15);
  auto sim = trained_looking_model(15);
  sim->to(Device::sim());
  for (bool pp : {false, true}) {
    const GradCamResult a = grad_cam(*cpu, x, {.plus_plus = pp});
    const GradCamResult b = grad_cam(*sim, x, {.plus_plus = pp});
    EXPECT_TRUE(b.cams.device().is_cpu());
    EXPECT_TRUE(all_close(b.raw.to_vector<float>(), a.raw.to_vector<float>(), {1e-5, 1e-4}));
    EXPECT_TRUE(all_close(b.cams.to_vector<float>(), a.cams.to_vector<float>(), {1e-4, 1e-4}));
    EXPECT_EQ(b.target_classes, a.target_classes);
  }
}

TEST(GradCamTest, BadArgumentsAreNamed) {
  auto model = trained_looking_model(16);
  const Tensor x = random_tensor({1, 1, 32, 32}, -2, 2, 10);
  EXPECT_NE(error_of([&] { grad_cam(*model, x, {.level = 3}); }).find("level 3"),
            std::string::npos);
  EXPECT_NE(error_of([&] { grad_cam(*model, x, {.target_class = 2}); }).find("class 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              grad_cam(*model, zeros({1, 1, 30, 32}));
            }).find("[1, 1, 30, 32]"),
            std::string::npos);
  // Features of another level than the one asked for.
  EXPECT_NE(error_of([&] {
              grad_cam_from_features(*model, zeros({1, 4, 32, 32}), 32, 32);
            }).find("[1, 4, 32, 32]"),
            std::string::npos);
}

TEST(GradCamTest, LocalisationCountsEnergyAndPeakInsideTheDilatedMask) {
  const int h = 12, w = 10;
  std::vector<float> cam(h * w, 0.0f);
  std::vector<std::uint8_t> mask(h * w, 0);
  mask[3 * w + 3] = 1;  // one pixel
  cam[3 * w + 3] = 1.0f;
  cam[3 * w + 5] = 0.5f;  // two columns away: inside only after a dilation of 2
  cam[10 * w + 8] = 0.5f;
  Localisation l0 = localisation(cam, mask, h, w, 0);
  EXPECT_DOUBLE_EQ(l0.energy_inside, 1.0 / 2.0);
  EXPECT_TRUE(l0.peak_inside);
  Localisation l2 = localisation(cam, mask, h, w, 2);
  EXPECT_DOUBLE_EQ(l2.energy_inside, 1.5 / 2.0);
  // The peak moves outside.
  cam[10 * w + 8] = 2.0f;
  Localisation out = localisation(cam, mask, h, w, 2);
  EXPECT_FALSE(out.peak_inside);
  EXPECT_DOUBLE_EQ(out.energy_inside, 1.5 / 3.5);
  // No energy: no share, no hit.
  const Localisation none = localisation(std::vector<float>(h * w, 0.0f), mask, h, w);
  EXPECT_EQ(none.energy_inside, 0.0);
  EXPECT_FALSE(none.peak_inside);
  EXPECT_FALSE(error_of([&] { localisation(cam, mask, h, w + 1); }).empty());
}

TEST(GradCamTest, OverlayBlendsTheScaledGreyWithJet) {
  const int h = 4, w = 5;
  std::vector<float> image(h * w), cam(h * w);
  for (int j = 0; j < h * w; ++j) {
    image[j] = -1.0f + 0.25f * static_cast<float>(j);  // z-scores from -1 to 3.75
    cam[j] = static_cast<float>(j) / (h * w - 1);
  }
  const std::vector<std::uint8_t> jet = io::colormap_jet(cam, h, w);
  const std::vector<std::uint8_t> got = overlay_cam(image, cam, h, w, 0.4);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(h * w * 3));
  for (int j = 0; j < h * w; ++j) {
    const double grey = 255.0 * j / (h * w - 1);
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(got[3 * j + c], std::lround(0.6 * grey + 0.4 * jet[3 * j + c])) << j << " " << c;
    }
  }
  EXPECT_FALSE(error_of([&] { overlay_cam(image, cam, h, w, 1.5); }).empty());
}

}  // namespace
}  // namespace glia::nets
