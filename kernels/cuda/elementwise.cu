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
#include "kernels/elementwise_math.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

// The op is uniform across the grid, so the switches of elementwise_math.h never diverge within
// a warp.
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
  check_op(op, "binary");
  if (s.numel == 0) return;
  GLIA_LAUNCH(binary_kernel, grid_stride_blocks(s.numel), kThreadsPerBlock, 0, stream, op, a, b,
              out, s);
}

void expand(const float* x, float* y, const BroadcastShape& s, Stream stream) {
  if (s.numel == 0) return;
  GLIA_LAUNCH(expand_kernel, grid_stride_blocks(s.numel), kThreadsPerBlock, 0, stream, x, y, s);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
