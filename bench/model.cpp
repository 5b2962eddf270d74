// Model benchmark: time per image of the default multi-task U-Net (B=32, D=3, 1x256x256 input,
// 1,992,739 parameters) for an eval-mode forward under no-grad and a train-mode forward plus
// backward of the joint loss (Dice+BCE on the segmentation, cross-entropy on the class), on the
// cpu backend and, when a GPU is present, on cuda (synchronised before the clock stops). Each
// figure is the median over the repetitions after one warm-up, divided by the batch. Each precision
// of --precision (engine/precision.h; default fp32) is timed under a ScopedPrecision and printed
// as a column: on cuda it selects the tensor-core path, on cpu and sim it only rounds the operands
// (emulation, no speed gain: there the column shows the rounding's cost). On cuda two more columns
// time train steps on fresh host batches of 4 steps at a time: each batch moved by to(device) at
// the start of its step (the copy queued behind the previous step's work), or by upload_async on
// the copy stream with the next batch queued before the current step's work (engine/upload.h);
// and two that say whether CUDA Graphs could pay: the host's time to queue one train step, and a
// replay of the step captured once as a graph (a launch-bound step queues in about its own time,
// and its replay is faster).
// Usage: glia-bench-model [--batch N]... [--reps R] [--size S] [--device cpu|sim|cuda]...
//                         [--precision fp32,tf32,bf16,fp16] [--quick]
//        glia-bench-model --export DIR [--size S]
// (defaults: batches 2 and 8, 3 repetitions, 256x256, cpu and cuda when present, fp32; --quick:
// batch 1 at 64x64, one repetition, for a smoke run: the ctest cpu:bench.model_quick). --export
// writes what the PyTorch side-by-side (bench/side_by_side.sh, bench/torch_unet.py) checks against:
// the benchmark's model as a checkpoint (DIR/model.safetensors, its batch-norm running statistics
// moved off their initial values by two train-mode forwards), an input batch of 2 (DIR/input.npy)
// and the eval-mode logits of the cpu device (DIR/seg_logits.npy, DIR/cls_logits.npy).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/args.h"
#include "engine/grad_mode.h"
#include "engine/losses.h"
#include "engine/ops.h"
#include "engine/precision.h"
#include "engine/random.h"
#include "engine/upload.h"
#include "io/npy.h"
#include "nets/model/checkpoint.h"

#if defined(GLIA_HAVE_CUDA)
#include <cuda_runtime.h>

#include "engine/cuda/runtime.h"
#endif

namespace {

using glia::Device;
using glia::Tensor;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Seconds of one call of `fn`, the device's queue drained before the clock stops.
template <class Fn>
double time_once(Device device, Fn&& fn) {
  glia::synchronize(device);
  const auto start = std::chrono::steady_clock::now();
  fn();
  glia::synchronize(device);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Figures {
  double forward = 0.0, train_step = 0.0;  // seconds per image
  // Train steps on fresh host batches (cuda only, else 0): moved by to(device) at the start of each
  // step, or by upload_async with the next batch queued before the current step's work.
  double step_with_to = 0.0, step_with_async = 0.0;
  // Whether CUDA Graphs could pay (cuda only): the host's time to queue a train step (clock
  // stopped before the device is drained), and a replay of the step captured as a CUDA graph
  // (negative when the capture failed; graph_error says why).
  double queue = 0.0, graph_replay = 0.0;
  std::string graph_error;
};

#if defined(GLIA_HAVE_CUDA)
// Seconds of replays of `step` captured once as a CUDA graph on the device's compute stream, the
// median of `reps` after one warm-up. The step must already have run (the caches are warm and
// every kernel choice is made), allocate nothing new and never synchronise. Its inputs are fixed:
// a replay repeats the same work on the same addresses. A measurement only: the trainer does not
// capture (replays would need a memory pool of their own).
double graph_replay_seconds(Device device, const std::function<void()>& step, int reps) {
  const glia::cudart::DeviceGuard guard(device.index);
  cudaStream_t stream = glia::cudart::stream(device.index);
  glia::synchronize(device);
  GLIA_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  cudaGraph_t graph = nullptr;
  try {
    step();
  } catch (...) {
    if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph != nullptr) {
      (void)cudaGraphDestroy(graph);
    }
    (void)cudaGetLastError();
    throw;
  }
  GLIA_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  (void)cudaGraphDestroy(graph);
  GLIA_CUDA_CHECK(instantiated);
  struct Destroy {
    cudaGraphExec_t e;
    ~Destroy() { (void)cudaGraphExecDestroy(e); }
  } destroy{exec};
  auto replay = [&] { GLIA_CUDA_CHECK(cudaGraphLaunch(exec, stream)); };
  time_once(device, replay);
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) times.push_back(time_once(device, replay));
  return median(times);
}
#endif

// Host batches per timed window of the upload comparison.
constexpr int kUploadSteps = 4;

Figures measure(Device device, int batch, int size, int reps) {
  auto net = glia::nets::init_model({}, 1);
  net->to(device);
  glia::Generator gen(7);
  const Tensor x = glia::randn({batch, 1, size, size}, {.device = device}, &gen);
  Tensor mask = glia::rand({batch, 1, size, size}, {.device = device}, &gen);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
  for (int i = 0; i < batch; ++i) labels[static_cast<std::size_t>(i)] = i % 2;
  const Tensor target = glia::from_vector(labels, {batch}, device);

  auto forward = [&] {
    glia::NoGradGuard no_grad;
    net->eval();
    const glia::nets::MultiTaskOutput out = net->forward(x, true, true);
    (void)out;
  };
  auto step_on = [&](const Tensor& images, const Tensor& masks, const Tensor& classes) {
    net->train();
    net->zero_grad();
    const glia::nets::MultiTaskOutput out = net->forward(images, true, true);
    const Tensor loss = glia::add(glia::dice_bce_loss(out.seg_logits, masks),
                                  glia::cross_entropy(out.cls_logits, classes));
    loss.backward();
  };
  auto train_step = [&] { step_on(x, mask, target); };
  Figures f;
  std::vector<double> fw, tr;
  time_once(device, forward);  // warm-up: allocator caches, kernel selection
  for (int r = 0; r < reps; ++r) fw.push_back(time_once(device, forward));
  time_once(device, train_step);
  for (int r = 0; r < reps; ++r) tr.push_back(time_once(device, train_step));
  f.forward = median(fw) / batch;
  f.train_step = median(tr) / batch;
  if (!device.is_cuda()) return f;

  std::vector<double> queued;
  for (int r = 0; r < reps; ++r) {
    glia::synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    train_step();
    queued.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  glia::synchronize(device);
  f.queue = median(queued) / batch;
#if defined(GLIA_HAVE_CUDA)
  try {
    f.graph_replay = graph_replay_seconds(device, train_step, reps) / batch;
  } catch (const std::exception& e) {
    f.graph_replay = -1.0;
    f.graph_error = e.what();
  }
#endif

  std::vector<std::vector<Tensor>> host;  // images, masks, classes per step
  const Tensor host_target = glia::from_vector(labels, {batch});
  for (int i = 0; i < kUploadSteps; ++i) {
    host.push_back({glia::randn({batch, 1, size, size}, {}, &gen),
                    glia::rand({batch, 1, size, size}, {}, &gen), host_target});
  }
  auto with_to = [&] {
    for (const std::vector<Tensor>& b : host) {
      step_on(b[0].to(device), b[1].to(device), b[2].to(device));
    }
  };
  auto with_async = [&] {
    glia::PendingUpload current = glia::upload_async(host[0], device);
    for (int i = 0; i < kUploadSteps; ++i) {
      glia::PendingUpload next;
      if (i + 1 < kUploadSteps)
        next = glia::upload_async(host[static_cast<std::size_t>(i + 1)], device);
      const std::vector<Tensor> b = current.take();
      step_on(b[0], b[1], b[2]);
      current = std::move(next);
    }
  };
  // Interleaved, so both see the same clocks and caches.
  std::vector<double> to_times, async_times;
  time_once(device, with_to);
  time_once(device, with_async);
  for (int r = 0; r < reps; ++r) {
    to_times.push_back(time_once(device, with_to));
    async_times.push_back(time_once(device, with_async));
  }
  f.step_with_to = median(to_times) / (kUploadSteps * batch);
  f.step_with_async = median(async_times) / (kUploadSteps * batch);
  return f;
}

glia::io::NpyArray npy_of(const Tensor& t) {
  const std::vector<float> v = t.to_vector<float>();
  return glia::io::NpyArray::from_f32(
      v, std::vector<std::int64_t>(t.shape().begin(), t.shape().end()));
}

// See the header: the checkpoint, input and logits the PyTorch reference is checked against.
void export_reference(const std::string& dir, int size) {
  std::filesystem::create_directories(dir);
  auto net = glia::nets::init_model({}, 1);
  glia::Generator gen(11);
  {
    glia::NoGradGuard no_grad;
    net->train();
    for (int i = 0; i < 2; ++i) {
      const Tensor warm = glia::randn({2, 1, size, size}, {}, &gen);
      (void)net->forward(warm, true, true);
    }
  }
  glia::nets::save_checkpoint(std::filesystem::path(dir) / "model.safetensors", *net);
  const Tensor x = glia::randn({2, 1, size, size}, {}, &gen);
  glia::NoGradGuard no_grad;
  net->eval();
  const glia::nets::MultiTaskOutput out = net->forward(x, true, true);
  glia::io::write_npy(std::filesystem::path(dir) / "input.npy", npy_of(x));
  glia::io::write_npy(std::filesystem::path(dir) / "seg_logits.npy", npy_of(out.seg_logits));
  glia::io::write_npy(std::filesystem::path(dir) / "cls_logits.npy", npy_of(out.cls_logits));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<int> batches;
    std::vector<Device> devices;
    std::vector<glia::Precision> precisions;
    int reps = 3, size = 256;
    std::string export_dir;
    for (glia::bench::Args args(argc, argv); args.next();) {
      if (args.is("--batch")) {
        batches.push_back(args.integer(1));
      } else if (args.is("--reps")) {
        reps = args.integer(1);
      } else if (args.is("--size")) {
        size = args.integer(8);
      } else if (args.is("--export")) {
        export_dir = args.value();
      } else if (args.is("--device")) {
        devices.push_back(Device::parse(args.value()));
      } else if (args.is("--precision")) {
        precisions = args.precisions();
      } else if (args.is("--quick")) {
        batches = {1};
        reps = 1;
        size = 64;
      } else {
        args.unknown(
            "glia-bench-model [--batch N]... [--reps R] [--size S] [--device cpu|sim|cuda]... "
            "[--precision fp32,tf32,bf16,fp16] [--quick] | --export DIR [--size S]");
      }
    }
    if (size < 8 || size % 8 != 0) throw std::invalid_argument("--size must be a multiple of 8");
    if (!export_dir.empty()) {
      export_reference(export_dir, size);
      return 0;
    }
    if (batches.empty()) batches = {2, 8};
    if (precisions.empty()) precisions = {glia::Precision::fp32};
    if (reps < 1) throw std::invalid_argument("--reps must be at least 1");
    if (devices.empty()) {
      devices.push_back(Device::cpu());
      if (glia::cuda_available()) {
        devices.push_back(Device::cuda());
      } else {
        std::printf("cuda: skipped (no GPU present or glia built without CUDA)\n");
      }
    }
    std::printf("multi-task U-Net B=32 D=3 (%lld parameters), input 1x%dx%d, median of %d\n",
                static_cast<long long>(glia::nets::MultiTaskUNet().parameter_count()), size, size,
                reps);
    std::printf("%-8s %-9s %6s %16s %22s %18s %18s %14s %14s\n", "device", "precision", "batch",
                "forward ms/img", "fwd+bwd ms/img", "+to() ms/img", "+async ms/img", "queue ms/img",
                "graph ms/img");
    for (const Device device : devices) {
      glia::check_device_usable(device);
      for (const glia::Precision precision : precisions) {
        const glia::ScopedPrecision scoped(precision);
        for (const int batch : batches) {
          const Figures f = measure(device, batch, size, reps);
          std::printf("%-8s %-9s %6d %16.2f %22.2f", device.to_string().c_str(),
                      glia::precision_name(precision), batch, 1e3 * f.forward, 1e3 * f.train_step);
          if (device.is_cuda()) {
            std::printf(" %18.2f %18.2f %14.2f", 1e3 * f.step_with_to, 1e3 * f.step_with_async,
                        1e3 * f.queue);
            if (f.graph_replay >= 0.0) {
              std::printf(" %14.2f\n", 1e3 * f.graph_replay);
            } else {
              std::printf(" %14s\n  (graph capture failed: %s)\n", "failed", f.graph_error.c_str());
            }
          } else {
            std::printf(" %18s %18s %14s %14s\n", "-", "-", "-", "-");
          }
          std::fflush(stdout);
        }
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glia-bench-model: %s\n", e.what());
    return 1;
  }
}
