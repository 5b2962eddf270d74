// Constant fills, ranges and dtype casts on the device: y[i] = value, y[i] = start + i * step
// (computed in double, as on cpu), y[i] = D(x[i]) (float to integer truncates toward zero).
// Launch: 1-D grid-stride loops, 256 threads, one element per thread per step.
// Tested in tests/kernels/fill_test.cpp against kernels/cpu/fill.cpp.
#include "kernels/cuda/portable.cuh"

#include <cstdint>

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

template <class T>
__global__ void __launch_bounds__(kThreadsPerBlock) fill_kernel(T* y, index_t n, T value) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) y[i] = value;
}

template <class T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    arange_kernel(T* y, index_t n, double start, double step) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    y[i] = static_cast<T>(start + static_cast<double>(i) * step);
  }
}

template <class S, class D>
__global__ void __launch_bounds__(kThreadsPerBlock) cast_kernel(const S* x, D* y, index_t n) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    y[i] = static_cast<D>(x[i]);
  }
}

template <class T>
void launch_fill(T* y, index_t n, T value, Stream stream) {
  // A kernel template over types registers each instance's bounds where that is launched.
  GLIA_LAUNCH_BOUNDS(fill_kernel<T>, kThreadsPerBlock);
  if (n == 0) return;
  GLIA_LAUNCH(fill_kernel<T>, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, y, n, value);
}

template <class T>
void launch_arange(T* y, index_t n, double start, double step, Stream stream) {
  GLIA_LAUNCH_BOUNDS(arange_kernel<T>, kThreadsPerBlock);
  if (n == 0) return;
  GLIA_LAUNCH(arange_kernel<T>, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, y, n, start,
              step);
}

template <class S, class D>
void launch_cast(const S* x, D* y, index_t n, Stream stream) {
  GLIA_LAUNCH_BOUNDS((cast_kernel<S, D>), kThreadsPerBlock);
  if (n == 0) return;
  GLIA_LAUNCH((cast_kernel<S, D>), grid_stride_blocks(n), kThreadsPerBlock, 0, stream, x, y, n);
}

}  // namespace

void fill(float* y, index_t n, float value, Stream stream) {
  launch_fill(y, n, value, stream);
}
void fill(std::int32_t* y, index_t n, std::int32_t value, Stream stream) {
  launch_fill(y, n, value, stream);
}
void fill(std::uint8_t* y, index_t n, std::uint8_t value, Stream stream) {
  launch_fill(y, n, value, stream);
}

void arange(float* y, index_t n, double start, double step, Stream stream) {
  launch_arange(y, n, start, step, stream);
}
void arange(std::int32_t* y, index_t n, double start, double step, Stream stream) {
  launch_arange(y, n, start, step, stream);
}

void cast(const float* x, std::int32_t* y, index_t n, Stream stream) {
  launch_cast(x, y, n, stream);
}
void cast(const float* x, std::uint8_t* y, index_t n, Stream stream) {
  launch_cast(x, y, n, stream);
}
void cast(const std::int32_t* x, float* y, index_t n, Stream stream) {
  launch_cast(x, y, n, stream);
}
void cast(const std::int32_t* x, std::uint8_t* y, index_t n, Stream stream) {
  launch_cast(x, y, n, stream);
}
void cast(const std::uint8_t* x, float* y, index_t n, Stream stream) {
  launch_cast(x, y, n, stream);
}
void cast(const std::uint8_t* x, std::int32_t* y, index_t n, Stream stream) {
  launch_cast(x, y, n, stream);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
