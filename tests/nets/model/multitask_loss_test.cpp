// The loss of each training stage against a reference written as plain loops in double from the
// formulas of nets/model/multitask_loss.h: stage 1 Dice + BCE averaged over the samples that have
// a mask, stage 2 cross-entropy (label smoothing, class weights) or focal loss over all samples,
// stage 3 lambda_seg * L_seg + lambda_cls * L_cls. A sample without a mask changes neither the
// segmentation term nor its gradient, and the gradients of the segmentation logits match central
// differences of the reference.
#include "nets/model/multitask_loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/ops.h"
#include "tests/common/tolerance.h"

namespace glia::nets {
namespace {

// A batch of n samples of h x w seg logits and C = 2 class logits, with a mask of either kind.
struct Batch {
  index_t n, h, w;
  std::vector<float> seg, cls, masks, has_mask;
  std::vector<std::int32_t> labels;
};

Batch random_batch(unsigned seed, const std::vector<float>& has_mask, index_t h, index_t w) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> logit(0.0f, 2.0f);
  std::bernoulli_distribution coin(0.4);
  Batch b{static_cast<index_t>(has_mask.size()), h, w, {}, {}, {}, has_mask, {}};
  for (index_t i = 0; i < b.n * h * w; ++i) {
    b.seg.push_back(logit(rng));
    b.masks.push_back(coin(rng) ? 1.0f : 0.0f);
  }
  for (index_t i = 0; i < b.n; ++i) {
    b.cls.push_back(logit(rng));
    b.cls.push_back(logit(rng));
    b.labels.push_back(coin(rng) ? 1 : 0);
  }
  return b;
}

struct Inputs {
  MultiTaskOutput out;
  Tensor masks, has_mask, labels;
};

Inputs inputs_of(const Batch& b, bool with_seg = true, bool with_cls = true) {
  Inputs in;
  if (with_seg) in.out.seg_logits = from_vector(b.seg, {b.n, 1, b.h, b.w}, Device::cpu(), true);
  if (with_cls) in.out.cls_logits = from_vector(b.cls, {b.n, 2}, Device::cpu(), true);
  in.masks = from_vector(b.masks, {b.n, 1, b.h, b.w});
  in.has_mask = from_vector(b.has_mask, {b.n});
  in.labels = from_vector(b.labels, {b.n});
  return in;
}

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// L_seg: per sample dice_weight * (1 - (2 sum p t + s) / (sum p + sum t + s)) + bce_weight *
// mean of -(pos_weight t log p + (1 - t) log(1 - p)), averaged over the samples with a mask.
double reference_seg(const Batch& b, const std::vector<float>& seg, const LossConfig& c) {
  const index_t pixels = b.h * b.w;
  double sum = 0, count = 0;
  for (index_t n = 0; n < b.n; ++n) {
    if (b.has_mask[n] <= 0) continue;
    double inter = 0, sum_p = 0, sum_t = 0, bce = 0;
    for (index_t i = 0; i < pixels; ++i) {
      const double p = sigmoid(seg[n * pixels + i]), t = b.masks[n * pixels + i];
      inter += p * t;
      sum_p += p;
      sum_t += t;
      bce -= c.pos_weight * t * std::log(p) + (1 - t) * std::log(1 - p);
    }
    const double dice = 1 - (2 * inter + c.dice_smooth) / (sum_p + sum_t + c.dice_smooth);
    sum += c.dice_weight * dice + c.bce_weight * bce / static_cast<double>(pixels);
    count += 1;
  }
  return count > 0 ? sum / count : 0.0;
}

// L_cls as PyTorch's cross_entropy(weight, label_smoothing) or the focal loss, with the class
// weights (weight_no_tumor, weight_tumor).
double reference_cls(const Batch& b, const LossConfig& c) {
  const double weight[2] = {c.weight_no_tumor, c.weight_tumor};
  double sum = 0, denominator = 0;
  for (index_t n = 0; n < b.n; ++n) {
    const double z0 = b.cls[2 * n], z1 = b.cls[2 * n + 1];
    const double top = std::max(z0, z1);
    const double log_sum = top + std::log(std::exp(z0 - top) + std::exp(z1 - top));
    const double log_p[2] = {z0 - log_sum, z1 - log_sum};
    const int t = b.labels[n];
    if (c.cls == "focal") {
      const double p_t = std::exp(log_p[t]);
      sum -= weight[t] * std::pow(1 - p_t, c.focal_gamma) * log_p[t];
      denominator += 1;
    } else {
      const double e = c.label_smoothing;
      sum -= (1 - e) * weight[t] * log_p[t] + e / 2 * (weight[0] * log_p[0] + weight[1] * log_p[1]);
      denominator += weight[t];
    }
  }
  return sum / denominator;
}

LossConfig seg_config() {
  LossConfig c;
  c.dice_weight = 0.3;
  c.bce_weight = 0.7;
  c.dice_smooth = 0.5;
  c.pos_weight = 2.0;
  return c;
}

LossConfig cls_config(const std::string& kind) {
  LossConfig c;
  c.cls = kind;
  c.label_smoothing = 0.1;
  c.weight_no_tumor = 0.7;
  c.weight_tumor = 1.8;
  c.focal_gamma = 1.5;
  return c;
}

// A logged term (computed in float32) against the reference.
::testing::AssertionResult close(double got, double ref) {
  return testing::all_close(std::vector<float>{static_cast<float>(got)}, std::vector<double>{ref});
}

// Central differences of the reference L_seg with respect to each seg logit.
std::vector<double> reference_seg_grad(const Batch& b, const LossConfig& c, double scale) {
  constexpr double kStep = 1e-4;
  std::vector<double> grad(b.seg.size());
  std::vector<float> seg = b.seg;
  for (std::size_t i = 0; i < seg.size(); ++i) {
    // The reference reads floats; perturb in double through a shifted copy of the logit.
    const float x = b.seg[i];
    seg[i] = static_cast<float>(x + kStep);
    const double up = reference_seg(b, seg, c);
    const double up_step = static_cast<double>(seg[i]) - x;
    seg[i] = static_cast<float>(x - kStep);
    const double down = reference_seg(b, seg, c);
    const double down_step = x - static_cast<double>(seg[i]);
    seg[i] = x;
    grad[i] = scale * (up - down) / (up_step + down_step);
  }
  return grad;
}

// The difference quotient is exact to O(step^2) (the steps are measured after rounding the
// logit to float); the float32 backward rounds. The gradients are of the order of
// 1 / (samples * pixels), so the absolute part of the float tolerance is scaled down with them.
constexpr testing::Tolerance kGradTolerance{1e-8, 1e-4};

TEST(MultitaskLoss, StageOneIsDiceAndBceOverTheMaskedSamples) {
  const Batch b = random_batch(11, {1, 0, 1, 1, 0}, 7, 9);
  const LossConfig c = seg_config();
  const Inputs in = inputs_of(b);
  const LossParts parts = multitask_loss(in.out, in.masks, in.has_mask, in.labels, c, 1);
  const double ref = reference_seg(b, b.seg, c);
  EXPECT_TRUE(parts.has_seg);
  EXPECT_FALSE(parts.has_cls);
  EXPECT_TRUE(close(parts.seg, ref));
  EXPECT_TRUE(testing::all_close(parts.total.to_vector<float>(), std::vector<double>{ref}));

  // Only the seg logits of the masked samples receive a gradient, and it is the reference's.
  parts.total.backward();
  const std::vector<float> grad = in.out.seg_logits.grad().to_vector<float>();
  EXPECT_TRUE(testing::all_close(grad, reference_seg_grad(b, c, 1.0), kGradTolerance));
  const index_t pixels = b.h * b.w;
  for (index_t n = 0; n < b.n; ++n) {
    if (b.has_mask[n] > 0) continue;
    for (index_t i = 0; i < pixels; ++i) ASSERT_EQ(grad[n * pixels + i], 0.0f) << "sample " << n;
  }
  EXPECT_FALSE(in.out.cls_logits.grad().defined() &&
               in.out.cls_logits.grad().to_vector<float>() != std::vector<float>(2 * b.n, 0.0f))
      << "stage 1 must not train the classification output";
}

TEST(MultitaskLoss, ASampleWithoutAMaskChangesNothing) {
  const LossConfig c = seg_config();
  // The same three masked samples, then with two unmasked ones around them whose logits and
  // (all-zero) masks would change any average over all samples.
  const Batch masked = random_batch(5, {1, 1, 1}, 6, 5);
  Batch mixed = random_batch(6, {0, 1, 1, 1, 0}, 6, 5);
  const index_t pixels = 6 * 5;
  for (index_t n = 0; n < 3; ++n) {
    for (index_t i = 0; i < pixels; ++i) {
      mixed.seg[(n + 1) * pixels + i] = masked.seg[n * pixels + i];
      mixed.masks[(n + 1) * pixels + i] = masked.masks[n * pixels + i];
    }
  }
  for (int stage : {1, 3}) {
    SCOPED_TRACE("stage " + std::to_string(stage));
    const Inputs a = inputs_of(masked), m = inputs_of(mixed);
    const LossParts pa = multitask_loss(a.out, a.masks, a.has_mask, a.labels, c, stage);
    const LossParts pm = multitask_loss(m.out, m.masks, m.has_mask, m.labels, c, stage);
    EXPECT_TRUE(close(pm.seg, pa.seg));
  }
  // A batch without any mask: L_seg = 0, not NaN, and stage 3 is the classification term alone.
  const Batch none = random_batch(7, {0, 0, 0, 0}, 4, 4);
  const Inputs in = inputs_of(none);
  LossConfig joint = cls_config("cross_entropy");
  joint.lambda_cls = 1.5;
  const LossParts parts = multitask_loss(in.out, in.masks, in.has_mask, in.labels, joint, 3);
  EXPECT_EQ(parts.seg, 0.0);
  EXPECT_TRUE(testing::all_close(parts.total.to_vector<float>(),
                                 std::vector<double>{1.5 * reference_cls(none, joint)}));
}

TEST(MultitaskLoss, StageTwoIsTheClassificationLossOverAllSamples) {
  for (const char* kind : {"cross_entropy", "focal"}) {
    SCOPED_TRACE(kind);
    const LossConfig c = cls_config(kind);
    // Unmasked samples count here: the classification term takes every sample.
    const Batch b = random_batch(21, {1, 0, 0, 1, 0, 1, 0}, 4, 4);
    // Stage 2 does not need the segmentation output.
    const Inputs in = inputs_of(b, /*with_seg=*/false);
    const LossParts parts = multitask_loss(in.out, in.masks, in.has_mask, in.labels, c, 2);
    const double ref = reference_cls(b, c);
    EXPECT_FALSE(parts.has_seg);
    EXPECT_TRUE(parts.has_cls);
    EXPECT_TRUE(close(parts.cls, ref));
    EXPECT_TRUE(testing::all_close(parts.total.to_vector<float>(), std::vector<double>{ref}));
    parts.total.backward();
    const std::vector<float> grad = in.out.cls_logits.grad().to_vector<float>();
    for (index_t n = 0; n < b.n; ++n) {
      EXPECT_NE(grad[2 * n], 0.0f) << "sample " << n << " takes no part in L_cls";
    }
  }
}

TEST(MultitaskLoss, StageThreeWeighsTheTwoTerms) {
  for (const char* kind : {"cross_entropy", "focal"}) {
    SCOPED_TRACE(kind);
    LossConfig c = cls_config(kind);
    const LossConfig s = seg_config();
    c.dice_weight = s.dice_weight;
    c.bce_weight = s.bce_weight;
    c.dice_smooth = s.dice_smooth;
    c.pos_weight = s.pos_weight;
    // Different lambdas, so that swapping them shows.
    c.lambda_seg = 0.4;
    c.lambda_cls = 2.5;
    const Batch b = random_batch(31, {0, 1, 1, 0, 1, 1}, 5, 7);
    const Inputs in = inputs_of(b);
    const LossParts parts = multitask_loss(in.out, in.masks, in.has_mask, in.labels, c, 3);
    const double seg = reference_seg(b, b.seg, c), cls = reference_cls(b, c);
    EXPECT_TRUE(parts.has_seg && parts.has_cls);
    // The logged terms are unweighted; the total weighs them.
    EXPECT_TRUE(close(parts.seg, seg));
    EXPECT_TRUE(close(parts.cls, cls));
    EXPECT_TRUE(testing::all_close(parts.total.to_vector<float>(),
                                   std::vector<double>{c.lambda_seg * seg + c.lambda_cls * cls}));
    parts.total.backward();
    EXPECT_TRUE(testing::all_close(in.out.seg_logits.grad().to_vector<float>(),
                                   reference_seg_grad(b, c, c.lambda_seg), kGradTolerance));
  }
}

}  // namespace
}  // namespace glia::nets
