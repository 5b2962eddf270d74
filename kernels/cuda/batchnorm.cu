// Batch norm over NCHW, per channel c (kernels/types.h BatchNormShape; M = n * h * w elements per
// channel, xhat = (x - mean[c]) * invstd[c]):
//   stats_kernel            grid C, 256 or 1024 threads: block c reduces channel c twice (the mean,
//   then
//                           the mean squared deviation: no cancellation), each thread a strided
//                           share of the M elements, combined by warp shuffles + shared memory;
//                           thread 0 writes mean, invstd and the running-statistics update
//   invstd_kernel           one thread per channel: 1 / sqrt(var + eps)
//   apply_kernel            1-D grid-stride, one thread per element: y = xhat * weight + bias
//   backward_reduce_kernel  grid C, 256 or 1024 threads: sum gy and sum gy * xhat of channel c
//   backward_input_kernel   1-D grid-stride, one thread per element of gx
// Every sum runs in an order fixed by the shape (no atomics), so results are deterministic.
// Tested in tests/kernels/batchnorm_test.cpp against kernels/cpu/batchnorm.cpp.
#include "kernels/cuda/portable.cuh"

#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

// A channel's block: 256 threads, or 1024 for long channels (a training batch of large images),
// where a block per channel would otherwise leave each thread thousands of elements.
constexpr index_t kLongChannel = 16384;

unsigned channel_threads(const BatchNormShape& s) {
  return s.count() >= kLongChannel ? 1024u : 256u;
}

// The flat NCHW offset of the i-th element (in n, h, w order) of channel c.
__device__ inline index_t channel_element(const BatchNormShape& s, index_t c, index_t i) {
  const index_t plane = s.plane();
  const index_t n = i / plane, hw = i % plane;
  return (n * s.c + c) * plane + hw;
}

__global__ void stats_kernel(const float* x, float* mean, float* invstd, float* running_mean,
                             float* running_var, BatchNormShape s) {
  const index_t c = blockIdx.x, count = s.count();
  float partial = 0.0f;
  for (index_t i = threadIdx.x; i < count; i += blockDim.x) partial += x[channel_element(s, c, i)];
  const float mu = block_reduce::sum(partial) / static_cast<float>(count);
  partial = 0.0f;
  for (index_t i = threadIdx.x; i < count; i += blockDim.x) {
    const float d = x[channel_element(s, c, i)] - mu;
    partial += d * d;
  }
  const float squares = block_reduce::sum(partial);
  if (threadIdx.x == 0) {
    const float var = squares / static_cast<float>(count);
    mean[c] = mu;
    invstd[c] = 1.0f / sqrtf(var + static_cast<float>(s.eps));
    if (running_mean != nullptr) {
      const float unbiased = count > 1 ? squares / static_cast<float>(count - 1) : var;
      const float m = static_cast<float>(s.momentum);
      running_mean[c] = (1.0f - m) * running_mean[c] + m * mu;
      running_var[c] = (1.0f - m) * running_var[c] + m * unbiased;
    }
  }
}

__global__ void invstd_kernel(const float* var, float* invstd, BatchNormShape s) {
  for (index_t c = global_thread_index(); c < s.c; c += grid_thread_count()) {
    invstd[c] = 1.0f / sqrtf(var[c] + static_cast<float>(s.eps));
  }
}

__global__ void apply_kernel(const float* x, const float* mean, const float* invstd,
                             const float* weight, const float* bias, float* y, BatchNormShape s) {
  for (index_t i = global_thread_index(); i < s.numel(); i += grid_thread_count()) {
    const index_t c = s.channel_of(i);
    const float scale = invstd[c] * (weight != nullptr ? weight[c] : 1.0f);
    y[i] = (x[i] - mean[c]) * scale + (bias != nullptr ? bias[c] : 0.0f);
  }
}

__global__ void backward_reduce_kernel(const float* x, const float* gy, const float* mean,
                                       const float* invstd, float* sum_dy, float* sum_dy_xhat,
                                       BatchNormShape s) {
  const index_t c = blockIdx.x, count = s.count();
  const float mu = mean[c];
  float dy = 0.0f, dy_xmu = 0.0f;
  for (index_t i = threadIdx.x; i < count; i += blockDim.x) {
    const index_t e = channel_element(s, c, i);
    dy += gy[e];
    dy_xmu += gy[e] * (x[e] - mu);
  }
  dy = block_reduce::sum(dy);
  dy_xmu = block_reduce::sum(dy_xmu);
  if (threadIdx.x == 0) {
    sum_dy[c] = dy;
    sum_dy_xhat[c] = dy_xmu * invstd[c];
  }
}

__global__ void backward_input_kernel(const float* x, const float* gy, const float* mean,
                                      const float* invstd, const float* weight, const float* sum_dy,
                                      const float* sum_dy_xhat, float* gx, BatchNormShape s,
                                      bool training) {
  const float inv_count = 1.0f / static_cast<float>(s.count());
  for (index_t i = global_thread_index(); i < s.numel(); i += grid_thread_count()) {
    const index_t c = s.channel_of(i);
    const float scale = invstd[c] * (weight != nullptr ? weight[c] : 1.0f);
    if (training) {
      const float xhat = (x[i] - mean[c]) * invstd[c];
      gx[i] = scale * (gy[i] - sum_dy[c] * inv_count - xhat * sum_dy_xhat[c] * inv_count);
    } else {
      gx[i] = scale * gy[i];
    }
  }
}

// One block per channel: the grid's x dimension must hold C.
void check_channels(const BatchNormShape& s, const char* op) {
  if (s.c > INT_MAX) {
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(s.c) +
                                " channels exceed one launch's grid");
  }
}

}  // namespace

void batch_norm_stats(const float* x, float* mean, float* invstd, float* running_mean,
                      float* running_var, const BatchNormShape& s, Stream stream) {
  if (s.c == 0) return;
  if (s.count() == 0) {
    throw std::invalid_argument("batch_norm_stats: channels of no elements (n " +
                                std::to_string(s.n) + ", h " + std::to_string(s.h) + ", w " +
                                std::to_string(s.w) + ")");
  }
  check_channels(s, "batch_norm_stats");
  GLIA_LAUNCH(stats_kernel, static_cast<unsigned>(s.c), channel_threads(s), 0, stream, x, mean,
              invstd, running_mean, running_var, s);
}

void batch_norm_invstd(const float* var, float* invstd, const BatchNormShape& s, Stream stream) {
  if (s.c == 0) return;
  GLIA_LAUNCH(invstd_kernel, grid_stride_blocks(s.c), kThreadsPerBlock, 0, stream, var, invstd, s);
}

void batch_norm_apply(const float* x, const float* mean, const float* invstd, const float* weight,
                      const float* bias, float* y, const BatchNormShape& s, Stream stream) {
  if (s.numel() == 0) return;
  GLIA_LAUNCH(apply_kernel, grid_stride_blocks(s.numel()), kThreadsPerBlock, 0, stream, x, mean,
              invstd, weight, bias, y, s);
}

void batch_norm_backward_reduce(const float* x, const float* gy, const float* mean,
                                const float* invstd, float* sum_dy, float* sum_dy_xhat,
                                const BatchNormShape& s, Stream stream) {
  if (s.c == 0) return;
  check_channels(s, "batch_norm_backward_reduce");
  GLIA_LAUNCH(backward_reduce_kernel, static_cast<unsigned>(s.c), channel_threads(s), 0, stream, x,
              gy, mean, invstd, sum_dy, sum_dy_xhat, s);
}

void batch_norm_backward_input(const float* x, const float* gy, const float* mean,
                               const float* invstd, const float* weight, const float* sum_dy,
                               const float* sum_dy_xhat, float* gx, const BatchNormShape& s,
                               bool training, Stream stream) {
  if (s.numel() == 0) return;
  GLIA_LAUNCH(backward_input_kernel, grid_stride_blocks(s.numel()), kThreadsPerBlock, 0, stream, x,
              gy, mean, invstd, weight, sum_dy, sum_dy_xhat, gx, s, training);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
