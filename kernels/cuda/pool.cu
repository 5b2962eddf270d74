// 2-D pooling over NCHW planes (kernels/types.h Pool2dShape):
// The window kernels run on a 3-D grid: blocks of 8, 16 or 32 columns (the narrowest that covers a
// row) x 256 / that rows tile a plane, z the n * c planes, every dimension grid-striding, so a
// thread's (plane, row, column) needs no division.
//   max_forward_kernel     one thread per output (n, c, oh, ow): the max of its
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
//   global_avg_backward_kernel  2-D grid (plane blocks, planes): gy of its plane / (h * w)
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
constexpr index_t kMaxGridYZ = 65535;

// Calls f(plane, row, col) for every position of [planes, rows, cols] covered by this thread.
template <class F>
__device__ inline void for_each_position(index_t planes, index_t rows, index_t cols, F&& f) {
  for (index_t p = blockIdx.z; p < planes; p += gridDim.z) {
    for (index_t r = static_cast<index_t>(blockIdx.y) * blockDim.y + threadIdx.y; r < rows;
         r += static_cast<index_t>(gridDim.y) * blockDim.y) {
      for (index_t c = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
           c += static_cast<index_t>(gridDim.x) * blockDim.x) {
        f(p, r, c);
      }
    }
  }
}

// The launch of for_each_position over [planes, rows, cols].
struct Tiles {
  dim3 grid, block;
};

index_t clamp_to(index_t v, index_t limit) {
  return v < limit ? v : limit;
}

Tiles tiles(index_t planes, index_t rows, index_t cols) {
  const unsigned bx = cols <= 8 ? 8u : cols <= 16 ? 16u : 32u, by = kThreadsPerBlock / bx;
  Tiles t;
  t.block = dim3(bx, by);
  t.grid =
      dim3(static_cast<unsigned>(clamp_to((cols + bx - 1) / bx, grid_limit(kMaxGridStrideBlocks))),
           static_cast<unsigned>(clamp_to((rows + by - 1) / by, grid_limit(kMaxGridYZ))),
           static_cast<unsigned>(clamp_to(planes, grid_limit(kMaxGridYZ))));
  return t;
}

__device__ inline bool is_nan(float v) {
  return v != v;
}

__device__ inline index_t clip_low(index_t v) {
  return v > 0 ? v : 0;
}
__device__ inline index_t clip_high(index_t v, index_t limit) {
  return v < limit ? v : limit;
}

__global__ void __launch_bounds__(kThreadsPerBlock)
    max_forward_kernel(const float* x, float* y, std::int32_t* idx, Pool2dShape s) {
  for_each_position(s.planes(), s.out_h, s.out_w, [&](index_t plane, index_t oh, index_t ow) {
    const index_t o = (plane * s.out_h + oh) * s.out_w + ow;
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
  });
}
GLIA_LAUNCH_BOUNDS(max_forward_kernel, kThreadsPerBlock);

// The explicit 4 blocks per SM leave ptxas the 48 registers this loop nest takes; with the bound
// alone it aimed at 40 and spilled (sm_90).
__global__ void __launch_bounds__(kThreadsPerBlock, 4)
    max_backward_kernel(const float* gy, const std::int32_t* idx, float* gx, Pool2dShape s) {
  for_each_position(s.planes(), s.h, s.w, [&](index_t plane, index_t ih, index_t iw) {
    const index_t here = ih * s.w + iw, e = plane * s.in_plane() + here;
    const index_t out_base = plane * s.out_plane();
    float g = 0.0f;
    for (index_t oh = s.first_oh(ih); oh < s.end_oh(ih); ++oh) {
      for (index_t ow = s.first_ow(iw); ow < s.end_ow(iw); ++ow) {
        const index_t o = out_base + oh * s.out_w + ow;
        if (idx[o] == here) g += gy[o];
      }
    }
    gx[e] = g;
  });
}
GLIA_LAUNCH_BOUNDS(max_backward_kernel, kThreadsPerBlock);

__global__ void __launch_bounds__(kThreadsPerBlock)
    avg_forward_kernel(const float* x, float* y, Pool2dShape s) {
  for_each_position(s.planes(), s.out_h, s.out_w, [&](index_t plane, index_t oh, index_t ow) {
    const index_t o = (plane * s.out_h + oh) * s.out_w + ow;
    const float* xp = x + plane * s.in_plane();
    const index_t h0 = clip_low(s.window_h0(oh)), h1 = clip_high(s.window_h0(oh) + s.kernel_h, s.h);
    const index_t w0 = clip_low(s.window_w0(ow)), w1 = clip_high(s.window_w0(ow) + s.kernel_w, s.w);
    float sum = 0.0f;
    for (index_t ih = h0; ih < h1; ++ih) {
      for (index_t iw = w0; iw < w1; ++iw) sum += xp[ih * s.w + iw];
    }
    y[o] = sum / static_cast<float>(s.avg_divisor(oh, ow));
  });
}
GLIA_LAUNCH_BOUNDS(avg_forward_kernel, kThreadsPerBlock);

__global__ void __launch_bounds__(kThreadsPerBlock)
    avg_backward_kernel(const float* gy, float* gx, Pool2dShape s) {
  for_each_position(s.planes(), s.h, s.w, [&](index_t plane, index_t ih, index_t iw) {
    const index_t e = plane * s.in_plane() + ih * s.w + iw;
    const index_t out_base = plane * s.out_plane();
    float g = 0.0f;
    for (index_t oh = s.first_oh(ih); oh < s.end_oh(ih); ++oh) {
      for (index_t ow = s.first_ow(iw); ow < s.end_ow(iw); ++ow) {
        g += gy[out_base + oh * s.out_w + ow] / static_cast<float>(s.avg_divisor(oh, ow));
      }
    }
    gx[e] = g;
  });
}
GLIA_LAUNCH_BOUNDS(avg_backward_kernel, kThreadsPerBlock);

__global__ void __launch_bounds__(kPlaneThreads)
    global_avg_kernel(const float* x, float* y, Pool2dShape s) {
  const index_t plane = blockIdx.x;
  const float* xp = x + plane * s.in_plane();
  float partial = 0.0f;
  for (index_t i = threadIdx.x; i < s.in_plane(); i += blockDim.x) partial += xp[i];
  const float total = block_reduce::sum(partial);
  if (threadIdx.x == 0) y[plane] = total / static_cast<float>(s.in_plane());
}
GLIA_LAUNCH_BOUNDS(global_avg_kernel, kPlaneThreads);

__global__ void __launch_bounds__(kThreadsPerBlock)
    global_avg_backward_kernel(const float* gy, float* gx, Pool2dShape s) {
  const float inv_size = 1.0f / static_cast<float>(s.in_plane());
  for (index_t plane = blockIdx.y; plane < s.planes(); plane += gridDim.y) {
    const float g = gy[plane] * inv_size;
    float* gxp = gx + plane * s.in_plane();
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < s.in_plane();
         i += static_cast<index_t>(gridDim.x) * blockDim.x) {
      gxp[i] = g;
    }
  }
}
GLIA_LAUNCH_BOUNDS(global_avg_backward_kernel, kThreadsPerBlock);

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
  const Tiles t = tiles(s.planes(), s.out_h, s.out_w);
  GLIA_LAUNCH(max_forward_kernel, t.grid, t.block, 0, stream, x, y, idx, s);
}

void max_pool2d_backward(const float* gy, const std::int32_t* idx, float* gx, const Pool2dShape& s,
                         Stream stream) {
  check_shape(s, "max_pool2d_backward");
  if (s.in_numel() == 0) return;
  const Tiles t = tiles(s.planes(), s.h, s.w);
  GLIA_LAUNCH(max_backward_kernel, t.grid, t.block, 0, stream, gy, idx, gx, s);
}

void avg_pool2d(const float* x, float* y, const Pool2dShape& s, Stream stream) {
  check_shape(s, "avg_pool2d");
  if (s.out_numel() == 0) return;
  const Tiles t = tiles(s.planes(), s.out_h, s.out_w);
  GLIA_LAUNCH(avg_forward_kernel, t.grid, t.block, 0, stream, x, y, s);
}

void avg_pool2d_backward(const float* gy, float* gx, const Pool2dShape& s, Stream stream) {
  check_shape(s, "avg_pool2d_backward");
  if (s.in_numel() == 0) return;
  const Tiles t = tiles(s.planes(), s.h, s.w);
  GLIA_LAUNCH(avg_backward_kernel, t.grid, t.block, 0, stream, gy, gx, s);
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
  const dim3 grid(grid_stride_blocks(s.in_plane()),
                  static_cast<unsigned>(clamp_to(s.planes(), grid_limit(kMaxGridYZ))));
  GLIA_LAUNCH(global_avg_backward_kernel, grid, kThreadsPerBlock, 0, stream, gy, gx, s);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
