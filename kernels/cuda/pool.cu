// 2-D pooling over NCHW planes (kernels/types.h Pool2dShape):
//   max_forward_kernel     1-D grid-stride, one thread per output (n, c, oh, ow): the max of its
//                          window (padding is -inf) and its index ih * w + iw in the plane, the
//                          first on ties, the first NaN winning
//   max_backward_kernel    1-D grid-stride, one thread per input (n, c, ih, iw): the sum of gy over
//                          the outputs whose window covers it and chose it, gathered in a fixed
//                          order, so overlapping windows need no atomics and the result is
//                          deterministic
//   avg_forward_kernel     one thread per output: the window's sum / avg_divisor
//   avg_backward_kernel    one thread per input: the sum of gy / avg_divisor over covering windows
//   global_avg_kernel      grid n * c, 256 threads: block (n, c) sums its plane with warp shuffles
//                          + shared memory and thread 0 writes the mean
//   global_avg_backward_kernel  one thread per input: gy of its plane / (h * w)
// Tested in tests/kernels/pool_test.cpp against kernels/cpu/pool.cpp.
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

constexpr int kPlaneThreads = 256;

__device__ inline bool is_nan(float v) {
  return v != v;
}

__device__ inline index_t clip_low(index_t v) {
  return v > 0 ? v : 0;
}
__device__ inline index_t clip_high(index_t v, index_t limit) {
  return v < limit ? v : limit;
}

__global__ void max_forward_kernel(const float* x, float* y, std::int32_t* idx, Pool2dShape s) {
  for (index_t o = global_thread_index(); o < s.out_numel(); o += grid_thread_count()) {
    const index_t ow = o % s.out_w, oh = (o / s.out_w) % s.out_h, plane = o / s.out_plane();
    const float* xp = x + plane * s.in_plane();
    const index_t h0 = clip_low(s.window_h0(oh)), h1 = clip_high(s.window_h0(oh) + s.kernel_h, s.h);
    const index_t w0 = clip_low(s.window_w0(ow)), w1 = clip_high(s.window_w0(ow) + s.kernel_w, s.w);
    float best = -INFINITY;
    index_t best_i = h0 * s.w + w0;
    for (index_t ih = h0; ih < h1 && !is_nan(best); ++ih) {
      for (index_t iw = w0; iw < w1 && !is_nan(best); ++iw) {
        const float v = xp[ih * s.w + iw];
        if (v > best || is_nan(v)) {
          best = v;
          best_i = ih * s.w + iw;
        }
      }
    }
    y[o] = best;
    idx[o] = static_cast<std::int32_t>(best_i);
  }
}

__global__ void max_backward_kernel(const float* gy, const std::int32_t* idx, float* gx,
                                    Pool2dShape s) {
  for (index_t e = global_thread_index(); e < s.in_numel(); e += grid_thread_count()) {
    const index_t iw = e % s.w, ih = (e / s.w) % s.h, plane = e / s.in_plane();
    const index_t here = ih * s.w + iw;
    const index_t out_base = plane * s.out_plane();
    float g = 0.0f;
    for (index_t oh = s.first_oh(ih); oh < s.end_oh(ih); ++oh) {
      for (index_t ow = s.first_ow(iw); ow < s.end_ow(iw); ++ow) {
        const index_t o = out_base + oh * s.out_w + ow;
        if (idx[o] == here) g += gy[o];
      }
    }
    gx[e] = g;
  }
}

__global__ void avg_forward_kernel(const float* x, float* y, Pool2dShape s) {
  for (index_t o = global_thread_index(); o < s.out_numel(); o += grid_thread_count()) {
    const index_t ow = o % s.out_w, oh = (o / s.out_w) % s.out_h, plane = o / s.out_plane();
    const float* xp = x + plane * s.in_plane();
    const index_t h0 = clip_low(s.window_h0(oh)), h1 = clip_high(s.window_h0(oh) + s.kernel_h, s.h);
    const index_t w0 = clip_low(s.window_w0(ow)), w1 = clip_high(s.window_w0(ow) + s.kernel_w, s.w);
    float sum = 0.0f;
    for (index_t ih = h0; ih < h1; ++ih) {
      for (index_t iw = w0; iw < w1; ++iw) sum += xp[ih * s.w + iw];
    }
    y[o] = sum / static_cast<float>(s.avg_divisor(oh, ow));
  }
}

__global__ void avg_backward_kernel(const float* gy, float* gx, Pool2dShape s) {
  for (index_t e = global_thread_index(); e < s.in_numel(); e += grid_thread_count()) {
    const index_t iw = e % s.w, ih = (e / s.w) % s.h, plane = e / s.in_plane();
    const index_t out_base = plane * s.out_plane();
    float g = 0.0f;
    for (index_t oh = s.first_oh(ih); oh < s.end_oh(ih); ++oh) {
      for (index_t ow = s.first_ow(iw); ow < s.end_ow(iw); ++ow) {
        g += gy[out_base + oh * s.out_w + ow] / static_cast<float>(s.avg_divisor(oh, ow));
      }
    }
    gx[e] = g;
  }
}

__global__ void global_avg_kernel(const float* x, float* y, Pool2dShape s) {
  const index_t plane = blockIdx.x;
  const float* xp = x + plane * s.in_plane();
  float partial = 0.0f;
  for (index_t i = threadIdx.x; i < s.in_plane(); i += blockDim.x) partial += xp[i];
  const float total = block_reduce::sum(partial);
  if (threadIdx.x == 0) y[plane] = total / static_cast<float>(s.in_plane());
}

__global__ void global_avg_backward_kernel(const float* gy, float* gx, Pool2dShape s) {
  const float inv_size = 1.0f / static_cast<float>(s.in_plane());
  for (index_t e = global_thread_index(); e < s.in_numel(); e += grid_thread_count()) {
    gx[e] = gy[e / s.in_plane()] * inv_size;
  }
}

void check_shape(const Pool2dShape& s, const char* op) {
  if (!s.valid()) throw std::invalid_argument(std::string(op) + ": invalid " + s.describe());
}

}  // namespace

void max_pool2d(const float* x, float* y, std::int32_t* idx, const Pool2dShape& s, Stream stream) {
  check_shape(s, "max_pool2d");
  if (s.in_plane() > INT32_MAX) {
    throw std::invalid_argument("max_pool2d: " + s.describe() +
                                ": a plane exceeds the int32 index range");
  }
  if (s.out_numel() == 0) return;
  GLIA_LAUNCH(max_forward_kernel, grid_stride_blocks(s.out_numel()), kThreadsPerBlock, 0, stream, x,
              y, idx, s);
}

void max_pool2d_backward(const float* gy, const std::int32_t* idx, float* gx, const Pool2dShape& s,
                         Stream stream) {
  check_shape(s, "max_pool2d_backward");
  if (s.in_numel() == 0) return;
  GLIA_LAUNCH(max_backward_kernel, grid_stride_blocks(s.in_numel()), kThreadsPerBlock, 0, stream,
              gy, idx, gx, s);
}

void avg_pool2d(const float* x, float* y, const Pool2dShape& s, Stream stream) {
  check_shape(s, "avg_pool2d");
  if (s.out_numel() == 0) return;
  GLIA_LAUNCH(avg_forward_kernel, grid_stride_blocks(s.out_numel()), kThreadsPerBlock, 0, stream, x,
              y, s);
}

void avg_pool2d_backward(const float* gy, float* gx, const Pool2dShape& s, Stream stream) {
  check_shape(s, "avg_pool2d_backward");
  if (s.in_numel() == 0) return;
  GLIA_LAUNCH(avg_backward_kernel, grid_stride_blocks(s.in_numel()), kThreadsPerBlock, 0, stream,
              gy, gx, s);
}

void global_avg_pool2d(const float* x, float* y, const Pool2dShape& s, Stream stream) {
  if (s.planes() == 0) return;
  if (s.in_plane() == 0) {
    throw std::invalid_argument("global_avg_pool2d: empty planes in " + s.describe());
  }
  if (s.planes() > INT_MAX) {
    throw std::invalid_argument("global_avg_pool2d: " + s.describe() +
                                ": more planes than one launch's grid holds");
  }
  GLIA_LAUNCH(global_avg_kernel, static_cast<unsigned>(s.planes()), kPlaneThreads, 0, stream, x, y,
              s);
}

void global_avg_pool2d_backward(const float* gy, float* gx, const Pool2dShape& s, Stream stream) {
  if (s.in_numel() == 0) return;
  GLIA_LAUNCH(global_avg_backward_kernel, grid_stride_blocks(s.in_numel()), kThreadsPerBlock, 0,
              stream, gy, gx, s);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
