// 2-D convolution on tensor cores as implicit GEMMs (kernels/conv_shape.h), with the interfaces of
// conv.cu's three passes plus the operand format; x, w and gy are float in global memory, rounded
// to `format` (tf32, bf16, f16) on their way into shared memory; FP32 accumulation on mma.sync.
// Every pass is the 64 x 64 block tile of kernels/cuda/mma_tile.cuh (128 threads) with its own
// loaders, on a grid (N tiles, M tiles), and overwrites its output whole:
//   forward          y[n, co, oh, ow] = bias[co] + sum_{c, i, j} w[co, c, i, j] x[n, c, ih, iw]:
//                    M = c_out, N = n out_h out_w, K = patch = c_in kh kw; A = the weight rows
//                    (k contiguous), B gathers the patch entries of 64 output pixels straight
//                    from x (each thread one pixel, zero outside the image and beyond the edges);
//                    the bias is added in float.
//   backward data    gx[n, c, h, w] = sum_{co, i, j} w[co, c, i, j] gy[n, co, oh, ow] over the
//                    taps with h + pad_h - i dil_h = oh stride_h, 0 <= oh < out_h (and likewise
//                    w): M = c_in, N = n h w, K = c_out kh kw; A[c, (co, i, j)] = w[co, c, i, j],
//                    B gathers gy for 64 input pixels (each thread one pixel), zero for the taps
//                    that do not hit (a strided pass multiplies those zeros: no phase split).
//   backward filter  gw[co, c, i, j] = sum_{n, oh, ow} gy[n, co, oh, ow] x[n, c, ih, iw]:
//                    M = c_out, N = patch, K = n out_h out_w; A = gy's rows, B = the forward's B
//                    transposed. One block per output tile runs the whole reduction (no split,
//                    no workspace).
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

// The input window of output position p = (n, oh, ow): its image and top-left corner.
struct Window {
  index_t n, ih0, iw0;
};

__device__ __forceinline__ Window window_of(const ConvShape& s, index_t p) {
  const index_t rest = p % s.out_plane();
  return {p / s.out_plane(), rest / s.out_w * s.stride_h - s.pad_h,
          rest % s.out_w * s.stride_w - s.pad_w};
}

// x[n, c, ih0 + i * dil_h, iw0 + j * dil_w] for the patch entry (c, i, j) of window wd; zero in the
// padding.
__device__ __forceinline__ float patch_value(const ConvShape& s, const float* x, const Window& wd,
                                             index_t entry) {
  const index_t taps = s.kh * s.kw;
  const index_t c = entry / taps, tap = entry % taps;
  const index_t ih = wd.ih0 + tap / s.kw * s.dil_h, iw = wd.iw0 + tap % s.kw * s.dil_w;
  if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) return 0.0f;
  return x[((wd.n * s.c_in + c) * s.h + ih) * s.w + iw];
}

// B's slice: rows are the tile's output pixels, k the patch entries (c, i, j). A thread's
// elements all lie in one pixel's column (the slice's fast dimension is the pixel), whose input
// window is found once.
struct PatchLoader {
  const ConvShape& s;
  const float* x;
  bool inside = false;  // the thread's pixel exists
  Window wd{0, 0, 0};

  __device__ PatchLoader(const ConvShape& shape, const float* input, index_t p0)
      : s(shape), x(input) {
    int row = 0, k = 0;
    position(0, row, k);
    const index_t p = p0 + row;
    inside = p < s.n * s.out_plane();
    if (inside) wd = window_of(s, p);
  }

  __device__ void position(int e, int& row, int& k) const { tc::slice_position(e, false, row, k); }

  __device__ void load(index_t k0, float (&v)[kLoads]) const {
    GLIA_UNROLL
    for (int e = 0; e < kLoads; ++e) {
      int row = 0, k = 0;
      position(e, row, k);
      const index_t entry = k0 + k;
      v[e] = inside && entry < s.patch() ? patch_value(s, x, wd, entry) : 0.0f;
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

// --- backward data ----------------------------------------------------------------------------

// A of the data gradient: rows are input channels c, k the (co, i, j) entries; w[co, c, i, j].
// A thread's k is fixed within a slice (k is the slice's fast dimension), so it decodes co and the
// tap once per slice.
struct WeightTLoader {
  const float* w;  // at input channel c0
  index_t rows, taps, patch, depth;

  __device__ void position(int e, int& row, int& k) const { tc::slice_position(e, true, row, k); }

  __device__ void load(index_t k0, float (&v)[kLoads]) const {
    int row = 0, k = 0;
    position(0, row, k);
    const index_t entry = k0 + k;
    const bool valid = entry < depth;
    const index_t base = valid ? entry / taps * patch + entry % taps : 0;
    GLIA_UNROLL
    for (int e = 0; e < kLoads; ++e) {
      position(e, row, k);
      v[e] = valid && row < rows ? w[base + row * taps] : 0.0f;
    }
  }
};

// B of the data gradient: rows are the tile's input pixels (n, h, w), k the (co, i, j) entries;
// gy[n, co, oh, ow] where the tap hits, else zero. Each thread gathers for one pixel.
struct GradOutputLoader {
  const ConvShape& s;
  const float* gy;
  bool inside = false;            // the thread's pixel exists
  index_t n = 0, hp = 0, wp = 0;  // the pixel's image and h + pad_h, w + pad_w

  __device__ GradOutputLoader(const ConvShape& shape, const float* grad, index_t p0)
      : s(shape), gy(grad) {
    int row = 0, k = 0;
    position(0, row, k);
    const index_t p = p0 + row;
    inside = p < s.n * s.in_plane();
    if (!inside) return;
    n = p / s.in_plane();
    const index_t rest = p % s.in_plane();
    hp = rest / s.w + s.pad_h;
    wp = rest % s.w + s.pad_w;
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
      if (!inside || entry >= s.c_out * taps) continue;
      const index_t co = entry / taps, tap = entry % taps;
      const index_t th = hp - tap / s.kw * s.dil_h, tw = wp - tap % s.kw * s.dil_w;
      if (th < 0 || tw < 0 || th % s.stride_h != 0 || tw % s.stride_w != 0) continue;
      const index_t oh = th / s.stride_h, ow = tw / s.stride_w;
      if (oh >= s.out_h || ow >= s.out_w) continue;
      v[e] = gy[((n * s.c_out + co) * s.out_h + oh) * s.out_w + ow];
    }
  }
};

template <TensorFormat F>
__device__ __forceinline__ void data_tc_block(const ConvShape& s, const float* gy, const float* w,
                                              float* gx) {
  const index_t p0 = static_cast<index_t>(blockIdx.x) * kBN;
  const index_t c0 = static_cast<index_t>(blockIdx.y) * kBM;
  const index_t pixels = s.n * s.in_plane(), taps = s.kh * s.kw, depth = s.c_out * taps;
  const WeightTLoader load_w{w + c0 * taps, s.c_in - c0, taps, s.patch(), depth};
  const GradOutputLoader load_gy(s, gy, p0);
  tc::block_product<F>(load_w, load_gy, depth, [&](int m, int col, float acc) {
    const index_t c = c0 + m, p = p0 + col;
    if (c >= s.c_in || p >= pixels) return;
    const index_t n = p / s.in_plane(), rest = p % s.in_plane();
    gx[(n * s.c_in + c) * s.in_plane() + rest] = acc;
  });
}

// --- backward filter --------------------------------------------------------------------------

// A of the filter gradient: rows are output channels co, k the positions q = (n, oh, ow);
// gy[n, co, oh, ow]. A thread's q is fixed within a slice and decoded once.
struct GradRowsLoader {
  const ConvShape& s;
  const float* gy;  // at output channel co0
  index_t rows;

  __device__ void position(int e, int& row, int& k) const { tc::slice_position(e, true, row, k); }

  __device__ void load(index_t k0, float (&v)[kLoads]) const {
    int row = 0, k = 0;
    position(0, row, k);
    const index_t q = k0 + k;
    const bool valid = q < s.n * s.out_plane();
    const index_t base =
        valid ? q / s.out_plane() * s.c_out * s.out_plane() + q % s.out_plane() : 0;
    GLIA_UNROLL
    for (int e = 0; e < kLoads; ++e) {
      position(e, row, k);
      v[e] = valid && row < rows ? gy[base + row * s.out_plane()] : 0.0f;
    }
  }
};

// B of the filter gradient: rows are the patch entries (c, i, j), k the positions (n, oh, ow);
// x[n, c, ih, iw], zero outside the image. A thread's position is fixed within a slice and
// decoded once; its rows are decoded per element.
struct PatchRowsLoader {
  const ConvShape& s;
  const float* x;
  index_t e0;  // the tile's first patch entry

  __device__ void position(int e, int& row, int& k) const { tc::slice_position(e, true, row, k); }

  __device__ void load(index_t k0, float (&v)[kLoads]) const {
    int row = 0, k = 0;
    position(0, row, k);
    const index_t q = k0 + k;
    const bool valid = q < s.n * s.out_plane();
    const Window wd = window_of(s, q);
    GLIA_UNROLL
    for (int e = 0; e < kLoads; ++e) {
      position(e, row, k);
      const index_t entry = e0 + row;
      v[e] = valid && entry < s.patch() ? patch_value(s, x, wd, entry) : 0.0f;
    }
  }
};

template <TensorFormat F>
__device__ __forceinline__ void filter_tc_block(const ConvShape& s, const float* x, const float* gy,
                                                float* gw) {
  const index_t e0 = static_cast<index_t>(blockIdx.x) * kBN;
  const index_t co0 = static_cast<index_t>(blockIdx.y) * kBM;
  const index_t patch = s.patch();
  const GradRowsLoader load_gy{s, gy + co0 * s.out_plane(), s.c_out - co0};
  const PatchRowsLoader load_x{s, x, e0};
  tc::block_product<F>(load_gy, load_x, s.n * s.out_plane(), [&](int m, int col, float acc) {
    const index_t co = co0 + m, entry = e0 + col;
    if (co >= s.c_out || entry >= patch) return;
    gw[co * patch + entry] = acc;
  });
}

// --- kernels ----------------------------------------------------------------------------------

template <TensorFormat F>
__global__ void __launch_bounds__(kThreads)
    conv2d_forward_tc_kernel(ConvShape s, const float* x, const float* w, const float* bias,
                             float* y) {
  conv_tc_block<F>(s, x, w, bias, y);
}
GLIA_LAUNCH_BOUNDS(conv2d_forward_tc_kernel<TensorFormat::tf32>, kThreads);
GLIA_LAUNCH_BOUNDS(conv2d_forward_tc_kernel<TensorFormat::bf16>, kThreads);
GLIA_LAUNCH_BOUNDS(conv2d_forward_tc_kernel<TensorFormat::f16>, kThreads);

template <TensorFormat F>
__global__ void __launch_bounds__(kThreads)
    conv2d_backward_data_tc_kernel(ConvShape s, const float* gy, const float* w, float* gx) {
  data_tc_block<F>(s, gy, w, gx);
}
GLIA_LAUNCH_BOUNDS(conv2d_backward_data_tc_kernel<TensorFormat::tf32>, kThreads);
GLIA_LAUNCH_BOUNDS(conv2d_backward_data_tc_kernel<TensorFormat::bf16>, kThreads);
GLIA_LAUNCH_BOUNDS(conv2d_backward_data_tc_kernel<TensorFormat::f16>, kThreads);

template <TensorFormat F>
__global__ void __launch_bounds__(kThreads)
    conv2d_backward_filter_tc_kernel(ConvShape s, const float* x, const float* gy, float* gw) {
  filter_tc_block<F>(s, x, gy, gw);
}
GLIA_LAUNCH_BOUNDS(conv2d_backward_filter_tc_kernel<TensorFormat::tf32>, kThreads);
GLIA_LAUNCH_BOUNDS(conv2d_backward_filter_tc_kernel<TensorFormat::bf16>, kThreads);
GLIA_LAUNCH_BOUNDS(conv2d_backward_filter_tc_kernel<TensorFormat::f16>, kThreads);

// The grid of a pass: x over the N tiles, y over the M tiles.
dim3 tc_grid(const char* pass, const ConvShape& s, index_t n, index_t m, index_t depth) {
  const index_t n_tiles = (n + kBN - 1) / kBN, m_tiles = (m + kBM - 1) / kBM;
  if (n_tiles > 0x7fffffff || m_tiles > kMaxGridYZ || depth > 0x7fffffff - tc::kBK) {
    throw std::invalid_argument(std::string(pass) + " (" + s.describe() +
                                "): exceeds what one launch indexes");
  }
  return dim3(static_cast<unsigned>(n_tiles), static_cast<unsigned>(m_tiles));
}

}  // namespace

void conv2d_forward_tc(const ConvShape& s, TensorFormat format, const float* x, const float* w,
                       const float* bias, float* y, Stream stream) {
  if (s.y_numel() == 0) return;
  const dim3 grid = tc_grid("conv2d_forward_tc", s, s.n * s.out_plane(), s.c_out, s.patch());
  tc::with_format("conv2d_forward_tc", format, [&](auto f) {
    GLIA_LAUNCH(conv2d_forward_tc_kernel<decltype(f)::value>, grid, kThreads, 0, stream, s, x, w,
                bias, y);
  });
}

void conv2d_backward_data_tc(const ConvShape& s, TensorFormat format, const float* gy,
                             const float* w, float* gx, Stream stream) {
  if (s.x_numel() == 0) return;
  const dim3 grid =
      tc_grid("conv2d_backward_data_tc", s, s.n * s.in_plane(), s.c_in, s.c_out * s.kh * s.kw);
  tc::with_format("conv2d_backward_data_tc", format, [&](auto f) {
    GLIA_LAUNCH(conv2d_backward_data_tc_kernel<decltype(f)::value>, grid, kThreads, 0, stream, s,
                gy, w, gx);
  });
}

void conv2d_backward_filter_tc(const ConvShape& s, TensorFormat format, const float* x,
                               const float* gy, float* gw, Stream stream) {
  if (s.w_numel() == 0) return;
  const dim3 grid =
      tc_grid("conv2d_backward_filter_tc", s, s.patch(), s.c_out, s.n * s.out_plane());
  tc::with_format("conv2d_backward_filter_tc", format, [&](auto f) {
    GLIA_LAUNCH(conv2d_backward_filter_tc_kernel<decltype(f)::value>, grid, kThreads, 0, stream, s,
                x, gy, gw);
  });
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
