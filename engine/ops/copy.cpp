// Moves of whole tensors: to another device (a byte copy), to another dtype (the kernels' cast),
// and clone. Device and f32<->f64 moves are differentiable: the gradient moves back the same way.
// Tested in tests/engine/tensor_test.cpp.
#include <stdexcept>

#include "engine/memory.h"
#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/storage.h"

namespace glia {

namespace {

std::size_t nbytes(const Tensor& t) {
  return static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
}

}  // namespace

Tensor to_device(const Tensor& x, Device device) {
  if (x.device() == device) return x;
  Tensor y(x.shape(), x.dtype(), device);
  copy_bytes(y.raw_data(), device, x.raw_data(), x.device(), nbytes(x));
  const Device from = x.device();
  record("to_device", y, {x},
         [from](const Tensor& gy) -> std::vector<Tensor> { return {to_device(gy, from)}; });
  return y;
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor y(x.shape(), dtype, x.device());
  const index_t n = x.numel();
  ops::dispatch_all("to(dtype) source", x.device(), x.dtype(), [&]<class S>(auto src_backend) {
    ops::dispatch_all("to(dtype) target", x.device(), dtype, [&]<class D>(auto backend) {
      // Same-type casts never reach here (handled above); the check keeps them uninstantiated
      // for sim and cuda, which have no such kernel.
      if constexpr (!std::is_same_v<S, D> &&
                    std::is_same_v<decltype(src_backend), decltype(backend)>) {
        ops::kernel::cast(backend, x.data<S>(), y.data<D>(), n);
      }
    });
  });
  if (is_floating(x.dtype()) && is_floating(dtype)) {
    const DType from = x.dtype();
    record("to_dtype", y, {x},
           [from](const Tensor& gy) -> std::vector<Tensor> { return {to_dtype(gy, from)}; });
  }
  return y;
}

Tensor clone(const Tensor& x) {
  Tensor y(x.shape(), x.dtype(), x.device());
  copy_bytes(y.raw_data(), y.device(), x.raw_data(), x.device(), nbytes(x));
  record("clone", y, {x}, [](const Tensor& gy) -> std::vector<Tensor> { return {gy}; });
  return y;
}

}  // namespace glia
