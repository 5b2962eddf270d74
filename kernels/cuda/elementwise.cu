// Elementwise kernels on the device, math in float: y = f(x) for each UnaryOp, its backward
// gx = gy * f'(x), out = a (op) b with broadcasting, and expand. Broadcasting decomposes each
// output index into per-dim indices (last dim fastest) and sums idx[d] * stride[d] per input,
// where a broadcast dim has stride 0 (see BroadcastShape).
// Launch: 1-D grid-stride loops, 256 threads. Unary ops, and binary ops whose operands are each
// either the output's shape (read flat) or a single value (no index arithmetic at all), take
// V = 4 floats per thread per step as float4 when the pointers are 16-byte aligned (the last n % 4
// elements one by one), else V = 1; other broadcasts decompose the index per element.
// Tested in tests/kernels/elementwise_test.cpp against kernels/cpu/elementwise.cpp.
#include "kernels/cuda/portable.cuh"

#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/vector_access.cuh"
#include "kernels/elementwise_math.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

// The op is uniform across the grid, so the switches of elementwise_math.h never diverge within
// a warp.
template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    unary_kernel(UnaryOp op, const float* x, float* y, index_t n, float a, float b) {
  const index_t loads = n / V;
  for (index_t i = global_thread_index(); i < loads; i += grid_thread_count()) {
    float v[V];
    load<V>(x + i * V, v);
    for (int k = 0; k < V; ++k) v[k] = unary_value(op, v[k], a, b);
    store<V>(y + i * V, v);
  }
  for (index_t i = loads * V + global_thread_index(); i < n; i += grid_thread_count()) {
    y[i] = unary_value(op, x[i], a, b);  // the tail that does not fill a vector
  }
}
GLIA_LAUNCH_BOUNDS(unary_kernel<1>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(unary_kernel<4>, kThreadsPerBlock);

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    unary_backward_kernel(UnaryOp op, const float* x, const float* y, const float* gy, float* gx,
                          index_t n, float a, float b) {
  const index_t loads = n / V;
  for (index_t i = global_thread_index(); i < loads; i += grid_thread_count()) {
    float vx[V], vy[V], vg[V];
    load<V>(x + i * V, vx);
    load<V>(y + i * V, vy);
    load<V>(gy + i * V, vg);
    for (int k = 0; k < V; ++k) vg[k] = unary_grad(op, vx[k], vy[k], vg[k], a, b);
    store<V>(gx + i * V, vg);
  }
  for (index_t i = loads * V + global_thread_index(); i < n; i += grid_thread_count()) {
    gx[i] = unary_grad(op, x[i], y[i], gy[i], a, b);
  }
}
GLIA_LAUNCH_BOUNDS(unary_backward_kernel<1>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(unary_backward_kernel<4>, kThreadsPerBlock);

// An operand read at the output's flat index, or one value broadcast to every element.
template <int V>
__device__ inline void load_operand(const float* p, bool scalar, index_t i, float (&v)[V]) {
  if (scalar) {
    for (int k = 0; k < V; ++k) v[k] = p[0];
  } else {
    load<V>(p + i, v);
  }
}

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    flat_binary_kernel(BinaryOp op, const float* a, const float* b, float* out, index_t n,
                       bool a_scalar, bool b_scalar) {
  const index_t loads = n / V;
  for (index_t i = global_thread_index(); i < loads; i += grid_thread_count()) {
    float va[V], vb[V];
    load_operand<V>(a, a_scalar, i * V, va);
    load_operand<V>(b, b_scalar, i * V, vb);
    for (int k = 0; k < V; ++k) va[k] = binary_value(op, va[k], vb[k]);
    store<V>(out + i * V, va);
  }
  for (index_t i = loads * V + global_thread_index(); i < n; i += grid_thread_count()) {
    out[i] = binary_value(op, a[a_scalar ? 0 : i], b[b_scalar ? 0 : i]);
  }
}
GLIA_LAUNCH_BOUNDS(flat_binary_kernel<1>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(flat_binary_kernel<4>, kThreadsPerBlock);

__global__ void __launch_bounds__(kThreadsPerBlock)
    binary_kernel(BinaryOp op, const float* a, const float* b, float* out, BroadcastShape s) {
  for (index_t i = global_thread_index(); i < s.numel; i += grid_thread_count()) {
    const Offsets off = broadcast_offsets(s, i);
    out[i] = binary_value(op, a[off.a], b[off.b]);
  }
}
GLIA_LAUNCH_BOUNDS(binary_kernel, kThreadsPerBlock);

__global__ void __launch_bounds__(kThreadsPerBlock)
    expand_kernel(const float* x, float* y, BroadcastShape s) {
  for (index_t i = global_thread_index(); i < s.numel; i += grid_thread_count()) {
    y[i] = x[broadcast_offsets(s, i).a];
  }
}
GLIA_LAUNCH_BOUNDS(expand_kernel, kThreadsPerBlock);

// How a binary operand is read: flat (its strides are the output's contiguous ones), as a single
// value (every stride 0), or through the broadcast strides. Size-1 dims do not matter.
enum class Access { flat, scalar, strided };

Access access_of(const BroadcastShape& s, const index_t* stride) {
  bool flat = true, scalar = true;
  index_t expected = 1;
  for (int d = s.ndim - 1; d >= 0; --d) {
    if (s.shape[d] == 1) continue;
    if (stride[d] != expected) flat = false;
    if (stride[d] != 0) scalar = false;
    expected *= s.shape[d];
  }
  return scalar ? Access::scalar : flat ? Access::flat : Access::strided;
}

}  // namespace

void unary(UnaryOp op, const float* x, float* y, index_t n, UnaryParams p, Stream stream) {
  check_op(op, "unary");
  if (n == 0) return;
  const float a = static_cast<float>(p.a), b = static_cast<float>(p.b);
  if (aligned16(x) && aligned16(y)) {
    GLIA_LAUNCH(unary_kernel<4>, grid_stride_blocks((n + 3) / 4), kThreadsPerBlock, 0, stream, op,
                x, y, n, a, b);
  } else {
    GLIA_LAUNCH(unary_kernel<1>, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, op, x, y, n, a,
                b);
  }
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx,
                    index_t n, UnaryParams p, Stream stream) {
  check_op(op, "unary_backward");
  if (n == 0) return;
  const float a = static_cast<float>(p.a), b = static_cast<float>(p.b);
  if (aligned16(x) && aligned16(y) && aligned16(gy) && aligned16(gx)) {
    GLIA_LAUNCH(unary_backward_kernel<4>, grid_stride_blocks((n + 3) / 4), kThreadsPerBlock, 0,
                stream, op, x, y, gy, gx, n, a, b);
  } else {
    GLIA_LAUNCH(unary_backward_kernel<1>, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, op, x,
                y, gy, gx, n, a, b);
  }
}

void binary(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& s,
            Stream stream) {
  check_op(op, "binary");
  if (s.numel == 0) return;
  const Access access_a = access_of(s, s.a_stride), access_b = access_of(s, s.b_stride);
  if (access_a == Access::strided || access_b == Access::strided) {
    GLIA_LAUNCH(binary_kernel, grid_stride_blocks(s.numel), kThreadsPerBlock, 0, stream, op, a, b,
                out, s);
    return;
  }
  const bool a_scalar = access_a == Access::scalar, b_scalar = access_b == Access::scalar;
  if ((a_scalar || aligned16(a)) && (b_scalar || aligned16(b)) && aligned16(out)) {
    GLIA_LAUNCH(flat_binary_kernel<4>, grid_stride_blocks((s.numel + 3) / 4), kThreadsPerBlock, 0,
                stream, op, a, b, out, s.numel, a_scalar, b_scalar);
  } else {
    GLIA_LAUNCH(flat_binary_kernel<1>, grid_stride_blocks(s.numel), kThreadsPerBlock, 0, stream, op,
                a, b, out, s.numel, a_scalar, b_scalar);
  }
}

void expand(const float* x, float* y, const BroadcastShape& s, Stream stream) {
  if (s.numel == 0) return;
  GLIA_LAUNCH(expand_kernel, grid_stride_blocks(s.numel), kThreadsPerBlock, 0, stream, x, y, s);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
