// Softmax and log-softmax over the rows of [rows, classes] (ClassShape), the same math as
// kernels/cpu/softmax.cpp in float. Every row is max-subtracted (m_n = max_c x[n, c],
// S_n = sum_c exp(x[n, c] - m_n)), so logits of any size stay finite:
//   softmax      y[n, c] = exp(x[n, c] - m_n) / S_n
//   log_softmax  y[n, c] = x[n, c] - m_n - log S_n
// and the backward from the forward's output y:
//   softmax      gx[n, c] = y[n, c] * (gy[n, c] - sum_c' gy[n, c'] y[n, c'])
//   log_softmax  gx[n, c] = gy[n, c] - exp(y[n, c]) * sum_c' gy[n, c']
// Launch shapes, chosen by the row length:
//   classes <= kWarpMaxClasses  a warp per row n (8 rows per 256-thread block): lane l reads
//                     classes l, l + 32, ...; the row's max and sums by warp shuffles
//                     (block_reduce::warp_all_*), then each lane writes its classes.
//   longer rows       a 256-thread block per row n: thread t reads classes t, t + 256, ...; the
//                     max and sums by block_reduce::max / sum.
// The reduction order depends on the shape alone, so results are deterministic.
// Tested in tests/kernels/softmax_test.cpp against the cpu reference.
#include "kernels/cuda/portable.cuh"

#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

using block_reduce::kWarpSize;
using block_reduce::warp_all_max;
using block_reduce::warp_all_sum;
constexpr int kRowsPerBlock = kThreadsPerBlock / kWarpSize;
// Up to here a warp's 32 lanes cover a row in at most 16 strided reads each; beyond, a whole block
// shares the row so long rows do not serialise on one warp.
constexpr index_t kWarpMaxClasses = 512;

// The term of row n's backward sum for class c: gy * y for softmax, gy for log_softmax.
template <bool kLog>
__device__ inline float backward_term(float y, float gy) {
  return kLog ? gy : gy * y;
}

// gx for class c from the row's backward sum.
template <bool kLog>
__device__ inline float backward_grad(float y, float gy, float row_sum) {
  return kLog ? gy - expf(y) * row_sum : y * (gy - row_sum);
}

// y[c] from x[c], the row's max m and its sum S of exp(x - m).
template <bool kLog>
__device__ inline float forward_value(float x, float m, float sum) {
  return kLog ? x - m - logf(sum) : expf(x - m) / sum;
}

// Warp n of the grid: row n, lane l strided over the classes.
template <bool kLog>
__global__ void __launch_bounds__(kThreadsPerBlock)
    softmax_warp_kernel(const float* x, float* y, index_t rows, index_t classes) {
  const int lane = threadIdx.x % kWarpSize;
  const index_t n = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (n >= rows) return;  // the whole warp leaves together
  const float* xn = x + n * classes;
  float m = -INFINITY;
  for (index_t c = lane; c < classes; c += kWarpSize) m = fmaxf(m, xn[c]);
  m = warp_all_max(m);
  float sum = 0.0f;
  for (index_t c = lane; c < classes; c += kWarpSize) sum += expf(xn[c] - m);
  sum = warp_all_sum(sum);
  for (index_t c = lane; c < classes; c += kWarpSize) {
    y[n * classes + c] = forward_value<kLog>(xn[c], m, sum);
  }
}
GLIA_LAUNCH_BOUNDS(softmax_warp_kernel<false>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(softmax_warp_kernel<true>, kThreadsPerBlock);

// Block n: row n, thread t strided over the classes.
template <bool kLog>
__global__ void __launch_bounds__(kThreadsPerBlock)
    softmax_block_kernel(const float* x, float* y, index_t classes) {
  const index_t n = blockIdx.x;
  const float* xn = x + n * classes;
  float m = -INFINITY;
  for (index_t c = threadIdx.x; c < classes; c += blockDim.x) m = fmaxf(m, xn[c]);
  m = block_reduce::max(m);
  float sum = 0.0f;
  for (index_t c = threadIdx.x; c < classes; c += blockDim.x) sum += expf(xn[c] - m);
  sum = block_reduce::sum(sum);
  for (index_t c = threadIdx.x; c < classes; c += blockDim.x) {
    y[n * classes + c] = forward_value<kLog>(xn[c], m, sum);
  }
}
GLIA_LAUNCH_BOUNDS(softmax_block_kernel<false>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(softmax_block_kernel<true>, kThreadsPerBlock);

template <bool kLog>
__global__ void __launch_bounds__(kThreadsPerBlock)
    softmax_backward_warp_kernel(const float* y, const float* gy, float* gx, index_t rows,
                                 index_t classes) {
  const int lane = threadIdx.x % kWarpSize;
  const index_t n = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (n >= rows) return;
  const index_t row = n * classes;
  float sum = 0.0f;
  for (index_t c = lane; c < classes; c += kWarpSize) {
    sum += backward_term<kLog>(y[row + c], gy[row + c]);
  }
  sum = warp_all_sum(sum);
  for (index_t c = lane; c < classes; c += kWarpSize) {
    gx[row + c] = backward_grad<kLog>(y[row + c], gy[row + c], sum);
  }
}
GLIA_LAUNCH_BOUNDS(softmax_backward_warp_kernel<false>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(softmax_backward_warp_kernel<true>, kThreadsPerBlock);

template <bool kLog>
__global__ void __launch_bounds__(kThreadsPerBlock)
    softmax_backward_block_kernel(const float* y, const float* gy, float* gx, index_t classes) {
  const index_t row = static_cast<index_t>(blockIdx.x) * classes;
  float sum = 0.0f;
  for (index_t c = threadIdx.x; c < classes; c += blockDim.x) {
    sum += backward_term<kLog>(y[row + c], gy[row + c]);
  }
  sum = block_reduce::sum(sum);
  for (index_t c = threadIdx.x; c < classes; c += blockDim.x) {
    gx[row + c] = backward_grad<kLog>(y[row + c], gy[row + c], sum);
  }
}
GLIA_LAUNCH_BOUNDS(softmax_backward_block_kernel<false>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(softmax_backward_block_kernel<true>, kThreadsPerBlock);

bool warp_per_row(const ClassShape& s) {
  return s.classes <= kWarpMaxClasses;
}

// The grid: a block per kRowsPerBlock rows (warp path) or per row (block path).
unsigned row_grid(const char* op, const ClassShape& s) {
  const index_t blocks = warp_per_row(s) ? (s.rows + kRowsPerBlock - 1) / kRowsPerBlock : s.rows;
  if (blocks > INT_MAX) {
    throw std::invalid_argument(std::string(op) + ": too many rows for one launch: [" +
                                std::to_string(s.rows) + ", " + std::to_string(s.classes) + "]");
  }
  return static_cast<unsigned>(blocks);
}

template <bool kLog>
void launch_forward(const char* op, const float* x, float* y, const ClassShape& s, Stream stream) {
  if (s.rows == 0 || s.classes == 0) return;
  const unsigned grid = row_grid(op, s);
  if (warp_per_row(s)) {
    GLIA_LAUNCH(softmax_warp_kernel<kLog>, grid, kThreadsPerBlock, 0, stream, x, y, s.rows,
                s.classes);
  } else {
    GLIA_LAUNCH(softmax_block_kernel<kLog>, grid, kThreadsPerBlock, 0, stream, x, y, s.classes);
  }
}

template <bool kLog>
void launch_backward(const char* op, const float* y, const float* gy, float* gx,
                     const ClassShape& s, Stream stream) {
  if (s.rows == 0 || s.classes == 0) return;
  const unsigned grid = row_grid(op, s);
  if (warp_per_row(s)) {
    GLIA_LAUNCH(softmax_backward_warp_kernel<kLog>, grid, kThreadsPerBlock, 0, stream, y, gy, gx,
                s.rows, s.classes);
  } else {
    GLIA_LAUNCH(softmax_backward_block_kernel<kLog>, grid, kThreadsPerBlock, 0, stream, y, gy, gx,
                s.classes);
  }
}

}  // namespace

void softmax(const float* x, float* y, const ClassShape& s, Stream stream) {
  launch_forward<false>("softmax", x, y, s, stream);
}

void log_softmax(const float* x, float* y, const ClassShape& s, Stream stream) {
  launch_forward<true>("log_softmax", x, y, s, stream);
}

void softmax_backward(const float* y, const float* gy, float* gx, const ClassShape& s,
                      Stream stream) {
  launch_backward<false>("softmax_backward", y, gy, gx, s, stream);
}

void log_softmax_backward(const float* y, const float* gy, float* gx, const ClassShape& s,
                          Stream stream) {
  launch_backward<true>("log_softmax_backward", y, gy, gx, s, stream);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
