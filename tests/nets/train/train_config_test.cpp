// The training configuration: every shipped file under configs/ loads against the schema and
// converts to a TrainConfig; per-stage sections override common values; semantic errors (a ratio
// sampler without ratios, an unknown source, a conflicting stage) are reported by key.
#include "nets/train/train_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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

TEST(TrainConfig, StageFilesSayWhatTheStagesDo) {
  const TrainConfig s1 =
      to_train_config(load_training_config(kConfigs / "stages/stage1_seg_warmup.yaml", 0));
  EXPECT_EQ(s1.stage, 1);
  EXPECT_EQ(s1.data.sources, (std::vector<std::string>{"brats"}));
  const TrainConfig s2 =
      to_train_config(load_training_config(kConfigs / "stages/stage2_cls_head.yaml", 0));
  EXPECT_EQ(s2.stage, 2);
  EXPECT_TRUE(s2.freeze_decoder);
  EXPECT_TRUE(s2.frozen_bn_eval);
  const TrainConfig s3 =
      to_train_config(load_training_config(kConfigs / "stages/stage3_joint.yaml", 0));
  EXPECT_EQ(s3.stage, 3);
  // The defaults for the joint stage's parameter groups.
  EXPECT_DOUBLE_EQ(s3.optim.lr_encoder, 1e-4);
  EXPECT_DOUBLE_EQ(s3.optim.lr_decoder, 3e-4);
  EXPECT_DOUBLE_EQ(s3.optim.lr_head, 3e-4);
  EXPECT_GT(s3.optim.grad_clip, 0.0);
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
}

}  // namespace
}  // namespace glia::nets
