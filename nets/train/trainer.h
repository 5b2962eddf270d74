// One training stage (nets/train/train_config.h says what each stage trains) from start, or
// resumed, to its best checkpoint and test metrics:
//   per epoch: train over the sampler's epoch (progress bar: samples/s and running loss), then
//   validate (nets/eval/sample_scores.h; overall and per source), append to metrics.jsonl, save
//   last.safetensors (+ last.optim.safetensors) and, when the combined metric
//   w * Dice + (1 - w) * accuracy improves, best.safetensors; step the schedule; stop early after
//   `early_stopping_patience` epochs without improvement. At the end the best checkpoint is
//   evaluated on the test split (summary.json).
// The stage runs in the configured precision (engine/precision.h), set for its duration; in fp16
// the loss is scaled dynamically (engine/optim/grad_scaler.h), a step with an inf/NaN gradient is
// skipped, and the scaler's state is part of the resumable state.
// The run folder also holds config.yaml (the resolved configuration). A non-finite loss stops the
// stage with an error naming the step and the last good checkpoint. A stop request (SIGINT /
// SIGTERM through request_stop) saves a resumable last checkpoint at the next batch boundary and
// returns; resuming from it continues exactly (same batches, same dropout masks, same optimiser
// and schedule state), so on cpu the weights equal those of an uninterrupted run. The dropout
// masks come from the stage's own generator (seeded from train.seed and the stage, its offset
// saved in the resumable state), installed on the model's dropout: no other code draws from it,
// and the stage neither reads nor re-seeds the process-wide default generator.
// Tested in tests/nets/train/trainer_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <string>

#include "data/input/dataset.h"
#include "engine/device.h"
#include "engine/dist/communicator.h"
#include "io/config.h"
#include "nets/eval/metrics.h"

namespace glia::nets {

struct TrainData {
  std::shared_ptr<const data::Dataset> train, val, test;
};

struct RunOptions {
  std::filesystem::path out_dir;  // the stage's run folder (created)
  Device device = Device::cpu();
  std::filesystem::path init_checkpoint;  // overrides train.init_checkpoint when not empty
  bool resume = false;                    // continue from out_dir/last.safetensors
  std::ostream* log = nullptr;            // epoch lines; null = silent
  bool progress_bar = false;              // a live bar on stderr
  // Stop as if interrupted (resumable last checkpoint) after this many optimiser steps of this
  // call; 0 = no limit. For time-boxed runs and for testing resume.
  std::int64_t max_steps = 0;
  // Called on the training thread after each optimiser step (before the stop checks); for
  // progress reporting and for interleaving other work with training in tests.
  std::function<void()> after_step;
  // Data-parallel training (glia-train --distributed): this rank's communicator; null for one
  // process. Every rank runs train_stage with the same configuration and data on its own device:
  // rank 0's initial state is broadcast, each rank trains on its shard of every epoch's order
  // (per-rank batch train.batch_size), gradients are averaged every step (engine/dist/reducer.h),
  // batch norm is per rank unless distributed.sync_batchnorm; validation and test are sharded
  // and their per-sample results gathered, so the metrics are those of the whole split; a stop
  // request on any rank stops every rank at the same step; only rank 0 writes files (the run
  // folder must be one that every rank reads, for --resume, which needs the same world size).
  std::shared_ptr<dist::Communicator> comm;
};

struct StageResult {
  int stage = 0;
  std::filesystem::path best_checkpoint, last_checkpoint;
  double best_metric = std::numeric_limits<double>::quiet_NaN();
  std::int64_t best_epoch = -1;  // 0-based
  std::int64_t epochs_run = 0;   // epochs completed, including those before a resume
  bool interrupted = false;      // stopped by request_stop(); last checkpoint is resumable
  bool early_stopped = false;
  std::map<std::string, Summary> test;  // best checkpoint on the test split (empty if none)
  double seconds = 0;                   // wall time of this call
  // precision fp16: the loss scale at the end (NaN otherwise) and the optimiser steps skipped
  // for inf/NaN gradients, over the whole stage (a resumed run counts those before it too).
  double loss_scale = std::numeric_limits<double>::quiet_NaN();
  std::int64_t skipped_steps = 0;
};

StageResult train_stage(const io::Config& config, const TrainData& data, const RunOptions& options);

// Asks running stages to save and return (async-signal-safe: one atomic store).
void request_stop();
bool stop_requested();
void clear_stop_request();

}  // namespace glia::nets
