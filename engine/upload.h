// Host tensors on their way to a device, ahead of their use: the training loop queues the copies
// of the next batch before the work of the current one, and takes the tensors when their step
// begins. On a GPU the copies run on the device's copy stream (staged through pinned buffers,
// engine/cuda/runtime.h) into blocks of the upload pool (engine/cuda/allocator.h), so they overlap
// the compute stream's work; take() makes the compute stream wait for them on the GPU, and the
// host goes on. On cpu and sim, which have no streams, upload_async copies at once.
// Tested in tests/engine/upload_test.cpp (cpu and sim always, cuda where a GPU is present).
#pragma once

#include <memory>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"

namespace glia {

class PendingUpload {
 public:
  PendingUpload() = default;

  // The device tensors in the order given to upload_async, usable by the device's compute stream
  // from now on (ordered after the copies). Taking again returns the same tensors.
  std::vector<Tensor> take();
  bool empty() const { return tensors_.empty(); }

 private:
  friend PendingUpload upload_async(const std::vector<Tensor>& host, Device device);
  std::vector<Tensor> tensors_;
  Device device_;
  std::shared_ptr<void> copied_;  // on a GPU: the copy stream's event after the copies
};

// Queues the copy of each host tensor to `device`. The host tensors may be reused or freed at
// once. Throws std::invalid_argument naming the tensor's position when one is undefined, is not on
// the host, or requires grad (an upload moves data, it records no autograd node).
PendingUpload upload_async(const std::vector<Tensor>& host, Device device);

}  // namespace glia
