// Memory benchmark: peak resident memory (VmHWM) of one training step of the default multi-task
// U-Net (forward, joint Dice+BCE and cross-entropy loss, backward, AdamW step) per batch size and
// image size on cpu, each in a forked child so the peaks do not mix; then a long tiny run of the
// real trainer (stage 1 of the demo at 32x32, a 2-filter U-Net, many short epochs, validation and
// checkpoints included) whose resident memory must stay flat: the largest VmRSS seen after the
// steps of epoch 20 within 5% of epoch 2's, else the exit status is 1 (a leak per epoch).
// Usage: glia-bench-memory [--batch N]... [--size S]... [--epochs E] [--quick] [--cache DIR]
// (defaults: batches 1 4 16, sizes 64 128 256, 20 epochs; --quick: batch 1 and 4 at 64, 6 epochs)
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/args.h"
#include "engine/losses.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/random.h"
#include "nets/model/checkpoint.h"
#include "nets/train/train_config.h"
#include "nets/train/trainer.h"
#include "nets/train/training_run.h"

namespace {

namespace fs = std::filesystem;
using glia::Device;
using glia::Tensor;

// A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
long status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  throw std::runtime_error("no " + field + " in /proc/self/status");
}

double mib(long kib) {
  return static_cast<double>(kib) / 1024.0;
}

// In the child: the resident memory before the step (model, optimiser, inputs) and the peak
// over two steps (the second one has the optimiser's moments allocated).
struct StepMemory {
  long before_kib = 0, peak_kib = 0;
};

StepMemory measure_step(int batch, int size) {
  auto net = glia::nets::init_model({}, 1);
  glia::Generator gen(7);
  const Tensor x = glia::randn({batch, 1, size, size}, {}, &gen);
  const Tensor mask = glia::rand({batch, 1, size, size}, {}, &gen);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
  for (int i = 0; i < batch; ++i) labels[static_cast<std::size_t>(i)] = i % 2;
  const Tensor target = glia::from_vector(labels, {batch}, Device::cpu());
  glia::optim::ParamGroup group;
  group.params = net->parameters();
  group.lr = 1e-3;
  glia::optim::AdamW optimizer({group});
  StepMemory m;
  m.before_kib = status_kib("VmRSS");
  for (int step = 0; step < 2; ++step) {
    net->train();
    optimizer.zero_grad();
    const glia::nets::MultiTaskOutput out = net->forward(x, true, true);
    const Tensor loss = glia::add(glia::dice_bce_loss(out.seg_logits, mask),
                                  glia::cross_entropy(out.cls_logits, target));
    loss.backward();
    optimizer.step();
  }
  m.peak_kib = status_kib("VmHWM");
  return m;
}

// Runs measure_step in a child process and reads its figures from a pipe.
StepMemory measure_step_in_child(int batch, int size) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(fds[0]);
    int status = 0;
    try {
      const StepMemory m = measure_step(batch, size);
      if (write(fds[1], &m, sizeof m) != static_cast<ssize_t>(sizeof m)) status = 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "batch %d size %d: %s\n", batch, size, e.what());
      status = 1;
    }
    _exit(status);
  }
  close(fds[1]);
  StepMemory m;
  const ssize_t got = read(fds[0], &m, sizeof m);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != static_cast<ssize_t>(sizeof m) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("the measurement of batch " + std::to_string(batch) + " at " +
                             std::to_string(size) + " failed");
  }
  return m;
}

// The real trainer on the tiny demo; per epoch the largest VmRSS after any of its steps (one
// reading per epoch would see the allocator's heap at a different phase each time).
std::vector<long> long_run_rss(int epochs, const fs::path& scratch) {
  const std::vector<std::string> overrides = {"demo.brats_subjects=3",
                                              "demo.kaggle_images=8",
                                              "demo.size=32",
                                              "model.base_filters=2",
                                              "model.depth=2",
                                              "model.cls_hidden=8",
                                              "train.epochs=" + std::to_string(epochs),
                                              "train.batch_size=4",
                                              "sampler.epoch_length=16",
                                              "data.workers=0",
                                              "schedule.warmup_epochs=0",
                                              "train.early_stopping_patience=0"};
  const glia::io::Config config = glia::nets::load_training_config("", 1, overrides);
  std::ostringstream quiet;
  const fs::path root = glia::nets::ensure_demo_data(scratch / "cache", config, quiet);
  const glia::nets::TrainConfig t = glia::nets::to_train_config(config);
  const glia::nets::TrainData data = glia::nets::load_train_data(root, t.data.sources);
  const std::int64_t steps_per_epoch = 16 / 4;
  std::int64_t step = 0;
  std::vector<long> rss;
  glia::nets::RunOptions options;
  options.out_dir = scratch / "run";
  options.after_step = [&] {
    const long now = status_kib("VmRSS");
    if (step % steps_per_epoch == 0) {
      rss.push_back(now);
    } else {
      rss.back() = std::max(rss.back(), now);
    }
    ++step;
  };
  glia::nets::train_stage(config, data, options);
  return rss;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<int> batches, sizes;
    int epochs = 20;
    bool quick = false;
    fs::path scratch =
        fs::temp_directory_path() / ("glia-bench-memory." + std::to_string(getpid()));
    for (glia::bench::Args args(argc, argv); args.next();) {
      if (args.is("--batch")) {
        batches.push_back(args.integer(1));
      } else if (args.is("--size")) {
        sizes.push_back(args.integer(1));
      } else if (args.is("--epochs")) {
        epochs = args.integer(3);
      } else if (args.is("--cache")) {
        scratch = args.value();
      } else if (args.is("--quick")) {
        quick = true;
      } else {
        args.unknown(
            "glia-bench-memory [--batch N]... [--size S]... [--epochs E] [--quick] [--cache DIR]");
      }
    }
    if (batches.empty()) batches = quick ? std::vector<int>{1, 4} : std::vector<int>{1, 4, 16};
    if (sizes.empty()) sizes = quick ? std::vector<int>{64} : std::vector<int>{64, 128, 256};
    if (quick) epochs = std::min(epochs, 6);
    if (epochs < 3) throw std::invalid_argument("--epochs must be at least 3");

    std::printf("peak resident memory of a training step (default U-Net, AdamW, cpu)\n");
    std::printf("  batch   size   before MiB   peak MiB   step MiB   step MiB/image\n");
    for (int size : sizes) {
      for (int batch : batches) {
        const StepMemory m = measure_step_in_child(batch, size);
        const double step = mib(m.peak_kib - m.before_kib);
        std::printf("  %5d  %5d  %11.1f  %9.1f  %9.1f  %15.2f\n", batch, size, mib(m.before_kib),
                    mib(m.peak_kib), step, step / batch);
        std::fflush(stdout);
      }
    }

    const std::vector<long> rss = long_run_rss(epochs, scratch);
    std::error_code ignored;
    fs::remove_all(scratch, ignored);
    if (rss.size() != static_cast<std::size_t>(epochs)) {
      throw std::runtime_error("the long run recorded " + std::to_string(rss.size()) +
                               " epochs of " + std::to_string(epochs));
    }
    std::printf(
        "\nresident memory of a long tiny run (stage 1, 32x32, 2 filters), the largest "
        "after a step of each epoch\n  epoch  MiB\n");
    for (std::size_t e = 0; e < rss.size(); ++e) std::printf("  %5zu  %.1f\n", e + 1, mib(rss[e]));
    const double second = static_cast<double>(rss[1]);
    const double final_rss = static_cast<double>(rss.back());
    const double growth = (final_rss - second) / second;
    std::printf("epoch %d vs epoch 2: %+.2f%% (limit +5%%)\n", epochs, 100.0 * growth);
    return growth <= 0.05 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glia-bench-memory: %s\n", e.what());
    return 2;
  }
}
