// glia-train: the three training stages of the multi-task U-Net (nets/train/training_run.h).
//   glia-train [--config FILE] [--set key=value]... [--out DIR] [--device cpu|sim|cuda]
//              [--kernels native|cudnn|dnnl|auto] [--stage 1|2|3|all] [--resume DIR]
//              [--init-only] [--max-steps N] [--data-cache DIR] [--no-progress]
//              [--distributed] [--cudnn-deterministic true|false] [--cudnn-find true|false]
//              [--precision fp32|tf32|bf16|fp16]
// --precision X is --set precision=X (nets/train/train_config.h).
// With no arguments it runs the built-in demo: configs/demo.yaml, all three stages, on synthetic
// phantoms generated (once) into the data cache, on cuda when a GPU is present and cpu otherwise.
// SIGINT / SIGTERM save a resumable checkpoint and exit with code 130; `--resume DIR` continues
// the run in DIR with the arguments it was started with. `mpirun -np N glia-train --distributed
// ...` (or srun) trains one data-parallel replica per process (nets/train/trainer.h,
// RunOptions::comm); rank 0 prints and writes. Only parses arguments: the work is in
// nets/. Tested end to end in tests/apps/CMakeLists.txt.
#include <unistd.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>

#include "apps/args.h"
#include "engine/dist/communicator.h"
#include "io/atomic_file.h"
#include "nets/model/checkpoint.h"
#include "nets/train/train_config.h"
#include "nets/train/training_run.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* kUsage =
    "usage: glia-train [--config FILE] [--set key=value]... [--out DIR]\n"
    "                  [--device cpu|sim|cuda] [--kernels native|cudnn|dnnl|auto]\n"
    "                  [--stage 1|2|3|all] [--resume DIR] [--init-only] [--max-steps N]\n"
    "                  [--data-cache DIR] [--no-progress] [--distributed]\n"
    "                  [--cudnn-deterministic true|false] [--cudnn-find true|false]\n"
    "                  [--precision fp32|tf32|bf16|fp16]\n"
    "With no arguments: the built-in demo (configs/demo.yaml, all stages, synthetic data).\n"
    "--stage defaults to the config file's own stage, or all for the demo. --init-only writes\n"
    "OUT/init.safetensors, the freshly initialised model of the configuration, and exits.\n"
    "--distributed: data-parallel training, one replica per process of `mpirun -np N` or\n"
    "`srun` (cpu: MPI; cuda: NCCL, one GPU per local rank); train.batch_size is per process.\n"
    "--cudnn-deterministic / --cudnn-find V: the same as --set cudnn.deterministic=V / "
    "cudnn.find=V.\n";

void on_signal(int) {
  glia::nets::request_stop();
  // A second signal ends the process at once.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

fs::path default_cache() {
  if (const char* env = std::getenv("GLIA_CACHE")) return fs::path(env) / "demo";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME")) return fs::path(xdg) / "glia" / "demo";
  if (const char* home = std::getenv("HOME")) return fs::path(home) / ".cache" / "glia" / "demo";
  return fs::temp_directory_path() / "glia-demo-cache";
}

std::string device_choice(const glia::Device& d) {
  return d.to_string();
}

}  // namespace

int main(int argc, char** argv) {
  glia::nets::TrainRequest request;
  try {
    std::string device_text, resume_dir;
    bool init_only = false, progress = isatty(STDERR_FILENO) != 0, stage_given = false;
    bool kernels_given = false, distributed = false;
    std::string kernels_text;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--config") {
        request.config_file = value();
      } else if (arg == "--set") {
        request.overrides.push_back(value());
      } else if (arg == "--precision") {
        request.overrides.push_back("precision=" + value());
      } else if (arg == "--out") {
        request.out_dir = value();
      } else if (arg == "--device") {
        device_text = value();
      } else if (arg == "--kernels") {
        kernels_text = value();
        kernels_given = true;
      } else if (arg == "--stage") {
        request.stage = value();
        stage_given = true;
      } else if (arg == "--resume") {
        resume_dir = value();
      } else if (arg == "--init-only") {
        init_only = true;
      } else if (arg == "--max-steps") {
        request.max_steps = std::stoll(value());
      } else if (arg == "--data-cache") {
        request.data_cache = value();
      } else if (arg == "--no-progress") {
        progress = false;
      } else if (arg == "--distributed") {
        distributed = true;
      } else if (arg == "--cudnn-deterministic" || arg == "--cudnn-find") {
        // Configuration keys (cudnn.*): checked, printed and kept for --resume with the rest.
        const std::string key = arg == "--cudnn-find" ? "cudnn.find" : "cudnn.deterministic";
        const bool on = glia::apps::parse_bool(arg, value());
        request.overrides.push_back(key + (on ? "=true" : "=false"));
      } else if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else {
        throw std::invalid_argument("unknown argument '" + arg + "' (see --help)");
      }
    }

    if (!resume_dir.empty()) {
      // The run's own arguments come back from run.json; the command line may add overrides.
      const fs::path run_file = fs::path(resume_dir) / "run.json";
      if (!fs::exists(run_file)) {
        throw std::runtime_error("--resume: " + run_file.string() + " not found");
      }
      const json saved = json::parse(glia::io::read_file(run_file));
      request.config_file = saved.at("config").get<std::string>();
      auto overrides = saved.at("overrides").get<std::vector<std::string>>();
      overrides.insert(overrides.end(), request.overrides.begin(), request.overrides.end());
      request.overrides = overrides;
      request.stage = saved.at("stage").get<std::string>();
      if (device_text.empty()) device_text = saved.at("device").get<std::string>();
      if (request.data_cache.empty())
        request.data_cache = saved.at("data_cache").get<std::string>();
      request.out_dir = resume_dir;
      request.resume = true;
      distributed = distributed || saved.value("distributed", false);
    } else if (request.config_file.empty()) {
      // The built-in demo (or any run without a file: the demo's settings are the baseline).
      request.config_file = fs::path(GLIA_SOURCE_DIR) / "configs" / "demo.yaml";
      if (!stage_given) request.stage = "all";
    } else if (!stage_given) {
      request.stage = "file";
    }
    if (request.out_dir.empty()) request.out_dir = "runs/train";
    if (request.data_cache.empty()) request.data_cache = default_cache();
    request.device = device_text.empty()
                         ? (glia::cuda_available() ? glia::Device::cuda() : glia::Device::cpu())
                         : glia::Device::parse(device_text);
    if (kernels_given) request.kernels = glia::parse_kernel_policy(kernels_text);
    request.progress_bar = progress;
    // Only rank 0 prints; the others train silently.
    std::ostream* out = &std::cout;
    std::ostringstream quiet;
    if (distributed && !init_only) {
      // The collective timeout comes from the configuration once it is loaded (trainer).
      const glia::dist::DistributedSetup setup =
          glia::dist::init_distributed(request.device.type, std::chrono::minutes(10));
      request.comm = setup.comm;
      request.device = setup.device;
      if (setup.comm->rank() != 0) {
        out = &quiet;
        request.progress_bar = false;
      }
    }
    const bool writer = !request.comm || request.comm->rank() == 0;

    if (init_only) {
      const glia::io::Config config = glia::nets::load_training_config(
          request.config_file, request.stage == "all" ? 1 : 0, request.overrides);
      const glia::nets::TrainConfig t = glia::nets::to_train_config(config);
      fs::create_directories(request.out_dir);
      const fs::path out = request.out_dir / "init.safetensors";
      glia::nets::write_initial_checkpoint(out, t.model, t.seed);
      std::cout << "initial checkpoint (seed " << t.seed << "): " << out.string() << "\n";
      return 0;
    }

    if (writer) fs::create_directories(request.out_dir);
    if (!request.resume && writer) {
      const json run = {{"config", request.config_file.string()},
                        {"overrides", request.overrides},
                        {"stage", request.stage},
                        {"device", device_choice(request.device)},
                        {"data_cache", request.data_cache.string()},
                        {"distributed", distributed}};
      glia::io::write_file_atomic(request.out_dir / "run.json", run.dump(2) + "\n");
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    *out << "glia-train: config " << request.config_file.string() << ", stage " << request.stage
         << ", device " << request.device.to_string() << ", out " << request.out_dir.string();
    if (request.comm) *out << ", " << request.comm->size() << " processes";
    *out << "\n";
    const glia::nets::TrainReport report = glia::nets::run_training(request, *out);
    *out << glia::nets::format_report(report);
    if (report.interrupted) {
      *out << "interrupted: continue with glia-train --resume " << request.out_dir.string() << "\n";
      const bool signalled = request.comm ? request.comm->any(glia::nets::stop_requested())
                                          : glia::nets::stop_requested();
      return signalled ? 130 : 0;
    }
    return 0;
  } catch (const std::exception& e) {
    // One failing rank must not leave the others waiting in a collective: end them all.
    if (request.comm && request.comm->size() > 1) {
      request.comm->abort(std::string("glia-train: ") + e.what());
    }
    std::fprintf(stderr, "glia-train: %s\n", e.what());
    return 1;
  }
}
