// Uploads ahead of use on the copy stream; see upload.h. Tested in tests/engine/upload_test.cpp.
#include "engine/upload.h"

#include <stdexcept>
#include <string>

#include "engine/memory.h"

#if defined(GLIA_HAVE_CUDA)
#include "engine/cuda/runtime.h"
#endif

namespace glia {
namespace {

void check_host_tensor(const Tensor& t, std::size_t i) {
  const std::string which = "upload_async: tensor " + std::to_string(i);
  if (!t.defined()) throw std::invalid_argument(which + " is undefined");
  if (!t.device().is_host()) {
    throw std::invalid_argument(which + " is on " + t.device().to_string() +
                                ", not in host memory (cpu or sim)");
  }
  if (t.requires_grad()) {
    throw std::invalid_argument(which +
                                " requires grad: an upload moves data and records no autograd "
                                "node; detach() it first");
  }
}

}  // namespace

PendingUpload upload_async(const std::vector<Tensor>& host, Device device) {
  for (std::size_t i = 0; i < host.size(); ++i) check_host_tensor(host[i], i);
  check_device_usable(device);
  PendingUpload up;
  up.device_ = device;
  up.tensors_.reserve(host.size());
  if (device.is_host()) {
    for (const Tensor& t : host) up.tensors_.push_back(t.to(device));
    return up;
  }
#if defined(GLIA_HAVE_CUDA)
  for (const Tensor& t : host) {
    Tensor d(t.shape(), t.dtype(), device, MemoryPool::upload);
    cudart::upload_on_copy_stream(device.index, d.raw_data(), t.raw_data(),
                                  static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
    up.tensors_.push_back(std::move(d));
  }
  cudart::DeviceGuard guard(device.index);
  cudaEvent_t event = nullptr;
  GLIA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  // Destroying an event that a stream still waits for is allowed: the wait stays in effect.
  up.copied_ = std::shared_ptr<void>(
      event, [](void* e) { (void)cudaEventDestroy(static_cast<cudaEvent_t>(e)); });
  GLIA_CUDA_CHECK(cudaEventRecord(event, cudart::copy_stream(device.index)));
#endif
  return up;
}

std::vector<Tensor> PendingUpload::take() {
#if defined(GLIA_HAVE_CUDA)
  if (copied_) {
    cudart::DeviceGuard guard(device_.index);
    GLIA_CUDA_CHECK(cudaStreamWaitEvent(cudart::stream(device_.index),
                                        static_cast<cudaEvent_t>(copied_.get()), 0));
    copied_.reset();
  }
#endif
  return tensors_;
}

}  // namespace glia
