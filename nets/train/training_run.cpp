// Multi-stage training runs and the demo data cache; see training_run.h.
#include "nets/train/training_run.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "data/input/dataset.h"
#include "data/prep/phantom.h"
#include "data/prep/prep.h"
#include "io/atomic_file.h"
#include "nets/eval/metrics_json.h"
#include "nets/train/train_config.h"

namespace glia::nets {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The stages a request runs, in order.
std::vector<int> stages_of(const TrainRequest& request) {
  if (request.stage == "all") return {1, 2, 3};
  if (request.stage == "file") return {0};
  if (request.stage == "1" || request.stage == "2" || request.stage == "3") {
    return {request.stage[0] - '0'};
  }
  throw std::invalid_argument("--stage must be 1, 2, 3 or all, got '" + request.stage + "'");
}

// A stage folder whose summary.json says it finished (not interrupted).
bool stage_finished(const fs::path& dir) {
  const fs::path summary = dir / "summary.json";
  if (!fs::exists(summary)) return false;
  try {
    const json j = json::parse(io::read_file(summary));
    return !j.value("interrupted", true);
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace

TrainData load_train_data(const fs::path& root, const std::vector<std::string>& sources) {
  const fs::path manifest = root / "manifest.csv";
  if (!fs::exists(manifest)) {
    throw std::runtime_error("no manifest.csv in " + root.string() +
                             " (data.root must be a glia-prep output folder)");
  }
  TrainData data;
  data.train = std::make_shared<data::ManifestDataset>(manifest, "train", sources);
  data.val = std::make_shared<data::ManifestDataset>(manifest, "val", sources);
  data.test = std::make_shared<data::ManifestDataset>(manifest, "test", sources);
  return data;
}

fs::path ensure_demo_data(const fs::path& cache, const io::Config& config, std::ostream& log) {
  // The cache key holds every generator option, so a changed option regenerates the data.
  std::ostringstream key;
  key << "subjects" << config.get_int("demo.brats_subjects") << "_images"
      << config.get_int("demo.kaggle_images") << "_size" << config.get_int("demo.size") << "_seed"
      << config.get_int("demo.seed")
      << "_prep3";  // the preprocessing's version: prep3 finds the head above the background
  const fs::path base = cache / key.str();
  const fs::path data = base / "data";
  if (fs::exists(data / "manifest.csv")) {
    log << "demo data: " << data.string() << " (cached)\n";
    return data;
  }
  log << "demo data: generating phantoms into " << base.string() << "\n";
  const auto started = std::chrono::steady_clock::now();
  data::SynthOptions synth;
  synth.out = base / "raw";
  synth.brats_subjects = static_cast<int>(config.get_int("demo.brats_subjects"));
  synth.kaggle_images = static_cast<int>(config.get_int("demo.kaggle_images"));
  synth.size = static_cast<int>(config.get_int("demo.size"));
  synth.seed = static_cast<std::uint64_t>(config.get_int("demo.seed"));
  fs::create_directories(synth.out);
  data::write_synthetic_dataset(synth);
  data::PrepOptions prep;
  prep.brats = synth.out / "brats";
  prep.kaggle = synth.out / "kaggle";
  prep.out = data;
  prep.seed = synth.seed;
  prep.keep = data::KeepPolicy::balanced;
  const data::PrepReport report = data::run_prep(prep);
  std::ostringstream seconds;
  seconds << std::fixed << std::setprecision(1)
          << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log << "demo data: " << report.slices << " slices from " << report.brats_subjects
      << " subjects and " << report.kaggle_images << " images in " << seconds.str() << " s"
      << std::endl;
  return data;
}

TrainReport run_training(const TrainRequest& request, std::ostream& log) {
  const auto started = std::chrono::steady_clock::now();
  if (request.out_dir.empty()) throw std::invalid_argument("no output folder (--out)");
  if (request.kernels) set_kernel_policy(*request.kernels);
  TrainReport report;
  report.out_dir = request.out_dir;
  const bool writer = !request.comm || request.comm->rank() == 0;
  if (writer) {
    fs::create_directories(request.out_dir);
    io::remove_stale_temporaries(request.out_dir);
  }

  fs::path previous_best;
  json stages = json::array();
  for (const int wanted : stages_of(request)) {
    const io::Config config = load_training_config(request.config_file, wanted, request.overrides);
    const TrainConfig t = to_train_config(config);
    set_cudnn_choices(t.cudnn);
    const int stage = t.stage;
    log << "\n== stage " << stage << " ==\nresolved configuration:\n" << config.describe();

    if (report.data_root.empty()) {
      // Rank 0 generates the demo data; the others find it in the cache after it.
      if (request.comm && !writer) request.comm->barrier();
      report.data_root = t.data.root.empty() ? ensure_demo_data(request.data_cache, config, log)
                                             : fs::path(t.data.root);
      if (request.comm && writer) request.comm->barrier();
    }
    const fs::path dir = request.out_dir / ("stage" + std::to_string(stage));
    if (request.resume && stage_finished(dir)) {
      log << "stage " << stage << ": finished earlier, kept\n";
      previous_best = dir / "best.safetensors";
      continue;
    }
    RunOptions options;
    options.out_dir = dir;
    options.device = request.device;
    options.log = &log;
    options.progress_bar = request.progress_bar;
    options.max_steps = request.max_steps;
    options.comm = request.comm;
    options.resume = request.resume && fs::exists(dir / "last.safetensors");
    if (t.init_checkpoint.empty() && stage > 1 && !previous_best.empty()) {
      options.init_checkpoint = previous_best;
    }
    if (stage > 1 && t.init_checkpoint.empty() && options.init_checkpoint.empty() &&
        !options.resume) {
      throw std::invalid_argument("stage " + std::to_string(stage) +
                                  " starts from a checkpoint: run the stages before it in the "
                                  "same call (--stage all) or set train.init_checkpoint");
    }
    const TrainData data = load_train_data(report.data_root, t.data.sources);
    StageResult result = train_stage(config, data, options);
    previous_best = result.best_checkpoint;
    json s = {{"stage", stage},
              {"folder", dir.string()},
              {"best_checkpoint", result.best_checkpoint.string()},
              {"best_epoch", result.best_epoch + 1},
              {"best_val_metric", number_or_null(result.best_metric)},
              {"epochs_run", result.epochs_run},
              {"seconds", result.seconds}};
    s["test"] = summaries_json(result.test);
    stages.push_back(s);
    report.stages.push_back(std::move(result));
    if (report.stages.back().interrupted) {
      report.interrupted = true;
      break;
    }
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  json summary = {{"data", report.data_root.string()},
                  {"device", request.device.to_string()},
                  {"seconds", report.seconds},
                  {"interrupted", report.interrupted},
                  {"stages", stages}};
  if (request.comm) summary["world_size"] = request.comm->size();
  if (writer) io::write_file_atomic(request.out_dir / "summary.json", summary.dump(2) + "\n");
  return report;
}

std::string format_report(const TrainReport& report) {
  std::ostringstream out;
  auto cell = [](double v) {
    std::ostringstream s;
    if (std::isfinite(v)) {
      s << std::fixed << std::setprecision(3) << v;
    } else {
      s << "-";
    }
    return s.str();
  };
  out << "\ntest metrics (best checkpoint of each stage)\n";
  out << "  stage  split    samples   dice    iou    acc   sens   spec    auc\n";
  for (const StageResult& r : report.stages) {
    for (const auto& [name, s] : r.test) {
      out << "  " << std::setw(5) << r.stage << "  " << std::left << std::setw(8) << name
          << std::right << std::setw(8) << s.count;
      for (double v :
           {s.dice.mean, s.iou.mean, s.accuracy, s.sensitivity, s.specificity, s.roc_auc}) {
        out << std::setw(7) << cell(v);
      }
      out << "\n";
    }
  }
  out << "outputs: " << report.out_dir.string() << " (summary.json, stage*/best.safetensors)\n";
  out << "time: " << std::fixed << std::setprecision(1) << report.seconds << " s\n";
  return out.str();
}

}  // namespace glia::nets
