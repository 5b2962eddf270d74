// Gradient averaging for data-parallel training (PyTorch's DistributedDataParallel reducer).
// The trainable parameters are packed, in reverse order (the order backward finishes them), into
// buckets of about `bucket_bytes`. During backward a gradient-ready hook (engine/autograd.h)
// marks each parameter whose gradient is final; when every parameter of a bucket is, and every
// earlier bucket has started, the bucket's gradients are copied into its flat buffer and its
// all-reduce starts (non-blocking), while backward goes on with the earlier layers. finish()
// starts what is left (a parameter that got no gradient this pass counts as zeros), waits, and
// writes grad = sum over ranks / world size into every parameter, so the optimiser step that
// follows is the one a single process would take on the whole global batch (the per-rank losses
// being means over equal per-rank batches).
// Buckets start in index order on every rank, so the collectives match even when ranks see their
// gradients become ready in different orders.
// broadcast_module copies rank 0's parameters and buffers to every rank (DDP's start).
// Tested in tests/dist/ddp_test.cpp (2-rank run vs 1 rank with the doubled batch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "engine/autograd.h"
#include "engine/dist/communicator.h"
#include "engine/nn/module.h"

namespace glia::dist {

struct ReducerOptions {
  std::size_t bucket_bytes = std::size_t{25} << 20;  // DDP's default bucket_cap_mb = 25
};

class GradReducer {
 public:
  // `params`: the parameters the optimiser steps (same dtype and device, one the communicator
  // carries), in registration order. Throws std::invalid_argument otherwise.
  GradReducer(std::shared_ptr<Communicator> comm, std::vector<Tensor> params,
              ReducerOptions options = {});
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // loss.backward() with the buckets' all-reduces overlapping it, then finish().
  void backward(const Tensor& loss);
  // The two halves, for a caller that runs backward itself: begin() installs the hook on this
  // thread; finish() removes it, waits, and writes the averaged gradients.
  void begin();
  void finish();

  std::size_t bucket_count() const { return buckets_.size(); }
  // Buckets whose all-reduce started before finish() in the last pass: the overlap.
  std::size_t started_during_backward() const { return started_in_backward_; }
  // Payload bytes all-reduced per step (every bucket once).
  std::int64_t bytes_per_step() const;
  // The parameter indices of each bucket, in start order.
  std::vector<std::vector<std::size_t>> bucket_layout() const;

 private:
  struct Bucket {
    std::vector<std::size_t> params;   // indices into params_
    std::vector<std::size_t> offsets;  // element offset of each in buffer
    Tensor buffer;                     // 1-D, the bucket's gradients side by side
    std::size_t ready = 0;
    std::unique_ptr<Request> request;
  };
  void on_grad_ready(const std::shared_ptr<TensorImpl>& leaf);
  void start_ready_buckets();
  void start(Bucket& bucket);

  std::shared_ptr<Communicator> comm_;
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, std::size_t> param_of_;  // leaf -> index in params_
  std::vector<std::size_t> bucket_of_;                           // param index -> bucket
  std::vector<bool> marked_;                                     // this pass
  std::size_t next_to_start_ = 0;
  std::size_t started_in_backward_ = 0;
  std::optional<GradReadyHookGuard> hook_;
};

// Copies rank `root`'s values of every parameter and buffer of `module` into every rank's.
void broadcast_module(Communicator& comm, nn::Module& module, int root = 0);

}  // namespace glia::dist
