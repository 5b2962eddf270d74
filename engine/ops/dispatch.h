// Internal to the engine: routes an op to the kernel library of a tensor's device. A kernel body
// is written once as a generic lambda `[&]<class T>(auto backend) { kernel::name(backend, ...); }`
// and dispatch_* calls it with the element type and backend tag that serve the (device, dtype)
// pair: cpu runs the templated reference kernels (f32 and f64), sim the emulated kernels/cuda
// (f32), cuda the GPU build of the same (f32, on the device's stream); each dispatch is timed under
// the op's name when the profile is on (engine/profile.h). Only served combinations
// are instantiated, so a sim or cuda path never sees double. Adding an op family means adding
// its kernels to the GLIA_KERNEL list below. Exercised by every test of tests/engine.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/profile.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cuda/cast.h"
#include "kernels/cuda/launchers.h"

#if defined(GLIA_HAVE_CUDA)
#include "engine/cuda/runtime.h"
#endif

namespace glia::ops {

struct CpuBackend {};
struct SimBackend {};
struct CudaBackend {
  kernels::Stream stream = nullptr;
  int device = 0;
};

namespace kernel {

// name(backend, args...) forwards to kernels::{cpu,sim,cuda}::name(args...), appending the
// stream on sim and cuda (the cpu kernels take none).
#if defined(GLIA_HAVE_CUDA)
#define GLIA_KERNEL_CUDA(name)                            \
  template <class... A>                                   \
  void name(CudaBackend b, A&&... a) {                    \
    kernels::cuda::name(std::forward<A>(a)..., b.stream); \
  }
#else
#define GLIA_KERNEL_CUDA(name)
#endif
#define GLIA_KERNEL(name)                                         \
  template <class... A>                                           \
  void name(CpuBackend, A&&... a) {                               \
    kernels::cpu::name(std::forward<A>(a)...);                    \
  }                                                               \
  template <class... A>                                           \
  void name(SimBackend, A&&... a) {                               \
    kernels::sim::name(std::forward<A>(a)..., kernels::Stream{}); \
  }                                                               \
  GLIA_KERNEL_CUDA(name)

GLIA_KERNEL(fill)
GLIA_KERNEL(arange)
GLIA_KERNEL(cast)
GLIA_KERNEL(round_to_format)
GLIA_KERNEL(unary)
GLIA_KERNEL(unary_backward)
GLIA_KERNEL(binary)
GLIA_KERNEL(expand)
GLIA_KERNEL(reduce_sum)
GLIA_KERNEL(reduce_max)
GLIA_KERNEL(reduce_max_backward)
GLIA_KERNEL(transpose_last2)
GLIA_KERNEL(gemm)
GLIA_KERNEL(uniform)
GLIA_KERNEL(normal)
GLIA_KERNEL(sgd_step)
GLIA_KERNEL(adam_step)
GLIA_KERNEL(bce_with_logits)
GLIA_KERNEL(bce_with_logits_backward)
GLIA_KERNEL(dice)
GLIA_KERNEL(dice_backward)
GLIA_KERNEL(dice_bce)
GLIA_KERNEL(dice_bce_backward)
GLIA_KERNEL(cross_entropy)
GLIA_KERNEL(cross_entropy_backward)
GLIA_KERNEL(focal)
GLIA_KERNEL(focal_backward)
GLIA_KERNEL(dropout)
GLIA_KERNEL(dropout_backward)
GLIA_KERNEL(copy_into_channels)
GLIA_KERNEL(copy_from_channels)
GLIA_KERNEL(batch_norm_stats)
GLIA_KERNEL(batch_norm_invstd)
GLIA_KERNEL(batch_norm_apply)
GLIA_KERNEL(batch_norm_backward_reduce)
GLIA_KERNEL(batch_norm_backward_input)
GLIA_KERNEL(batch_norm_relu_apply)
GLIA_KERNEL(batch_norm_relu_backward_reduce)
GLIA_KERNEL(batch_norm_relu_backward_input)
GLIA_KERNEL(max_pool2d)
GLIA_KERNEL(max_pool2d_backward)
GLIA_KERNEL(avg_pool2d)
GLIA_KERNEL(avg_pool2d_backward)
GLIA_KERNEL(global_avg_pool2d)
GLIA_KERNEL(global_avg_pool2d_backward)
GLIA_KERNEL(conv2d_forward)
GLIA_KERNEL(conv2d_backward_data)
GLIA_KERNEL(conv2d_backward_filter)
GLIA_KERNEL(conv2d_backward_bias)
GLIA_KERNEL(softmax)
GLIA_KERNEL(log_softmax)
GLIA_KERNEL(softmax_backward)
GLIA_KERNEL(log_softmax_backward)

// Kernels of kernels/cuda alone (sim and cuda; no cpu counterpart): the tensor-core paths.
#define GLIA_DEVICE_KERNEL(name)                                  \
  template <class... A>                                           \
  void name(SimBackend, A&&... a) {                               \
    kernels::sim::name(std::forward<A>(a)..., kernels::Stream{}); \
  }                                                               \
  GLIA_KERNEL_CUDA(name)

GLIA_DEVICE_KERNEL(gemm_tc)
GLIA_DEVICE_KERNEL(conv2d_forward_tc)
GLIA_DEVICE_KERNEL(conv2d_backward_data_tc)
GLIA_DEVICE_KERNEL(conv2d_backward_filter_tc)

#undef GLIA_DEVICE_KERNEL
#undef GLIA_KERNEL
#undef GLIA_KERNEL_CUDA

// Whether a backend has tensor-core kernels (sim and cuda do; the cpu reference does not).
template <class Backend>
inline constexpr bool has_tensor_cores = !std::is_same_v<Backend, CpuBackend>;

// Floats of device scratch that a kernel wants for shape s (the kernel library's `name`): 0 on cpu,
// whose reference kernels take none; on sim and cuda the library's own answer, one source for both.
// 0 means the kernel runs without scratch. Adding a kernel with a workspace means adding its size
// query to the GLIA_WORKSPACE list below.
#if defined(GLIA_HAVE_CUDA)
#define GLIA_WORKSPACE_CUDA(name)                      \
  template <class Shape>                               \
  kernels::index_t name(CudaBackend, const Shape& s) { \
    return kernels::cuda::name(s);                     \
  }
#else
#define GLIA_WORKSPACE_CUDA(name)
#endif
#define GLIA_WORKSPACE(name)                          \
  template <class Shape>                              \
  kernels::index_t name(CpuBackend, const Shape&) {   \
    return 0;                                         \
  }                                                   \
  template <class Shape>                              \
  kernels::index_t name(SimBackend, const Shape& s) { \
    return kernels::sim::name(s);                     \
  }                                                   \
  GLIA_WORKSPACE_CUDA(name)

GLIA_WORKSPACE(reduce_sum_workspace_size)
GLIA_WORKSPACE(sample_loss_workspace_size)
GLIA_WORKSPACE(dice_bce_workspace_size)
GLIA_WORKSPACE(conv2d_backward_filter_workspace_size)
GLIA_WORKSPACE(conv2d_backward_bias_workspace_size)
GLIA_WORKSPACE(batch_norm_workspace_size)

#undef GLIA_WORKSPACE
#undef GLIA_WORKSPACE_CUDA

}  // namespace kernel

[[noreturn]] inline void unsupported(const char* op, DType dtype, Device device,
                                     const char* supported) {
  throw std::invalid_argument(
      std::string(op) + ": " + dtype_name(dtype) + " tensors on " + device.to_string() +
      " are not supported (" + supported + ")" +
      (is_half(dtype) ? "; 16-bit tensors are for storage: convert with .to(DType::f32)" : ""));
}

// Calls fn.template operator()<T>(backend) on the backend of `device`, with the cuda device made
// current for the call.
template <class T, class Fn>
void on_backend(Device device, Fn&& fn) {
  switch (device.type) {
    case DeviceType::cpu:
      fn.template operator()<T>(CpuBackend{});
      return;
    case DeviceType::sim:
      if constexpr (!std::is_same_v<T, double>) fn.template operator()<T>(SimBackend{});
      return;
    case DeviceType::cuda:
#if defined(GLIA_HAVE_CUDA)
      if constexpr (!std::is_same_v<T, double>) {
        cudart::DeviceGuard guard(device.index);
        fn.template operator()<T>(CudaBackend{kernel_stream(device), device.index});
      }
#else
      check_device_usable(device);
#endif
      return;
  }
}

// Floating kernels: f32 everywhere, f64 on cpu.
template <class Fn>
void dispatch_float(const char* op, Device device, DType dtype, Fn&& fn) {
  const profile::Scope timed(op);
  if (dtype == DType::f32) return on_backend<float>(device, fn);
  if (dtype == DType::f64 && device.is_cpu()) return on_backend<double>(device, fn);
  unsupported(op, dtype, device, "f32 on every device, f64 on cpu");
}

// Kernels with integer variants too (fill, cast): f32, i32 and u8 everywhere, f64 on cpu.
template <class Fn>
void dispatch_all(const char* op, Device device, DType dtype, Fn&& fn) {
  const profile::Scope timed(op);
  switch (dtype) {
    case DType::f32:
      return on_backend<float>(device, fn);
    case DType::i32:
      return on_backend<std::int32_t>(device, fn);
    case DType::u8:
      return on_backend<std::uint8_t>(device, fn);
    case DType::f64:
      if (device.is_cpu()) return on_backend<double>(device, fn);
      break;
    case DType::bf16:
    case DType::f16:
      break;
  }
  unsupported(op, dtype, device, "f32, i32 and u8 on every device, f64 on cpu");
}

}  // namespace glia::ops
