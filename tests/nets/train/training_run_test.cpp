// Training runs as glia-train performs them, on a tiny demo dataset (3 phantom subjects and 8
// images generated at 32x32, then preprocessed to 256x256; a 2-level U-Net with 2 base filters;
// two steps per stage): a data folder without a manifest is named in the error; the demo data is
// generated once per set of generator options and then reused untouched; --stage all chains the
// stages (stage 2 starts from stage 1's best checkpoint, stage 3 from stage 2's); --resume keeps
// the finished stages and finishes an interrupted one; the report has a row for every stage's
// test metrics; the cudnn.* keys reach the process-wide cuDNN settings.
#include "nets/train/training_run.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <map>
#include <regex>
#include <sstream>

#include "io/safetensors.h"
#include "nets/model/checkpoint.h"
#include "nets/train/train_config.h"
#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/settings.h"
#endif

namespace glia::nets {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kTiny = {
    "demo.brats_subjects=3", "demo.kaggle_images=8",    "demo.size=32",
    "model.base_filters=2",  "model.depth=2",           "model.cls_hidden=8",
    "train.epochs=1",        "train.batch_size=4",      "sampler.epoch_length=8",
    "data.workers=0",        "schedule.warmup_epochs=0"};

using Weights = std::map<std::string, std::vector<float>>;

Weights weights_of(const fs::path& checkpoint) {
  Weights out;
  for (const auto& [name, t] : io::load_safetensors(checkpoint).tensors) {
    out[name] = t.to_vector<float>();
  }
  return out;
}

// The tensors of one component ("encoder.", "decoder.", "cls_head.").
Weights part(const Weights& w, const std::string& prefix) {
  Weights out;
  for (const auto& [name, v] : w) {
    if (name.rfind(prefix, 0) == 0) out[name] = v;
  }
  return out;
}

// Every file under `dir` with its modification time.
std::map<std::string, std::int64_t> files_of(const fs::path& dir) {
  std::map<std::string, std::int64_t> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      out[e.path().string()] = e.last_write_time().time_since_epoch().count();
    }
  }
  return out;
}

// A folder of its own per test and process: ctest runs the cases in parallel.
fs::path scratch_dir() {
  return fs::temp_directory_path() /
         (std::string("glia_training_run_") +
          ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
          std::to_string(::getpid()));
}

class TrainingRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = scratch_dir();
    fs::remove_all(root_);
    clear_stop_request();
  }
  void TearDown() override { fs::remove_all(root_); }

  TrainRequest request(const std::string& out) const {
    TrainRequest r;
    r.overrides = kTiny;
    r.out_dir = root_ / out;
    r.data_cache = root_ / "cache";
    return r;
  }

  fs::path root_;
};

TEST_F(TrainingRunTest, AFolderWithoutAManifestIsNamed) {
  const fs::path empty = root_ / "no_data";
  fs::create_directories(empty);
  try {
    load_train_data(empty, {"brats"});
    FAIL() << "a folder without manifest.csv must throw";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(empty.string()), std::string::npos) << what;
    EXPECT_NE(what.find("manifest.csv"), std::string::npos) << what;
  }
}

TEST_F(TrainingRunTest, DemoDataIsGeneratedOnceAndReused) {
  const io::Config config = load_training_config({}, 1, kTiny);
  std::ostringstream first_log, second_log, other_log;
  const fs::path data = ensure_demo_data(root_ / "cache", config, first_log);
  ASSERT_TRUE(fs::exists(data / "manifest.csv")) << first_log.str();
  const auto files = files_of(data.parent_path());

  const fs::path again = ensure_demo_data(root_ / "cache", config, second_log);
  EXPECT_EQ(again, data);
  EXPECT_EQ(files_of(data.parent_path()), files) << "the cached data was written again";
  EXPECT_NE(second_log.str().find("cached"), std::string::npos) << second_log.str();

  // Another generator option is another dataset, in its own folder; the first one stays.
  const io::Config other = load_training_config(
      {}, 1, {"demo.brats_subjects=3", "demo.kaggle_images=8", "demo.size=32", "demo.seed=2"});
  const fs::path other_data = ensure_demo_data(root_ / "cache", other, other_log);
  EXPECT_NE(other_data, data);
  EXPECT_TRUE(fs::exists(other_data / "manifest.csv")) << other_log.str();
  EXPECT_EQ(files_of(data.parent_path()), files);
}

TEST_F(TrainingRunTest, AllStagesChainAndResumeKeepsFinishedOnes) {
  std::ostringstream log;
  TrainRequest all = request("all");
  const TrainReport report = run_training(all, log);
  ASSERT_EQ(report.stages.size(), 3u) << log.str();
  EXPECT_FALSE(report.interrupted);
  for (int s = 1; s <= 3; ++s) {
    EXPECT_EQ(report.stages[s - 1].stage, s);
    EXPECT_TRUE(fs::exists(all.out_dir / ("stage" + std::to_string(s)) / "best.safetensors"));
  }
  EXPECT_TRUE(fs::exists(all.out_dir / "summary.json"));

  // Stage 2 started from stage 1's best: its frozen encoder and decoder are that checkpoint's,
  // which stage 1 moved away from the seed's initial weights.
  const Weights best1 = weights_of(report.stages[0].best_checkpoint);
  const Weights best2 = weights_of(report.stages[1].best_checkpoint);
  const TrainConfig t = to_train_config(load_training_config({}, 1, kTiny));
  const fs::path fresh = root_ / "fresh.safetensors";
  write_initial_checkpoint(fresh, t.model, t.seed);
  const Weights initial = weights_of(fresh);
  for (const char* frozen : {"encoder.", "decoder."}) {
    EXPECT_TRUE(part(best2, frozen) == part(best1, frozen)) << frozen;
    EXPECT_FALSE(part(best1, frozen) == part(initial, frozen)) << frozen;
  }

  // Stage 3 started from stage 2's best: run alone from that checkpoint, it ends with the same
  // weights (cpu is deterministic).
  TrainRequest alone = request("stage3_alone");
  alone.stage = "3";
  alone.overrides.push_back("train.init_checkpoint=" + report.stages[1].best_checkpoint.string());
  std::ostringstream alone_log;
  const TrainReport three = run_training(alone, alone_log);
  ASSERT_EQ(three.stages.size(), 1u);
  EXPECT_TRUE(weights_of(three.stages[0].last_checkpoint) ==
              weights_of(report.stages[2].last_checkpoint));

  // Resuming a finished run keeps every stage and rewrites no checkpoint.
  const auto before = files_of(all.out_dir / "stage1");
  TrainRequest resume = all;
  resume.resume = true;
  std::ostringstream resume_log;
  const TrainReport resumed = run_training(resume, resume_log);
  EXPECT_TRUE(resumed.stages.empty());
  for (int s = 1; s <= 3; ++s) {
    const std::string kept = "stage " + std::to_string(s) + ": finished earlier, kept";
    EXPECT_NE(resume_log.str().find(kept), std::string::npos) << resume_log.str();
  }
  EXPECT_EQ(files_of(all.out_dir / "stage1"), before);

  // The report has a row per stage and split with test metrics, with its sample count (stage 1
  // tests on the samples with masks, which this tiny test split may lack).
  const std::string table = format_report(report);
  EXPECT_FALSE(report.stages[1].test.empty());
  EXPECT_FALSE(report.stages[2].test.empty());
  for (const StageResult& r : report.stages) {
    for (const auto& [split, summary] : r.test) {
      std::ostringstream row;
      row << "  " << std::setw(5) << r.stage << "  " << std::left << std::setw(8) << split
          << std::right << std::setw(8) << summary.count;
      EXPECT_NE(table.find(row.str()), std::string::npos) << row.str() << "\n" << table;
    }
  }
  EXPECT_NE(table.find(all.out_dir.string()), std::string::npos) << table;
}

TEST_F(TrainingRunTest, ResumeFinishesAnInterruptedStageThenRunsTheRest) {
  TrainRequest cut = request("cut");
  cut.max_steps = 1;
  std::ostringstream log;
  const TrainReport first = run_training(cut, log);
  ASSERT_EQ(first.stages.size(), 1u);
  EXPECT_TRUE(first.interrupted);
  EXPECT_FALSE(fs::exists(cut.out_dir / "stage2"));

  TrainRequest resume = cut;
  resume.max_steps = 0;
  resume.resume = true;
  std::ostringstream resume_log;
  const TrainReport rest = run_training(resume, resume_log);
  ASSERT_EQ(rest.stages.size(), 3u) << resume_log.str();
  EXPECT_FALSE(rest.interrupted);
  EXPECT_EQ(rest.stages[0].epochs_run, 1);
  EXPECT_NE(resume_log.str().find("(resumed)"), std::string::npos) << resume_log.str();
}

// The cudnn.* keys reach the process-wide cuDNN settings before a stage starts (here stage 2
// alone, which stops for want of a checkpoint after its configuration is resolved and printed).
TEST_F(TrainingRunTest, CudnnKeysReachTheProcessSettings) {
  const CudnnChoices saved = cudnn_choices();
  TrainRequest two = request("cudnn");
  two.stage = "2";
  two.overrides.push_back("cudnn.deterministic=false");
  two.overrides.push_back("cudnn.find=true");
  std::ostringstream log;
  EXPECT_THROW(run_training(two, log), std::invalid_argument);
  EXPECT_EQ(cudnn_choices(), (CudnnChoices{false, true}));
#if defined(GLIA_HAVE_CUDA)
  EXPECT_FALSE(kernels::cudnn::settings().deterministic);
  EXPECT_TRUE(kernels::cudnn::settings().find);
#endif
  // The resolved configuration printed at the start names both.
  EXPECT_TRUE(std::regex_search(log.str(), std::regex("cudnn\\.deterministic += false")))
      << log.str();
  EXPECT_TRUE(std::regex_search(log.str(), std::regex("cudnn\\.find += true"))) << log.str();
  set_cudnn_choices(saved);
}

TEST_F(TrainingRunTest, ALaterStageAloneNeedsACheckpoint) {
  TrainRequest two = request("two");
  two.stage = "2";
  std::ostringstream log;
  try {
    run_training(two, log);
    FAIL() << "stage 2 without a checkpoint must throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("train.init_checkpoint"), std::string::npos) << e.what();
  }
  two.stage = "4";
  EXPECT_THROW(run_training(two, log), std::invalid_argument);
}

}  // namespace
}  // namespace glia::nets
