// A training run as glia-train performs it: one stage, or the three in sequence (each starting
// from the previous stage's best checkpoint), on a glia-prep output folder or, when no data
// folder is configured, on the built-in synthetic demo data (generated once into a cache folder
// with the phantom generator and the preprocessing pipeline, then reused).
// Run folder: OUT/stage<N>/ per stage (nets/train/trainer.h lists its files) and OUT/summary.json
// with every stage's test metrics. --resume continues the stage that was in progress and skips the
// stages already finished. Tested in tests/nets/train/training_run_test.cpp and end to end in
// tests/apps.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dist/communicator.h"
#include "engine/policy.h"
#include "nets/train/trainer.h"

namespace glia::nets {

struct TrainRequest {
  std::filesystem::path config_file;   // empty: defaults only
  std::vector<std::string> overrides;  // "a.b=v", applied to every stage
  std::string stage = "all";           // "1", "2", "3", "all", or "file" (the file's own stage)
  std::filesystem::path out_dir;
  Device device = Device::cpu();
  std::optional<KernelPolicy> kernels;  // every op family, when given
  bool resume = false;
  std::filesystem::path data_cache;  // where the demo data is generated (and found again)
  std::int64_t max_steps = 0;        // per stage; see RunOptions
  bool progress_bar = false;
  // Data-parallel training (glia-train --distributed): this rank's communicator, null for one
  // process; see RunOptions::comm. Rank 0 prepares the demo data and writes summary.json.
  std::shared_ptr<dist::Communicator> comm;
};

struct TrainReport {
  std::vector<StageResult> stages;
  std::filesystem::path out_dir;
  std::filesystem::path data_root;
  double seconds = 0;
  bool interrupted = false;
};

// Builds the splits of a glia-prep output folder (manifest.csv) for the configured sources.
TrainData load_train_data(const std::filesystem::path& root,
                          const std::vector<std::string>& sources);

// The demo dataset under `cache`: generated and preprocessed on first use (sizes from the
// configuration's demo.* keys), reused afterwards. Returns the preprocessed folder.
std::filesystem::path ensure_demo_data(const std::filesystem::path& cache, const io::Config& config,
                                       std::ostream& log);

TrainReport run_training(const TrainRequest& request, std::ostream& log);

// A human-readable table of the stages' test metrics (overall and per source).
std::string format_report(const TrainReport& report);

}  // namespace glia::nets
