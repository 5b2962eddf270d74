// Reductions over the middle axis of a contiguous [outer, reduce, inner] view, on the device:
//   reduce_sum           y[o, i] = scale * sum_r x[o, r, i]
//   reduce_max           y[o, i] = max_r x[o, r, i], idx[o, i] = its r (first on ties, NaN wins)
//   reduce_max_backward  gx[o, r, i] = (r == idx[o, i]) ? gy[o, i] : 0
// Each output (o, i) is a strided column x[o, :, i]. Three launch shapes:
//   segments  grid (outputs, segments), 256 threads: a block reduces one segment of one column,
//             each thread a strided share of it, then warp shuffles + shared memory combine them;
//   columns   1-D grid-stride, one thread per output looping over r, so a warp reads inner-adjacent
//             (coalesced) elements; used when there are enough columns to fill the GPU;
//   two-pass  few outputs over a long axis: pass 1 sums fixed segments into a workspace
//             [outputs, segments], pass 2 sums each workspace row in one block.
// Every sum is taken in an order fixed by the shape alone (no atomics), so results are
// deterministic. Tested in tests/kernels/reduce_test.cpp against kernels/cpu/reduce.cpp.
#include "kernels/cuda/portable.cuh"

#include <climits>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

using block_reduce::kFullWarp;
using block_reduce::kWarpSize;
constexpr int kSegmentThreads = 256;
// The columns kernel wins once there are enough columns to give every SM several warps.
constexpr index_t kColumnsMinOutputs = 2048;
// The two-pass sum: at most this many outputs, at least this long an axis, segments of this many
// elements (16 per thread) and at most this many segments per output.
constexpr index_t kTwoPassMaxOutputs = 64;
constexpr index_t kTwoPassMinReduce = 16384;
constexpr index_t kTwoPassSegmentLength = 4096;
constexpr index_t kTwoPassMaxSegments = 1024;

// --- sum ---------------------------------------------------------------------------------------

// Block (out, segment) sums x[o, r, i] for r in [segment * segment_length, + segment_length),
// where out = o * inner + i, and writes scale * sum to y[out * gridDim.y + segment].
__global__ void __launch_bounds__(kSegmentThreads)
    sum_segments_kernel(const float* x, float* y, index_t reduce, index_t inner,
                        index_t segment_length, float scale) {
  const index_t out = blockIdx.x, segment = blockIdx.y;
  const index_t o = out / inner, i = out % inner;
  const float* column = x + o * reduce * inner + i;
  const index_t r_begin = segment * segment_length;
  const index_t r_end = r_begin + segment_length < reduce ? r_begin + segment_length : reduce;
  float partial = 0.0f;
  for (index_t r = r_begin + threadIdx.x; r < r_end; r += blockDim.x) partial += column[r * inner];
  const float total = block_reduce::sum_in_thread0(partial);
  if (threadIdx.x == 0) y[out * gridDim.y + segment] = scale * total;
}
GLIA_LAUNCH_BOUNDS(sum_segments_kernel, kSegmentThreads);

// Thread out = o * inner + i sums its column x[o, :, i].
__global__ void __launch_bounds__(kThreadsPerBlock)
    sum_columns_kernel(const float* x, float* y, index_t outer, index_t reduce, index_t inner,
                       float scale) {
  for (index_t out = global_thread_index(); out < outer * inner; out += grid_thread_count()) {
    const index_t o = out / inner, i = out % inner;
    const float* column = x + o * reduce * inner + i;
    float total = 0.0f;
    for (index_t r = 0; r < reduce; ++r) total += column[r * inner];
    y[out] = scale * total;
  }
}
GLIA_LAUNCH_BOUNDS(sum_columns_kernel, kThreadsPerBlock);

enum class SumPath { segments, columns, two_pass };

struct SumPlan {
  SumPath path;
  index_t segments;  // per output, two-pass only
};

SumPlan plan_sum(const ReduceShape& s) {
  const index_t outputs = s.outer * s.inner;
  if (outputs <= kTwoPassMaxOutputs && s.reduce >= kTwoPassMinReduce) {
    index_t segments = (s.reduce + kTwoPassSegmentLength - 1) / kTwoPassSegmentLength;
    if (segments > kTwoPassMaxSegments) segments = kTwoPassMaxSegments;
    return {SumPath::two_pass, segments};
  }
  if (s.inner > 1 && outputs >= kColumnsMinOutputs) return {SumPath::columns, 0};
  return {SumPath::segments, 1};
}

void launch_sum_segments(const float* x, float* y, index_t outputs, index_t segments,
                         index_t reduce, index_t inner, float scale, Stream stream) {
  const index_t segment_length = (reduce + segments - 1) / segments;
  const dim3 grid(static_cast<unsigned>(outputs), static_cast<unsigned>(segments));
  GLIA_LAUNCH(sum_segments_kernel, grid, kSegmentThreads, 0, stream, x, y, reduce, inner,
              segment_length, scale);
}

// --- max ---------------------------------------------------------------------------------------

struct ArgMax {
  float value;
  std::int32_t index;
};

__device__ inline bool is_nan(float v) {
  return v != v;
}

// The winner of two candidates: NaN over numbers, then the larger, then the smaller index.
__device__ inline ArgMax better(ArgMax p, ArgMax q) {
  const bool p_nan = is_nan(p.value), q_nan = is_nan(q.value);
  if (p_nan != q_nan) return p_nan ? p : q;
  if (!p_nan && p.value != q.value) return p.value > q.value ? p : q;
  return p.index <= q.index ? p : q;
}

// Loses to every element of the axis, including -inf at any index.
__device__ inline ArgMax no_candidate() {
  return ArgMax{-INFINITY, INT_MAX};
}

__device__ inline ArgMax warp_argmax(ArgMax v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const ArgMax other{__shfl_down_sync(kFullWarp, v.value, offset),
                       __shfl_down_sync(kFullWarp, v.index, offset)};
    v = better(v, other);
  }
  return v;
}

// The arg-max of v over the block, valid in thread 0. blockDim.x is a multiple of 32.
__device__ inline ArgMax block_argmax(ArgMax v) {
  GLIA_STATIC_SHARED(float[kWarpSize], warp_values);
  GLIA_STATIC_SHARED(std::int32_t[kWarpSize], warp_indices);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  v = warp_argmax(v);
  if (lane == 0) {
    warp_values[warp] = v.value;
    warp_indices[warp] = v.index;
  }
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / kWarpSize;
    v = warp_argmax(lane < warps ? ArgMax{warp_values[lane], warp_indices[lane]} : no_candidate());
  }
  return v;
}

// Block out = o * inner + i finds the arg-max of x[o, :, i], each thread over a strided share.
__global__ void __launch_bounds__(kSegmentThreads)
    max_segments_kernel(const float* x, float* y, std::int32_t* idx, index_t reduce,
                        index_t inner) {
  const index_t out = blockIdx.x;
  const index_t o = out / inner, i = out % inner;
  const float* column = x + o * reduce * inner + i;
  ArgMax best = no_candidate();
  for (index_t r = threadIdx.x; r < reduce; r += blockDim.x) {
    best = better(best, ArgMax{column[r * inner], static_cast<std::int32_t>(r)});
  }
  best = block_argmax(best);
  if (threadIdx.x == 0) {
    y[out] = best.value;
    idx[out] = best.index;
  }
}
GLIA_LAUNCH_BOUNDS(max_segments_kernel, kSegmentThreads);

// Thread out = o * inner + i finds the arg-max of its column x[o, :, i].
__global__ void __launch_bounds__(kThreadsPerBlock)
    max_columns_kernel(const float* x, float* y, std::int32_t* idx, index_t outer, index_t reduce,
                       index_t inner) {
  for (index_t out = global_thread_index(); out < outer * inner; out += grid_thread_count()) {
    const index_t o = out / inner, i = out % inner;
    const float* column = x + o * reduce * inner + i;
    ArgMax best = no_candidate();
    for (index_t r = 0; r < reduce; ++r) {
      best = better(best, ArgMax{column[r * inner], static_cast<std::int32_t>(r)});
    }
    y[out] = best.value;
    idx[out] = best.index;
  }
}
GLIA_LAUNCH_BOUNDS(max_columns_kernel, kThreadsPerBlock);

// Thread e = (o * reduce + r) * inner + i writes gx[o, r, i].
__global__ void __launch_bounds__(kThreadsPerBlock)
    max_backward_kernel(const float* gy, const std::int32_t* idx, float* gx, index_t outer,
                        index_t reduce, index_t inner) {
  for (index_t e = global_thread_index(); e < outer * reduce * inner; e += grid_thread_count()) {
    const index_t i = e % inner, r = (e / inner) % reduce, o = e / (inner * reduce);
    const index_t out = o * inner + i;
    gx[e] = idx[out] == r ? gy[out] : 0.0f;
  }
}
GLIA_LAUNCH_BOUNDS(max_backward_kernel, kThreadsPerBlock);

}  // namespace

index_t reduce_sum_workspace_size(const ReduceShape& s) {
  const SumPlan plan = plan_sum(s);
  return plan.path == SumPath::two_pass ? s.outer * s.inner * plan.segments : 0;
}

void reduce_sum(const float* x, float* y, const ReduceShape& s, float scale, float* workspace,
                Stream stream) {
  const index_t outputs = s.outer * s.inner;
  if (outputs == 0) return;
  if (outputs > INT_MAX) {
    throw std::invalid_argument("reduce_sum: too many outputs for one launch: shape " +
                                s.describe());
  }
  SumPlan plan = plan_sum(s);
  if (plan.path == SumPath::two_pass && workspace == nullptr) plan = {SumPath::segments, 1};
  switch (plan.path) {
    case SumPath::two_pass:
      launch_sum_segments(x, workspace, outputs, plan.segments, s.reduce, s.inner, 1.0f, stream);
      launch_sum_segments(workspace, y, outputs, 1, plan.segments, 1, scale, stream);
      break;
    case SumPath::columns:
      GLIA_LAUNCH(sum_columns_kernel, grid_stride_blocks(outputs), kThreadsPerBlock, 0, stream, x,
                  y, s.outer, s.reduce, s.inner, scale);
      break;
    case SumPath::segments:
      launch_sum_segments(x, y, outputs, 1, s.reduce, s.inner, scale, stream);
      break;
  }
}

void reduce_sum(const float* x, float* y, const ReduceShape& s, float scale, Stream stream) {
  reduce_sum(x, y, s, scale, nullptr, stream);
}

void reduce_max(const float* x, float* y, std::int32_t* idx, const ReduceShape& s, Stream stream) {
  const index_t outputs = s.outer * s.inner;
  if (outputs == 0) return;
  if (s.reduce < 1) {
    throw std::invalid_argument("reduce_max over an empty axis: shape " + s.describe());
  }
  if (s.reduce > INT32_MAX || outputs > INT_MAX) {
    throw std::invalid_argument("reduce_max: shape " + s.describe() +
                                " exceeds the int32 index range");
  }
  if (s.inner > 1 && outputs >= kColumnsMinOutputs) {
    GLIA_LAUNCH(max_columns_kernel, grid_stride_blocks(outputs), kThreadsPerBlock, 0, stream, x, y,
                idx, s.outer, s.reduce, s.inner);
  } else {
    GLIA_LAUNCH(max_segments_kernel, static_cast<unsigned>(outputs), kSegmentThreads, 0, stream, x,
                y, idx, s.reduce, s.inner);
  }
}

void reduce_max_backward(const float* gy, const std::int32_t* idx, float* gx, const ReduceShape& s,
                         Stream stream) {
  const index_t n = s.outer * s.reduce * s.inner;
  if (n == 0) return;
  GLIA_LAUNCH(max_backward_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, gy, idx, gx,
              s.outer, s.reduce, s.inner);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
