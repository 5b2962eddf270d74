// The training configuration: every shipped file under configs/ loads against the schema and
// converts to a TrainConfig; the stage files ask for what their stage is for (loss terms, data,
// selection metric, starting weights) and, run for one step, train the components of their stage;
// per-stage sections override common values; the cuDNN choices default to deterministic
// heuristics; semantic errors (a ratio sampler without ratios, an unknown source, a conflicting
// stage, a cudnn.* value that is not a bool, an unknown cudnn.* key) are reported by key.
#include "nets/train/train_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "data/input/dataset.h"
#include "io/safetensors.h"
#include "nets/model/checkpoint.h"
#include "nets/model/multitask_loss.h"
#include "nets/train/trainer.h"

namespace glia::nets {
namespace {

namespace fs = std::filesystem;

const fs::path kConfigs = fs::path(GLIA_SOURCE_DIR) / "configs";

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(TrainConfig, EveryShippedStageFileLoads) {
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kConfigs)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    SCOPED_TRACE(entry.path().string());
    const io::Config config = load_training_config(entry.path(), 0);
    const TrainConfig t = to_train_config(config);
    EXPECT_GE(t.stage, 1);
    EXPECT_LE(t.stage, 3);
  }
  EXPECT_GE(files, 3);
}

TrainConfig stage_file(const std::string& name, const std::vector<std::string>& overrides = {}) {
  return to_train_config(load_training_config(kConfigs / "stages" / name, 0, overrides));
}

// What the shipped stage files ask of the trainer, as properties of the stages rather than their
// tuning numbers: which loss terms, which data, which selection metric, which starting weights.
TEST(TrainConfig, StageFilesSayWhatTheStagesDo) {
  const TrainConfig s1 = stage_file("stage1_seg_warmup.yaml");
  const TrainConfig s2 = stage_file("stage2_cls_head.yaml");
  const TrainConfig s3 = stage_file("stage3_joint.yaml");
  ASSERT_EQ(s1.stage, 1);
  ASSERT_EQ(s2.stage, 2);
  ASSERT_EQ(s3.stage, 3);
  const auto uses = [](const TrainConfig& t, const std::string& source) {
    return std::find(t.data.sources.begin(), t.data.sources.end(), source) != t.data.sources.end();
  };
  const auto seg_loss_counts = [](const TrainConfig& t) {
    return t.loss.dice_weight >= 0 && t.loss.bce_weight >= 0 &&
           t.loss.dice_weight + t.loss.bce_weight > 0;
  };

  // Stage 1: segmentation only, on the source that has masks; the head is not trained, so the
  // best checkpoint is chosen by Dice alone; it starts from fresh weights.
  EXPECT_TRUE(stage_needs_seg(s1.stage));
  EXPECT_FALSE(stage_needs_cls(s1.stage));
  EXPECT_TRUE(seg_loss_counts(s1));
  EXPECT_TRUE(uses(s1, "brats"));
  EXPECT_EQ(s1.metric_dice_weight, 1.0);
  EXPECT_TRUE(s1.init_checkpoint.empty());

  // Stage 2: classification only, from both sources, on stage 1's best (no checkpoint of its
  // own) with the encoder, decoder and their batch-norm statistics frozen; the segmentation
  // output cannot change, so the best checkpoint is chosen by accuracy alone.
  EXPECT_FALSE(stage_needs_seg(s2.stage));
  EXPECT_TRUE(stage_needs_cls(s2.stage));
  EXPECT_TRUE(uses(s2, "brats") && uses(s2, "kaggle"));
  EXPECT_TRUE(s2.freeze_decoder);
  EXPECT_TRUE(s2.frozen_bn_eval);
  EXPECT_EQ(s2.metric_dice_weight, 0.0);
  EXPECT_TRUE(s2.init_checkpoint.empty());

  // Stage 3: both terms with positive weights, both sources in every batch, on stage 2's best;
  // the pretrained encoder learns more slowly than the decoder and the head; gradients are
  // clipped; the best checkpoint weighs Dice and accuracy.
  EXPECT_TRUE(stage_needs_seg(s3.stage));
  EXPECT_TRUE(stage_needs_cls(s3.stage));
  EXPECT_TRUE(seg_loss_counts(s3));
  EXPECT_GT(s3.loss.lambda_seg, 0.0);
  EXPECT_GT(s3.loss.lambda_cls, 0.0);
  EXPECT_TRUE(uses(s3, "brats") && uses(s3, "kaggle"));
  if (s3.sampler.mode == "ratio") {
    for (const std::string& source : s3.data.sources) {
      EXPECT_GT(s3.sampler.source_ratio.count(source) ? s3.sampler.source_ratio.at(source) : 0.0,
                0.0)
          << source;
    }
  }
  EXPECT_LT(s3.optim.lr_encoder, s3.optim.lr_decoder);
  EXPECT_LT(s3.optim.lr_encoder, s3.optim.lr_head);
  EXPECT_GT(s3.optim.grad_clip, 0.0);
  EXPECT_GT(s3.metric_dice_weight, 0.0);
  EXPECT_LT(s3.metric_dice_weight, 1.0);
  EXPECT_TRUE(s3.init_checkpoint.empty());
}

// A 16x16 slice, with a bright disk and its mask when `tumour`; kaggle samples have no mask.
data::Sample tiny_sample(std::mt19937& rng, const std::string& source, bool tumour) {
  constexpr int kSize = 16;
  data::Sample s;
  s.height = s.width = kSize;
  std::vector<std::uint8_t> mask(kSize * kSize, 0);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  for (int y = 0; y < kSize; ++y) {
    for (int x = 0; x < kSize; ++x) {
      const bool inside = tumour && (y - 8) * (y - 8) + (x - 7) * (x - 7) <= 9;
      s.image.push_back((inside ? 2.0f : -0.5f) + noise(rng));
      mask[y * kSize + x] = inside;
    }
  }
  if (source == "brats") s.mask = mask;
  s.label = tumour;
  s.source = source;
  s.patient = source + std::to_string(rng() % 1000);
  return s;
}

std::shared_ptr<const data::Dataset> tiny_dataset(unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<data::Sample> samples;
  for (int i = 0; i < 4; ++i) {
    for (const char* source : {"brats", "kaggle"}) {
      samples.push_back(tiny_sample(rng, source, true));
      samples.push_back(tiny_sample(rng, source, false));
    }
  }
  return std::make_shared<data::InMemoryDataset>(std::move(samples));
}

using StateDict = std::map<std::string, std::vector<float>>;

StateDict state_of(const fs::path& checkpoint) {
  StateDict out;
  for (const auto& [name, t] : io::load_safetensors(checkpoint).tensors) {
    out[name] = t.to_vector<float>();
  }
  return out;
}

// How one component moved between two state dicts: whether any tensor (batch-norm statistics
// included) changed, and the largest change of a trainable parameter.
struct Moved {
  bool changed = false;
  double largest_step = 0;
};

Moved moved(const StateDict& before, const StateDict& after, Component c) {
  const std::string prefix = std::string(component_name(c)) + ".";
  Moved m;
  for (const auto& [name, a] : before) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::vector<float>& b = after.at(name);
    m.changed |= a != b;
    if (name.find("running_") != std::string::npos) continue;  // statistics, not parameters
    for (std::size_t i = 0; i < a.size(); ++i) {
      m.largest_step = std::max(m.largest_step, std::fabs(static_cast<double>(b[i]) - a[i]));
    }
  }
  return m;
}

// One optimiser step of each shipped stage file from the same initial weights (the model and
// the batch shrunk, nothing else changed): each stage moves exactly the components it is meant
// to train, and the joint stage moves the encoder by smaller steps than the decoder and the head.
// Adam's first step moves each parameter by about its group's learning rate.
TEST(TrainConfig, StageFilesTrainTheComponentsOfTheirStage) {
  const fs::path dir =
      fs::temp_directory_path() / ("glia_train_config_stage_steps_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::vector<std::string> tiny = {"model.base_filters=4", "model.depth=2",
                                         "model.cls_hidden=16",  "train.batch_size=4",
                                         "data.workers=0",       "augment.enabled=false"};
  const TrainConfig t = stage_file("stage1_seg_warmup.yaml", tiny);
  const fs::path init = dir / "init.safetensors";
  fs::create_directories(dir);
  write_initial_checkpoint(init, t.model, 5);
  const StateDict initial = state_of(init);
  const TrainData data{tiny_dataset(1), tiny_dataset(2), nullptr};

  std::map<int, std::map<Component, Moved>> moves;
  for (const char* file : {"stage1_seg_warmup.yaml", "stage2_cls_head.yaml", "stage3_joint.yaml"}) {
    SCOPED_TRACE(file);
    const io::Config config = load_training_config(kConfigs / "stages" / file, 0, tiny);
    RunOptions options;
    options.out_dir = dir / file;
    options.init_checkpoint = init;
    options.max_steps = 1;
    clear_stop_request();
    const StageResult r = train_stage(config, data, options);
    ASSERT_TRUE(r.interrupted);
    const StateDict after = state_of(r.last_checkpoint);
    for (Component c : kComponents) moves[r.stage][c] = moved(initial, after, c);
  }
  fs::remove_all(dir);

  EXPECT_TRUE(moves[1][Component::encoder].changed);
  EXPECT_TRUE(moves[1][Component::decoder].changed);
  EXPECT_FALSE(moves[1][Component::cls_head].changed);

  EXPECT_FALSE(moves[2][Component::encoder].changed);
  EXPECT_FALSE(moves[2][Component::decoder].changed);
  EXPECT_TRUE(moves[2][Component::cls_head].changed);

  const auto& joint = moves[3];
  for (Component c : kComponents) EXPECT_TRUE(joint.at(c).changed) << component_name(c);
  EXPECT_LT(joint.at(Component::encoder).largest_step, joint.at(Component::decoder).largest_step);
  EXPECT_LT(joint.at(Component::encoder).largest_step, joint.at(Component::cls_head).largest_step);
}

TEST(TrainConfig, DefaultsMatchTheModelSpecification) {
  const TrainConfig t = to_train_config(load_training_config({}, 1));
  EXPECT_EQ(t.model.in_channels, 1);
  EXPECT_EQ(t.model.base_filters, 32);
  EXPECT_EQ(t.model.depth, 3);
  EXPECT_EQ(t.model.out_channels, 1);
  EXPECT_EQ(t.model.cls_hidden, 256);
  EXPECT_EQ(t.model.num_classes, 2);
  EXPECT_DOUBLE_EQ(t.model.cls_dropout, 0.3);
  EXPECT_DOUBLE_EQ(t.loss.dice_weight, 0.5);
  EXPECT_DOUBLE_EQ(t.loss.bce_weight, 0.5);
  EXPECT_DOUBLE_EQ(t.metric_dice_weight, 0.5);
  EXPECT_EQ(t.precision, Precision::fp32);
  EXPECT_DOUBLE_EQ(t.grad_scaler.init_scale, 65536.0);  // torch.cuda.amp.GradScaler's defaults
  EXPECT_DOUBLE_EQ(t.grad_scaler.growth_factor, 2.0);
  EXPECT_DOUBLE_EQ(t.grad_scaler.backoff_factor, 0.5);
  EXPECT_EQ(t.grad_scaler.growth_interval, 2000);
  EXPECT_EQ(to_train_config(load_training_config({}, 1, {"precision=bf16"})).precision,
            Precision::bf16);
}

TEST(TrainConfig, CudnnChoicesDefaultToDeterministicHeuristics) {
  const TrainConfig t = to_train_config(load_training_config({}, 1));
  EXPECT_EQ(t.cudnn, (CudnnChoices{true, false}));
  EXPECT_EQ(t.cudnn, CudnnChoices{});
  const TrainConfig set = to_train_config(
      load_training_config({}, 1, {"cudnn.deterministic=false", "cudnn.find=true"}));
  EXPECT_EQ(set.cudnn, (CudnnChoices{false, true}));
}

class TrainConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() /
            (std::string("glia_train_config_") +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml");
  }
  void TearDown() override { fs::remove(path_); }
  const fs::path& write(const std::string& text) {
    std::ofstream(path_) << text;
    return path_;
  }
  fs::path path_;
};

TEST_F(TrainConfigFile, PipelineSectionsApplyToTheirStageOnly) {
  write(
      "model: {base_filters: 8}\ntrain: {epochs: 2}\n"
      "stage2: {train: {epochs: 5}, optim: {lr: 0.01}}\nstage3: {loss: {lambda_cls: 2}}\n");
  const TrainConfig s1 = to_train_config(load_training_config(path_, 1));
  const TrainConfig s2 = to_train_config(load_training_config(path_, 2));
  const TrainConfig s3 = to_train_config(load_training_config(path_, 3, {"train.epochs=7"}));
  EXPECT_EQ(s1.model.base_filters, 8);
  EXPECT_EQ(s2.model.base_filters, 8);
  EXPECT_EQ(s1.epochs, 2);
  EXPECT_EQ(s2.epochs, 5);
  EXPECT_DOUBLE_EQ(s2.optim.lr, 0.01);
  EXPECT_DOUBLE_EQ(s1.optim.lr, 1e-3);
  EXPECT_EQ(s3.epochs, 7);  // --set wins over the file
  EXPECT_DOUBLE_EQ(s3.loss.lambda_cls, 2.0);
  EXPECT_EQ(s1.stage, 1);
  EXPECT_EQ(s3.stage, 3);
}

TEST_F(TrainConfigFile, ErrorsNameTheKey) {
  write("sampler: {mode: ratio}\n");
  std::string e = error_of([&] { to_train_config(load_training_config(path_, 3)); });
  EXPECT_NE(e.find("sampler.source_ratio"), std::string::npos) << e;
  write("sampler: {mode: ratio, source_ratio: {brats: 0.5, mri: 0.5}}\n");
  e = error_of([&] { to_train_config(load_training_config(path_, 3)); });
  EXPECT_NE(e.find("'mri'"), std::string::npos) << e;
  write("stage3: {optim: {lr_encodr: 1}}\n");
  e = error_of([&] { load_training_config(path_, 3); });
  EXPECT_NE(e.find("did you mean 'optim.lr_encoder'"), std::string::npos) << e;
  EXPECT_NE(e.find(path_.filename().string()), std::string::npos) << e;
  e = error_of([&] { load_training_config({}, 2, {"stage=3"}); });
  EXPECT_NE(e.find("stage"), std::string::npos) << e;
  e = error_of([&] { load_training_config({}, 4); });
  EXPECT_NE(e.find("1, 2 or 3"), std::string::npos) << e;
  e = error_of([&] {
    to_train_config(load_training_config(
        {}, 1, {"schedule.name=cosine", "schedule.warmup_epochs=2", "train.epochs=2"}));
  });
  EXPECT_NE(e.find("schedule.warmup_epochs"), std::string::npos) << e;
  e = error_of([&] { to_train_config(load_training_config({}, 1, {"data.sources=[]"})); });
  EXPECT_NE(e.find("data.sources"), std::string::npos) << e;
  write("cudnn: {find: often}\n");
  e = error_of([&] { load_training_config(path_, 1); });
  EXPECT_NE(e.find("cudnn.find"), std::string::npos) << e;
  EXPECT_NE(e.find("expected true or false"), std::string::npos) << e;
  e = error_of([&] { load_training_config({}, 1, {"cudnn.deterministic=maybe"}); });
  EXPECT_NE(e.find("cudnn.deterministic"), std::string::npos) << e;
  write("cudnn: {benchmark: true}\n");
  e = error_of([&] { load_training_config(path_, 1); });
  EXPECT_NE(e.find("cudnn.benchmark"), std::string::npos) << e;
  write("precision: fp8\n");
  e = error_of([&] { load_training_config(path_, 1); });
  EXPECT_NE(e.find("precision"), std::string::npos) << e;
  EXPECT_NE(e.find("fp8"), std::string::npos) << e;
  e = error_of(
      [&] { to_train_config(load_training_config({}, 1, {"grad_scaler.backoff_factor=1"})); });
  EXPECT_NE(e.find("grad_scaler.backoff_factor"), std::string::npos) << e;
}

}  // namespace
}  // namespace glia::nets
