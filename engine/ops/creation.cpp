// New tensors: uninitialised, constant-filled, ranges, and copies of host data; fill_ in place.
// Filling runs the fill kernel of the tensor's device (no host staging for constants).
// Tested in tests/engine/tensor_test.cpp.
#include <cmath>
#include <stdexcept>

#include "engine/memory.h"
#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace glia {

Tensor empty(const Shape& shape, TensorOptions options) {
  Tensor t(shape, options.dtype, options.device);
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

namespace {

void fill_values(const Tensor& x, double value) {
  const index_t n = x.numel();
  ops::dispatch_all("fill", x.device(), x.dtype(), [&]<class T>(auto backend) {
    ops::kernel::fill(backend, x.data<T>(), n, static_cast<T>(value));
  });
}

}  // namespace

void fill_(Tensor& x, double value) {
  fill_values(x, value);
  x.bump_version();
}

Tensor full(const Shape& shape, double value, TensorOptions options) {
  Tensor t(shape, options.dtype, options.device);
  fill_values(t, value);  // initialising a new tensor is no in-place write: it stays at version 0
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor zeros(const Shape& shape, TensorOptions options) {
  return full(shape, 0.0, options);
}
Tensor ones(const Shape& shape, TensorOptions options) {
  return full(shape, 1.0, options);
}

Tensor zeros_like(const Tensor& x) {
  return zeros(x.shape(), {.dtype = x.dtype(), .device = x.device()});
}
Tensor ones_like(const Tensor& x) {
  return ones(x.shape(), {.dtype = x.dtype(), .device = x.device()});
}

Tensor arange(double start, double end, double step, TensorOptions options) {
  if (step == 0.0 || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step)) {
    throw std::invalid_argument("arange(" + std::to_string(start) + ", " + std::to_string(end) +
                                ", " + std::to_string(step) +
                                "): needs finite bounds and a non-zero step");
  }
  const double count = std::ceil((end - start) / step);
  const index_t n = count > 0 ? static_cast<index_t>(count) : 0;
  Tensor t({n}, options.dtype, options.device);
  ops::dispatch_all("arange", t.device(), t.dtype(), [&]<class T>(auto backend) {
    if constexpr (std::is_same_v<T, std::uint8_t>) {
      ops::unsupported("arange", t.dtype(), t.device(), "f32, i32, and f64 on cpu");
    } else {
      ops::kernel::arange(backend, t.data<T>(), n, start, step);
    }
  });
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor from_host(const void* values, std::size_t count, DType dtype, const Shape& shape,
                 Device device, bool requires_grad) {
  const index_t n = shape_numel(shape);
  if (static_cast<std::size_t>(n) != count) {
    throw std::invalid_argument("from_vector: " + std::to_string(count) +
                                " values cannot fill shape " + shape_to_string(shape) + " (" +
                                std::to_string(n) + " elements)");
  }
  Tensor t(shape, dtype, device);
  copy_bytes(t.raw_data(), device, values, Device::cpu(), count * dtype_size(dtype));
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

}  // namespace glia
