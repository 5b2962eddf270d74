// Elementwise kernels on the device, math in float: y = f(x) for each UnaryOp, its backward
// gx = gy * f'(x), out = a (op) b with broadcasting, and expand. Broadcasting decomposes each
// output index into per-dim indices (last dim fastest) and sums idx[d] * stride[d] per input,
// where a broadcast dim has stride 0 (see BroadcastShape).
// Launch: 1-D grid-stride loops, 256 threads, one output element per thread per step.
// Tested in tests/kernels/elementwise_test.cpp against kernels/cpu/elementwise.cpp.
#include "kernels/cuda/portable.cuh"

#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

// The op is uniform across the grid, so the switch never diverges within a warp.
__device__ inline float unary_value(UnaryOp op, float x, float a, float b) {
  switch (op) {
    case UnaryOp::copy:
      return x;
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return expf(x);
    case UnaryOp::log:
      return logf(x);
    case UnaryOp::sqrt:
      return sqrtf(x);
    case UnaryOp::abs:
      return fabsf(x);
    case UnaryOp::relu:
      return x < 0.0f ? 0.0f : x;  // NaN propagates
    case UnaryOp::sigmoid:
      return 1.0f / (1.0f + expf(-x));
    case UnaryOp::tanh:
      return tanhf(x);
    case UnaryOp::add_scalar:
      return x + a;
    case UnaryOp::mul_scalar:
      return a * x;
    case UnaryOp::rsub_scalar:
      return a - x;
    case UnaryOp::rdiv_scalar:
      return a / x;
    case UnaryOp::pow_scalar:
      return powf(x, a);
    case UnaryOp::clamp:
      return x < a ? a : (x > b ? b : x);  // NaN propagates
  }
  return x;  // not reached: the launcher checks the op
}

// gy * dy/dx, from whichever of x and y is cheaper.
__device__ inline float unary_grad(UnaryOp op, float x, float y, float gy, float a, float b) {
  switch (op) {
    case UnaryOp::copy:
      return gy;
    case UnaryOp::neg:
      return -gy;
    case UnaryOp::exp:
      return gy * y;
    case UnaryOp::log:
      return gy / x;
    case UnaryOp::sqrt:
      return gy / (2.0f * y);
    case UnaryOp::abs:
      return x > 0.0f ? gy : (x < 0.0f ? -gy : 0.0f);
    case UnaryOp::relu:
      return x > 0.0f ? gy : 0.0f;
    case UnaryOp::sigmoid:
      return gy * y * (1.0f - y);
    case UnaryOp::tanh:
      return gy * (1.0f - y * y);
    case UnaryOp::add_scalar:
      return gy;
    case UnaryOp::mul_scalar:
      return a * gy;
    case UnaryOp::rsub_scalar:
      return -gy;
    case UnaryOp::rdiv_scalar:
      return -gy * a / (x * x);
    case UnaryOp::pow_scalar:
      return gy * a * powf(x, a - 1.0f);
    case UnaryOp::clamp:
      return (x >= a && x <= b) ? gy : 0.0f;  // as PyTorch: bounds pass
  }
  return gy;  // not reached: the launcher checks the op
}

__device__ inline float binary_value(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add:
      return a + b;
    case BinaryOp::sub:
      return a - b;
    case BinaryOp::mul:
      return a * b;
    case BinaryOp::div:
      return a / b;
  }
  return a;  // not reached: the launcher checks the op
}

struct Offsets {
  index_t a, b;
};

// Where output element i reads a and b.
__device__ inline Offsets broadcast_offsets(const BroadcastShape& s, index_t i) {
  Offsets off{0, 0};
  for (int d = s.ndim - 1; d >= 0; --d) {
    const index_t idx = i % s.shape[d];
    i /= s.shape[d];
    off.a += idx * s.a_stride[d];
    off.b += idx * s.b_stride[d];
  }
  return off;
}

__global__ void unary_kernel(UnaryOp op, const float* x, float* y, index_t n, float a, float b) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    y[i] = unary_value(op, x[i], a, b);
  }
}

__global__ void unary_backward_kernel(UnaryOp op, const float* x, const float* y, const float* gy,
                                      float* gx, index_t n, float a, float b) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    gx[i] = unary_grad(op, x[i], y[i], gy[i], a, b);
  }
}

__global__ void binary_kernel(BinaryOp op, const float* a, const float* b, float* out,
                              BroadcastShape s) {
  for (index_t i = global_thread_index(); i < s.numel; i += grid_thread_count()) {
    const Offsets off = broadcast_offsets(s, i);
    out[i] = binary_value(op, a[off.a], b[off.b]);
  }
}

__global__ void expand_kernel(const float* x, float* y, BroadcastShape s) {
  for (index_t i = global_thread_index(); i < s.numel; i += grid_thread_count()) {
    y[i] = x[broadcast_offsets(s, i).a];
  }
}

void check_op(UnaryOp op, const char* kernel) {
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(UnaryOp::clamp)) {
    throw std::invalid_argument(std::string(kernel) + ": unknown UnaryOp " +
                                std::to_string(static_cast<int>(op)));
  }
}

void check_op(BinaryOp op) {
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(BinaryOp::div)) {
    throw std::invalid_argument("binary: unknown BinaryOp " + std::to_string(static_cast<int>(op)));
  }
}

}  // namespace

void unary(UnaryOp op, const float* x, float* y, index_t n, UnaryParams p, Stream stream) {
  check_op(op, "unary");
  if (n == 0) return;
  GLIA_LAUNCH(unary_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, op, x, y, n,
              static_cast<float>(p.a), static_cast<float>(p.b));
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx,
                    index_t n, UnaryParams p, Stream stream) {
  check_op(op, "unary_backward");
  if (n == 0) return;
  GLIA_LAUNCH(unary_backward_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, op, x, y,
              gy, gx, n, static_cast<float>(p.a), static_cast<float>(p.b));
}

void binary(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& s,
            Stream stream) {
  check_op(op);
  if (s.numel == 0) return;
  GLIA_LAUNCH(binary_kernel, grid_stride_blocks(s.numel), kThreadsPerBlock, 0, stream, op, a, b,
              out, s);
}

void expand(const float* x, float* y, const BroadcastShape& s, Stream stream) {
  if (s.numel == 0) return;
  GLIA_LAUNCH(expand_kernel, grid_stride_blocks(s.numel), kThreadsPerBlock, 0, stream, x, y, s);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
