// 2-D convolution forward on tensor cores as an implicit GEMM (kernels/conv_shape.h), with the
// interface of conv.cu's conv2d_forward plus the operand format:
//   y[n, co, oh, ow] = bias[co] + sum_{c, i, j} w[co, c, i, j] * x[n, c, ih, iw]
// viewed as Y (c_out x n * out_h * out_w) = W (c_out x patch) * X_col (patch x n * out_h * out_w),
// patch = c_in kh kw. x and w are float in global memory, rounded to `format` (tf32, bf16, f16)
// on their way into shared memory; FP32 accumulation on mma.sync; the bias is added in float.
// Launch: grid (pixel tiles, c_out tiles) of the 64 x 64 block tile of kernels/cuda/mma_tile.cuh,
// 128 threads: A is the weight rows (k contiguous), B gathers the patch entries of 64 output
// pixels straight from x (each thread one pixel, zero outside the image and beyond the edges).
// Tested in tests/kernels/conv_tc_test.cpp against kernels/cpu/conv.cpp on rounded operands.
#include "kernels/cuda/portable.cuh"

#include <stdexcept>
#include <string>

#include "kernels/conv_shape.h"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/mma_tile.cuh"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

using tc::kBM;
using tc::kBN;
using tc::kLoads;
using tc::kThreads;
constexpr index_t kMaxGridYZ = 65535;

// B's slice: rows are the tile's output pixels, k the patch entries (c, i, j). A thread's
// elements all lie in one pixel's column (the slice's fast dimension is the pixel), whose input
// window is found once.
struct PatchLoader {
  const ConvShape& s;
  const float* x;
  bool inside = false;  // the thread's pixel exists
  index_t n = 0, ih0 = 0, iw0 = 0;

  __device__ PatchLoader(const ConvShape& shape, const float* input, index_t p0)
      : s(shape), x(input) {
    int row = 0, k = 0;
    position(0, row, k);
    const index_t p = p0 + row;
    inside = p < s.n * s.out_plane();
    if (!inside) return;
    n = p / s.out_plane();
    const index_t rest = p % s.out_plane();
    ih0 = rest / s.out_w * s.stride_h - s.pad_h;
    iw0 = rest % s.out_w * s.stride_w - s.pad_w;
  }

  __device__ void position(int e, int& row, int& k) const { tc::slice_position(e, false, row, k); }

  __device__ void load(index_t k0, float (&v)[kLoads]) const {
    const index_t taps = s.kh * s.kw;
    GLIA_UNROLL
    for (int e = 0; e < kLoads; ++e) {
      int row = 0, k = 0;
      position(e, row, k);
      const index_t entry = k0 + k;
      v[e] = 0.0f;
      if (!inside || entry >= s.patch()) continue;
      const index_t c = entry / taps, tap = entry % taps;
      const index_t ih = ih0 + tap / s.kw * s.dil_h, iw = iw0 + tap % s.kw * s.dil_w;
      if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
      v[e] = x[((n * s.c_in + c) * s.h + ih) * s.w + iw];
    }
  }
};

template <TensorFormat F>
__device__ __forceinline__ void conv_tc_block(const ConvShape& s, const float* x, const float* w,
                                              const float* bias, float* y) {
  const index_t p0 = static_cast<index_t>(blockIdx.x) * kBN;
  const index_t co0 = static_cast<index_t>(blockIdx.y) * kBM;
  const index_t pixels = s.n * s.out_plane(), patch = s.patch();
  const tc::MatrixLoader load_w{w + co0 * patch, patch, 1, s.c_out - co0, patch, true};
  const PatchLoader load_x(s, x, p0);
  tc::block_product<F>(load_w, load_x, patch, [&](int m, int col, float acc) {
    const index_t co = co0 + m, p = p0 + col;
    if (co >= s.c_out || p >= pixels) return;
    const index_t n = p / s.out_plane(), rest = p % s.out_plane();
    y[(n * s.c_out + co) * s.out_plane() + rest] = bias != nullptr ? acc + bias[co] : acc;
  });
}

__global__ void __launch_bounds__(kThreads)
    conv2d_forward_tc_tf32_kernel(ConvShape s, const float* x, const float* w, const float* bias,
                                  float* y) {
  conv_tc_block<TensorFormat::tf32>(s, x, w, bias, y);
}
GLIA_LAUNCH_BOUNDS(conv2d_forward_tc_tf32_kernel, kThreads);

__global__ void __launch_bounds__(kThreads)
    conv2d_forward_tc_bf16_kernel(ConvShape s, const float* x, const float* w, const float* bias,
                                  float* y) {
  conv_tc_block<TensorFormat::bf16>(s, x, w, bias, y);
}
GLIA_LAUNCH_BOUNDS(conv2d_forward_tc_bf16_kernel, kThreads);

__global__ void __launch_bounds__(kThreads)
    conv2d_forward_tc_f16_kernel(ConvShape s, const float* x, const float* w, const float* bias,
                                 float* y) {
  conv_tc_block<TensorFormat::f16>(s, x, w, bias, y);
}
GLIA_LAUNCH_BOUNDS(conv2d_forward_tc_f16_kernel, kThreads);

}  // namespace

void conv2d_forward_tc(const ConvShape& s, TensorFormat format, const float* x, const float* w,
                       const float* bias, float* y, Stream stream) {
  if (s.y_numel() == 0) return;
  const index_t pixel_tiles = (s.n * s.out_plane() + kBN - 1) / kBN;
  const index_t channel_tiles = (s.c_out + kBM - 1) / kBM;
  if (pixel_tiles > 0x7fffffff || channel_tiles > kMaxGridYZ || s.patch() > 0x7fffffff - tc::kBK) {
    throw std::invalid_argument("conv2d_forward_tc (" + s.describe() +
                                "): exceeds what one launch indexes");
  }
  const dim3 grid(static_cast<unsigned>(pixel_tiles), static_cast<unsigned>(channel_tiles));
  switch (format) {
    case TensorFormat::tf32:
      GLIA_LAUNCH(conv2d_forward_tc_tf32_kernel, grid, kThreads, 0, stream, s, x, w, bias, y);
      return;
    case TensorFormat::bf16:
      GLIA_LAUNCH(conv2d_forward_tc_bf16_kernel, grid, kThreads, 0, stream, s, x, w, bias, y);
      return;
    case TensorFormat::f16:
      GLIA_LAUNCH(conv2d_forward_tc_f16_kernel, grid, kThreads, 0, stream, s, x, w, bias, y);
      return;
  }
  throw std::invalid_argument("conv2d_forward_tc: unknown tensor format " +
                              std::to_string(static_cast<int>(format)));
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
