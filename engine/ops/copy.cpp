// Moves of whole tensors: to another device (a byte copy), to another dtype (the kernels' cast),
// clone, and the rounding of f32 operands to a precision's format (engine/precision.h). bf16 and
// f16 convert to and from f32 on every device and f64 on cpu. Device moves and casts between
// floating dtypes are differentiable: the gradient moves back the same way. Tested in
// tests/engine/tensor_test.cpp, half_tensor_test.cpp and precision_test.cpp.
#include <optional>
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

// y = x converted, where one of the two is bf16 or f16 and the other f32 (or f64 on cpu).
void cast_half(const Tensor& x, const Tensor& y) {
  const DType from = x.dtype(), to = y.dtype();
  const DType wide = is_half(from) ? to : from;
  const DType narrow = is_half(from) ? from : to;
  if (wide != DType::f32 && !(wide == DType::f64 && x.device().is_cpu())) {
    throw std::invalid_argument("to(dtype): " + x.describe() + " to " + dtype_name(to) +
                                " is not supported: bf16 and f16 convert to and from f32 (and "
                                "f64 on cpu); convert through f32");
  }
  const index_t n = x.numel();
  const auto run = [&]<class H>() {
    const auto body = [&]<class W>(auto backend) {
      if (is_half(from)) {
        ops::kernel::cast(backend, x.data<H>(), y.data<W>(), n);
      } else {
        ops::kernel::cast(backend, x.data<W>(), y.data<H>(), n);
      }
    };
    if (wide == DType::f32) {
      ops::on_backend<float>(x.device(), body);
    } else {
      ops::on_backend<double>(x.device(), body);
    }
  };
  const profile::Scope timed("to(dtype)");
  if (narrow == DType::bf16) {
    run.template operator()<bf16>();
  } else {
    run.template operator()<f16>();
  }
}

void record_cast(const Tensor& x, Tensor& y) {
  if (is_floating(x.dtype()) && is_floating(y.dtype())) {
    const DType from = x.dtype();
    record("to_dtype", y, {x},
           [from](const Tensor& gy) -> std::vector<Tensor> { return {to_dtype(gy, from)}; });
  }
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
  if (is_half(x.dtype()) || is_half(dtype)) {
    cast_half(x, y);
    record_cast(x, y);
    return y;
  }
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
  record_cast(x, y);
  return y;
}

Tensor round_to_precision(const Tensor& x, Precision p) {
  const std::optional<kernels::TensorFormat> format = tensor_core_format(p);
  if (!format || !x.defined() || x.dtype() != DType::f32) return x;
  Tensor y(x.shape(), DType::f32, x.device());
  if (y.numel() == 0) return y;
  ops::dispatch_float("round_to_precision", x.device(), DType::f32, [&]<class T>(auto backend) {
    if constexpr (std::is_same_v<T, float>) {
      ops::kernel::round_to_format(backend, x.data<float>(), y.data<float>(), x.numel(), *format);
    }
  });
  return y;
}

Tensor clone(const Tensor& x) {
  Tensor y(x.shape(), x.dtype(), x.device());
  copy_bytes(y.raw_data(), y.device(), x.raw_data(), x.device(), nbytes(x));
  record("clone", y, {x}, [](const Tensor& gy) -> std::vector<Tensor> { return {gy}; });
  return y;
}

}  // namespace glia
