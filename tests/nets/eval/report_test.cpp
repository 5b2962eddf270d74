// The evaluation behind glia-eval: per-slice and per-patient (stacked volume) segmentation scores
// on hand-built masks, classification rates of known predictions, the source-gap warning either
// side of 10 points, every compared checkpoint in the JSON and the table, clear errors for bad
// input, and the evaluation of a small model on small data against metrics computed here from the
// model's own forward pass.
#include "nets/eval/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "io/atomic_file.h"
#include "io/manifest.h"
#include "nets/explain/gradcam.h"
#include "nets/model/checkpoint.h"

namespace glia::nets {
namespace {

namespace fs = std::filesystem;
using Mask = std::vector<std::uint8_t>;

class Evaluation : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("glia_eval_" + std::to_string(::getpid()) + "_" +
                                        info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// An 8x8 mask with the rectangle [y0, y1) x [x0, x1) set.
Mask rect(int y0, int y1, int x0, int x1) {
  Mask m(64, 0);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) m[y * 8 + x] = 1;
  }
  return m;
}

SampleRecord masked(const std::string& patient, const Mask& pred, const Mask& target) {
  SampleRecord r;
  r.result.source = "brats";
  r.result.label = 1;
  r.result.probability = 0.9;
  r.result.has_mask = true;
  r.result.overlap = overlap_counts(pred, target);
  r.result.seg = r.result.overlap.scores();
  r.result.pixel_accuracy = pixel_accuracy(pred, target);
  r.patient = patient;
  return r;
}

TEST(Aggregate, SliceAndPatientScores) {
  const Mask empty(64, 0), a = rect(0, 4, 0, 4), half = rect(2, 6, 0, 4), far = rect(4, 8, 4, 8);
  // p1: half overlap (Dice 1/2) and an empty slice predicted empty (Dice 1).
  // p2: perfect. p3: disjoint, plus an empty slice predicted empty.
  const std::vector<SampleRecord> records = {
      masked("p1", a, half), masked("p1", empty, empty), masked("p2", a, a),
      masked("p3", a, far),  masked("p3", empty, empty),
  };
  const auto groups = aggregate(records, {});
  const SegmentationMetrics& s = groups.at("overall").seg;
  EXPECT_EQ(s.slices, 5);
  // Per slice: Dice 0.5, 1, 1, 0, 1; IoU 1/3, 1, 1, 0, 1.
  EXPECT_DOUBLE_EQ(s.dice.mean, 3.5 / 5);
  EXPECT_DOUBLE_EQ(s.iou.mean, (1.0 / 3 + 3) / 5);
  // Per patient, over the stacked slices: p1 = 2*8 / (16+16) (the empty slice adds nothing),
  // p2 = 1, p3 = 0. The empty slices inflate the slice mean, not the volume score.
  EXPECT_EQ(s.patients, 3);
  EXPECT_DOUBLE_EQ(s.patient_dice.mean, (0.5 + 1 + 0) / 3);
  EXPECT_DOUBLE_EQ(s.patient_iou.mean, (1.0 / 3 + 1 + 0) / 3);
  EXPECT_NEAR(s.patient_dice.std, std::sqrt(((0.0) + 0.25 + 0.25) / 3), 1e-12);
  EXPECT_DOUBLE_EQ(s.pixel_accuracy.mean, (48.0 / 64 + 1 + 1 + 32.0 / 64 + 1) / 5);

  // A patient whose every slice is empty in target and prediction scores 1 as a volume too.
  const std::vector<SampleRecord> clean = {masked("p4", empty, empty), masked("p4", empty, empty)};
  EXPECT_DOUBLE_EQ(aggregate(clean, {}).at("overall").seg.patient_dice.mean, 1.0);
  // The same patient name in two sources is two volumes.
  std::vector<SampleRecord> two = {masked("x", a, a), masked("x", a, far)};
  two[1].result.source = "other";
  EXPECT_EQ(aggregate(two, {}).at("overall").seg.patients, 2);
}

SampleRecord scored(const std::string& source, int label, double probability) {
  SampleRecord r;
  r.result.source = source;
  r.result.label = label;
  r.result.probability = probability;
  return r;
}

TEST(Aggregate, ClassificationOverallAndPerSource) {
  const std::vector<SampleRecord> records = {
      scored("brats", 1, 0.9),  scored("brats", 1, 0.6),  scored("brats", 0, 0.7),
      scored("brats", 0, 0.2),  scored("kaggle", 1, 0.4), scored("kaggle", 0, 0.1),
      scored("kaggle", 1, 0.8), scored("kaggle", 0, 0.3),
  };
  EvaluationOptions options;
  options.cls_threshold = 0.5;
  const auto groups = aggregate(records, options);
  ASSERT_EQ(groups.size(), 3u);
  const ClassificationMetrics& all = groups.at("overall").cls;
  // Predicted positive: 0.9, 0.6, 0.7, 0.8 -> tp 3 (0.9, 0.6, 0.8), fp 1 (0.7); fn 1 (0.4), tn 3.
  EXPECT_EQ(all.counts.tp, 3);
  EXPECT_EQ(all.counts.fp, 1);
  EXPECT_EQ(all.counts.tn, 3);
  EXPECT_EQ(all.counts.fn, 1);
  EXPECT_DOUBLE_EQ(all.accuracy, 6.0 / 8);
  EXPECT_DOUBLE_EQ(all.precision, 3.0 / 4);
  EXPECT_DOUBLE_EQ(all.recall, 3.0 / 4);
  EXPECT_DOUBLE_EQ(all.specificity, 3.0 / 4);
  EXPECT_DOUBLE_EQ(all.f1, 3.0 / 4);
  // Positives 0.9, 0.6, 0.4, 0.8 against negatives 0.7, 0.2, 0.1, 0.3: 14 of 16 pairs ordered.
  EXPECT_DOUBLE_EQ(all.roc_auc, 14.0 / 16);
  // Ranked: + + - + + - - -: precision 1, 1, 3/4, 4/5 at recall 1/4, 2/4, 3/4, 1.
  EXPECT_DOUBLE_EQ(all.pr_auc, 0.25 * (1 + 1 + 0.75 + 0.8));
  EXPECT_EQ(groups.at("overall").seg.slices, 0);
  EXPECT_EQ(groups.at("overall").seg.dice.count, 0);
  EXPECT_DOUBLE_EQ(groups.at("brats").cls.accuracy, 3.0 / 4);
  EXPECT_DOUBLE_EQ(groups.at("kaggle").cls.accuracy, 3.0 / 4);
  EXPECT_DOUBLE_EQ(groups.at("kaggle").cls.roc_auc, 1.0);
  EXPECT_DOUBLE_EQ(groups.at("kaggle").cls.pr_auc, 1.0);
  // Raising the threshold to 0.65 turns 0.6 into a false negative.
  options.cls_threshold = 0.65;
  EXPECT_EQ(aggregate(records, options).at("brats").cls.counts.fn, 1);
}

TEST(Aggregate, CalibratedSetHasNoCalibrationError) {
  // Ten samples at p = 0.7 with seven positives: confidence 0.7, accuracy 0.7.
  std::vector<SampleRecord> records;
  for (int i = 0; i < 10; ++i) records.push_back(scored("brats", i < 7 ? 1 : 0, 0.7));
  EXPECT_NEAR(aggregate(records, {}).at("overall").cls.ece, 0.0, 1e-12);
  records[0].result.label = 0;  // six right at confidence 0.7: ECE 0.1
  EXPECT_NEAR(aggregate(records, {}).at("overall").cls.ece, 0.1, 1e-12);
}

std::map<std::string, GroupMetrics> accuracies(double brats, double kaggle) {
  std::map<std::string, GroupMetrics> g;
  g["overall"].cls.accuracy = (brats + kaggle) / 2;
  g["brats"].cls.accuracy = brats;
  g["kaggle"].cls.accuracy = kaggle;
  return g;
}

TEST(SourceGap, FiresAboveTenPointsOnly) {
  const auto above = source_gap_warning(accuracies(0.95, 0.80));
  ASSERT_TRUE(above.has_value());
  EXPECT_NE(above->find("brats"), std::string::npos);
  EXPECT_NE(above->find("kaggle"), std::string::npos);
  EXPECT_TRUE(source_gap_warning(accuracies(0.70, 0.805)).has_value());
  EXPECT_FALSE(source_gap_warning(accuracies(0.95, 0.86)).has_value());
  EXPECT_FALSE(source_gap_warning(accuracies(0.80, 0.88)).has_value());
  EXPECT_FALSE(source_gap_warning(accuracies(0.95, NAN)).has_value());
  // A different limit moves the line.
  EXPECT_TRUE(source_gap_warning(accuracies(0.95, 0.90), 0.02).has_value());
  std::map<std::string, GroupMetrics> one;
  one["overall"].cls.accuracy = 1.0;
  one["brats"].cls.accuracy = 0.5;
  EXPECT_FALSE(source_gap_warning(one).has_value());
}

constexpr int kSize = 16;

void same_or_both_nan(double got, double want) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << got;
  } else {
    EXPECT_DOUBLE_EQ(got, want);
  }
}

// Two BraTS patients (masked slices, one of them with an empty mask) and Kaggle images without
// masks, on 16x16 slices.
std::shared_ptr<const data::InMemoryDataset> small_dataset() {
  std::mt19937 rng(11);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  auto sample = [&](const std::string& source, const std::string& patient, int slice, int label,
                    bool with_mask) {
    data::Sample s;
    s.height = s.width = kSize;
    s.image.resize(kSize * kSize);
    for (float& v : s.image) v = noise(rng);
    if (with_mask) {
      Mask m(kSize * kSize, 0);
      if (label) {
        const int y0 = static_cast<int>(rng() % 8), x0 = static_cast<int>(rng() % 8);
        for (int y = y0; y < y0 + 6; ++y) {
          for (int x = x0; x < x0 + 6; ++x) m[y * kSize + x] = 1;
        }
      }
      s.mask = m;
    }
    s.label = label;
    s.source = source;
    s.patient = patient;
    s.slice = slice;
    return s;
  };
  std::vector<data::Sample> samples;
  for (int z = 0; z < 3; ++z) samples.push_back(sample("brats", "BraTS_001", z, z != 1, true));
  for (int z = 0; z < 2; ++z) samples.push_back(sample("brats", "BraTS_002", z, 1, true));
  for (int i = 0; i < 4; ++i) {
    samples.push_back(sample("kaggle", "img" + std::to_string(i), 0, i % 2, false));
  }
  return std::make_shared<data::InMemoryDataset>(std::move(samples));
}

UNetConfig small_config() {
  UNetConfig c;
  c.base_filters = 4;
  c.depth = 2;
  c.cls_hidden = 8;
  return c;
}

TEST_F(Evaluation, SmallModelMatchesItsOwnForward) {
  const auto data = small_dataset();
  const fs::path ckpt = dir_ / "model.safetensors";
  write_initial_checkpoint(ckpt, small_config(), 3);

  // The reference: one forward over all the samples, scored here.
  LoadedModel loaded = load_checkpoint(ckpt);
  loaded.model->eval();
  const index_t n = static_cast<index_t>(data->size());
  Tensor images({n, 1, kSize, kSize}, DType::f32, Device::cpu());
  for (std::size_t i = 0; i < data->size(); ++i) {
    const data::Sample s = data->load(i);
    std::copy(s.image.begin(), s.image.end(), images.data<float>() + i * kSize * kSize);
  }
  MultiTaskOutput out;
  {
    NoGradGuard no_grad;
    out = loaded.model->forward(images, true, true);
  }
  const std::vector<float> logits = out.cls_logits.to_vector<float>();
  const std::vector<float> seg = out.seg_logits.to_vector<float>();
  // An untrained model's segmentation logits sit on one side of 0, so a threshold of 0.5 would
  // predict nothing; threshold in the widest gap between neighbouring logits near the median, so
  // about half the pixels are predicted and no logit lies near the threshold.
  std::vector<float> sorted = seg;
  std::sort(sorted.begin(), sorted.end());
  std::size_t widest = sorted.size() / 2;
  for (std::size_t k = sorted.size() * 2 / 5; k < sorted.size() * 3 / 5; ++k) {
    if (sorted[k + 1] - sorted[k] > sorted[widest + 1] - sorted[widest]) widest = k;
  }
  const double logit_threshold = 0.5 * (static_cast<double>(sorted[widest]) + sorted[widest + 1]);

  EvaluationOptions options;
  options.batch_size = 4;  // the last batch is shorter
  options.seg_threshold = 1.0 / (1.0 + std::exp(-logit_threshold));
  const EvaluationResult r = evaluate_checkpoint(ckpt, data, options);
  ASSERT_EQ(r.samples.size(), data->size());
  EXPECT_EQ(r.name, ckpt.string());

  std::vector<double> slice_dice, hd95, probabilities;
  std::vector<int> labels, predicted;
  std::map<std::string, OverlapCounts> volumes;
  for (std::size_t i = 0; i < data->size(); ++i) {
    const data::Sample s = data->load(i);
    const double p = 1.0 / (1.0 + std::exp(static_cast<double>(logits[2 * i] - logits[2 * i + 1])));
    EXPECT_NEAR(r.samples[i].result.probability, p, 1e-5) << "sample " << i;
    EXPECT_EQ(r.samples[i].patient, s.patient);
    EXPECT_EQ(r.samples[i].slice, s.slice);
    probabilities.push_back(p);
    labels.push_back(s.label);
    predicted.push_back(p >= 0.5);
    if (!s.mask) {
      EXPECT_FALSE(r.samples[i].result.has_mask);
      continue;
    }
    Mask pred(kSize * kSize);
    for (int k = 0; k < kSize * kSize; ++k) {
      const double sigmoid =
          1.0 / (1.0 + std::exp(-static_cast<double>(seg[i * kSize * kSize + k])));
      pred[k] = sigmoid >= options.seg_threshold;
    }
    const OverlapCounts c = overlap_counts(pred, *s.mask);
    volumes[s.patient] += c;
    slice_dice.push_back(c.scores().dice);
    EXPECT_EQ(r.samples[i].result.overlap.intersection, c.intersection) << "sample " << i;
    EXPECT_EQ(r.samples[i].result.overlap.predicted, c.predicted) << "sample " << i;
    EXPECT_GT(c.predicted, 0) << "sample " << i;
    same_or_both_nan(r.samples[i].result.hausdorff95, hausdorff95(pred, *s.mask, kSize, kSize));
    same_or_both_nan(r.samples[i].result.boundary_f, boundary_f_score(pred, *s.mask, kSize, kSize));
    hd95.push_back(hausdorff95(pred, *s.mask, kSize, kSize));
  }
  const GroupMetrics& all = r.groups.at("overall");
  EXPECT_EQ(all.samples, n);
  EXPECT_EQ(all.seg.slices, 5);
  EXPECT_NEAR(all.seg.dice.mean, mean_std(slice_dice).mean, 1e-12);
  EXPECT_NEAR(all.seg.dice.std, mean_std(slice_dice).std, 1e-12);
  EXPECT_EQ(all.seg.hausdorff95.count, mean_std(hd95).count);
  EXPECT_NEAR(all.seg.hausdorff95.mean, mean_std(hd95).mean, 1e-12);
  ASSERT_EQ(all.seg.patients, 2);
  const double patient_mean =
      (volumes["BraTS_001"].scores().dice + volumes["BraTS_002"].scores().dice) / 2;
  EXPECT_NEAR(all.seg.patient_dice.mean, patient_mean, 1e-12);
  const BinaryCounts counts = confusion(predicted, labels);
  EXPECT_EQ(all.cls.counts.tp, counts.tp);
  EXPECT_EQ(all.cls.counts.tn, counts.tn);
  EXPECT_NEAR(all.cls.accuracy, counts.accuracy(), 1e-12);
  EXPECT_NEAR(all.cls.roc_auc, roc_auc(probabilities, labels), 1e-5);
  EXPECT_NEAR(all.cls.ece, expected_calibration_error(probabilities, labels), 1e-5);
  EXPECT_EQ(r.groups.at("kaggle").seg.slices, 0);
  EXPECT_EQ(r.groups.at("kaggle").cls.count, 4);
  EXPECT_EQ(r.groups.at("brats").seg.patients, 2);

  // A model in training mode is evaluated in eval mode (dropout off: the same probabilities) and
  // handed back in training mode.
  loaded.model->train();
  const EvaluationResult again = evaluate_model(*loaded.model, data, options);
  EXPECT_TRUE(loaded.model->is_training());
  for (std::size_t i = 0; i < data->size(); ++i) {
    EXPECT_EQ(again.samples[i].result.probability, r.samples[i].result.probability);
  }
}

TEST_F(Evaluation, CompareKeepsEveryCheckpoint) {
  const auto data = small_dataset();
  std::vector<EvaluationResult> results;
  EvaluationOptions options;
  for (int stage = 1; stage <= 3; ++stage) {
    const fs::path ckpt = dir_ / ("stage" + std::to_string(stage)) / "best.safetensors";
    fs::create_directories(ckpt.parent_path());
    write_initial_checkpoint(ckpt, small_config(), 10 + stage);
    results.push_back(evaluate_checkpoint(ckpt, data, options));
  }
  write_results(dir_ / "out", results, options);
  const auto j = nlohmann::json::parse(io::read_file(dir_ / "out" / "results.json"));
  ASSERT_EQ(j.at("checkpoints").size(), 3u);
  const std::string table = io::read_file(dir_ / "out" / "results.txt");
  for (int stage = 1; stage <= 3; ++stage) {
    const auto& c = j.at("checkpoints")[stage - 1];
    EXPECT_EQ(c.at("name"), results[stage - 1].name);
    EXPECT_EQ(c.at("metadata").at("seed"), std::to_string(10 + stage));
    EXPECT_DOUBLE_EQ(c.at("groups").at("overall").at("classification").at("accuracy").get<double>(),
                     results[stage - 1].groups.at("overall").cls.accuracy);
    EXPECT_NE(table.find("stage" + std::to_string(stage) + "/best.safetensors"), std::string::npos);
  }
  // Kaggle has no masks: its Dice is NaN, written as null.
  EXPECT_TRUE(j.at("checkpoints")[0]
                  .at("groups")
                  .at("kaggle")
                  .at("segmentation")
                  .at("dice")
                  .at("mean")
                  .is_null());
  // Per-patient volume scores agree with the group's patient mean.
  const auto& patients = j.at("checkpoints")[0].at("patients");
  ASSERT_EQ(patients.size(), 2u);
  EXPECT_EQ(patients[0].at("slices").get<int>() + patients[1].at("slices").get<int>(), 5);
  EXPECT_NEAR((patients[0].at("dice").get<double>() + patients[1].at("dice").get<double>()) / 2,
              results[0].groups.at("overall").seg.patient_dice.mean, 1e-12);
  EXPECT_NE(table.find("== brats =="), std::string::npos);
  // Two checkpoints with the same folder and file names are told apart by their full paths.
  std::vector<EvaluationResult> same(2, results[0]);
  same[0].name = (dir_ / "a" / "stage1" / "best.safetensors").string();
  same[1].name = (dir_ / "b" / "stage1" / "best.safetensors").string();
  const std::string both = format_results(same);
  EXPECT_NE(both.find(same[0].name), std::string::npos);
  EXPECT_NE(both.find(same[1].name), std::string::npos);
  EXPECT_NE(table.find("dice (patient)"), std::string::npos);
}

TEST_F(Evaluation, GradCamLocalisationMatchesDirectCalls) {
  const auto data = small_dataset();
  const fs::path ckpt = dir_ / "model.safetensors";
  write_initial_checkpoint(ckpt, small_config(), 5);
  EvaluationOptions options;
  options.batch_size = 4;
  options.gradcam = true;
  options.gradcam_dilation = 1;
  const EvaluationResult r = evaluate_checkpoint(ckpt, data, options);

  // The reference: Grad-CAM of the tumour class on each sample alone, scored here.
  LoadedModel loaded = load_checkpoint(ckpt);
  GradCamOptions cam_options;
  cam_options.target_class = 1;
  std::int64_t scored = 0, hits = 0;
  double energy = 0;
  for (std::size_t i = 0; i < data->size(); ++i) {
    const data::Sample s = data->load(i);
    const bool tumour = s.mask && std::count(s.mask->begin(), s.mask->end(), 1) > 0;
    ASSERT_EQ(r.samples[i].has_cam, tumour) << "sample " << i;
    if (!tumour) continue;
    Tensor image({1, 1, kSize, kSize}, DType::f32, Device::cpu());
    std::copy(s.image.begin(), s.image.end(), image.data<float>());
    const std::vector<float> cam =
        grad_cam(*loaded.model, image, cam_options).cams.to_vector<float>();
    const Localisation l = localisation(cam, *s.mask, kSize, kSize, 1);
    EXPECT_NEAR(r.samples[i].cam_energy_inside, l.energy_inside, 1e-4) << "sample " << i;
    EXPECT_EQ(r.samples[i].cam_peak_inside, l.peak_inside) << "sample " << i;
    ++scored;
    hits += l.peak_inside;
    energy += l.energy_inside;
  }
  const LocalisationMetrics& cam = r.groups.at("overall").cam;
  EXPECT_EQ(scored, 4);
  EXPECT_EQ(cam.count, scored);
  EXPECT_NEAR(cam.energy_inside.mean, energy / static_cast<double>(scored), 1e-4);
  EXPECT_DOUBLE_EQ(cam.pointing_game, static_cast<double>(hits) / static_cast<double>(scored));
  EXPECT_EQ(r.groups.at("kaggle").cam.count, 0);
  EXPECT_NE(format_results(std::span(&r, 1)).find("pointing game"), std::string::npos);
}

TEST_F(Evaluation, SimMatchesCpu) {
  const auto data = small_dataset();
  const fs::path ckpt = dir_ / "model.safetensors";
  write_initial_checkpoint(ckpt, small_config(), 7);
  EvaluationOptions options;
  options.batch_size = 4;
  const EvaluationResult cpu = evaluate_checkpoint(ckpt, data, options);
  options.device = Device::sim();
  const EvaluationResult sim = evaluate_checkpoint(ckpt, data, options);
  ASSERT_EQ(sim.samples.size(), cpu.samples.size());
  for (std::size_t i = 0; i < cpu.samples.size(); ++i) {
    // The sim kernels sum in another order than cpu's: agreement to float rounding.
    EXPECT_NEAR(sim.samples[i].result.probability, cpu.samples[i].result.probability, 1e-5);
  }
  EXPECT_NEAR(sim.groups.at("overall").cls.roc_auc, cpu.groups.at("overall").cls.roc_auc, 1e-12);
}

template <class E = std::runtime_error, class F>
void expect_error_naming(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one naming " << needle;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST_F(Evaluation, BadInputIsNamed) {
  expect_error_naming([&] { load_split(dir_, "test"); }, (dir_ / "manifest.csv").string());
  io::ManifestEntry row;
  row.path = "train/brats/a_0.npz";
  row.split = "train";
  row.source = "brats";
  row.patient = "a";
  io::write_manifest(dir_ / "manifest.csv", {row});
  expect_error_naming([&] { load_split(dir_, "test"); }, "'test'");
  io::write_file_atomic(dir_ / "broken.safetensors", "not a checkpoint");
  expect_error_naming<std::exception>(
      [&] { evaluate_checkpoint(dir_ / "broken.safetensors", small_dataset(), {}); },
      "broken.safetensors");
  expect_error_naming<std::exception>(
      [&] { evaluate_checkpoint(dir_ / "missing.safetensors", small_dataset(), {}); },
      "missing.safetensors");
}

}  // namespace
}  // namespace glia::nets
