// The predictor against the model's own eval-mode forward: logits equal (whatever the batch
// size), probability = softmax class 1, class = argmax, mask = sigmoid > threshold with its
// count and percentage; bad arguments are errors. Also sim against cpu.
#include "nets/predictor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "nets/checkpoint.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia::nets {
namespace {

using glia::testing::all_close;
using glia::testing::all_equal;
using glia::testing::error_of;
using glia::testing::random_tensor;

const UNetConfig kSmall{.base_filters = 4, .depth = 2, .cls_hidden = 16};

// Running statistics away from their initial values, so eval mode differs from train mode.
std::shared_ptr<MultiTaskUNet> trained_looking_model(std::uint64_t seed) {
  auto model = init_model(kSmall, seed);
  model->train();
  for (int i = 0; i < 3; ++i)
    model->forward(random_tensor({4, 1, 16, 16}, -2, 2, 50 + i), true, true);
  nn::assign_values(model->state_dict().at("decoder.head.bias"), from_vector<float>({0.3f}, {1}),
                    "decoder.head.bias");
  return model;
}

TEST(PredictorTest, MatchesTheModelsEvalForward) {
  auto model = trained_looking_model(3);
  const Tensor x = random_tensor({5, 1, 16, 16}, -2, 2, 9);
  std::vector<float> seg, cls;
  {
    NoGradGuard no_grad;
    model->eval();
    const MultiTaskOutput ref = model->forward(x, true, true);
    seg = ref.seg_logits.to_vector<float>();
    cls = ref.cls_logits.to_vector<float>();
  }
  // The threshold at the median probability, so the masks are neither empty nor full.
  std::vector<float> sorted = seg;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double threshold = 1.0 / (1.0 + std::exp(-double{sorted[sorted.size() / 2]}));

  model->train();
  Predictor predictor(model, Device::cpu(), {.batch = 2, .threshold = threshold});
  const PredictionBatch got = predictor.predict(x);
  EXPECT_FALSE(model->is_training());
  // Batches of 2 against one batch of 5: eval mode makes each image independent of the others.
  EXPECT_TRUE(all_close(got.seg_logits.to_vector<float>(), seg));
  EXPECT_TRUE(all_close(got.cls_logits.to_vector<float>(), cls));
  ASSERT_EQ(got.predictions.size(), 5u);
  std::int64_t total_pixels = 0;
  for (std::size_t i = 0; i < 5; ++i) {
    const Prediction& p = got.predictions[i];
    const double l0 = cls[2 * i], l1 = cls[2 * i + 1];
    EXPECT_NEAR(p.tumour_probability, 1.0 / (1.0 + std::exp(l0 - l1)), 1e-6);
    EXPECT_EQ(p.predicted_class, l1 > l0 ? 1 : 0);
    ASSERT_EQ(p.mask.size(), 256u);
    std::int64_t count = 0;
    for (std::size_t j = 0; j < 256; ++j) {
      const float logit = got.seg_logits.to_vector<float>()[i * 256 + j];
      const bool tumour = 1.0 / (1.0 + std::exp(-double{logit})) > threshold;
      EXPECT_EQ(p.mask[j], tumour ? 255 : 0);
      count += tumour;
    }
    EXPECT_EQ(p.tumour_pixels, count);
    EXPECT_DOUBLE_EQ(p.tumour_percent, 100.0 * static_cast<double>(count) / 256.0);
    total_pixels += count;
  }
  EXPECT_GT(total_pixels, 0) << "a mask that is never set tests nothing";
  EXPECT_LT(total_pixels, 5 * 256);
}

TEST(PredictorTest, BadArgumentsAreErrors) {
  auto model = init_model(kSmall, 1);
  EXPECT_FALSE(error_of([&] { Predictor(model, Device::cpu(), {.batch = 0}); }).empty());
  EXPECT_FALSE(error_of([&] { Predictor(model, Device::cpu(), {.threshold = 1.5}); }).empty());
  Predictor p(model, Device::cpu());
  const std::string msg = error_of([&] { p.predict(zeros({1, 1, 18, 16})); });
  EXPECT_NE(msg.find("[1, 1, 18, 16]"), std::string::npos) << msg;
  EXPECT_FALSE(error_of([&] { p.predict(zeros({1, 16, 16})); }).empty());
}

TEST(PredictorTest, OutputNameIsTheStem) {
  EXPECT_EQ(output_name("a/b/scan_12.png"), "scan_12");
  EXPECT_EQ(output_name("slice.npz"), "slice");
}

TEST(PredictorTest, SimMatchesCpu) {
  const Tensor x = random_tensor({2, 1, 16, 16}, -2, 2, 19);
  const PredictionBatch cpu = Predictor(trained_looking_model(4), Device::cpu()).predict(x);
  const PredictionBatch sim = Predictor(trained_looking_model(4), Device::sim()).predict(x);
  EXPECT_TRUE(all_close(sim.seg_logits.to_vector<float>(), cpu.seg_logits.to_vector<float>()));
  EXPECT_TRUE(all_close(sim.cls_logits.to_vector<float>(), cpu.cls_logits.to_vector<float>()));
  EXPECT_EQ(sim.predictions[1].predicted_class, cpu.predictions[1].predicted_class);
}

}  // namespace
}  // namespace glia::nets
