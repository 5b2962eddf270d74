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
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/schedule.h"
#include "engine/random.h"
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

std::unique_ptr<data::Loader> make_eval_loader(const std::shared_ptr<const data::Dataset>& d,
                                               const TrainConfig& t) {
  data::SamplerConfig s;
  s.mode = data::SamplerMode::sequential;
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
              {"samples", samples}};
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
  using clock = std::chrono::steady_clock;
  const auto started = clock::now();
  const TrainConfig t = to_train_config(config);
  const int stage = t.stage;
  if (options.out_dir.empty()) throw std::invalid_argument("train_stage: no output folder");
  if (!data.train || !data.val) {
    throw std::invalid_argument("train_stage: the training and validation splits are required");
  }
  fs::create_directories(options.out_dir);
  std::ostream* log = options.log;

  // Stage 1 learns segmentation only: its splits keep the samples that have masks.
  TrainData d = data;
  if (stage == 1) {
    d.train = masked_only(d.train);
    d.val = masked_only(d.val);
    d.test = masked_only(d.test);
  }
  if (d.train->size() == 0) {
    throw std::runtime_error("stage " + std::to_string(stage) + ": the training split has no " +
                             (stage == 1 ? "samples with masks" : "samples"));
  }
  if (d.val->size() == 0) {
    throw std::runtime_error("stage " + std::to_string(stage) + ": the validation split has no " +
                             (stage == 1 ? "samples with masks" : "samples"));
  }

  const fs::path best_path = options.out_dir / "best.safetensors";
  const fs::path last_path = options.out_dir / "last.safetensors";
  const fs::path metrics_path = options.out_dir / "metrics.jsonl";
  config.save(options.out_dir / "config.yaml");

  // The model: resumed, started from a checkpoint, or fresh from the seed.
  std::shared_ptr<MultiTaskUNet> model;
  io::Metadata resumed_metadata;
  fs::path init =
      options.init_checkpoint.empty() ? fs::path(t.init_checkpoint) : options.init_checkpoint;
  if (options.resume) {
    if (!fs::exists(last_path)) {
      throw std::runtime_error("--resume: no " + last_path.string() + " to resume from");
    }
    LoadedModel loaded = load_checkpoint(last_path, options.device);
    model = loaded.model;
    resumed_metadata = std::move(loaded.metadata);
  } else if (!init.empty()) {
    model = load_checkpoint(init, options.device).model;
  } else {
    model = init_model(t.model, t.seed);
    model->to(options.device);
  }
  if (!(model->config() == t.model)) {
    throw std::runtime_error(
        "the checkpoint's architecture differs from the configuration's model section (" +
        (options.resume ? last_path : init).string() + ")");
  }
  set_trainable(*model, t);
  auto optimizer = make_optimizer(*model, t);
  const std::vector<Tensor> params = trainable_parameters(*optimizer);

  data::LoaderConfig loader_config;
  loader_config.batch_size = static_cast<std::size_t>(t.batch_size);
  loader_config.workers = t.data.workers;
  loader_config.seed = t.seed;
  data::Loader train_loader(
      d.train, data::Sampler(*d.train, make_sampler_config(t)),
      t.augment_enabled ? data::train_transforms(t.augment) : data::val_transforms(t.augment),
      loader_config);
  const auto batches = static_cast<std::int64_t>(train_loader.batches_per_epoch());

  // Step and cosine schedules advance per batch (their lengths are given in epochs); the plateau
  // schedule per epoch, on the validation metric.
  std::unique_ptr<optim::LrSchedule> schedule;
  std::unique_ptr<optim::ReduceLrOnPlateau> plateau;
  if (t.schedule.name == "step") {
    schedule = std::make_unique<optim::StepLr>(*optimizer, t.schedule.step_size * batches,
                                               t.schedule.gamma);
  } else if (t.schedule.name == "cosine") {
    // The warm-up ramps to the base lr over its batches, starting one step in rather than at 0.
    schedule = std::make_unique<optim::WarmupCosineLr>(
        *optimizer, t.schedule.warmup_epochs * batches, t.epochs * batches, t.schedule.min_lr);
    if (t.schedule.warmup_epochs > 0) schedule->set_step(1);
  } else if (t.schedule.name == "plateau") {
    optim::PlateauOptions p;
    p.mode = optim::PlateauMode::max;
    p.factor = t.schedule.factor;
    p.patience = static_cast<int>(t.schedule.patience);
    p.min_lr = t.schedule.min_lr;
    plateau = std::make_unique<optim::ReduceLrOnPlateau>(*optimizer, p);
  }

  LoopState state;
  std::vector<std::string> metric_lines;
  default_generator().manual_seed(t.seed + 7919 * static_cast<std::uint64_t>(stage));
  if (options.resume) {
    const auto it = resumed_metadata.find("trainer_state");
    if (it == resumed_metadata.end()) {
      throw std::runtime_error(last_path.string() + ": no trainer_state in the metadata");
    }
    state = LoopState::from_json(it->second, last_path.string());
    load_optimizer_state(optimizer_state_path(last_path), *optimizer);
    if (schedule) schedule->set_step(state.schedule_step);
    if (plateau) plateau->set_state(state.plateau);
    default_generator().set_offset(state.generator_offset);
    metric_lines = read_lines(metrics_path);
  }

  auto val_loader = make_eval_loader(d.val, t);
  const bool train_seg = stage_needs_seg(stage) || (stage == 2 && !t.freeze_decoder);
  const bool train_cls = stage_needs_cls(stage);
  EvalOptions eval_options;
  eval_options.device = options.device;
  eval_options.seg_threshold = t.seg_threshold;

  StageResult result;
  result.stage = stage;
  result.best_checkpoint = best_path;
  result.last_checkpoint = last_path;

  auto save_last = [&](const std::string& val_metrics) {
    state.schedule_step = schedule ? schedule->current_step() : 0;
    if (plateau) state.plateau = plateau->state();
    state.generator_offset = default_generator().offset();
    io::Metadata meta{{"stage", std::to_string(stage)},
                      {"epoch", std::to_string(state.epoch)},
                      {"trainer_state", state.to_json()}};
    if (!val_metrics.empty()) meta["metrics"] = val_metrics;
    save_checkpoint(last_path, *model, meta);
    save_optimizer_state(optimizer_state_path(last_path), *optimizer,
                         {{"stage", std::to_string(stage)}});
  };

  if (log) {
    *log << "stage " << stage << ": " << d.train->size() << " training and " << d.val->size()
         << " validation samples, " << params.size() << " trainable tensors, "
         << train_loader.batches_per_epoch() << " batches per epoch on "
         << options.device.to_string() << (options.resume ? " (resumed)" : "") << std::endl;
  }

  bool stop = false;
  std::int64_t steps_here = 0;
  while (state.epoch < t.epochs && !stop) {
    const auto epoch_started = clock::now();
    model->train();
    train_loader.start_epoch(static_cast<std::uint64_t>(state.epoch));
    const std::size_t total_batches = train_loader.batches_per_epoch();
    // A resumed epoch skips the batches it already trained on (the order is a function of the
    // seed and the epoch, so the same batches follow).
    for (std::int64_t skip = 0; skip < state.batch; ++skip) train_loader.next();
    std::int64_t epoch_samples_here = 0;
    while (auto batch = train_loader.next()) {
      const Tensor images = batch->images.to(options.device);
      const Tensor masks = batch->masks.to(options.device);
      const Tensor has_mask = batch->has_mask.to(options.device);
      const Tensor labels = batch->labels.to(options.device);
      optimizer->zero_grad();
      const MultiTaskOutput out = model->forward(images, train_seg, train_cls);
      const LossParts loss = multitask_loss(out, masks, has_mask, labels, t.loss, stage);
      const double value = loss.total.item<float>();
      if (!std::isfinite(value)) {
        throw std::runtime_error(
            "stage " + std::to_string(stage) + ": non-finite loss (" + std::to_string(value) +
            ") at epoch " + std::to_string(state.epoch + 1) + ", batch " +
            std::to_string(state.batch + 1) + " (step " + std::to_string(state.global_step + 1) +
            "); last good checkpoint: " +
            (fs::exists(last_path) ? last_path.string() : std::string("none")));
      }
      loss.total.backward();
      if (t.optim.grad_clip > 0) {
        const double norm = optim::clip_grad_norm_(params, t.optim.grad_clip);
        if (!std::isfinite(norm)) {
          throw std::runtime_error(
              "stage " + std::to_string(stage) + ": non-finite gradient norm at step " +
              std::to_string(state.global_step + 1) +
              "; last good checkpoint: " + (fs::exists(last_path) ? last_path.string() : "none"));
        }
      }
      optimizer->step();
      if (schedule) schedule->step();
      const auto n = static_cast<std::int64_t>(batch->size());
      state.loss_sum += value * static_cast<double>(n);
      state.seg_sum += loss.seg * static_cast<double>(n);
      state.cls_sum += loss.cls * static_cast<double>(n);
      state.samples += n;
      epoch_samples_here += n;
      ++state.batch;
      ++state.global_step;
      if (options.progress_bar) {
        const double seconds = std::chrono::duration<double>(clock::now() - epoch_started).count();
        draw_progress(stage, state.epoch, t.epochs, static_cast<std::size_t>(state.batch),
                      total_batches, static_cast<double>(epoch_samples_here) / seconds,
                      state.loss_sum / static_cast<double>(state.samples));
      }
      ++steps_here;
      if (stop_requested() || (options.max_steps > 0 && steps_here >= options.max_steps)) {
        stop = true;
        break;
      }
    }
    if (options.progress_bar) std::fprintf(stderr, "\n");
    if (stop) {
      save_last("");
      result.interrupted = true;
      if (log) *log << "stopped: resumable checkpoint " << last_path.string() << "\n";
      break;
    }
    const double train_seconds =
        std::chrono::duration<double>(clock::now() - epoch_started).count();

    const auto val_results = score_samples(*model, *val_loader, eval_options);
    const auto val = summarize(val_results, t.cls_threshold, t.metric_dice_weight);
    const double metric = val.at("overall").combined;
    const bool better =
        std::isfinite(metric) && (!std::isfinite(state.best_metric) || metric > state.best_metric);
    const double samples = static_cast<double>(std::max<std::int64_t>(state.samples, 1));
    json train_line = {{"stage", stage},
                       {"epoch", state.epoch + 1},
                       {"split", "train"},
                       {"loss", state.loss_sum / samples},
                       {"lr", optimizer->param_groups().front().lr},
                       {"samples_per_s", static_cast<double>(epoch_samples_here) / train_seconds},
                       {"seconds", train_seconds}};
    if (stage_needs_seg(stage)) train_line["seg_loss"] = state.seg_sum / samples;
    if (stage_needs_cls(stage)) train_line["cls_loss"] = state.cls_sum / samples;
    json val_line = {{"stage", stage}, {"epoch", state.epoch + 1},
                     {"split", "val"}, {"metric", number_or_null(metric)},
                     {"best", better}, {"metrics", summaries_json(val)}};
    metric_lines.push_back(train_line.dump());
    metric_lines.push_back(val_line.dump());
    write_lines(metrics_path, metric_lines);

    if (better) {
      state.best_metric = metric;
      state.best_epoch = state.epoch;
      state.bad_epochs = 0;
      save_checkpoint(best_path, *model,
                      {{"stage", std::to_string(stage)},
                       {"epoch", std::to_string(state.epoch + 1)},
                       {"metrics", summaries_json(val).dump()}});
    } else {
      ++state.bad_epochs;
    }
    if (log) {
      const Summary& o = val.at("overall");
      *log << "stage " << stage << " epoch " << state.epoch + 1 << "/" << t.epochs << "  loss "
           << format(state.loss_sum / samples) << "  val dice " << format(o.dice.mean) << " acc "
           << format(o.accuracy) << " auc " << format(o.roc_auc) << " metric " << format(metric)
           << "  lr " << optimizer->param_groups().front().lr << "  " << format(train_seconds, 1)
           << " s" << (better ? "  *best*" : "") << std::endl;  // visible at once in a log file
    }
    if (plateau) plateau->step(std::isfinite(metric) ? metric : 0.0);
    ++state.epoch;
    state.batch = 0;
    state.loss_sum = state.seg_sum = state.cls_sum = 0;
    state.samples = 0;
    save_last(val_line["metrics"].dump());
    if (t.early_stopping_patience > 0 && state.bad_epochs >= t.early_stopping_patience) {
      result.early_stopped = true;
      if (log) *log << "early stop: " << state.bad_epochs << " epochs without improvement\n";
      break;
    }
    if (stop_requested()) {
      result.interrupted = true;
      break;
    }
  }
  result.epochs_run = state.epoch;
  result.best_metric = state.best_metric;
  result.best_epoch = state.best_epoch;

  if (!result.interrupted && fs::exists(best_path) && d.test && d.test->size() > 0) {
    const io::SafetensorsContent best = io::load_safetensors(best_path);
    load_weights(*model, best.tensors, true, best_path.string());
    auto test_loader = make_eval_loader(d.test, t);
    result.test = summarize(score_samples(*model, *test_loader, eval_options), t.cls_threshold,
                            t.metric_dice_weight);
  }
  result.seconds = std::chrono::duration<double>(clock::now() - started).count();
  json summary = {{"stage", stage},
                  {"best_checkpoint", best_path.string()},
                  {"best_epoch", result.best_epoch + 1},
                  {"best_val_metric", number_or_null(result.best_metric)},
                  {"epochs_run", result.epochs_run},
                  {"early_stopped", result.early_stopped},
                  {"interrupted", result.interrupted},
                  {"seconds", result.seconds},
                  {"test", summaries_json(result.test)}};
  io::write_file_atomic(options.out_dir / "summary.json", summary.dump(2) + "\n");
  return result;
}

}  // namespace glia::nets
