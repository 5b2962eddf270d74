// Casts between float and the 16-bit formats (y[i] = bf16(x[i]), f16(x[i]) with nearest-even
// rounding, or float(x[i]) exactly), and rounding of float operands to tf32/bf16/f16 kept in float
// (kernels/rounding.h). The per-element conversions are kernels/half.h's, shared with the cpu
// reference, so both agree bit for bit. Launch: 1-D grid-stride loops, 256 threads, one element
// per thread per step. Tested in tests/kernels/cast_test.cpp against kernels/cpu/cast.cpp.
#include "kernels/cuda/portable.cuh"

#include "kernels/cuda/cast.h"
#include "kernels/cuda/grid.cuh"
#include "kernels/half.h"
#include "kernels/rounding.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

template <class H>
__global__ void __launch_bounds__(kThreadsPerBlock)
    float_to_half_kernel(const float* x, H* y, index_t n) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) y[i] = H(x[i]);
}
GLIA_LAUNCH_BOUNDS(float_to_half_kernel<bf16>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(float_to_half_kernel<f16>, kThreadsPerBlock);

template <class H>
__global__ void __launch_bounds__(kThreadsPerBlock)
    half_to_float_kernel(const H* x, float* y, index_t n) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    y[i] = static_cast<float>(x[i]);
  }
}
GLIA_LAUNCH_BOUNDS(half_to_float_kernel<bf16>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(half_to_float_kernel<f16>, kThreadsPerBlock);

__global__ void __launch_bounds__(kThreadsPerBlock)
    round_to_format_kernel(const float* x, float* y, index_t n, TensorFormat format) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    y[i] = glia::kernels::round_to_format(x[i], format);
  }
}
GLIA_LAUNCH_BOUNDS(round_to_format_kernel, kThreadsPerBlock);

template <class H>
void launch_to_half(const float* x, H* y, index_t n, Stream stream) {
  if (n == 0) return;
  GLIA_LAUNCH(float_to_half_kernel<H>, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, x, y, n);
}

template <class H>
void launch_to_float(const H* x, float* y, index_t n, Stream stream) {
  if (n == 0) return;
  GLIA_LAUNCH(half_to_float_kernel<H>, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, x, y, n);
}

}  // namespace

void cast(const float* x, bf16* y, index_t n, Stream stream) {
  launch_to_half(x, y, n, stream);
}
void cast(const float* x, f16* y, index_t n, Stream stream) {
  launch_to_half(x, y, n, stream);
}
void cast(const bf16* x, float* y, index_t n, Stream stream) {
  launch_to_float(x, y, n, stream);
}
void cast(const f16* x, float* y, index_t n, Stream stream) {
  launch_to_float(x, y, n, stream);
}

void round_to_format(const float* x, float* y, index_t n, TensorFormat format, Stream stream) {
  if (n == 0) return;
  GLIA_LAUNCH(round_to_format_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, x, y, n,
              format);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
