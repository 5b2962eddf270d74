// 2-D convolution (kernels/conv_shape.h) on the device as three shared-memory tiled implicit
// GEMMs; no column matrix is ever stored, each operand tile is gathered into shared memory as it
// is needed (zero in the padding and beyond the edges):
//   forward          y[n, co, oh, ow]: M = c_out, N = n * out_h * out_w, K = c_in * kh * kw;
//                    A = w as a [c_out, K] matrix, B[(c, i, j), (n, oh, ow)] =
//                    x[n, c, oh * stride_h - pad_h + i * dil_h, ow * stride_w - pad_w + j * dil_w]
//   backward data    gx[n, c, h, w]: M = c_in, N = n * h * w, K = c_out * kh * kw;
//                    A[c, (co, i, j)] = w[co, c, i, j], B[(co, i, j), (n, h, w)] = gy[n, co, oh,
//                    ow] where h = oh * stride_h - pad_h + i * dil_h (and likewise w) has a
//                    solution
//   backward filter  gw[co, (c, i, j)]: M = c_out, N = c_in * kh * kw, K = n * out_h * out_w;
//                    A = gy[n, co, oh, ow], B = the forward's B transposed. K is long and M x N
//                    small, so K is split over gridDim.z when a workspace is given: each split
//                    writes its partial product, and a second kernel adds the splits in order.
// Every GEMM launches grid (N tiles, M tiles[, splits]) of 64 x 64 output tiles, 256 threads. Per
// step over K the block stages a 16 x 64 slice of A and of B in shared memory; thread
// (ty, tx) = (t / 16, t % 16) accumulates a 4 x 4 register micro-tile (rows ty + 16 r, cols
// tx + 16 q), as in gemm.cu. The pixel a thread gathers for B is fixed across K steps, so its
// (n, oh, ow) is decoded once. The bias gradient is one block per channel summing in a fixed order.
// Nothing uses float atomics: every result is deterministic. Tested in tests/kernels/conv_test.cpp
// against kernels/cpu/conv.cpp.
#include "kernels/cuda/portable.cuh"

#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

constexpr int kTileM = 64;
constexpr int kTileN = 64;
constexpr int kTileK = 16;
constexpr int kThreadsM = 16;  // ty
constexpr int kThreadsN = 16;  // tx
constexpr int kThreads = kThreadsM * kThreadsN;
constexpr int kMicroM = kTileM / kThreadsM;
constexpr int kMicroN = kTileN / kThreadsN;
constexpr int kLoads = kTileK * kTileM / kThreads;  // slice elements each thread stages (A and B)
constexpr int kRowsPerLoad = kThreads / kTileN;     // k rows of a slice one load step covers
constexpr index_t kMaxGridYZ = 65535;
// The filter gradient splits its reduction until about this many blocks run, each over at least
// this many (n, oh, ow) positions.
constexpr index_t kFilterTargetBlocks = 512;
constexpr index_t kFilterMinSplitDepth = 256;
constexpr int kBiasThreads = 256;

static_assert(kTileM == kTileN, "the slices share one staging pattern");
static_assert(kThreads % kTileN == 0 && kThreads % kTileK == 0, "fixed columns per thread");

using Slice = float[kTileK][kTileN + 1];  // +1: transposed stores spread over all banks

// acc[r][q] += sum_kk a[kk][ty + 16 r] * b[kk][tx + 16 q]
__device__ inline void multiply_slices(const Slice& a, const Slice& b,
                                       float (&acc)[kMicroM][kMicroN], int ty, int tx) {
  for (int kk = 0; kk < kTileK; ++kk) {
    float a_frag[kMicroM], b_frag[kMicroN];
    for (int r = 0; r < kMicroM; ++r) a_frag[r] = a[kk][ty + kThreadsM * r];
    for (int q = 0; q < kMicroN; ++q) b_frag[q] = b[kk][tx + kThreadsN * q];
    for (int r = 0; r < kMicroM; ++r) {
      for (int q = 0; q < kMicroN; ++q) acc[r][q] += a_frag[r] * b_frag[q];
    }
  }
}

// A pixel (n, row, col) of an [n, rows, cols] grid, from its flat index.
struct Pixel {
  index_t n, row, col;
};
__device__ inline Pixel decode_pixel(index_t p, index_t rows, index_t cols) {
  const index_t plane = rows * cols, r = p % plane;
  return {p / plane, r / cols, r % cols};
}

// --- forward --------------------------------------------------------------------------------

__global__ void conv2d_forward_kernel(ConvShape s, const float* x, const float* w,
                                      const float* bias, float* y) {
  __shared__ Slice w_slice;  // w_slice[kk][mm] = w[m0 + mm, k0 + kk]
  __shared__ Slice x_slice;  // x_slice[kk][pp] = B[k0 + kk, p0 + pp]
  const int t = threadIdx.x, ty = t / kThreadsN, tx = t % kThreadsN;
  const index_t p0 = static_cast<index_t>(blockIdx.x) * kTileN;
  const index_t m0 = static_cast<index_t>(blockIdx.y) * kTileM;
  const int patch = static_cast<int>(s.patch()), taps = static_cast<int>(s.kh * s.kw);
  const index_t outputs = s.n * s.out_plane();

  // The B column this thread gathers, the same at every K step.
  const int pp = t % kTileN;
  const bool p_valid = p0 + pp < outputs;
  const Pixel out = decode_pixel(p_valid ? p0 + pp : 0, s.out_h, s.out_w);
  const index_t h0 = out.row * s.stride_h - s.pad_h, w0 = out.col * s.stride_w - s.pad_w;
  const float* xn = x + out.n * s.c_in * s.in_plane();

  float acc[kMicroM][kMicroN] = {};
  for (int k0 = 0; k0 < patch; k0 += kTileK) {
    for (int l = 0; l < kLoads; ++l) {
      // Consecutive threads read consecutive k of a weight row.
      const int e = t + l * kThreads, mm = e / kTileK, kk = e % kTileK;
      const index_t m = m0 + mm;
      const int k = k0 + kk;
      w_slice[kk][mm] = m < s.c_out && k < patch ? w[m * patch + k] : 0.0f;
    }
    for (int l = 0; l < kLoads; ++l) {
      const int kk = t / kTileN + l * kRowsPerLoad, k = k0 + kk;
      float v = 0.0f;
      if (p_valid && k < patch) {
        const int c = k / taps, i = k % taps / static_cast<int>(s.kw),
                  j = k % static_cast<int>(s.kw);
        const index_t h = h0 + i * s.dil_h, wi = w0 + j * s.dil_w;
        if (h >= 0 && h < s.h && wi >= 0 && wi < s.w) v = xn[(c * s.h + h) * s.w + wi];
      }
      x_slice[kk][pp] = v;
    }
    __syncthreads();
    multiply_slices(w_slice, x_slice, acc, ty, tx);
    __syncthreads();  // the slices are restaged next step
  }

  for (int r = 0; r < kMicroM; ++r) {
    const index_t co = m0 + ty + kThreadsM * r;
    if (co >= s.c_out) continue;
    const float b = bias != nullptr ? bias[co] : 0.0f;
    for (int q = 0; q < kMicroN; ++q) {
      const index_t p = p0 + tx + kThreadsN * q;
      if (p >= outputs) continue;
      const index_t n = p / s.out_plane(), hw = p % s.out_plane();
      y[(n * s.c_out + co) * s.out_plane() + hw] = acc[r][q] + b;
    }
  }
}

// --- backward data ----------------------------------------------------------------------------

__global__ void conv2d_backward_data_kernel(ConvShape s, const float* gy, const float* w,
                                            float* gx) {
  __shared__ Slice w_slice;   // w_slice[kk][mm] = w[co, c = m0 + mm, i, j], (co, i, j) = k0 + kk
  __shared__ Slice gy_slice;  // gy_slice[kk][qq] = B[k0 + kk, q0 + qq]
  const int t = threadIdx.x, ty = t / kThreadsN, tx = t % kThreadsN;
  const index_t q0 = static_cast<index_t>(blockIdx.x) * kTileN;
  const index_t m0 = static_cast<index_t>(blockIdx.y) * kTileM;
  const int taps = static_cast<int>(s.kh * s.kw), depth = static_cast<int>(s.c_out) * taps;
  const index_t pixels = s.n * s.in_plane();

  // The input pixel this thread gathers gradients for, the same at every K step.
  const int qq = t % kTileN;
  const bool q_valid = q0 + qq < pixels;
  const Pixel in = decode_pixel(q_valid ? q0 + qq : 0, s.h, s.w);
  const index_t hp = in.row + s.pad_h, wp = in.col + s.pad_w;  // in padded coordinates
  const float* gyn = gy + in.n * s.c_out * s.out_plane();

  float acc[kMicroM][kMicroN] = {};
  for (int k0 = 0; k0 < depth; k0 += kTileK) {
    for (int l = 0; l < kLoads; ++l) {
      const int e = t + l * kThreads, mm = e / kTileK, kk = e % kTileK, k = k0 + kk;
      const index_t c = m0 + mm;
      float v = 0.0f;
      if (c < s.c_in && k < depth) {
        const int co = k / taps, ij = k % taps;
        v = w[(co * s.c_in + c) * taps + ij];
      }
      w_slice[kk][mm] = v;
    }
    for (int l = 0; l < kLoads; ++l) {
      const int kk = t / kTileN + l * kRowsPerLoad, k = k0 + kk;
      float v = 0.0f;
      if (q_valid && k < depth) {
        const int co = k / taps, i = k % taps / static_cast<int>(s.kw),
                  j = k % static_cast<int>(s.kw);
        // Tap (i, j) of output (oh, ow) reads this pixel when oh * stride = hp - i * dil.
        const index_t dh = hp - i * s.dil_h, dw = wp - j * s.dil_w;
        if (dh >= 0 && dw >= 0 && dh % s.stride_h == 0 && dw % s.stride_w == 0) {
          const index_t oh = dh / s.stride_h, ow = dw / s.stride_w;
          if (oh < s.out_h && ow < s.out_w) v = gyn[(co * s.out_h + oh) * s.out_w + ow];
        }
      }
      gy_slice[kk][qq] = v;
    }
    __syncthreads();
    multiply_slices(w_slice, gy_slice, acc, ty, tx);
    __syncthreads();
  }

  for (int r = 0; r < kMicroM; ++r) {
    const index_t c = m0 + ty + kThreadsM * r;
    if (c >= s.c_in) continue;
    for (int q = 0; q < kMicroN; ++q) {
      const index_t p = q0 + tx + kThreadsN * q;
      if (p >= pixels) continue;
      const index_t n = p / s.in_plane(), hw = p % s.in_plane();
      gx[(n * s.c_in + c) * s.in_plane() + hw] = acc[r][q];
    }
  }
}

// --- backward filter ----------------------------------------------------------------------------

// The split of the filter gradient's reduction over n * out_h * out_w: gridDim.z splits of
// `depth` positions each (a multiple of kTileK).
struct FilterSplit {
  index_t splits = 1;
  index_t depth = 0;
};

FilterSplit filter_split(const ConvShape& s) {
  const index_t outputs = s.n * s.out_plane();
  const index_t tiles = ((s.c_out + kTileM - 1) / kTileM) * ((s.patch() + kTileN - 1) / kTileN);
  index_t splits = (kFilterTargetBlocks + tiles - 1) / tiles;
  const index_t by_depth = (outputs + kFilterMinSplitDepth - 1) / kFilterMinSplitDepth;
  if (splits > by_depth) splits = by_depth;
  if (splits > kMaxGridYZ) splits = kMaxGridYZ;
  if (splits < 1) splits = 1;
  const index_t per_split = (outputs + splits - 1) / splits;
  return {splits, (per_split + kTileK - 1) / kTileK * kTileK};
}

// out[z][co][(c, i, j)] = sum over this split's positions of gy[n, co, oh, ow] * B; with one
// split `out` is gw itself.
__global__ void conv2d_backward_filter_kernel(ConvShape s, const float* x, const float* gy,
                                              float* out, index_t split_depth) {
  __shared__ Slice gy_slice;  // gy_slice[kk][mm] = gy at position k0 + kk, channel m0 + mm
  __shared__ Slice x_slice;   // x_slice[kk][nn] = B[(c, i, j) = n0 + nn, position k0 + kk]
  const int t = threadIdx.x, ty = t / kThreadsN, tx = t % kThreadsN;
  const index_t n0 = static_cast<index_t>(blockIdx.x) * kTileN;
  const index_t m0 = static_cast<index_t>(blockIdx.y) * kTileM;
  const int patch = static_cast<int>(s.patch()), taps = static_cast<int>(s.kh * s.kw);
  const index_t outputs = s.n * s.out_plane();
  const index_t k_begin = static_cast<index_t>(blockIdx.z) * split_depth;
  const index_t k_end = k_begin + split_depth < outputs ? k_begin + split_depth : outputs;

  // Consecutive threads take consecutive positions (coalesced gy and x reads): the position
  // column kk is the same in every load, the patch entries nn = t / 16 + 16 l are fixed too.
  const int kk = t % kTileK;
  int tap_c[kLoads], tap_i[kLoads], tap_j[kLoads];
  for (int l = 0; l < kLoads; ++l) {
    const int k = static_cast<int>(n0) + t / kTileK + l * (kThreads / kTileK);
    tap_c[l] = k < patch ? k / taps : -1;
    tap_i[l] = k % taps / static_cast<int>(s.kw);
    tap_j[l] = k % static_cast<int>(s.kw);
  }

  float acc[kMicroM][kMicroN] = {};
  for (index_t k0 = k_begin; k0 < k_end; k0 += kTileK) {
    const index_t p = k0 + kk;
    const bool p_valid = p < k_end;
    const Pixel out_px = decode_pixel(p_valid ? p : 0, s.out_h, s.out_w);
    const index_t h0 = out_px.row * s.stride_h - s.pad_h, w0 = out_px.col * s.stride_w - s.pad_w;
    const float* gyn = gy + out_px.n * s.c_out * s.out_plane() + out_px.row * s.out_w + out_px.col;
    const float* xn = x + out_px.n * s.c_in * s.in_plane();
    for (int l = 0; l < kLoads; ++l) {
      const int mm = t / kTileK + l * (kThreads / kTileK);
      const index_t co = m0 + mm;
      gy_slice[kk][mm] = p_valid && co < s.c_out ? gyn[co * s.out_plane()] : 0.0f;
    }
    for (int l = 0; l < kLoads; ++l) {
      const int nn = t / kTileK + l * (kThreads / kTileK);
      float v = 0.0f;
      if (p_valid && tap_c[l] >= 0) {
        const index_t h = h0 + tap_i[l] * s.dil_h, wi = w0 + tap_j[l] * s.dil_w;
        if (h >= 0 && h < s.h && wi >= 0 && wi < s.w) v = xn[(tap_c[l] * s.h + h) * s.w + wi];
      }
      x_slice[kk][nn] = v;
    }
    __syncthreads();
    multiply_slices(gy_slice, x_slice, acc, ty, tx);
    __syncthreads();
  }

  float* out_split = out + static_cast<index_t>(blockIdx.z) * s.w_numel();
  for (int r = 0; r < kMicroM; ++r) {
    const index_t co = m0 + ty + kThreadsM * r;
    if (co >= s.c_out) continue;
    for (int q = 0; q < kMicroN; ++q) {
      const index_t k = n0 + tx + kThreadsN * q;
      if (k < patch) out_split[co * patch + k] = acc[r][q];
    }
  }
}

// gw[e] = sum_z partial[z][e], z in order. Grid-stride over the weight's elements.
__global__ void sum_filter_splits_kernel(const float* partial, float* gw, index_t numel,
                                         index_t splits) {
  for (index_t e = global_thread_index(); e < numel; e += grid_thread_count()) {
    float total = 0.0f;
    for (index_t z = 0; z < splits; ++z) total += partial[z * numel + e];
    gw[e] = total;
  }
}

// --- backward bias -------------------------------------------------------------------------------

// gb[co] for co = blockIdx.x: each thread sums a strided share of the channel's planes, then a
// shared-memory tree adds the shares in a fixed order.
__global__ void conv2d_backward_bias_kernel(ConvShape s, const float* gy, float* gb) {
  __shared__ float shares[kBiasThreads];
  const int t = threadIdx.x;
  const index_t co = blockIdx.x;
  float total = 0.0f;
  for (index_t n = 0; n < s.n; ++n) {
    const float* plane = gy + (n * s.c_out + co) * s.out_plane();
    for (index_t e = t; e < s.out_plane(); e += kBiasThreads) total += plane[e];
  }
  shares[t] = total;
  __syncthreads();
  for (int half = kBiasThreads / 2; half > 0; half /= 2) {
    if (t < half) shares[t] += shares[t + half];
    __syncthreads();
  }
  if (t == 0) gb[co] = shares[0];
}

// --- launch checks
// --------------------------------------------------------------------------------

[[noreturn]] void too_large(const char* pass, const ConvShape& s, const std::string& what) {
  throw std::invalid_argument(std::string(pass) + " (" + s.describe() + "): " + what +
                              " exceeds what one launch of the native kernel indexes");
}

// The tile counts along the grid's x (up to 2^31 - 1) and y (up to 65535) dimensions, and the
// K-decoding ints, checked.
dim3 gemm_grid(const char* pass, const ConvShape& s, index_t cols, index_t rows, index_t depth) {
  const index_t x_tiles = (cols + kTileN - 1) / kTileN, y_tiles = (rows + kTileM - 1) / kTileM;
  if (x_tiles > INT_MAX) too_large(pass, s, "the column count " + std::to_string(cols));
  if (y_tiles > kMaxGridYZ) too_large(pass, s, "the row count " + std::to_string(rows));
  if (depth > INT_MAX - kTileK) too_large(pass, s, "the reduction " + std::to_string(depth));
  return dim3(static_cast<unsigned>(x_tiles), static_cast<unsigned>(y_tiles), 1);
}

}  // namespace

void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                    Stream stream) {
  if (s.y_numel() == 0) return;
  const dim3 grid = gemm_grid("conv2d forward", s, s.n * s.out_plane(), s.c_out, s.patch());
  GLIA_LAUNCH(conv2d_forward_kernel, grid, kThreads, 0, stream, s, x, w, bias, y);
}

void conv2d_backward_data(const ConvShape& s, const float* gy, const float* w, float* gx,
                          Stream stream) {
  if (s.x_numel() == 0) return;
  const dim3 grid =
      gemm_grid("conv2d backward data", s, s.n * s.in_plane(), s.c_in, s.c_out * s.kh * s.kw);
  GLIA_LAUNCH(conv2d_backward_data_kernel, grid, kThreads, 0, stream, s, gy, w, gx);
}

index_t conv2d_backward_filter_workspace_size(const ConvShape& s) {
  const FilterSplit split = filter_split(s);
  return split.splits > 1 ? split.splits * s.w_numel() : 0;
}

void conv2d_backward_filter(const ConvShape& s, const float* x, const float* gy, float* gw,
                            float* workspace, Stream stream) {
  if (s.w_numel() == 0) return;
  dim3 grid = gemm_grid("conv2d backward filter", s, s.patch(), s.c_out, s.patch());
  FilterSplit split = filter_split(s);
  if (workspace == nullptr || split.splits == 1) {
    // One block covers the whole reduction (an empty one writes zeros).
    split = {1, s.n * s.out_plane()};
  }
  grid.z = static_cast<unsigned>(split.splits);
  float* out = split.splits > 1 ? workspace : gw;
  GLIA_LAUNCH(conv2d_backward_filter_kernel, grid, kThreads, 0, stream, s, x, gy, out, split.depth);
  if (split.splits > 1) {
    GLIA_LAUNCH(sum_filter_splits_kernel, grid_stride_blocks(s.w_numel()), kThreadsPerBlock, 0,
                stream, workspace, gw, s.w_numel(), split.splits);
  }
}

void conv2d_backward_bias(const ConvShape& s, const float* gy, float* gb, Stream stream) {
  if (s.c_out == 0) return;
  if (s.c_out > INT_MAX) too_large("conv2d backward bias", s, "the channel count");
  GLIA_LAUNCH(conv2d_backward_bias_kernel, static_cast<unsigned>(s.c_out), kBiasThreads, 0, stream,
              s, gy, gb);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
