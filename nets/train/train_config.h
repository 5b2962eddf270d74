// The training configuration: every key the three training stages read, with its type, default
// and range (io/config.h checks files and --set overrides against it), and the typed view the
// trainer uses. A stage file (configs/stages/*.yaml) sets `stage` and its values; a pipeline file
// (configs/demo.yaml) holds values common to all stages plus optional `stage1:`, `stage2:`,
// `stage3:` sections read on top of them by that stage only.
// Tested in tests/nets/train/train_config_test.cpp (which also loads every file under configs/).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/input/transforms.h"
#include "engine/optim/grad_scaler.h"
#include "engine/policy.h"
#include "engine/precision.h"
#include "io/config.h"
#include "nets/model/unet.h"

namespace glia::nets {

// The schema of one stage's configuration.
const io::ConfigSchema& training_schema();

// Loads `file` (may be empty: defaults only) for `stage` (1, 2 or 3; 0 = the file's own `stage`
// key): the common values, then the file's `stage<N>` section, then `overrides` ("a.b=v").
io::Config load_training_config(const std::filesystem::path& file, int stage,
                                const std::vector<std::string>& overrides = {});

struct DataConfig {
  std::string root;                  // glia-prep output folder; empty = the built-in demo data
  std::vector<std::string> sources;  // which sources to use: brats, kaggle
  int workers = 2;
};

struct SamplingConfig {
  std::string mode;  // shuffle | sequential | balance_source | balance_class | balance_both | ratio
  io::NumberMap source_ratio;     // mode ratio: the share of each source in every batch
  std::int64_t epoch_length = 0;  // samples per epoch; 0 = the training split's size
};

struct LossConfig {
  double dice_weight = 0.5;
  double bce_weight = 0.5;
  double dice_smooth = 1.0;
  double pos_weight = 1.0;
  std::string cls;  // cross_entropy | focal
  double label_smoothing = 0.0;
  double weight_no_tumor = 1.0;
  double weight_tumor = 1.0;
  double focal_gamma = 2.0;
  double lambda_seg = 1.0;
  double lambda_cls = 1.0;
};

struct OptimConfig {
  std::string name;          // adam | adamw
  double lr = 1e-3;          // stages 1 and 2
  double lr_encoder = 1e-4;  // stage 3
  double lr_decoder = 3e-4;  // stage 3
  double lr_head = 3e-4;     // stage 3
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double grad_clip = 1.0;  // global-norm clipping; 0 = off
};

struct ScheduleConfig {
  std::string name;  // constant | step | cosine | plateau
  std::int64_t warmup_epochs = 0;
  std::int64_t step_size = 10;
  double gamma = 0.1;
  double min_lr = 0.0;
  std::int64_t patience = 3;
  double factor = 0.1;
};

// Used by data-parallel runs only (glia-train --distributed).
struct DistributedConfig {
  bool sync_batchnorm = false;
  double timeout_s = 600;
  double bucket_mb = 25;
};

struct TrainConfig {
  int stage = 1;
  UNetConfig model;
  DataConfig data;
  SamplingConfig sampler;
  bool augment_enabled = true;
  data::AugmentConfig augment;
  LossConfig loss;
  OptimConfig optim;
  ScheduleConfig schedule;
  DistributedConfig distributed;
  CudnnChoices cudnn;  // process-wide: run_training sets them before each stage
  std::int64_t epochs = 10;
  std::int64_t batch_size = 8;
  std::uint64_t seed = 0;
  std::int64_t early_stopping_patience = 5;  // epochs without a better metric; 0 = off
  double metric_dice_weight = 0.5;           // combined = w * Dice + (1 - w) * accuracy
  double cls_threshold = 0.5;
  double seg_threshold = 0.5;
  bool freeze_decoder = true;   // stage 2: the encoder is always frozen, the decoder by default
  bool frozen_bn_eval = true;   // stage 2: frozen components' batch norms stay in eval mode
  std::string init_checkpoint;  // start weights; empty = the previous stage's best (or fresh)
  Precision precision = Precision::fp32;  // set for the stage (engine/precision.h)
  optim::GradScalerOptions grad_scaler;   // used when precision is fp16
};

TrainConfig to_train_config(const io::Config& config);

}  // namespace glia::nets
