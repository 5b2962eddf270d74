// The predictor against the model's own eval-mode forward: logits equal (whatever the batch
// size), probability = softmax class 1, class = argmax, mask = sigmoid > threshold with its
// count and percentage; bad arguments are errors. Also sim against cpu. The full version:
// conditional masks on both sides of cls_threshold, the recommendation bands, Grad-CAM through
// the predictor equal to grad_cam, MC dropout (passes differ with dropout on; with dropout off
// they equal the eval forward, which fails if batch norm ran in train mode; the model is left
// unchanged; the masks come from the predictor's own generator, never the model's or the default
// one), recommendation bands from the options, concurrent calls equal to sequential ones, and
// folder expansion. Options per call equal a predictor built with them; classification only
// (segment off) gives the full run's class outputs without running the decoder.
#include "nets/infer/predictor.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "io/atomic_file.h"
#include "nets/infer/inference.h"
#include "nets/model/checkpoint.h"
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
  // Both extensions of a compressed volume go, whatever their case.
  EXPECT_EQ(output_name("in/subject_flair.nii.gz"), "subject_flair");
  EXPECT_EQ(output_name("SUBJECT.NII.GZ"), "SUBJECT");
  EXPECT_EQ(output_name("subject_flair.nii"), "subject_flair");
}

TEST(PredictorTest, SimMatchesCpu) {
  const Tensor x = random_tensor({2, 1, 16, 16}, -2, 2, 19);
  const PredictionBatch cpu = Predictor(trained_looking_model(4), Device::cpu()).predict(x);
  const PredictionBatch sim = Predictor(trained_looking_model(4), Device::sim()).predict(x);
  EXPECT_TRUE(all_close(sim.seg_logits.to_vector<float>(), cpu.seg_logits.to_vector<float>()));
  EXPECT_TRUE(all_close(sim.cls_logits.to_vector<float>(), cpu.cls_logits.to_vector<float>()));
  EXPECT_EQ(sim.predictions[1].predicted_class, cpu.predictions[1].predicted_class);
}

TEST(PredictorTest, NoMaskBelowTheClassThreshold) {
  auto model = trained_looking_model(5);
  const Tensor x = random_tensor({3, 1, 16, 16}, -2, 2, 21);
  const PredictionBatch all = Predictor(model, Device::cpu(), {.cls_threshold = 0.0}).predict(x);
  std::vector<double> p;
  for (const Prediction& q : all.predictions) {
    EXPECT_TRUE(q.mask_available);
    EXPECT_EQ(q.mask.size(), 256u);
    p.push_back(q.tumour_probability);
  }
  // A threshold between the lowest and the others: exactly the lowest loses its mask.
  std::vector<double> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_LT(sorted[0], sorted[1]);
  const double cut = (sorted[0] + sorted[1]) / 2;
  const PredictionBatch some = Predictor(model, Device::cpu(), {.cls_threshold = cut}).predict(x);
  for (std::size_t i = 0; i < 3; ++i) {
    const Prediction& q = some.predictions[i];
    EXPECT_EQ(q.mask_available, p[i] >= cut);
    if (q.mask_available) {
      EXPECT_EQ(q.mask, all.predictions[i].mask);
      EXPECT_EQ(q.tumour_pixels, all.predictions[i].tumour_pixels);
    } else {
      EXPECT_TRUE(q.mask.empty());
      EXPECT_EQ(q.tumour_pixels, 0);
    }
    EXPECT_DOUBLE_EQ(q.tumour_probability, p[i]);
    EXPECT_EQ(q.recommendation, recommendation(p[i]));
    EXPECT_GE(q.latency_ms, 0.0);
  }
  EXPECT_FALSE(error_of([&] { Predictor(model, Device::cpu(), {.cls_threshold = -0.1}); }).empty());
  EXPECT_FALSE(error_of([&] { Predictor(model, Device::cpu(), {.mc_dropout = -1}); }).empty());
}

TEST(PredictorTest, RecommendationBands) {
  EXPECT_EQ(recommendation(0.9), "tumour likely: review the highlighted region");
  EXPECT_EQ(recommendation(0.7), "tumour likely: review the highlighted region");
  EXPECT_EQ(recommendation(0.69), "uncertain: radiologist review");
  EXPECT_EQ(recommendation(0.3), "uncertain: radiologist review");
  EXPECT_EQ(recommendation(0.29), "no tumour detected: routine follow-up");
  EXPECT_EQ(recommendation(0.9, 0.1), "tumour likely: review the highlighted region");
  EXPECT_EQ(recommendation(0.9, 0.2), "uncertain: radiologist review");
  EXPECT_EQ(recommendation(0.1, 0.2), "uncertain: radiologist review");
}

TEST(PredictorTest, GradCamThroughThePredictorIsGradCam) {
  auto model = trained_looking_model(6);
  const Tensor x = random_tensor({3, 1, 16, 16}, -2, 2, 22);
  const PredictionBatch got =
      Predictor(model, Device::cpu(), {.batch = 2, .gradcam = true}).predict(x);
  ASSERT_EQ(got.gradcam.shape(), (Shape{3, 1, 16, 16}));
  EXPECT_TRUE(
      all_close(got.gradcam.to_vector<float>(), grad_cam(*model, x).cams.to_vector<float>()));
  EXPECT_FALSE(got.seg_variance.defined());
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

TEST(PredictorTest, McDropoutPassesDifferAndLeaveTheModelUnchanged) {
  auto model = trained_looking_model(7);
  const Tensor x = random_tensor({2, 1, 16, 16}, -2, 2, 23);
  std::map<std::string, std::vector<float>> state;
  for (const auto& [name, t] : model->state_dict()) state[name] = t.to_vector<float>();
  model->train();
  const std::vector<bool> modes = module_modes(*model);
  const McDropoutStats stats = mc_dropout(*model, x, 6);
  EXPECT_EQ(module_modes(*model), modes);
  for (const auto& [name, t] : model->state_dict())
    EXPECT_EQ(t.to_vector<float>(), state[name]) << name;
  ASSERT_EQ(stats.mean.size(), 2u);
  // Dropout 0.3 in the head: the passes differ.
  EXPECT_GT(stats.std[0], 0.0);
  EXPECT_GT(stats.std[1], 0.0);
  // The decoder has no dropout, so sigmoid(seg) is the same every pass.
  ASSERT_EQ(stats.seg_variance.size(), 2u * 256u);
  EXPECT_LT(*std::max_element(stats.seg_variance.begin(), stats.seg_variance.end()), 1e-10f);

  // Through the predictor: the model ends in eval with the same statistics.
  const PredictionBatch got = Predictor(model, Device::cpu(), {.mc_dropout = 4}).predict(x);
  EXPECT_FALSE(model->is_training());
  for (const auto& [name, t] : model->state_dict())
    EXPECT_EQ(t.to_vector<float>(), state[name]) << name;
  ASSERT_EQ(got.seg_variance.shape(), (Shape{2, 1, 16, 16}));
  ASSERT_TRUE(got.predictions[0].probability_std.has_value());
  EXPECT_EQ(got.predictions[0].recommendation, recommendation(*got.predictions[0].probability_mean,
                                                              got.predictions[0].probability_std));
}

TEST(PredictorTest, McDropoutKeepsBatchNormInEval) {
  // Without dropout every pass is the eval forward; a train-mode batch norm would use the batch's
  // statistics, far from the running ones of this model.
  UNetConfig config = kSmall;
  config.cls_dropout = 0.0;
  auto model = init_model(config, 8);
  model->train();
  {
    NoGradGuard no_grad;
    for (int i = 0; i < 3; ++i)
      model->forward(random_tensor({4, 1, 16, 16}, -2, 2, 60 + i), true, true);
  }
  const Tensor x = random_tensor({2, 1, 16, 16}, -2, 2, 24);
  const PredictionBatch eval = Predictor(model, Device::cpu()).predict(x);
  const McDropoutStats stats = mc_dropout(*model, x, 3);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(stats.mean[i], eval.predictions[i].tumour_probability, 1e-6);
    EXPECT_LT(stats.std[i], 1e-6);
  }
  // The check can fail: train-mode batch norm gives other probabilities.
  model->train();
  NoGradGuard no_grad;
  const std::vector<float> train_logits =
      model->forward(x, false, true).cls_logits.to_vector<float>();
  EXPECT_FALSE(all_close(train_logits, eval.cls_logits.to_vector<float>(), {1e-4, 1e-4}));
}

TEST(PredictorTest, RecommendationBandsComeFromTheOptions) {
  const RecommendationBands strict{.uncertain_std = 0.05, .likely = 0.9, .unlikely = 0.1};
  EXPECT_EQ(recommendation(0.8, {}, strict), "uncertain: radiologist review");
  EXPECT_EQ(recommendation(0.9, {}, strict), "tumour likely: review the highlighted region");
  EXPECT_EQ(recommendation(0.2, {}, strict), "uncertain: radiologist review");
  EXPECT_EQ(recommendation(0.09, {}, strict), "no tumour detected: routine follow-up");
  EXPECT_EQ(recommendation(0.95, 0.1, strict), "uncertain: radiologist review");

  auto model = trained_looking_model(10);
  const Tensor x = random_tensor({3, 1, 16, 16}, -2, 2, 25);
  PredictOptions options;
  options.bands = {.uncertain_std = 1.0, .likely = 0.0, .unlikely = 0.0};
  for (const Prediction& p : Predictor(model, Device::cpu(), options).predict(x).predictions) {
    EXPECT_EQ(p.recommendation, "tumour likely: review the highlighted region");
  }
  options.bands = {.uncertain_std = 0.15, .likely = 0.2, .unlikely = 0.3};
  EXPECT_NE(error_of([&] { Predictor(model, Device::cpu(), options); }).find("bands"),
            std::string::npos);
}

TEST(PredictorTest, McDropoutDrawsFromThePredictorsOwnGenerator) {
  auto model = trained_looking_model(11);
  const Tensor head = random_tensor({2, 1, 16, 16}, -2, 2, 26);
  const Tensor tail = random_tensor({1, 1, 16, 16}, -2, 2, 27);
  std::vector<float> pixels = head.to_vector<float>();
  for (float v : tail.to_vector<float>()) pixels.push_back(v);
  const Tensor x = from_vector(pixels, {3, 1, 16, 16});
  const std::shared_ptr<Generator> models_own = model->dropout_generator();
  const std::uint64_t model_offset = models_own->offset();
  const std::uint64_t default_offset = default_generator().offset();
  Predictor predictor(model, Device::cpu(), {.batch = 2, .mc_dropout = 3, .mc_seed = 4});
  const PredictionBatch got = predictor.predict(x);
  EXPECT_EQ(model->dropout_generator(), models_own);
  EXPECT_EQ(models_own->offset(), model_offset);
  EXPECT_EQ(default_generator().offset(), default_offset);
  EXPECT_GT(predictor.mc_generator()->offset(), 0u);

  // The reference: mc_dropout per chunk with a generator of the same seed.
  const auto same_seed = std::make_shared<Generator>(4);
  const McDropoutStats first = mc_dropout(*model, head, 3, same_seed);
  const McDropoutStats second = mc_dropout(*model, tail, 3, same_seed);
  EXPECT_EQ(same_seed->offset(), predictor.mc_generator()->offset());
  EXPECT_DOUBLE_EQ(*got.predictions[0].probability_std, first.std[0]);
  EXPECT_DOUBLE_EQ(*got.predictions[1].probability_mean, first.mean[1]);
  EXPECT_DOUBLE_EQ(*got.predictions[2].probability_std, second.std[0]);
}

// What a call returns, as one vector: class logits, Grad-CAMs, MC statistics.
std::vector<float> flatten(const PredictionBatch& b) {
  std::vector<float> out = b.cls_logits.to_vector<float>();
  for (const Tensor& t : {b.gradcam, b.seg_variance}) {
    const std::vector<float> v = t.to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  for (const Prediction& p : b.predictions) {
    out.push_back(static_cast<float>(*p.probability_mean));
    out.push_back(static_cast<float>(*p.probability_std));
  }
  return out;
}

TEST(PredictorTest, ConcurrentCallsGiveWhatSequentialCallsGive) {
  // Grad-CAM and MC dropout switch the model's modes and gradient flags, and every MC call
  // advances the predictor's generator: unserialised calls would corrupt each other.
  const Tensor x = random_tensor({3, 1, 16, 16}, -2, 2, 27);
  const PredictOptions options{.batch = 2, .mc_dropout = 3, .gradcam = true};
  constexpr int kThreads = 2, kCallsEach = 3;
  Predictor sequential(trained_looking_model(12), Device::cpu(), options);
  std::vector<std::vector<float>> expected;
  for (int i = 0; i < kThreads * kCallsEach; ++i)
    expected.push_back(flatten(sequential.predict(x)));

  Predictor shared(trained_looking_model(12), Device::cpu(), options);
  std::vector<std::vector<float>> got(kThreads * kCallsEach);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsEach; ++i) got[t * kCallsEach + i] = flatten(shared.predict(x));
    });
  }
  for (std::thread& t : threads) t.join();
  // The calls took the lock in some order: each result is one of the sequential ones, once.
  std::vector<bool> used(expected.size(), false);
  for (const std::vector<float>& g : got) {
    bool matched = false;
    for (std::size_t k = 0; k < expected.size() && !matched; ++k) {
      if (!used[k] && all_close(g, expected[k])) used[k] = matched = true;
    }
    EXPECT_TRUE(matched) << "a concurrent call gave no sequential call's result";
  }
  EXPECT_FALSE(shared.model().is_training());
}

TEST(PredictorTest, OptionsPerCallEqualAPredictorBuiltWithThem) {
  auto model = trained_looking_model(8);
  const Tensor x = random_tensor({3, 1, 16, 16}, -2, 2, 41);
  const PredictOptions options{.batch = 3, .threshold = 0.4, .cls_threshold = 0.0, .gradcam = true};
  const PredictionBatch want = Predictor(model, Device::cpu(), options).predict(x);
  Predictor defaults(model, Device::cpu());
  const PredictionBatch got = defaults.predict(x, options);
  EXPECT_TRUE(all_equal(got.seg_logits.to_vector<float>(), want.seg_logits.to_vector<float>()));
  EXPECT_TRUE(all_equal(got.gradcam.to_vector<float>(), want.gradcam.to_vector<float>()));
  ASSERT_EQ(got.predictions.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got.predictions[i].mask, want.predictions[i].mask);
    EXPECT_EQ(got.predictions[i].tumour_pixels, want.predictions[i].tumour_pixels);
  }
  EXPECT_FALSE(error_of([&] { defaults.predict(x, {.cls_threshold = -0.1}); }).empty());
  // The predictor's own options are untouched: no Grad-CAM by default.
  EXPECT_FALSE(defaults.predict(x).gradcam.defined());
}

TEST(PredictorTest, ClassificationOnlyMatchesTheFullRunWithoutTheDecoder) {
  auto model = trained_looking_model(9);
  const Tensor x = random_tensor({2, 1, 16, 16}, -2, 2, 43);
  Predictor predictor(model, Device::cpu(), {.cls_threshold = 0.0});
  const PredictionBatch full = predictor.predict(x);
  PredictOptions cls_only{.cls_threshold = 0.0, .gradcam = true, .segment = false};
  const PredictionBatch got = predictor.predict(x, cls_only);
  EXPECT_FALSE(got.seg_logits.defined());
  EXPECT_TRUE(got.gradcam.defined());
  EXPECT_TRUE(all_equal(got.cls_logits.to_vector<float>(), full.cls_logits.to_vector<float>()));
  for (std::size_t i = 0; i < 2; ++i) {
    const Prediction& p = got.predictions[i];
    EXPECT_EQ(p.tumour_probability, full.predictions[i].tumour_probability);
    EXPECT_EQ(p.predicted_class, full.predictions[i].predicted_class);
    EXPECT_EQ(p.recommendation, full.predictions[i].recommendation);
    EXPECT_FALSE(p.mask_available);
    EXPECT_TRUE(p.mask.empty());
    EXPECT_EQ(p.tumour_pixels, 0);
  }
}

TEST(PredictorTest, FoldersExpandToTheirInputsSortedByName) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("glia_expand_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "in" / "sub.png");
  fs::create_directories(dir / "empty");
  for (const char* name : {"b.PNG", "a.npz", "c.jpg", "notes.txt", "d.jpeg", "e.bmp"}) {
    io::write_file_atomic(dir / "in" / name, "x");
  }
  const std::vector<fs::path> got = expand_inputs({dir / "in", dir / "single.png"});
  const std::vector<fs::path> want{dir / "in" / "a.npz", dir / "in" / "b.PNG",
                                   dir / "in" / "c.jpg", dir / "in" / "d.jpeg",
                                   dir / "in" / "e.bmp", dir / "single.png"};
  EXPECT_EQ(got, want);
  const std::string msg = error_of([&] { expand_inputs({dir / "empty"}); });
  EXPECT_NE(msg.find((dir / "empty").string()), std::string::npos) << msg;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace glia::nets
