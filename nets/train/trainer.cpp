// One training stage: loop, validation, checkpoints, early stopping and exact resume; see
// trainer.h.
#include "nets/train/trainer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "data/input/loader.h"
#include "engine/dist/reducer.h"
#include "engine/nn/layers.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/grad_scaler.h"
#include "engine/optim/schedule.h"
#include "engine/precision.h"
#include "engine/random.h"
#include "engine/upload.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "nets/eval/metrics_json.h"
#include "nets/eval/sample_scores.h"
#include "nets/model/checkpoint.h"
#include "nets/model/multitask_loss.h"
#include "nets/train/train_config.h"

namespace glia::nets {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::atomic<bool> g_stop{false};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The items of another dataset that pass a filter (stage 1 trains on samples with masks only).
class SubsetDataset : public data::Dataset {
 public:
  SubsetDataset(std::shared_ptr<const data::Dataset> base, std::vector<std::size_t> items)
      : base_(std::move(base)), items_(std::move(items)) {}
  std::size_t size() const override { return items_.size(); }
  const std::string& source(std::size_t i) const override { return base_->source(at(i)); }
  int label(std::size_t i) const override { return base_->label(at(i)); }
  bool has_mask(std::size_t i) const override { return base_->has_mask(at(i)); }
  data::Sample load(std::size_t i) const override { return base_->load(at(i)); }
  std::string describe(std::size_t i) const override { return base_->describe(at(i)); }

 private:
  std::size_t at(std::size_t i) const {
    check_index(i);
    return items_[i];
  }
  std::shared_ptr<const data::Dataset> base_;
  std::vector<std::size_t> items_;
};

std::shared_ptr<const data::Dataset> masked_only(std::shared_ptr<const data::Dataset> d) {
  if (!d) return d;
  std::vector<std::size_t> items;
  for (std::size_t i = 0; i < d->size(); ++i) {
    if (d->has_mask(i)) items.push_back(i);
  }
  return std::make_shared<SubsetDataset>(d, std::move(items));
}

data::SamplerConfig make_sampler_config(const TrainConfig& t) {
  data::SamplerConfig s;
  const std::string& mode = t.sampler.mode;
  if (mode == "shuffle") {
    s.mode = data::SamplerMode::shuffle;
  } else if (mode == "sequential") {
    s.mode = data::SamplerMode::sequential;
  } else if (mode == "ratio") {
    s.mode = data::SamplerMode::ratio;
    s.source_ratio = t.sampler.source_ratio;
    s.batch_size = static_cast<std::size_t>(t.batch_size);
  } else {
    s.mode = data::SamplerMode::weighted;
    s.balance = mode == "balance_source"  ? data::Balance::source
                : mode == "balance_class" ? data::Balance::label
                                          : data::Balance::source_label;
  }
  s.epoch_length = static_cast<std::size_t>(t.sampler.epoch_length);
  s.seed = t.seed;
  return s;
}

// A data-parallel rank's shard, or the whole order for one process.
void set_shard(data::SamplerConfig& s, const std::shared_ptr<dist::Communicator>& comm, bool pad) {
  if (!comm) return;
  s.rank = comm->rank();
  s.world_size = comm->size();
  s.pad_shards = pad;
}

// Evaluation shards are not padded: every sample is scored once over all ranks.
std::unique_ptr<data::Loader> make_eval_loader(const std::shared_ptr<const data::Dataset>& d,
                                               const TrainConfig& t,
                                               const std::shared_ptr<dist::Communicator>& comm) {
  data::SamplerConfig s;
  s.mode = data::SamplerMode::sequential;
  set_shard(s, comm, false);
  data::LoaderConfig l;
  l.batch_size = static_cast<std::size_t>(t.batch_size);
  l.workers = t.data.workers;
  l.seed = t.seed;
  return std::make_unique<data::Loader>(d, data::Sampler(*d, s), data::val_transforms(t.augment),
                                        l);
}

// What a resumed run needs besides the weights and the optimiser state.
struct LoopState {
  std::int64_t epoch = 0;  // the epoch in progress (or next)
  std::int64_t batch = 0;  // batches of `epoch` already trained
  std::int64_t global_step = 0;
  double best_metric = kNaN;
  std::int64_t best_epoch = -1;
  std::int64_t bad_epochs = 0;
  std::int64_t schedule_step = 0;
  optim::ReduceLrOnPlateau::State plateau;
  std::uint64_t generator_offset = 0;
  double loss_sum = 0, seg_sum = 0, cls_sum = 0;  // of the epoch in progress
  std::int64_t samples = 0;
  // fp16's loss scaler (NaN: none) and the steps it skipped.
  double loss_scale = kNaN;
  std::int64_t scale_growth_tracker = 0;
  std::int64_t skipped_steps = 0;

  std::string to_json() const {
    json j = {{"epoch", epoch},
              {"batch", batch},
              {"global_step", global_step},
              {"best_metric", std::isfinite(best_metric) ? json(best_metric) : json(nullptr)},
              {"best_epoch", best_epoch},
              {"bad_epochs", bad_epochs},
              {"schedule_step", schedule_step},
              {"plateau_best", plateau.best},
              {"plateau_bad_steps", plateau.bad_steps},
              {"plateau_cooldown_left", plateau.cooldown_left},
              {"generator_offset", generator_offset},
              {"loss_sum", loss_sum},
              {"seg_sum", seg_sum},
              {"cls_sum", cls_sum},
              {"samples", samples},
              {"loss_scale", std::isfinite(loss_scale) ? json(loss_scale) : json(nullptr)},
              {"scale_growth_tracker", scale_growth_tracker},
              {"skipped_steps", skipped_steps}};
    return j.dump();
  }
  static LoopState from_json(const std::string& text, const std::string& what) {
    try {
      const json j = json::parse(text);
      LoopState s;
      s.epoch = j.at("epoch");
      s.batch = j.at("batch");
      s.global_step = j.at("global_step");
      s.best_metric = j.at("best_metric").is_null() ? kNaN : j.at("best_metric").get<double>();
      s.best_epoch = j.at("best_epoch");
      s.bad_epochs = j.at("bad_epochs");
      s.schedule_step = j.at("schedule_step");
      s.plateau.best = j.at("plateau_best");
      s.plateau.bad_steps = j.at("plateau_bad_steps");
      s.plateau.cooldown_left = j.at("plateau_cooldown_left");
      s.generator_offset = j.at("generator_offset");
      s.loss_sum = j.at("loss_sum");
      s.seg_sum = j.at("seg_sum");
      s.cls_sum = j.at("cls_sum");
      s.samples = j.at("samples");
      // Absent from checkpoints written before loss scaling existed.
      if (j.contains("loss_scale") && !j.at("loss_scale").is_null()) s.loss_scale = j["loss_scale"];
      s.scale_growth_tracker = j.value("scale_growth_tracker", std::int64_t{0});
      s.skipped_steps = j.value("skipped_steps", std::int64_t{0});
      return s;
    } catch (const json::exception& e) {
      throw std::runtime_error(what + ": unreadable training state in the metadata: " + e.what());
    }
  }
};

std::string format(double v, int precision = 4) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

// Parameter groups of a stage: stage 1 encoder + decoder, stage 2 the head (and the decoder
// when it is not frozen), stage 3 one group per component with its own learning rate.
std::vector<optim::ParamGroup> make_groups(MultiTaskUNet& model, const TrainConfig& t) {
  auto group = [&](Component c, double lr) {
    optim::ParamGroup g;
    g.params = model.component(c).parameters();
    g.lr = lr;
    g.weight_decay = t.optim.weight_decay;
    g.name = component_name(c);
    return g;
  };
  std::vector<optim::ParamGroup> groups;
  if (t.stage == 1) {
    groups.push_back(group(Component::encoder, t.optim.lr));
    groups.push_back(group(Component::decoder, t.optim.lr));
  } else if (t.stage == 2) {
    groups.push_back(group(Component::cls_head, t.optim.lr));
    if (!t.freeze_decoder) groups.push_back(group(Component::decoder, t.optim.lr));
  } else {
    groups.push_back(group(Component::encoder, t.optim.lr_encoder));
    groups.push_back(group(Component::decoder, t.optim.lr_decoder));
    groups.push_back(group(Component::cls_head, t.optim.lr_head));
  }
  return groups;
}

void set_trainable(MultiTaskUNet& model, const TrainConfig& t) {
  for (Component c : kComponents) model.unfreeze(c);
  model.set_frozen_bn_eval(t.frozen_bn_eval);
  if (t.stage == 1) {
    model.freeze(Component::cls_head);
  } else if (t.stage == 2) {
    model.freeze(Component::encoder);
    if (t.freeze_decoder) model.freeze(Component::decoder);
  }
}

std::unique_ptr<optim::Optimizer> make_optimizer(MultiTaskUNet& model, const TrainConfig& t) {
  optim::AdamOptions options;
  options.beta1 = t.optim.beta1;
  options.beta2 = t.optim.beta2;
  if (t.optim.name == "adamw") {
    return std::make_unique<optim::AdamW>(make_groups(model, t), options);
  }
  return std::make_unique<optim::Adam>(make_groups(model, t), options);
}

std::vector<Tensor> trainable_parameters(const optim::Optimizer& optimizer) {
  std::vector<Tensor> params;
  for (const auto& g : optimizer.param_groups()) {
    params.insert(params.end(), g.params.begin(), g.params.end());
  }
  return params;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

void write_lines(const fs::path& path, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  io::write_file_atomic(path, text);
}

void draw_progress(int stage, std::int64_t epoch, std::int64_t epochs, std::size_t done,
                   std::size_t total, double samples_per_s, double running_loss) {
  constexpr int kWidth = 24;
  const int filled = total ? static_cast<int>(kWidth * done / total) : kWidth;
  std::fprintf(stderr, "\r  stage %d epoch %lld/%lld [%s%s] %zu/%zu  %.1f samples/s  loss %.4f ",
               stage, static_cast<long long>(epoch + 1), static_cast<long long>(epochs),
               std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(), done,
               total, samples_per_s, running_loss);
  std::fflush(stderr);
}

// The files of a stage's run folder. The optimiser state pairs with last.safetensors through the
// step in both files' metadata; a new state is written to optim_pending first (see save_last).
struct RunFiles {
  explicit RunFiles(const fs::path& dir)
      : best(dir / "best.safetensors"),
        last(dir / "last.safetensors"),
        optim(optimizer_state_path(last)),
        optim_pending(dir / "last.optim.pending.safetensors"),
        metrics(dir / "metrics.jsonl"),
        summary(dir / "summary.json"),
        config(dir / "config.yaml") {}
  fs::path best, last, optim, optim_pending, metrics, summary, config;
};

// The splits a stage trains on, checked: stage 1 learns segmentation only, so its splits keep
// the samples that have masks.
TrainData stage_splits(const TrainData& data, int stage) {
  TrainData d = data;
  if (stage == 1) {
    d.train = masked_only(d.train);
    d.val = masked_only(d.val);
    d.test = masked_only(d.test);
  }
  const std::string wanted = stage == 1 ? "samples with masks" : "samples";
  if (d.train->size() == 0) {
    throw std::runtime_error("stage " + std::to_string(stage) + ": the training split has no " +
                             wanted);
  }
  if (d.val->size() == 0) {
    throw std::runtime_error("stage " + std::to_string(stage) + ": the validation split has no " +
                             wanted);
  }
  return d;
}

// Step and cosine schedules advance per batch (their lengths are given in epochs); the plateau
// schedule per epoch, on the validation metric.
struct Schedules {
  std::unique_ptr<optim::LrSchedule> per_batch;
  std::unique_ptr<optim::ReduceLrOnPlateau> plateau;
};

Schedules make_schedules(optim::Optimizer& optimizer, const TrainConfig& t, std::int64_t batches) {
  Schedules s;
  if (t.schedule.name == "step") {
    s.per_batch = std::make_unique<optim::StepLr>(optimizer, t.schedule.step_size * batches,
                                                  t.schedule.gamma);
  } else if (t.schedule.name == "cosine") {
    // The warm-up ramps to the base lr over its batches, starting one step in rather than at 0.
    s.per_batch = std::make_unique<optim::WarmupCosineLr>(
        optimizer, t.schedule.warmup_epochs * batches, t.epochs * batches, t.schedule.min_lr);
    if (t.schedule.warmup_epochs > 0) s.per_batch->set_step(1);
  } else if (t.schedule.name == "plateau") {
    optim::PlateauOptions p;
    p.mode = optim::PlateauMode::max;
    p.factor = t.schedule.factor;
    p.patience = static_cast<int>(t.schedule.patience);
    p.min_lr = t.schedule.min_lr;
    s.plateau = std::make_unique<optim::ReduceLrOnPlateau>(optimizer, p);
  }
  return s;
}

std::unique_ptr<data::Loader> make_train_loader(const std::shared_ptr<const data::Dataset>& d,
                                                const TrainConfig& t,
                                                const std::shared_ptr<dist::Communicator>& comm) {
  data::SamplerConfig s = make_sampler_config(t);
  set_shard(s, comm, true);
  data::LoaderConfig l;
  l.batch_size = static_cast<std::size_t>(t.batch_size);
  l.workers = t.data.workers;
  l.seed = t.seed;
  return std::make_unique<data::Loader>(
      d, data::Sampler(*d, s),
      t.augment_enabled ? data::train_transforms(t.augment) : data::val_transforms(t.augment), l);
}

// One epoch's validation against the best so far.
struct Validation {
  std::map<std::string, Summary> summaries;
  double metric = kNaN;  // the combined metric of "overall"
  bool better = false;
};

// One stage from set-up to summary, as named steps over the state they share. The dropout masks
// come from the stage's own generator, seeded from the configuration and saved with the
// resumable state; nothing else draws from it.
class StageRun {
 public:
  StageRun(const io::Config& config, const TrainData& data, const RunOptions& options);
  // Epochs until the last, an early stop or a stop request.
  void train_epochs();
  // The best checkpoint on the test split, unless interrupted.
  void test_best();
  // summary.json, and the result.
  StageResult finish();

 private:
  using clock = std::chrono::steady_clock;

  void load_or_init_model();
  void restore_resumed_state();
  void restore_optimizer_state();
  void log_start() const;
  // Trains the rest of the epoch in progress; false when stopped (the step limit or a stop
  // request) before its end.
  bool train_epoch(clock::time_point epoch_started);
  // The batch's tensors on the run's device, queued on its copy stream.
  PendingUpload upload_batch(const data::Batch& batch) const;
  void train_step(const data::Batch& batch, PendingUpload& upload);
  [[noreturn]] void fail(const std::string& what) const;
  Validation validate();
  void record_epoch(const Validation& v, double train_seconds);
  void end_epoch(const Validation& v);
  void save_last(const std::string& val_metrics);
  // Runs a write of the stage's outputs; a failure (a full disk, an unwritable folder) stops the
  // stage with the error and the last good checkpoint.
  template <typename Write>
  void guarded(const char* what, Write&& write);

  const clock::time_point started_ = clock::now();
  const TrainConfig t_;
  const ScopedPrecision precision_;  // the stage's, restored when it ends
  const int stage_;
  const RunOptions& options_;
  std::ostream* log_;
  TrainData data_;
  const RunFiles files_;
  std::shared_ptr<MultiTaskUNet> model_;
  io::Metadata resumed_metadata_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::unique_ptr<optim::GradScaler> scaler_;  // fp16 only
  std::vector<Tensor> params_;
  std::unique_ptr<data::Loader> train_loader_;
  Schedules schedules_;
  std::shared_ptr<Generator> generator_;
  LoopState state_;
  std::vector<std::string> metric_lines_;
  std::unique_ptr<data::Loader> val_loader_;
  bool train_seg_ = false, train_cls_ = false;
  EvalOptions eval_options_;
  std::int64_t steps_here_ = 0, epoch_samples_here_ = 0;
  StageResult result_;
  // Data-parallel runs: the communicator and the gradient reducer; only the writer (rank 0, or
  // the single process) writes files.
  std::shared_ptr<dist::Communicator> comm_;
  std::unique_ptr<dist::GradReducer> reducer_;
  bool writer_ = true;
  // Scores a loader's samples on every rank's shard, gathered (see RunOptions::comm).
  std::vector<SampleResult> score(data::Loader& loader, const data::Dataset& dataset);
  // True on every rank when `flag` is true on any (a single process: the flag).
  bool on_any_rank(bool flag) { return comm_ ? comm_->any(flag) : flag; }
};

StageRun::StageRun(const io::Config& config, const TrainData& data, const RunOptions& options)
    : t_(to_train_config(config)),
      precision_(t_.precision),
      stage_(t_.stage),
      options_(options),
      log_(options.log),
      files_(options.out_dir),
      comm_(options.comm),
      writer_(!options.comm || options.comm->rank() == 0) {
  if (options.out_dir.empty()) throw std::invalid_argument("train_stage: no output folder");
  if (!data.train || !data.val) {
    throw std::invalid_argument("train_stage: the training and validation splits are required");
  }
  if (comm_)
    comm_->set_timeout(
        std::chrono::milliseconds(static_cast<std::int64_t>(t_.distributed.timeout_s * 1000.0)));
  if (writer_) {
    fs::create_directories(options.out_dir);
    io::remove_stale_temporaries(options.out_dir);
  }
  data_ = stage_splits(data, stage_);
  if (writer_) {
    guarded("writing the stage's configuration", [&] { config.save(files_.config); });
  }
  load_or_init_model();
  if (comm_) {
    // DDP's start: every replica begins from rank 0's parameters and buffers.
    dist::broadcast_module(*comm_, *model_);
    if (t_.distributed.sync_batchnorm) nn::convert_sync_batchnorm(*model_, comm_);
  }
  set_trainable(*model_, t_);
  optimizer_ = make_optimizer(*model_, t_);
  params_ = trainable_parameters(*optimizer_);
  if (t_.precision == Precision::fp16)
    scaler_ = std::make_unique<optim::GradScaler>(t_.grad_scaler);
  if (comm_) {
    reducer_ = std::make_unique<dist::GradReducer>(
        comm_, params_,
        dist::ReducerOptions{static_cast<std::size_t>(t_.distributed.bucket_mb * (1 << 20))});
  }
  train_loader_ = make_train_loader(data_.train, t_, comm_);
  schedules_ = make_schedules(*optimizer_, t_,
                              static_cast<std::int64_t>(train_loader_->batches_per_epoch()));
  // One stream per stage, so the stages of one seed do not repeat each other's masks.
  generator_ = std::make_shared<Generator>(t_.seed + 7919 * static_cast<std::uint64_t>(stage_));
  model_->set_dropout_generator(generator_);
  if (options.resume) restore_resumed_state();
  val_loader_ = make_eval_loader(data_.val, t_, comm_);
  train_seg_ = stage_needs_seg(stage_) || (stage_ == 2 && !t_.freeze_decoder);
  train_cls_ = stage_needs_cls(stage_);
  eval_options_.device = options.device;
  eval_options_.seg_threshold = t_.seg_threshold;
  result_.stage = stage_;
  result_.best_checkpoint = files_.best;
  result_.last_checkpoint = files_.last;
  log_start();
}

// The model: resumed, started from a checkpoint, or fresh from the seed.
void StageRun::load_or_init_model() {
  const fs::path init =
      options_.init_checkpoint.empty() ? fs::path(t_.init_checkpoint) : options_.init_checkpoint;
  if (options_.resume) {
    if (!fs::exists(files_.last)) {
      throw std::runtime_error("--resume: no " + files_.last.string() + " to resume from");
    }
    LoadedModel loaded = load_checkpoint(files_.last, options_.device);
    model_ = loaded.model;
    resumed_metadata_ = std::move(loaded.metadata);
  } else if (!init.empty()) {
    model_ = load_checkpoint(init, options_.device).model;
  } else {
    model_ = init_model(t_.model, t_.seed);
    model_->to(options_.device);
  }
  if (!(model_->config() == t_.model)) {
    throw std::runtime_error(
        "the checkpoint's architecture differs from the configuration's model section (" +
        (options_.resume ? files_.last : init).string() + ")");
  }
}

// The loop state, optimiser and schedule state, generator offset and metric lines of the
// interrupted run.
void StageRun::restore_resumed_state() {
  const auto it = resumed_metadata_.find("trainer_state");
  if (it == resumed_metadata_.end()) {
    throw std::runtime_error(files_.last.string() + ": no trainer_state in the metadata");
  }
  state_ = LoopState::from_json(it->second, files_.last.string());
  if (scaler_ && std::isfinite(state_.loss_scale)) {
    scaler_->set_state({state_.loss_scale, state_.scale_growth_tracker});
  }
  const auto world = resumed_metadata_.find("world_size");
  const std::string saved_world = world == resumed_metadata_.end() ? "1" : world->second;
  const std::string this_world = std::to_string(comm_ ? comm_->size() : 1);
  if (saved_world != this_world) {
    throw std::runtime_error("--resume: " + files_.last.string() + " was saved by a run of " +
                             saved_world +
                             " process(es); resume it with the same number (this "
                             "run has " +
                             this_world + ")");
  }
  // Rank 0 may promote the pending optimiser state (a rename); the others read after it.
  if (comm_ && !writer_) comm_->barrier();
  restore_optimizer_state();
  if (comm_ && writer_) comm_->barrier();
  if (schedules_.per_batch) schedules_.per_batch->set_step(state_.schedule_step);
  if (schedules_.plateau) schedules_.plateau->set_state(state_.plateau);
  generator_->set_offset(state_.generator_offset);
  // A kill after an epoch's metric lines were written but before its checkpoint leaves lines of
  // an epoch that will run again.
  for (const std::string& line : read_lines(files_.metrics)) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("epoch", std::int64_t{0}) > state_.epoch) continue;
    metric_lines_.push_back(line);
  }
}

// The optimiser state of the step last.safetensors holds: the pending one when the run was
// killed after writing the model but before promoting it, else the committed one.
void StageRun::restore_optimizer_state() {
  const std::string step = std::to_string(state_.global_step);
  auto matches = [&](const io::Metadata& m) {
    const auto it = m.find("global_step");
    return it == m.end() || it->second == step;  // files from before the step was recorded
  };
  if (fs::exists(files_.optim_pending) &&
      matches(io::load_safetensors(files_.optim_pending).metadata)) {
    load_optimizer_state(files_.optim_pending, *optimizer_);
    if (writer_) fs::rename(files_.optim_pending, files_.optim);
    return;
  }
  const io::Metadata m = load_optimizer_state(files_.optim, *optimizer_);
  if (!matches(m)) {
    throw std::runtime_error(files_.optim.string() + " holds the optimiser state of step " +
                             m.at("global_step") + ", but " + files_.last.string() +
                             " was saved at step " + step);
  }
}

void StageRun::log_start() const {
  if (!log_) return;
  *log_ << "stage " << stage_ << ": " << data_.train->size() << " training and "
        << data_.val->size() << " validation samples, " << params_.size() << " trainable tensors, "
        << train_loader_->batches_per_epoch() << " batches per epoch on "
        << options_.device.to_string() << (options_.resume ? " (resumed)" : "")
        << (t_.precision != Precision::fp32
                ? std::string(", precision ") + precision_name(t_.precision)
                : std::string())
        << std::endl;
}

void StageRun::train_epochs() {
  while (state_.epoch < t_.epochs) {
    const auto epoch_started = clock::now();
    const bool finished = train_epoch(epoch_started);
    if (options_.progress_bar) std::fprintf(stderr, "\n");
    if (!finished) {
      guarded("saving the resumable checkpoint", [&] { save_last(""); });
      result_.interrupted = true;
      if (log_) *log_ << "stopped: resumable checkpoint " << files_.last.string() << "\n";
      break;
    }
    const double train_seconds =
        std::chrono::duration<double>(clock::now() - epoch_started).count();
    const Validation v = validate();
    guarded("recording the epoch's metrics", [&] { record_epoch(v, train_seconds); });
    guarded("saving the epoch's checkpoints", [&] { end_epoch(v); });
    if (t_.early_stopping_patience > 0 && state_.bad_epochs >= t_.early_stopping_patience) {
      result_.early_stopped = true;
      if (log_) *log_ << "early stop: " << state_.bad_epochs << " epochs without improvement\n";
      break;
    }
    if (on_any_rank(stop_requested())) {
      result_.interrupted = true;
      break;
    }
  }
  result_.epochs_run = state_.epoch;
  result_.best_metric = state_.best_metric;
  result_.best_epoch = state_.best_epoch;
}

bool StageRun::train_epoch(clock::time_point epoch_started) {
  model_->train();
  train_loader_->start_epoch(static_cast<std::uint64_t>(state_.epoch));
  const std::size_t total_batches = train_loader_->batches_per_epoch();
  // A resumed epoch skips the batches it already trained on (the order is a function of the
  // seed and the epoch, so the same batches follow).
  for (std::int64_t skip = 0; skip < state_.batch; ++skip) train_loader_->next();
  epoch_samples_here_ = 0;
  // The next batch's copies are queued before the current batch's work, so on a GPU they run on
  // the copy stream beside it (engine/upload.h).
  std::optional<data::Batch> batch = train_loader_->next();
  PendingUpload upload = batch ? upload_batch(*batch) : PendingUpload{};
  while (batch) {
    std::optional<data::Batch> next = train_loader_->next();
    PendingUpload next_upload = next ? upload_batch(*next) : PendingUpload{};
    train_step(*batch, upload);
    if (options_.progress_bar) {
      const double seconds = std::chrono::duration<double>(clock::now() - epoch_started).count();
      draw_progress(stage_, state_.epoch, t_.epochs, static_cast<std::size_t>(state_.batch),
                    total_batches, static_cast<double>(epoch_samples_here_) / seconds,
                    state_.loss_sum / static_cast<double>(state_.samples));
    }
    ++steps_here_;
    if (options_.after_step) options_.after_step();
    // Every rank stops at the same step when any was asked to (SIGINT on one rank).
    if (on_any_rank(stop_requested()) ||
        (options_.max_steps > 0 && steps_here_ >= options_.max_steps)) {
      return false;
    }
    batch = std::move(next);
    upload = std::move(next_upload);
  }
  return true;
}

PendingUpload StageRun::upload_batch(const data::Batch& batch) const {
  return upload_async({batch.images, batch.masks, batch.has_mask, batch.labels}, options_.device);
}

// One optimiser step on a batch, its losses added to the epoch's sums.
void StageRun::train_step(const data::Batch& batch, PendingUpload& upload) {
  const std::vector<Tensor> on_device = upload.take();
  const Tensor& images = on_device[0];
  const Tensor& masks = on_device[1];
  const Tensor& has_mask = on_device[2];
  const Tensor& labels = on_device[3];
  optimizer_->zero_grad();
  const MultiTaskOutput out = model_->forward(images, train_seg_, train_cls_);
  const LossParts loss = multitask_loss(out, masks, has_mask, labels, t_.loss, stage_);
  double value = loss.total.item<float>();
  // The epoch's sums are the global batch's (the same on every rank, so a resume from rank 0's
  // state is exact), and a non-finite loss on any rank stops every rank.
  auto n = static_cast<std::int64_t>(batch.size());
  double seg = loss.seg, cls = loss.cls, nonfinite = std::isfinite(value) ? 0.0 : 1.0;
  if (comm_) {
    std::vector<double> sums{value * static_cast<double>(n), seg * static_cast<double>(n),
                             cls * static_cast<double>(n), static_cast<double>(n), nonfinite};
    comm_->all_reduce_host(sums, dist::ReduceOp::sum);
    n = static_cast<std::int64_t>(sums[3]);
    value = sums[0] / sums[3];
    seg = sums[1] / sums[3];
    cls = sums[2] / sums[3];
    nonfinite = sums[4];
  }
  if (nonfinite > 0 || !std::isfinite(value)) {
    fail("non-finite loss (" + std::to_string(value) + ") at epoch " +
         std::to_string(state_.epoch + 1) + ", batch " + std::to_string(state_.batch + 1) +
         " (step " + std::to_string(state_.global_step + 1) + ")");
  }
  // fp16: backward from the scaled loss; the gradients are unscaled before clipping, and a step
  // with an inf/NaN gradient is skipped (every rank sees the same averaged gradients).
  const Tensor backward_from = scaler_ ? scaler_->scale(loss.total) : loss.total;
  if (reducer_) {
    reducer_->backward(backward_from);  // the gradients averaged over the ranks
  } else {
    backward_from.backward();
  }
  const bool overflow = scaler_ && scaler_->unscale_(params_);
  if (t_.optim.grad_clip > 0 && !overflow) {
    const double norm = optim::clip_grad_norm_(params_, t_.optim.grad_clip);
    if (!std::isfinite(norm)) {
      fail("non-finite gradient norm at step " + std::to_string(state_.global_step + 1));
    }
  }
  if (scaler_) {
    if (!scaler_->step(*optimizer_, params_)) ++state_.skipped_steps;
    scaler_->update();
  } else {
    optimizer_->step();
  }
  if (schedules_.per_batch) schedules_.per_batch->step();
  state_.loss_sum += value * static_cast<double>(n);
  state_.seg_sum += seg * static_cast<double>(n);
  state_.cls_sum += cls * static_cast<double>(n);
  state_.samples += n;
  epoch_samples_here_ += n;
  ++state_.batch;
  ++state_.global_step;
}

template <typename Write>
void StageRun::guarded(const char* what, Write&& write) {
  try {
    write();
  } catch (const std::exception& e) {
    fail(std::string(what) + " failed: " + e.what());
  }
}

// Stops the stage with `what` and the last good checkpoint.
void StageRun::fail(const std::string& what) const {
  throw std::runtime_error("stage " + std::to_string(stage_) + ": " + what +
                           "; last good checkpoint: " +
                           (fs::exists(files_.last) ? files_.last.string() : std::string("none")));
}

std::vector<SampleResult> StageRun::score(data::Loader& loader, const data::Dataset& dataset) {
  std::vector<SampleResult> mine = score_samples(*model_, loader, eval_options_);
  return comm_ ? gather_results(mine, *comm_, dataset) : mine;
}

Validation StageRun::validate() {
  Validation v;
  v.summaries = summarize(score(*val_loader_, *data_.val), t_.cls_threshold, t_.metric_dice_weight);
  v.metric = v.summaries.at("overall").combined;
  v.better = std::isfinite(v.metric) &&
             (!std::isfinite(state_.best_metric) || v.metric > state_.best_metric);
  return v;
}

// The epoch's train and val lines in metrics.jsonl, and its log line.
void StageRun::record_epoch(const Validation& v, double train_seconds) {
  const double samples = static_cast<double>(std::max<std::int64_t>(state_.samples, 1));
  const double lr = optimizer_->param_groups().front().lr;
  json train_line = {{"stage", stage_},
                     {"epoch", state_.epoch + 1},
                     {"split", "train"},
                     {"loss", state_.loss_sum / samples},
                     {"lr", lr},
                     {"samples_per_s", static_cast<double>(epoch_samples_here_) / train_seconds},
                     {"seconds", train_seconds}};
  if (stage_needs_seg(stage_)) train_line["seg_loss"] = state_.seg_sum / samples;
  if (stage_needs_cls(stage_)) train_line["cls_loss"] = state_.cls_sum / samples;
  const json val_line = {{"stage", stage_},  {"epoch", state_.epoch + 1},
                         {"split", "val"},   {"metric", number_or_null(v.metric)},
                         {"best", v.better}, {"metrics", summaries_json(v.summaries)}};
  metric_lines_.push_back(train_line.dump());
  metric_lines_.push_back(val_line.dump());
  if (writer_) write_lines(files_.metrics, metric_lines_);
  if (!log_) return;
  const Summary& o = v.summaries.at("overall");
  *log_ << "stage " << stage_ << " epoch " << state_.epoch + 1 << "/" << t_.epochs << "  loss "
        << format(state_.loss_sum / samples) << "  val dice " << format(o.dice.mean) << " acc "
        << format(o.accuracy) << " auc " << format(o.roc_auc) << " metric " << format(v.metric)
        << "  lr " << lr << "  " << format(train_seconds, 1) << " s" << (v.better ? "  *best*" : "")
        << std::endl;  // visible at once in a log file
}

// The best checkpoint when the metric improved, the plateau schedule's step, the next epoch's
// state and the resumable last checkpoint.
void StageRun::end_epoch(const Validation& v) {
  if (v.better) {
    state_.best_metric = v.metric;
    state_.best_epoch = state_.epoch;
    state_.bad_epochs = 0;
    if (writer_) {
      save_checkpoint(files_.best, *model_,
                      {{"stage", std::to_string(stage_)},
                       {"epoch", std::to_string(state_.epoch + 1)},
                       {"metrics", summaries_json(v.summaries).dump()}});
    }
  } else {
    ++state_.bad_epochs;
  }
  if (schedules_.plateau) schedules_.plateau->step(std::isfinite(v.metric) ? v.metric : 0.0);
  ++state_.epoch;
  state_.batch = 0;
  state_.loss_sum = state_.seg_sum = state_.cls_sum = 0;
  state_.samples = 0;
  save_last(summaries_json(v.summaries).dump());
}

void StageRun::save_last(const std::string& val_metrics) {
  state_.schedule_step = schedules_.per_batch ? schedules_.per_batch->current_step() : 0;
  if (schedules_.plateau) state_.plateau = schedules_.plateau->state();
  state_.generator_offset = generator_->offset();
  if (scaler_) {
    state_.loss_scale = scaler_->current_scale();
    state_.scale_growth_tracker = scaler_->state().growth_tracker;
  }
  io::Metadata meta{{"stage", std::to_string(stage_)},
                    {"epoch", std::to_string(state_.epoch)},
                    {"trainer_state", state_.to_json()}};
  if (!val_metrics.empty()) meta["metrics"] = val_metrics;
  if (comm_) meta["world_size"] = std::to_string(comm_->size());
  if (!writer_) return;
  // Two files cannot be renamed at once: the new optimiser state waits under its pending name
  // until the model is committed, so a kill between any two steps leaves a matching pair.
  save_optimizer_state(
      files_.optim_pending, *optimizer_,
      {{"stage", std::to_string(stage_)}, {"global_step", std::to_string(state_.global_step)}});
  save_checkpoint(files_.last, *model_, meta);
  fs::rename(files_.optim_pending, files_.optim);
}

void StageRun::test_best() {
  // Rank 0's last write of best.safetensors is complete before any rank reads it.
  if (comm_) comm_->barrier();
  if (result_.interrupted || !fs::exists(files_.best) || !data_.test || data_.test->size() == 0) {
    return;
  }
  const io::SafetensorsContent best = io::load_safetensors(files_.best);
  load_weights(*model_, best.tensors, true, files_.best.string());
  auto test_loader = make_eval_loader(data_.test, t_, comm_);
  result_.test =
      summarize(score(*test_loader, *data_.test), t_.cls_threshold, t_.metric_dice_weight);
}

StageResult StageRun::finish() {
  result_.seconds = std::chrono::duration<double>(clock::now() - started_).count();
  if (scaler_) result_.loss_scale = scaler_->current_scale();
  result_.skipped_steps = state_.skipped_steps;
  const json summary = {{"stage", stage_},
                        {"best_checkpoint", files_.best.string()},
                        {"best_epoch", result_.best_epoch + 1},
                        {"best_val_metric", number_or_null(result_.best_metric)},
                        {"epochs_run", result_.epochs_run},
                        {"early_stopped", result_.early_stopped},
                        {"interrupted", result_.interrupted},
                        {"seconds", result_.seconds},
                        {"test", summaries_json(result_.test)}};
  if (writer_) io::write_file_atomic(files_.summary, summary.dump(2) + "\n");
  return result_;
}

}  // namespace

void request_stop() {
  g_stop.store(true);
}
bool stop_requested() {
  return g_stop.load();
}
void clear_stop_request() {
  g_stop.store(false);
}

StageResult train_stage(const io::Config& config, const TrainData& data,
                        const RunOptions& options) {
  StageRun run(config, data, options);
  run.train_epochs();
  run.test_best();
  return run.finish();
}

}  // namespace glia::nets
