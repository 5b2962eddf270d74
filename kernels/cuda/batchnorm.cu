// Batch norm over NCHW, per channel c (kernels/types.h BatchNormShape; M = n * h * w elements per
// channel, xhat = (x - mean[c]) * invstd[c]), optionally fused with a ReLU (y = max(bn(x), 0) and
// gy masked where y <= 0 in the backward). Channel reductions are split over many blocks:
//   stats_kernel<V>           grid (chunks, channels), 256 threads: block (k, c) walks chunk k of
//                             channel c once, summing d = x - shift and d * d with shift = the
//                             channel's first element (shifted sums: no cancellation when the mean
//                             is far from 0), and turns them into the chunk's mean and squared
//                             deviation M2; with one chunk it finishes the channel itself
//   stats_combine_kernel      a warp per channel: the chunks' (count, mean, M2) combined by Chan's
//                             formula, lane-strided in index order then by a fixed shuffle tree;
//                             lane 0 writes mean, invstd and the running-statistics update
//   invstd_kernel             one thread per channel: 1 / sqrt(var + eps)
//   apply_kernel<V>           grid (blocks per plane, planes n * c): y = xhat * weight + bias
//   backward_reduce_kernel<V> as stats_kernel: per chunk sum gy and sum gy * (x - mean)
//   backward_combine_kernel   a warp per channel: the chunks' sums in a fixed order
//   backward_input_kernel<V>  as apply_kernel, gx from gy and the channel sums
//   channel_sum_kernel<V>     as stats_kernel: per chunk sum g (the convolution bias gradient),
//                             combined by backward_combine_kernel
// V = 4 reads and writes float4 when every plane is whole float4s and the pointers are 16-byte
// aligned, else V = 1. Element offsets advance by additions (one division per thread and channel,
// none per element). Every sum runs in an order fixed by the shape and the chunking, never by
// block scheduling (partials go to a workspace, no float atomics), so results are bitwise
// deterministic. Tested in tests/kernels/batchnorm_test.cpp against kernels/cpu/batchnorm.cpp.
#include "kernels/cuda/portable.cuh"

#include <initializer_list>
#include <stdexcept>
#include <string>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/vector_access.cuh"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

using block_reduce::kFullWarp;
using block_reduce::kWarpSize;

constexpr int kReduceThreads = 256;
constexpr int kCombineThreads = 128;
// Blocks that keep a GPU busy in one reduction pass: about eight per SM of a 132-SM H100.
constexpr index_t kTargetBlocks = 1024;
// A chunk gives each thread at least this many loads (of V floats), so splitting stops paying
// before the partials' traffic matters.
constexpr index_t kMinLoadsPerThread = 8;
// The largest grid y dimension; channel and plane loops stride beyond it.
constexpr index_t kMaxGridY = 65535;

index_t ceil_div(index_t a, index_t b) {
  return (a + b - 1) / b;
}

// How each channel's M elements are cut into chunks of `chunk` loads of V floats, one block each.
struct Split {
  index_t plane_loads = 0;  // plane() / V
  index_t loads = 0;        // count() / V
  index_t chunk = 0;        // loads per chunk
  index_t chunks = 1;       // ceil(loads / chunk)
};

Split split(const BatchNormShape& s, int vec, bool many) {
  Split sp;
  sp.plane_loads = s.plane() / vec;
  sp.loads = s.count() / vec;
  index_t chunks = 1;
  if (many) {
    const index_t by_work = ceil_div(sp.loads, kReduceThreads * kMinLoadsPerThread);
    const index_t by_grid = s.c < kTargetBlocks ? kTargetBlocks / s.c : 1;
    chunks = by_work < by_grid ? by_work : by_grid;
    if (chunks < 1) chunks = 1;
  }
  sp.chunk = ceil_div(sp.loads, chunks);
  sp.chunks = ceil_div(sp.loads, sp.chunk);
  return sp;
}

// 4 when every plane is whole float4s and every pointer is 16-byte aligned.
int vector_width(const BatchNormShape& s, std::initializer_list<const void*> pointers) {
  if (s.plane() % 4 != 0) return 1;
  for (const void* p : pointers) {
    if (!aligned16(p)) return 1;
  }
  return 4;
}

unsigned channel_blocks(index_t channels) {
  const index_t limit = grid_limit(kMaxGridY);
  return static_cast<unsigned>(channels < limit ? channels : limit);
}

// The floats of chunk k of a channel.
__device__ inline float chunk_count(const Split& sp, index_t k, int vec) {
  const index_t left = sp.loads - k * sp.chunk;
  return static_cast<float>((left < sp.chunk ? left : sp.chunk) * vec);
}

// Walks a block's share of chunk `chunk` of channel c: thread t visits loads chunk_begin + t,
// + blockDim.x, ... and f(offset of the load's first float). The offset steps by additions.
template <int V, class F>
__device__ inline void walk_chunk(const BatchNormShape& s, const Split& sp, index_t c, F&& f) {
  const index_t plane = s.plane(), channel_stride = s.c * plane;
  const index_t begin = static_cast<index_t>(blockIdx.x) * sp.chunk;
  const index_t end = begin + sp.chunk < sp.loads ? begin + sp.chunk : sp.loads;
  const index_t first = begin + threadIdx.x, step = blockDim.x;
  index_t hw = first % sp.plane_loads;
  index_t offset = (first / sp.plane_loads) * channel_stride + c * plane + hw * V;
  const index_t step_hw = step % sp.plane_loads;
  const index_t jump = (step / sp.plane_loads) * channel_stride + step_hw * V;
  for (index_t i = first; i < end; i += step) {
    f(offset);
    offset += jump;
    hw += step_hw;
    if (hw >= sp.plane_loads) {  // into the next sample's plane of channel c
      hw -= sp.plane_loads;
      offset += channel_stride - plane;
    }
  }
}

// Chan et al.'s combination of (n, mean, M2) with a second set (nb, mean_b, M2_b).
__device__ inline void chan_combine(float& n, float& mean, float& m2, float nb, float mean_b,
                                    float m2_b) {
  if (nb == 0.0f) return;
  const float total = n + nb, d = mean_b - mean, wb = nb / total;
  mean += d * wb;
  m2 += m2_b + d * d * n * wb;
  n = total;
}

__device__ inline void finish_stats(index_t c, float mu, float m2, float* mean, float* invstd,
                                    float* running_mean, float* running_var,
                                    const BatchNormShape& s) {
  const float count = static_cast<float>(s.count());
  const float var = m2 / count;
  mean[c] = mu;
  invstd[c] = 1.0f / sqrtf(var + static_cast<float>(s.eps));
  if (running_mean != nullptr) {
    const float unbiased = count > 1.0f ? m2 / (count - 1.0f) : var;
    const float m = static_cast<float>(s.momentum);
    running_mean[c] = (1.0f - m) * running_mean[c] + m * mu;
    running_var[c] = (1.0f - m) * running_var[c] + m * unbiased;
  }
}

template <int V>
__global__ void __launch_bounds__(kReduceThreads)
    stats_kernel(const float* x, float* partial, float* mean, float* invstd, float* running_mean,
                 float* running_var, BatchNormShape s, Split sp) {
  for (index_t c = blockIdx.y; c < s.c; c += gridDim.y) {
    const float shift = x[c * s.plane()];
    float sums[2] = {0.0f, 0.0f};
    walk_chunk<V>(s, sp, c, [&](index_t offset) {
      float v[V];
      load<V>(x + offset, v);
      for (int k = 0; k < V; ++k) {
        const float d = v[k] - shift;
        sums[0] += d;
        sums[1] += d * d;
      }
    });
    block_reduce::sums_in_thread0(sums);
    if (threadIdx.x == 0) {
      const float count = chunk_count(sp, blockIdx.x, V);
      const float d = sums[0] / count;
      const float m2 = fmaxf(sums[1] - sums[0] * d, 0.0f);
      if (sp.chunks == 1) {
        finish_stats(c, shift + d, m2, mean, invstd, running_mean, running_var, s);
      } else {
        float* p = partial + 2 * (c * sp.chunks + blockIdx.x);
        p[0] = shift + d;
        p[1] = m2;
      }
    }
    __syncthreads();  // the next channel's block reduction reuses the shared slots
  }
}
GLIA_LAUNCH_BOUNDS(stats_kernel<1>, kReduceThreads);
GLIA_LAUNCH_BOUNDS(stats_kernel<4>, kReduceThreads);

__global__ void __launch_bounds__(kCombineThreads)
    stats_combine_kernel(const float* partial, float* mean, float* invstd, float* running_mean,
                         float* running_var, BatchNormShape s, Split sp, int vec) {
  const int lane = threadIdx.x % kWarpSize;
  for (index_t c = global_thread_index() / kWarpSize; c < s.c;
       c += grid_thread_count() / kWarpSize) {
    float n = 0.0f, mu = 0.0f, m2 = 0.0f;
    for (index_t k = lane; k < sp.chunks; k += kWarpSize) {
      const float* p = partial + 2 * (c * sp.chunks + k);
      chan_combine(n, mu, m2, chunk_count(sp, k, vec), p[0], p[1]);
    }
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
      const float nb = __shfl_down_sync(kFullWarp, n, offset);
      const float mb = __shfl_down_sync(kFullWarp, mu, offset);
      const float m2b = __shfl_down_sync(kFullWarp, m2, offset);
      if (lane + offset < kWarpSize) chan_combine(n, mu, m2, nb, mb, m2b);
    }
    if (lane == 0) finish_stats(c, mu, m2, mean, invstd, running_mean, running_var, s);
  }
}
GLIA_LAUNCH_BOUNDS(stats_combine_kernel, kCombineThreads);

__global__ void __launch_bounds__(kThreadsPerBlock)
    invstd_kernel(const float* var, float* invstd, BatchNormShape s) {
  for (index_t c = global_thread_index(); c < s.c; c += grid_thread_count()) {
    invstd[c] = 1.0f / sqrtf(var[c] + static_cast<float>(s.eps));
  }
}
GLIA_LAUNCH_BOUNDS(invstd_kernel, kThreadsPerBlock);

// ReLU as kernels/elementwise_math.h: NaN propagates, and the backward passes gy where y > 0.
__device__ inline float relu(float v) {
  return v < 0.0f ? 0.0f : v;
}

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    apply_kernel(const float* x, const float* mean, const float* invstd, const float* weight,
                 const float* bias, float* y, BatchNormShape s, bool fuse_relu) {
  const index_t plane = s.plane(), loads = plane / V, planes = s.n * s.c;
  for (index_t nc = blockIdx.y; nc < planes; nc += gridDim.y) {
    const index_t c = nc % s.c;
    const float m = mean[c], scale = invstd[c] * (weight != nullptr ? weight[c] : 1.0f);
    const float shift = bias != nullptr ? bias[c] : 0.0f;
    const float* xp = x + nc * plane;
    float* yp = y + nc * plane;
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < loads;
         i += static_cast<index_t>(gridDim.x) * blockDim.x) {
      float v[V];
      load<V>(xp + i * V, v);
      for (int k = 0; k < V; ++k) {
        v[k] = (v[k] - m) * scale + shift;
        if (fuse_relu) v[k] = relu(v[k]);
      }
      store<V>(yp + i * V, v);
    }
  }
}
GLIA_LAUNCH_BOUNDS(apply_kernel<1>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(apply_kernel<4>, kThreadsPerBlock);

// gy, masked by the fused ReLU's output y where there is one.
template <int V>
__device__ inline void load_gy(const float* gy, const float* y, index_t offset, float (&g)[V]) {
  load<V>(gy + offset, g);
  if (y != nullptr) {
    float out[V];
    load<V>(y + offset, out);
    for (int k = 0; k < V; ++k) g[k] = out[k] > 0.0f ? g[k] : 0.0f;
  }
}

template <int V>
__global__ void __launch_bounds__(kReduceThreads)
    backward_reduce_kernel(const float* x, const float* gy, const float* y, const float* mean,
                           const float* invstd, float* partial, float* sum_dy, float* sum_dy_xhat,
                           BatchNormShape s, Split sp) {
  for (index_t c = blockIdx.y; c < s.c; c += gridDim.y) {
    const float mu = mean[c];
    float sums[2] = {0.0f, 0.0f};
    walk_chunk<V>(s, sp, c, [&](index_t offset) {
      float xv[V], g[V];
      load<V>(x + offset, xv);
      load_gy<V>(gy, y, offset, g);
      for (int k = 0; k < V; ++k) {
        sums[0] += g[k];
        sums[1] += g[k] * (xv[k] - mu);
      }
    });
    block_reduce::sums_in_thread0(sums);
    if (threadIdx.x == 0) {
      if (sp.chunks == 1) {
        sum_dy[c] = sums[0];
        sum_dy_xhat[c] = sums[1] * invstd[c];
      } else {
        float* p = partial + 2 * (c * sp.chunks + blockIdx.x);
        p[0] = sums[0];
        p[1] = sums[1];
      }
    }
    __syncthreads();  // the next channel's block reduction reuses the shared slots
  }
}
GLIA_LAUNCH_BOUNDS(backward_reduce_kernel<1>, kReduceThreads);
GLIA_LAUNCH_BOUNDS(backward_reduce_kernel<4>, kReduceThreads);

// The per-channel sum of g alone (the convolution bias gradient), chunked as the reductions above;
// its partials leave the second slot 0 so backward_combine_kernel serves it too.
template <int V>
__global__ void __launch_bounds__(kReduceThreads)
    channel_sum_kernel(const float* g, float* partial, float* sum, BatchNormShape s, Split sp) {
  for (index_t c = blockIdx.y; c < s.c; c += gridDim.y) {
    float total = 0.0f;
    walk_chunk<V>(s, sp, c, [&](index_t offset) {
      float v[V];
      load<V>(g + offset, v);
      for (int k = 0; k < V; ++k) total += v[k];
    });
    total = block_reduce::sum_in_thread0(total);
    if (threadIdx.x == 0) {
      if (sp.chunks == 1) {
        sum[c] = total;
      } else {
        float* p = partial + 2 * (c * sp.chunks + blockIdx.x);
        p[0] = total;
        p[1] = 0.0f;
      }
    }
    __syncthreads();  // the next channel's block reduction reuses the shared slots
  }
}
GLIA_LAUNCH_BOUNDS(channel_sum_kernel<1>, kReduceThreads);
GLIA_LAUNCH_BOUNDS(channel_sum_kernel<4>, kReduceThreads);

__global__ void __launch_bounds__(kCombineThreads)
    backward_combine_kernel(const float* partial, const float* invstd, float* sum_dy,
                            float* sum_dy_xhat, BatchNormShape s, Split sp) {
  const int lane = threadIdx.x % kWarpSize;
  for (index_t c = global_thread_index() / kWarpSize; c < s.c;
       c += grid_thread_count() / kWarpSize) {
    float dy = 0.0f, dy_xmu = 0.0f;
    for (index_t k = lane; k < sp.chunks; k += kWarpSize) {
      dy += partial[2 * (c * sp.chunks + k)];
      dy_xmu += partial[2 * (c * sp.chunks + k) + 1];
    }
    dy = block_reduce::warp_sum(dy);
    dy_xmu = block_reduce::warp_sum(dy_xmu);
    if (lane == 0) {
      sum_dy[c] = dy;
      if (sum_dy_xhat != nullptr) sum_dy_xhat[c] = dy_xmu * invstd[c];
    }
  }
}
GLIA_LAUNCH_BOUNDS(backward_combine_kernel, kCombineThreads);

template <int V>
__global__ void __launch_bounds__(kThreadsPerBlock)
    backward_input_kernel(const float* x, const float* gy, const float* y, const float* mean,
                          const float* invstd, const float* weight, const float* sum_dy,
                          const float* sum_dy_xhat, float* gx, BatchNormShape s, bool training) {
  const float inv_count = 1.0f / static_cast<float>(s.count());
  const index_t plane = s.plane(), loads = plane / V, planes = s.n * s.c;
  for (index_t nc = blockIdx.y; nc < planes; nc += gridDim.y) {
    const index_t c = nc % s.c;
    const float m = mean[c], is = invstd[c];
    const float scale = is * (weight != nullptr ? weight[c] : 1.0f);
    const float dy = training ? sum_dy[c] * inv_count : 0.0f;
    const float dyx = training ? sum_dy_xhat[c] * inv_count : 0.0f;
    const index_t base = nc * plane;
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < loads;
         i += static_cast<index_t>(gridDim.x) * blockDim.x) {
      const index_t offset = base + i * V;
      float g[V];
      load_gy<V>(gy, y, offset, g);
      if (training) {
        float xv[V];
        load<V>(x + offset, xv);
        for (int k = 0; k < V; ++k) g[k] = scale * (g[k] - dy - (xv[k] - m) * is * dyx);
      } else {
        for (int k = 0; k < V; ++k) g[k] = scale * g[k];
      }
      store<V>(gx + offset, g);
    }
  }
}
GLIA_LAUNCH_BOUNDS(backward_input_kernel<1>, kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS(backward_input_kernel<4>, kThreadsPerBlock);

// The grid of an elementwise pass: x covers a plane in blocks of `threads`, y the n * c planes.
struct PlaneGrid {
  dim3 grid;
  unsigned threads = kThreadsPerBlock;
};

PlaneGrid plane_grid(const BatchNormShape& s, int vec) {
  const index_t loads = s.plane() / vec;
  PlaneGrid g;
  // Small planes (the deep levels of a U-Net) take a smaller block, so fewer threads idle.
  const index_t rounded = ceil_div(loads, kWarpSize) * kWarpSize;
  g.threads = static_cast<unsigned>(rounded < kThreadsPerBlock ? rounded : kThreadsPerBlock);
  const index_t x = ceil_div(loads, g.threads), x_limit = grid_limit(kMaxGridStrideBlocks);
  const index_t planes = s.n * s.c, y_limit = grid_limit(kMaxGridY);
  g.grid = dim3(static_cast<unsigned>(x < x_limit ? x : x_limit),
                static_cast<unsigned>(planes < y_limit ? planes : y_limit));
  return g;
}

void check_count(const BatchNormShape& s, const char* op) {
  if (s.count() == 0) {
    throw std::invalid_argument(std::string(op) + ": channels of no elements (n " +
                                std::to_string(s.n) + ", h " + std::to_string(s.h) + ", w " +
                                std::to_string(s.w) + ")");
  }
}

void stats(const float* x, float* mean, float* invstd, float* running_mean, float* running_var,
           const BatchNormShape& s, float* workspace, Stream stream) {
  if (s.c == 0) return;
  check_count(s, "batch_norm_stats");
  const int vec = vector_width(s, {x});
  const Split sp = split(s, vec, workspace != nullptr);
  const dim3 grid(static_cast<unsigned>(sp.chunks), channel_blocks(s.c));
  if (vec == 4) {
    GLIA_LAUNCH(stats_kernel<4>, grid, kReduceThreads, 0, stream, x, workspace, mean, invstd,
                running_mean, running_var, s, sp);
  } else {
    GLIA_LAUNCH(stats_kernel<1>, grid, kReduceThreads, 0, stream, x, workspace, mean, invstd,
                running_mean, running_var, s, sp);
  }
  if (sp.chunks > 1) {
    GLIA_LAUNCH(stats_combine_kernel, grid_stride_blocks(s.c * kWarpSize), kCombineThreads, 0,
                stream, workspace, mean, invstd, running_mean, running_var, s, sp, vec);
  }
}

void apply(const float* x, const float* mean, const float* invstd, const float* weight,
           const float* bias, float* y, const BatchNormShape& s, bool fuse_relu, Stream stream) {
  if (s.numel() == 0) return;
  const int vec = vector_width(s, {x, y});
  const PlaneGrid g = plane_grid(s, vec);
  if (vec == 4) {
    GLIA_LAUNCH(apply_kernel<4>, g.grid, g.threads, 0, stream, x, mean, invstd, weight, bias, y, s,
                fuse_relu);
  } else {
    GLIA_LAUNCH(apply_kernel<1>, g.grid, g.threads, 0, stream, x, mean, invstd, weight, bias, y, s,
                fuse_relu);
  }
}

void backward_reduce(const float* x, const float* gy, const float* y, const float* mean,
                     const float* invstd, float* sum_dy, float* sum_dy_xhat,
                     const BatchNormShape& s, float* workspace, Stream stream) {
  if (s.c == 0) return;
  check_count(s, "batch_norm_backward_reduce");
  const int vec = vector_width(s, {x, gy, y});
  const Split sp = split(s, vec, workspace != nullptr);
  const dim3 grid(static_cast<unsigned>(sp.chunks), channel_blocks(s.c));
  if (vec == 4) {
    GLIA_LAUNCH(backward_reduce_kernel<4>, grid, kReduceThreads, 0, stream, x, gy, y, mean, invstd,
                workspace, sum_dy, sum_dy_xhat, s, sp);
  } else {
    GLIA_LAUNCH(backward_reduce_kernel<1>, grid, kReduceThreads, 0, stream, x, gy, y, mean, invstd,
                workspace, sum_dy, sum_dy_xhat, s, sp);
  }
  if (sp.chunks > 1) {
    GLIA_LAUNCH(backward_combine_kernel, grid_stride_blocks(s.c * kWarpSize), kCombineThreads, 0,
                stream, workspace, invstd, sum_dy, sum_dy_xhat, s, sp);
  }
}

void backward_input(const float* x, const float* gy, const float* y, const float* mean,
                    const float* invstd, const float* weight, const float* sum_dy,
                    const float* sum_dy_xhat, float* gx, const BatchNormShape& s, bool training,
                    Stream stream) {
  if (s.numel() == 0) return;
  const int vec = vector_width(s, {x, gy, y, gx});
  const PlaneGrid g = plane_grid(s, vec);
  if (vec == 4) {
    GLIA_LAUNCH(backward_input_kernel<4>, g.grid, g.threads, 0, stream, x, gy, y, mean, invstd,
                weight, sum_dy, sum_dy_xhat, gx, s, training);
  } else {
    GLIA_LAUNCH(backward_input_kernel<1>, g.grid, g.threads, 0, stream, x, gy, y, mean, invstd,
                weight, sum_dy, sum_dy_xhat, gx, s, training);
  }
}

void sum_channels(const float* g, float* sum, const BatchNormShape& s, float* workspace,
                  Stream stream) {
  if (s.c == 0) return;
  check_count(s, "channel_sum");
  const int vec = vector_width(s, {g});
  const Split sp = split(s, vec, workspace != nullptr);
  const dim3 grid(static_cast<unsigned>(sp.chunks), channel_blocks(s.c));
  if (vec == 4) {
    GLIA_LAUNCH(channel_sum_kernel<4>, grid, kReduceThreads, 0, stream, g, workspace, sum, s, sp);
  } else {
    GLIA_LAUNCH(channel_sum_kernel<1>, grid, kReduceThreads, 0, stream, g, workspace, sum, s, sp);
  }
  if (sp.chunks > 1) {
    GLIA_LAUNCH(backward_combine_kernel, grid_stride_blocks(s.c * kWarpSize), kCombineThreads, 0,
                stream, workspace, nullptr, sum, nullptr, s, sp);
  }
}

}  // namespace

index_t batch_norm_workspace_size(const BatchNormShape& s) {
  if (s.c == 0 || s.count() == 0) return 0;
  // The scalar split has the most chunks; the float4 one never needs more.
  const Split sp = split(s, 1, true);
  return sp.chunks > 1 ? 2 * s.c * sp.chunks : 0;
}

void batch_norm_stats(const float* x, float* mean, float* invstd, float* running_mean,
                      float* running_var, const BatchNormShape& s, float* workspace,
                      Stream stream) {
  stats(x, mean, invstd, running_mean, running_var, s, workspace, stream);
}

void batch_norm_stats(const float* x, float* mean, float* invstd, float* running_mean,
                      float* running_var, const BatchNormShape& s, Stream stream) {
  stats(x, mean, invstd, running_mean, running_var, s, nullptr, stream);
}

void batch_norm_invstd(const float* var, float* invstd, const BatchNormShape& s, Stream stream) {
  if (s.c == 0) return;
  GLIA_LAUNCH(invstd_kernel, grid_stride_blocks(s.c), kThreadsPerBlock, 0, stream, var, invstd, s);
}

void batch_norm_apply(const float* x, const float* mean, const float* invstd, const float* weight,
                      const float* bias, float* y, const BatchNormShape& s, Stream stream) {
  apply(x, mean, invstd, weight, bias, y, s, false, stream);
}

void batch_norm_relu_apply(const float* x, const float* mean, const float* invstd,
                           const float* weight, const float* bias, float* y,
                           const BatchNormShape& s, Stream stream) {
  apply(x, mean, invstd, weight, bias, y, s, true, stream);
}

void batch_norm_backward_reduce(const float* x, const float* gy, const float* mean,
                                const float* invstd, float* sum_dy, float* sum_dy_xhat,
                                const BatchNormShape& s, Stream stream) {
  backward_reduce(x, gy, nullptr, mean, invstd, sum_dy, sum_dy_xhat, s, nullptr, stream);
}

void batch_norm_backward_reduce(const float* x, const float* gy, const float* mean,
                                const float* invstd, float* sum_dy, float* sum_dy_xhat,
                                const BatchNormShape& s, float* workspace, Stream stream) {
  backward_reduce(x, gy, nullptr, mean, invstd, sum_dy, sum_dy_xhat, s, workspace, stream);
}

void batch_norm_relu_backward_reduce(const float* x, const float* gy, const float* y,
                                     const float* mean, const float* invstd, float* sum_dy,
                                     float* sum_dy_xhat, const BatchNormShape& s, float* workspace,
                                     Stream stream) {
  backward_reduce(x, gy, y, mean, invstd, sum_dy, sum_dy_xhat, s, workspace, stream);
}

void batch_norm_backward_input(const float* x, const float* gy, const float* mean,
                               const float* invstd, const float* weight, const float* sum_dy,
                               const float* sum_dy_xhat, float* gx, const BatchNormShape& s,
                               bool training, Stream stream) {
  backward_input(x, gy, nullptr, mean, invstd, weight, sum_dy, sum_dy_xhat, gx, s, training,
                 stream);
}

void batch_norm_relu_backward_input(const float* x, const float* gy, const float* y,
                                    const float* mean, const float* invstd, const float* weight,
                                    const float* sum_dy, const float* sum_dy_xhat, float* gx,
                                    const BatchNormShape& s, bool training, Stream stream) {
  backward_input(x, gy, y, mean, invstd, weight, sum_dy, sum_dy_xhat, gx, s, training, stream);
}

void channel_sum(const float* g, float* sum, const BatchNormShape& s, float* workspace,
                 Stream stream) {
  sum_channels(g, sum, s, workspace, stream);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
