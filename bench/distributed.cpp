// Data-parallel training step benchmark (engine/dist): the multi-task U-Net (base 16, depth 3;
// the parameter count is printed) trained with SGD on random 1xSxS images and masks,
// per-rank batch B, gradients averaged by the bucketed reducer. Run it under the launcher with
// 1 and with 2 processes:
//   mpirun -np 1 glia-bench-distributed    mpirun --oversubscribe -np 2 glia-bench-distributed
// Rank 0 prints, per step (median over the timed steps, after warm-up): the time, the time blocked
// waiting for gradient all-reduces (communication not hidden behind backward) and its share of
// the step, how many buckets started during backward, the payload all-reduced per step, and the
// bytes each rank sends per step by a ring all-reduce, 2 (N - 1) / N x payload (what the MPI or
// NCCL ring moves; a world of one moves nothing).
// Usage: glia-bench-distributed [--batch B] [--size S] [--steps N] [--bucket-mb M] [--sync-bn]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/args.h"
#include "engine/dist/communicator.h"
#include "engine/dist/reducer.h"
#include "engine/losses.h"
#include "engine/nn/layers.h"
#include "engine/ops.h"
#include "engine/optim/sgd.h"
#include "engine/random.h"
#include "nets/model/checkpoint.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(int argc, char** argv) {
  int batch = 4, size = 64, steps = 10;
  double bucket_mb = 25;
  bool sync_bn = false;
  for (glia::bench::Args args(argc, argv); args.next();) {
    if (args.is("--batch")) {
      batch = args.integer(1);
    } else if (args.is("--size")) {
      size = args.integer(1);
    } else if (args.is("--steps")) {
      steps = args.integer(1);
    } else if (args.is("--bucket-mb")) {
      bucket_mb = args.number();
    } else if (args.is("--sync-bn")) {
      sync_bn = true;
    } else {
      args.unknown(
          "glia-bench-distributed [--batch N] [--size S] [--steps K] [--bucket-mb MB] [--sync-bn]");
    }
  }
  const glia::dist::DistributedSetup setup =
      glia::dist::init_distributed(glia::DeviceType::cpu, std::chrono::minutes(5));
  auto comm = setup.comm;

  glia::nets::UNetConfig config;
  config.base_filters = 16;
  config.cls_hidden = 64;
  config.cls_dropout = 0;
  auto model = glia::nets::init_model(config, 1);
  model->train();
  if (sync_bn) glia::nn::convert_sync_batchnorm(*model, comm);
  glia::dist::broadcast_module(*comm, *model);
  const std::vector<glia::Tensor> params = model->parameters();
  glia::dist::GradReducer reducer(
      comm, params, {static_cast<std::size_t>(bucket_mb * static_cast<double>(1 << 20))});
  glia::optim::Sgd sgd({{.params = params, .lr = 0.01}}, {.momentum = 0.9});

  glia::Generator g(100 + static_cast<std::uint64_t>(comm->rank()));
  const glia::Tensor x = glia::randn({batch, 1, size, size}, {}, &g);
  std::vector<float> mask_values = glia::rand({batch, 1, size, size}, {}, &g).to_vector<float>();
  for (float& v : mask_values) v = v > 0.7f ? 1.0f : 0.0f;
  const glia::Tensor mask = glia::from_vector(mask_values, {batch, 1, size, size});
  std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 2);
  const glia::Tensor target = glia::from_vector(labels, {batch});

  std::vector<double> step_s, wait_s, started;
  for (int s = -2; s < steps; ++s) {
    comm->barrier();  // every rank starts the step together: the wait measures communication
    const double wait_before = comm->stats().wait_seconds;
    const auto t0 = std::chrono::steady_clock::now();
    sgd.zero_grad();
    const glia::nets::MultiTaskOutput out = model->forward(x, true, true);
    reducer.backward(glia::add(glia::dice_bce_loss(out.seg_logits, mask),
                               glia::cross_entropy(out.cls_logits, target)));
    sgd.step();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s < 0) continue;  // warm-up
    step_s.push_back(seconds);
    wait_s.push_back(comm->stats().wait_seconds - wait_before);
    started.push_back(static_cast<double>(reducer.started_during_backward()));
  }
  const double step = median(step_s), wait = median(wait_s);
  const double payload = static_cast<double>(reducer.bytes_per_step());
  const int n = comm->size();
  const double ring = n > 1 ? 2.0 * (n - 1) / n * payload : 0.0;
  if (comm->rank() == 0) {
    std::printf(
        "| ranks | transport | params | batch/rank | image | buckets (started in backward) | step "
        "ms | comm wait ms | comm share | payload MB/step | ring MB sent/rank/step |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| %d | %s | %lld | %d | %dx%d | %zu (%.0f) | %.1f | %.1f | %.1f%% | %.2f | %.2f |\n",
        n, comm->backend().c_str(), static_cast<long long>(model->parameter_count()), batch, size,
        size, reducer.bucket_count(), median(started), step * 1e3, wait * 1e3, 100.0 * wait / step,
        payload / 1e6, ring / 1e6);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return glia::bench::run_main("glia-bench-distributed", [&] { return run(argc, argv); });
}
