// The training schema and its typed view; see train_config.h.
#include "nets/train/train_config.h"

#include <stdexcept>

#include "io/atomic_file.h"

namespace glia::nets {
namespace {

io::ConfigSchema make_schema() {
  io::ConfigSchema s;
  s.add_int("stage", 1, 1, 3, "1 segmentation warm-up, 2 classification head, 3 joint");
  // Model (stored in checkpoints; a stage started from a checkpoint must match it).
  s.add_int("model.in_channels", 1, 1, 64, "input channels")
      .add_int("model.base_filters", 32, 1, 1024, "channels at the first level (B)")
      .add_int("model.depth", 3, 1, 8, "pooling steps (D); H and W must divide by 2^D")
      .add_int("model.out_channels", 1, 1, 64, "segmentation output channels")
      .add_int("model.cls_hidden", 256, 1, 65536, "classification head hidden width")
      .add_int("model.num_classes", 2, 2, 1024, "classes")
      .add_number("model.cls_dropout", 0.3, 0.0, 0.99, "dropout before the last linear layer");
  // Data.
  s.add_string("data.root", "", {}, "glia-prep output folder; empty = the built-in demo data")
      .add_string_list("data.sources", {"brats", "kaggle"}, {"brats", "kaggle"},
                       "sources used (stage 1 uses only samples with masks)")
      .add_int("data.workers", 2, 0, 64, "loader worker threads (0 = in the training thread)");
  s.add_int("demo.brats_subjects", 24, 3, 100000, "demo data: BraTS-like subjects generated")
      .add_int("demo.kaggle_images", 80, 2, 1000000, "demo data: Kaggle-like images generated")
      .add_int("demo.size", 64, 16, 1024, "demo data: in-plane size of the phantom volumes")
      .add_int("demo.seed", 1, 0, 9.0e15, "demo data: phantom generator seed");
  s.add_string(
       "sampler.mode", "shuffle",
       {"shuffle", "sequential", "balance_source", "balance_class", "balance_both", "ratio"},
       "how training samples are drawn")
      .add_number_map("sampler.source_ratio", {}, 0.0, 1.0,
                      "mode ratio: each source's share of every batch")
      .add_int("sampler.epoch_length", 0, 0, 1e9, "samples per epoch; 0 = the split's size");
  s.add_bool("distributed.sync_batchnorm", false,
             "--distributed: batch norm over every rank's batch (SyncBatchNorm), not per rank")
      .add_number("distributed.timeout_s", 600, 0.1, 86400,
                  "--distributed: a collective waiting this long ends the run naming the "
                  "missing rank")
      .add_number("distributed.bucket_mb", 25, 0.001, 4096,
                  "--distributed: gradient all-reduce bucket size (MiB)");
  s.add_bool("cudnn.deterministic", true,
             "cuda: only cuDNN algorithms that cuDNN reports deterministic (no atomics)")
      .add_bool(
          "cudnn.find", false,
          "cuda: cudnnFind times cuDNN's algorithms once per shape instead of its heuristics");
  s.add_bool("augment.enabled", true, "augment training samples")
      .add_number("augment.hflip_p", 0.5, 0.0, 1.0, "probability of a horizontal flip")
      .add_number("augment.vflip_p", 0.5, 0.0, 1.0, "probability of a vertical flip")
      .add_number("augment.rot90_p", 0.5, 0.0, 1.0, "probability of a k*90-degree rotation")
      .add_number("augment.shift_p", 0.5, 0.0, 1.0, "probability of an intensity shift")
      .add_number("augment.shift", 0.1, 0.0, 10.0, "intensity shift range (z-score units)")
      .add_number("augment.scale_p", 0.5, 0.0, 1.0, "probability of an intensity scaling")
      .add_number("augment.scale", 0.1, 0.0, 0.99, "intensity scale range (1 +- scale)")
      .add_number("augment.noise_p", 0.3, 0.0, 1.0, "probability of Gaussian noise")
      .add_number("augment.noise_std", 0.05, 0.0, 10.0, "Gaussian noise std (z-score units)")
      .add_string_list("augment.skull_mask_sources", {}, {"brats", "kaggle"},
                       "sources whose skull boundary is masked off (training and validation)")
      .add_number("augment.skull_percentile", 40.0, 0.0, 100.0, "brain threshold percentile")
      .add_int("augment.skull_erosion", 3, 0, 64, "erosion radius of the brain mask (pixels)");
  // Losses.
  s.add_number("loss.dice_weight", 0.5, 0.0, 100.0, "Dice term of the segmentation loss")
      .add_number("loss.bce_weight", 0.5, 0.0, 100.0, "BCE term of the segmentation loss")
      .add_number("loss.dice_smooth", 1.0, 0.0, 1e6, "Dice smoothing")
      .add_number("loss.pos_weight", 1.0, 0.0, 1e6, "BCE weight of tumour pixels")
      .add_string("loss.cls", "cross_entropy", {"cross_entropy", "focal"}, "classification loss")
      .add_number("loss.label_smoothing", 0.0, 0.0, 0.99, "cross-entropy label smoothing")
      .add_number("loss.weight_no_tumor", 1.0, 0.0, 1e6, "class weight of class 0")
      .add_number("loss.weight_tumor", 1.0, 0.0, 1e6, "class weight of class 1")
      .add_number("loss.focal_gamma", 2.0, 0.0, 100.0, "focal loss gamma")
      .add_number("loss.lambda_seg", 1.0, 0.0, 100.0, "stage 3: segmentation loss weight")
      .add_number("loss.lambda_cls", 1.0, 0.0, 100.0, "stage 3: classification loss weight");
  // Optimiser and schedule.
  s.add_string("optim.name", "adam", {"adam", "adamw"}, "optimiser")
      .add_number("optim.lr", 1e-3, 0.0, 10.0, "learning rate (stages 1 and 2)")
      .add_number("optim.lr_encoder", 1e-4, 0.0, 10.0, "stage 3: encoder learning rate")
      .add_number("optim.lr_decoder", 3e-4, 0.0, 10.0, "stage 3: decoder learning rate")
      .add_number("optim.lr_head", 3e-4, 0.0, 10.0, "stage 3: classification head learning rate")
      .add_number("optim.weight_decay", 0.0, 0.0, 10.0, "weight decay (decoupled for adamw)")
      .add_number("optim.beta1", 0.9, 0.0, 0.999999, "Adam beta1")
      .add_number("optim.beta2", 0.999, 0.0, 0.999999, "Adam beta2")
      .add_number("optim.grad_clip", 1.0, 0.0, 1e6, "global gradient-norm clip; 0 = off");
  s.add_string("schedule.name", "constant", {"constant", "step", "cosine", "plateau"},
               "learning-rate schedule, stepped per epoch")
      .add_int("schedule.warmup_epochs", 0, 0, 1e6, "cosine: linear warm-up epochs")
      .add_int("schedule.step_size", 10, 1, 1e6, "step: epochs between decays")
      .add_number("schedule.gamma", 0.1, 0.0, 1.0, "step: decay factor")
      .add_number("schedule.min_lr", 0.0, 0.0, 10.0, "cosine and plateau: lowest lr")
      .add_int("schedule.patience", 3, 0, 1e6, "plateau: epochs without improvement")
      .add_number("schedule.factor", 0.1, 0.0, 1.0, "plateau: decay factor");
  // Precision (engine/precision.h) and fp16's dynamic loss scaling (engine/optim/grad_scaler.h).
  s.add_string("precision", "fp32", {"fp32", "tf32", "bf16", "fp16"},
               "format of convolutions and GEMMs (FP32 accumulation, FP32 master weights)")
      .add_number("grad_scaler.init_scale", 65536.0, 1e-30, 1e30, "fp16: initial loss scale")
      .add_number("grad_scaler.growth_factor", 2.0, 1.0, 1e6,
                  "fp16: scale growth after growth_interval clean steps (above 1)")
      .add_number("grad_scaler.backoff_factor", 0.5, 0.0, 1.0,
                  "fp16: scale factor after an inf/NaN gradient (between 0 and 1)")
      .add_int("grad_scaler.growth_interval", 2000, 1, 1e9,
               "fp16: clean steps before the scale grows");
  // The loop.
  s.add_int("train.epochs", 10, 1, 1e6, "epochs")
      .add_int("train.batch_size", 8, 1, 65536, "samples per batch")
      .add_int("train.seed", 0, 0, 9.0e15, "seed of initialisation, sampling and augmentation")
      .add_int("train.early_stopping_patience", 5, 0, 1e6,
               "stop after this many epochs without a better validation metric; 0 = off")
      .add_number("train.metric_dice_weight", 0.5, 0.0, 1.0,
                  "w of the combined metric w * Dice + (1 - w) * accuracy")
      .add_number("train.cls_threshold", 0.5, 0.0, 1.0, "tumour probability threshold")
      .add_number("train.seg_threshold", 0.5, 0.0, 1.0, "mask probability threshold")
      .add_bool("train.freeze_decoder", true, "stage 2: freeze the decoder as well")
      .add_bool("train.frozen_bn_eval", true, "stage 2: keep frozen batch norms in eval mode")
      .add_string("train.init_checkpoint", "", {},
                  "start weights; empty = the previous stage's best, or fresh for stage 1");
  return s;
}

}  // namespace

const io::ConfigSchema& training_schema() {
  static const io::ConfigSchema schema = make_schema();
  return schema;
}

io::Config load_training_config(const std::filesystem::path& file, int stage,
                                const std::vector<std::string>& overrides) {
  if (stage < 0 || stage > 3) {
    throw std::invalid_argument("training stage must be 1, 2 or 3 (0: the file's), got " +
                                std::to_string(stage));
  }
  io::Config config(training_schema());
  const io::StringList sections{"stage1", "stage2", "stage3"};
  if (!file.empty()) {
    const std::string text = io::read_file(file);
    config.merge_yaml(text, file.string(), sections);
    if (stage == 0) stage = static_cast<int>(config.get_int("stage"));
    config.merge_yaml(text, file.string(), {}, "stage" + std::to_string(stage));
  } else if (stage == 0) {
    stage = 1;
  }
  config.set("stage=" + std::to_string(stage));
  for (const auto& o : overrides) config.set(o);
  if (config.get_int("stage") != stage) {
    throw std::invalid_argument("--set stage conflicts with the stage being run (" +
                                std::to_string(stage) + ")");
  }
  return config;
}

TrainConfig to_train_config(const io::Config& c) {
  TrainConfig t;
  auto i = [&](const char* key) { return static_cast<int>(c.get_int(key)); };
  t.stage = i("stage");
  t.model = {i("model.in_channels"),           i("model.base_filters"), i("model.depth"),
             i("model.out_channels"),          i("model.cls_hidden"),   i("model.num_classes"),
             c.get_number("model.cls_dropout")};
  t.data = {c.get_string("data.root"), c.get_string_list("data.sources"), i("data.workers")};
  if (t.data.sources.empty()) throw std::invalid_argument("data.sources: no source selected");
  t.sampler = {c.get_string("sampler.mode"), c.get_number_map("sampler.source_ratio"),
               c.get_int("sampler.epoch_length")};
  if (t.sampler.mode == "ratio") {
    if (t.sampler.source_ratio.empty()) {
      throw std::invalid_argument("sampler.mode is ratio but sampler.source_ratio is empty");
    }
    double total = 0;
    for (const auto& [source, share] : t.sampler.source_ratio) {
      if (source != "brats" && source != "kaggle") {
        throw std::invalid_argument("sampler.source_ratio: unknown source '" + source + "'");
      }
      total += share;
    }
    if (total <= 0) throw std::invalid_argument("sampler.source_ratio: the shares sum to 0");
  }
  t.augment_enabled = c.get_bool("augment.enabled");
  t.augment.p_hflip = c.get_number("augment.hflip_p");
  t.augment.p_vflip = c.get_number("augment.vflip_p");
  t.augment.p_rot90 = c.get_number("augment.rot90_p");
  t.augment.p_shift = c.get_number("augment.shift_p");
  t.augment.max_shift = c.get_number("augment.shift");
  t.augment.p_scale = c.get_number("augment.scale_p");
  t.augment.max_scale = c.get_number("augment.scale");
  t.augment.p_noise = c.get_number("augment.noise_p");
  t.augment.noise_std = c.get_number("augment.noise_std");
  t.augment.skull_sources = c.get_string_list("augment.skull_mask_sources");
  t.augment.skull_percentile = c.get_number("augment.skull_percentile");
  t.augment.skull_radius = i("augment.skull_erosion");
  t.loss = {c.get_number("loss.dice_weight"),
            c.get_number("loss.bce_weight"),
            c.get_number("loss.dice_smooth"),
            c.get_number("loss.pos_weight"),
            c.get_string("loss.cls"),
            c.get_number("loss.label_smoothing"),
            c.get_number("loss.weight_no_tumor"),
            c.get_number("loss.weight_tumor"),
            c.get_number("loss.focal_gamma"),
            c.get_number("loss.lambda_seg"),
            c.get_number("loss.lambda_cls")};
  t.optim = {c.get_string("optim.name"),       c.get_number("optim.lr"),
             c.get_number("optim.lr_encoder"), c.get_number("optim.lr_decoder"),
             c.get_number("optim.lr_head"),    c.get_number("optim.weight_decay"),
             c.get_number("optim.beta1"),      c.get_number("optim.beta2"),
             c.get_number("optim.grad_clip")};
  t.schedule = {c.get_string("schedule.name"),   c.get_int("schedule.warmup_epochs"),
                c.get_int("schedule.step_size"), c.get_number("schedule.gamma"),
                c.get_number("schedule.min_lr"), c.get_int("schedule.patience"),
                c.get_number("schedule.factor")};
  t.distributed = {c.get_bool("distributed.sync_batchnorm"), c.get_number("distributed.timeout_s"),
                   c.get_number("distributed.bucket_mb")};
  t.cudnn = {c.get_bool("cudnn.deterministic"), c.get_bool("cudnn.find")};
  t.epochs = c.get_int("train.epochs");
  t.batch_size = c.get_int("train.batch_size");
  t.seed = static_cast<std::uint64_t>(c.get_int("train.seed"));
  t.early_stopping_patience = c.get_int("train.early_stopping_patience");
  t.metric_dice_weight = c.get_number("train.metric_dice_weight");
  t.cls_threshold = c.get_number("train.cls_threshold");
  t.seg_threshold = c.get_number("train.seg_threshold");
  t.freeze_decoder = c.get_bool("train.freeze_decoder");
  t.frozen_bn_eval = c.get_bool("train.frozen_bn_eval");
  t.init_checkpoint = c.get_string("train.init_checkpoint");
  t.precision = parse_precision(c.get_string("precision"));
  t.grad_scaler = {
      c.get_number("grad_scaler.init_scale"), c.get_number("grad_scaler.growth_factor"),
      c.get_number("grad_scaler.backoff_factor"), c.get_int("grad_scaler.growth_interval")};
  if (t.grad_scaler.growth_factor <= 1.0 || t.grad_scaler.backoff_factor <= 0.0 ||
      t.grad_scaler.backoff_factor >= 1.0) {
    throw std::invalid_argument(
        "grad_scaler.growth_factor must be above 1 and grad_scaler.backoff_factor between 0 and "
        "1 (exclusive)");
  }
  if (t.schedule.name == "cosine" && t.schedule.warmup_epochs >= t.epochs) {
    throw std::invalid_argument("schedule.warmup_epochs (" +
                                std::to_string(t.schedule.warmup_epochs) +
                                ") must be less than train.epochs (" + std::to_string(t.epochs) +
                                ") for the cosine schedule");
  }
  if (t.loss.dice_weight + t.loss.bce_weight <= 0) {
    throw std::invalid_argument("loss.dice_weight + loss.bce_weight must be positive");
  }
  return t;
}

}  // namespace glia::nets
