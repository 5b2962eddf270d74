// 2-D convolution (kernels/conv_shape.h) on the device as three implicit GEMMs on the block tile of
// kernels/cuda/gemm_tile.cuh (128 x 128 outputs per 256-thread block, or 64 x 128 per 128-thread
// block where the GEMM's M is at most 64; 8 x 8 register tiles, two cp.async stages of K = 8); no
// column matrix is stored, each operand tile is gathered into shared memory as it is needed (zero
// in the padding and beyond the edges):
//   forward          y[n, co, oh, ow]: M = c_out, N = n * out_h * out_w, K = c_in * kh * kw;
//                    A = w as a [c_out, K] matrix, B[(c, i, j), (n, oh, ow)] =
//                    x[n, c, oh * stride_h - pad_h + i * dil_h, ow * stride_w - pad_w + j * dil_w]
//   backward data    gx[n, c, h, w], one GEMM per stride phase (ph, pw) = ((h + pad_h) % stride_h,
//                    (w + pad_w) % stride_w): only the taps i with i * dil_h = ph (mod stride_h)
//                    (and likewise j) reach a pixel of the phase, each through the one output row
//                    oh = (h + pad_h - i * dil_h) / stride_h. So M = c_in, N = the phase's pixels,
//                    K = c_out * (its taps along h) * (its taps along w), A[c, (co, ti, tj)] =
//                    w[co, c, i, j], B[(co, ti, tj), (n, h, w)] = gy[n, co, oh, ow]: no product
//                    with a structural zero. A ConvTranspose2d with kernel == stride (and no
//                    dilation) becomes stride_h * stride_w independent GEMMs with K = c_out (one
//                    tap each).
//   backward filter  gw[co, (c, i, j)]: M = c_out, N = c_in * kh * kw, K = n * out_h * out_w;
//                    A = gy[n, co, oh, ow], B = the forward's B transposed. K is long and M x N
//                    small, so K is split over gridDim.z when a workspace is given: each split
//                    writes its partial product, and a second kernel adds the splits in order.
// Grids are (N tiles, M tiles, phases or splits). The K walk uses stepping counters over (c, i, j),
// (co, ti, tj) or (n, oh, ow) (tile::Counter3): the divisions happen once per thread, not per
// element. The bias gradient is the per-channel sum of kernels/cuda/batchnorm.cu (channel_sum):
// each channel's n * out_h * out_w values are cut into chunks, one block each, whose partial sums
// a second kernel adds in a fixed order, so a 1-channel head's gradient does not run on one SM.
// Nothing uses float atomics: every result is deterministic. Tested in
// tests/kernels/conv_test.cpp against kernels/cpu/conv.cpp.
#include "kernels/cuda/portable.cuh"

#include <climits>
#include <stdexcept>
#include <string>

#include "kernels/cuda/gemm_tile.cuh"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

using tile::advance;
using tile::Counter3;
using tile::digits_of;
using tile::increment;
using tile::kK;
using tile::kMicro;
using tile::kN;
using tile::kThreadsOf;
using tile::micro_index;
constexpr index_t kMaxGridYZ = 65535;
// The filter gradient splits its reduction until about this many blocks run, each over at least
// this many (n, oh, ow) positions.
constexpr index_t kFilterTargetBlocks = 512;
constexpr index_t kFilterMinSplitDepth = 256;
// B's staging pattern in the forward and backward-data passes: thread t gathers column t % 128 of
// the tile and K rows kRowsPerThread * (t / 128) + {0 .. kRowsPerThread - 1} (4 rows with the
// 256 threads of the 128-row tile, all 8 with the 128 of the 64-row one).
template <int M>
inline constexpr int kRowsPerThread = kK* kN / kThreadsOf<M>;
static_assert(kThreadsOf<tile::kSmallM> % kN == 0 && kRowsPerThread<tile::kM> * 2 == kK &&
                  kRowsPerThread<tile::kSmallM> == kK,
              "B's pattern");
// A's and the filter gradient's pattern: thread t takes K column t % 8 and rows
// t / 8 + kRowGroup l: M / kRowGroup = 4 rows of A, kN / kRowGroup (4 or 8) of the filter's B.
template <int M>
inline constexpr int kRowGroup = kThreadsOf<M> / kK;
template <int M>
inline constexpr int kFilterRows = kN / kRowGroup<M>;
static_assert(tile::kM / kRowGroup<tile::kM> == 4 && tile::kSmallM / kRowGroup<tile::kSmallM> == 4,
              "four rows of A per thread");

// --- forward --------------------------------------------------------------------------------

// Stages A (the weights, a K-contiguous matrix) and gathers B for the thread's output column.
template <int M>
struct ForwardLoader {
  tile::OperandLoader<M, kThreadsOf<M>> w;
  const float* x;   // any valid address, for copies that only zero-fill
  const float* xn;  // the image of the thread's column
  int col, row0;    // the thread's B column and first K row
  bool col_valid;
  int h0, w0;  // the column's top-left input coordinate
  int c_in, h, wd, kh, kw, dil_h, dil_w;
  Counter3 tap;   // (c, i, j) of K row k0 + row0
  Counter3 step;  // kK as (c, i, j) digits

  __device__ __forceinline__ void operator()(tile::Stage<M>& stage) {
    w(stage.a);
    Counter3 k = tap;
    for (int l = 0; l < kRowsPerThread<M>; ++l) {
      const int hi = h0 + k.mid * dil_h, wi = w0 + k.lo * dil_w;
      const bool valid = col_valid && k.hi < c_in && hi >= 0 && hi < h && wi >= 0 && wi < wd;
      const float* src = valid ? xn + (static_cast<index_t>(k.hi) * h + hi) * wd + wi : x;
      cp_async<4>(&stage.b[row0 + l][col], src, valid ? 4 : 0);
      increment(k, kh, kw);
    }
    advance(tap, step, kh, kw);
  }
};

template <int M>
__global__ void __launch_bounds__(kThreadsOf<M>, tile::kMinBlocksOf<M>)
    conv2d_forward_kernel(ConvShape s, const float* x, const float* w, const float* bias,
                          float* y) {
  GLIA_STATIC_SHARED(tile::Stages<M>, stages);
  const int t = threadIdx.x, ty = t / tile::kThreadsN, tx = t % tile::kThreadsN;
  const index_t p0 = static_cast<index_t>(blockIdx.x) * kN;
  const index_t m0 = static_cast<index_t>(blockIdx.y) * M;
  const index_t patch = s.patch(), outputs = s.n * s.out_plane();

  ForwardLoader<M> load{};
  load.w = {w + m0 * patch, patch, tile::rows_left<M>(s.c_out, m0), static_cast<int>(patch), true,
            false,          t};
  load.x = x;
  load.col = t % kN;
  load.row0 = kRowsPerThread<M> * (t / kN);
  const index_t p = p0 + load.col;
  load.col_valid = p < outputs;
  const Counter3 out =
      digits_of(load.col_valid ? p : 0, static_cast<int>(s.out_h), static_cast<int>(s.out_w));
  load.xn = x + out.hi * s.c_in * s.in_plane();
  load.h0 = out.mid * static_cast<int>(s.stride_h) - static_cast<int>(s.pad_h);
  load.w0 = out.lo * static_cast<int>(s.stride_w) - static_cast<int>(s.pad_w);
  load.c_in = static_cast<int>(s.c_in);
  load.h = static_cast<int>(s.h);
  load.wd = static_cast<int>(s.w);
  load.kh = static_cast<int>(s.kh);
  load.kw = static_cast<int>(s.kw);
  load.dil_h = static_cast<int>(s.dil_h);
  load.dil_w = static_cast<int>(s.dil_w);
  load.tap = digits_of(load.row0, load.kh, load.kw);
  load.step = digits_of(kK, load.kh, load.kw);

  float acc[kMicro][kMicro] = {};
  tile::reduce_tiles(stages, static_cast<int>((patch + kK - 1) / kK), load, acc, ty, tx);

  // y[n, co, hw] for the thread's eight columns p = (n, hw).
  index_t y_offset[kMicro];
  for (int j = 0; j < kMicro; ++j) {
    const index_t q = p0 + micro_index<kN>(tx, j);
    y_offset[j] =
        q < outputs ? q / s.out_plane() * s.c_out * s.out_plane() + q % s.out_plane() : -1;
  }
  for (int i = 0; i < kMicro; ++i) {
    const index_t co = m0 + micro_index<M>(ty, i);
    if (co >= s.c_out) continue;
    const float b = bias != nullptr ? bias[co] : 0.0f;
    for (int j = 0; j < kMicro; ++j) {
      if (y_offset[j] >= 0) y[y_offset[j] + co * s.out_plane()] = acc[i][j] + b;
    }
  }
}
GLIA_LAUNCH_BOUNDS(conv2d_forward_kernel<tile::kM>, kThreadsOf<tile::kM>);
GLIA_LAUNCH_BOUNDS(conv2d_forward_kernel<tile::kSmallM>, kThreadsOf<tile::kSmallM>);

// --- backward data ----------------------------------------------------------------------------

// One dimension of a stride phase r: the pixels h = first + stride * u (u < count) with
// (h + pad) % stride == r, and the taps i = tap0 + period * ti (ti < taps) that reach them, each
// through output row oh = u + base - dec * ti.
struct Phase {
  int first, count, tap0, period, taps, base, dec;
};

__device__ inline Phase phase_of(int r, int size, int pad, int stride, int dil, int k) {
  Phase p{};
  p.first = ((r - pad) % stride + stride) % stride;
  p.count = p.first < size ? (size - p.first + stride - 1) / stride : 0;
  int g = stride, d = dil;  // gcd(stride, dil): the taps repeat every stride / g
  while (d != 0) {
    const int rest = g % d;
    g = d;
    d = rest;
  }
  p.period = stride / g;
  p.tap0 = -1;
  for (int i = 0; i < p.period && i < k; ++i) {
    if (((r - i * dil) % stride + stride) % stride == 0) {
      p.tap0 = i;
      break;
    }
  }
  p.taps = p.tap0 >= 0 ? (k - 1 - p.tap0) / p.period + 1 : 0;
  // Exact divisions: first + pad and tap0 * dil are both r modulo stride.
  p.base = p.tap0 >= 0 ? (p.first + pad - p.tap0 * dil) / stride : 0;
  p.dec = p.period * dil / stride;
  return p;
}

template <int M>
struct BackwardDataLoader {
  const float* w;
  const float* gy;   // also the address of copies that only zero-fill
  const float* gyn;  // the image of the thread's column
  Phase ph, pw;
  int c_in, c_out, out_h, out_w, kh, kw;
  index_t m0;
  int t;
  // A: K column t % 8, channels m0 + t / 8 + kRowGroup l.
  Counter3 a_tap;  // (co, ti, tj) of K column k0 + t % 8
  // B: the thread's column (pixel u, v of the phase) and K rows row0 + l.
  int col, row0, u, v;
  bool col_valid;
  Counter3 b_tap;  // (co, ti, tj) of K row k0 + row0
  Counter3 step;   // kK as (co, ti, tj) digits

  __device__ __forceinline__ void operator()(tile::Stage<M>& stage) {
    {
      const int kk = t % kK;
      const bool k_valid = a_tap.hi < c_out;
      const index_t tap_offset = static_cast<index_t>(a_tap.hi) * c_in * kh * kw +
                                 (ph.tap0 + ph.period * a_tap.mid) * kw + pw.tap0 +
                                 pw.period * a_tap.lo;
      for (int l = 0; l < M / kRowGroup<M>; ++l) {
        const int mm = t / kK + kRowGroup<M> * l;
        const bool valid = k_valid && m0 + mm < c_in;
        const float* src = valid ? w + tap_offset + (m0 + mm) * kh * kw : w;
        cp_async<4>(&stage.a[kk][mm], src, valid ? 4 : 0);
      }
      advance(a_tap, step, ph.taps, pw.taps);
    }
    Counter3 k = b_tap;
    for (int l = 0; l < kRowsPerThread<M>; ++l) {
      const int oh = u + ph.base - ph.dec * k.mid, ow = v + pw.base - pw.dec * k.lo;
      const bool valid =
          col_valid && k.hi < c_out && oh >= 0 && oh < out_h && ow >= 0 && ow < out_w;
      const float* src = valid ? gyn + (static_cast<index_t>(k.hi) * out_h + oh) * out_w + ow : gy;
      cp_async<4>(&stage.b[row0 + l][col], src, valid ? 4 : 0);
      increment(k, ph.taps, pw.taps);
    }
    advance(b_tap, step, ph.taps, pw.taps);
  }
};

// Grid (pixel tiles of the largest phase, c_in tiles, stride_h * stride_w phases).
template <int M>
__global__ void __launch_bounds__(kThreadsOf<M>, tile::kMinBlocksOf<M>)
    conv2d_backward_data_kernel(ConvShape s, const float* gy, const float* w, float* gx) {
  GLIA_STATIC_SHARED(tile::Stages<M>, stages);
  const int t = threadIdx.x, ty = t / tile::kThreadsN, tx = t % tile::kThreadsN;
  const index_t q0 = static_cast<index_t>(blockIdx.x) * kN;
  const index_t m0 = static_cast<index_t>(blockIdx.y) * M;
  const int stride_w = static_cast<int>(s.stride_w);
  const Phase ph = phase_of(static_cast<int>(blockIdx.z) / stride_w, static_cast<int>(s.h),
                            static_cast<int>(s.pad_h), static_cast<int>(s.stride_h),
                            static_cast<int>(s.dil_h), static_cast<int>(s.kh));
  const Phase pw = phase_of(static_cast<int>(blockIdx.z) % stride_w, static_cast<int>(s.w),
                            static_cast<int>(s.pad_w), stride_w, static_cast<int>(s.dil_w),
                            static_cast<int>(s.kw));
  const index_t pixels = s.n * ph.count * pw.count;
  if (q0 >= pixels) return;  // the whole block: this phase has fewer pixels than the largest

  BackwardDataLoader<M> load{};
  load.w = w;
  load.gy = gy;
  load.ph = ph;
  load.pw = pw;
  load.c_in = static_cast<int>(s.c_in);
  load.c_out = static_cast<int>(s.c_out);
  load.out_h = static_cast<int>(s.out_h);
  load.out_w = static_cast<int>(s.out_w);
  load.kh = static_cast<int>(s.kh);
  load.kw = static_cast<int>(s.kw);
  load.m0 = m0;
  load.t = t;
  load.col = t % kN;
  load.row0 = kRowsPerThread<M> * (t / kN);
  const index_t q = q0 + load.col;
  load.col_valid = q < pixels;
  const Counter3 px = digits_of(load.col_valid ? q : 0, ph.count, pw.count);
  load.u = px.mid;
  load.v = px.lo;
  load.gyn = gy + px.hi * s.c_out * s.out_plane();
  const index_t depth = s.c_out * ph.taps * pw.taps;
  if (depth > 0) {
    load.a_tap = digits_of(t % kK, ph.taps, pw.taps);
    load.b_tap = digits_of(load.row0, ph.taps, pw.taps);
    load.step = digits_of(kK, ph.taps, pw.taps);
  }

  float acc[kMicro][kMicro] = {};
  tile::reduce_tiles(stages, static_cast<int>((depth + kK - 1) / kK), load, acc, ty, tx);

  // gx[n, c, h, w] for the thread's eight pixels (n, u, v) of the phase.
  index_t gx_offset[kMicro];
  for (int j = 0; j < kMicro; ++j) {
    const index_t e = q0 + micro_index<kN>(tx, j);
    if (e >= pixels) {
      gx_offset[j] = -1;
      continue;
    }
    const Counter3 d = digits_of(e, ph.count, pw.count);
    const index_t hh = ph.first + s.stride_h * d.mid, ww = pw.first + s.stride_w * d.lo;
    gx_offset[j] = d.hi * s.c_in * s.in_plane() + hh * s.w + ww;
  }
  for (int i = 0; i < kMicro; ++i) {
    const index_t c = m0 + micro_index<M>(ty, i);
    if (c >= s.c_in) continue;
    for (int j = 0; j < kMicro; ++j) {
      if (gx_offset[j] >= 0) gx[gx_offset[j] + c * s.in_plane()] = acc[i][j];
    }
  }
}
GLIA_LAUNCH_BOUNDS(conv2d_backward_data_kernel<tile::kM>, kThreadsOf<tile::kM>);
GLIA_LAUNCH_BOUNDS(conv2d_backward_data_kernel<tile::kSmallM>, kThreadsOf<tile::kSmallM>);

// --- backward filter ----------------------------------------------------------------------------

// The split of the filter gradient's reduction over n * out_h * out_w: gridDim.z splits of
// `depth` positions each (a multiple of kK).
struct FilterSplit {
  index_t splits = 1;
  index_t depth = 0;
};

FilterSplit filter_split(const ConvShape& s) {
  const index_t outputs = s.n * s.out_plane();
  const index_t rows = tile::tile_rows_for(s.c_out);
  const index_t tiles = ((s.c_out + rows - 1) / rows) * ((s.patch() + kN - 1) / kN);
  index_t splits = (kFilterTargetBlocks + tiles - 1) / tiles;
  const index_t by_depth = (outputs + kFilterMinSplitDepth - 1) / kFilterMinSplitDepth;
  if (splits > by_depth) splits = by_depth;
  if (splits > kMaxGridYZ) splits = kMaxGridYZ;
  if (splits < 1) splits = 1;
  const index_t per_split = (outputs + splits - 1) / splits;
  return {splits, (per_split + kK - 1) / kK * kK};
}

// Thread t takes position k0 + t % 8 of every K tile (consecutive threads, consecutive positions:
// coalesced gy and x reads), output channels m0 + t / 8 + kRowGroup l for A and patch entries
// n0 + t / 8 + kRowGroup l for B, the latter fixed for the whole reduction.
template <int M>
struct FilterLoader {
  const float* x;
  const float* gy;
  index_t k_end;
  index_t p;      // the thread's position in the current tile
  Counter3 pos;   // p as (n, oh, ow)
  Counter3 step;  // kK as (n, oh, ow) digits
  index_t m0;
  int t, c_out, c_in, h, wd, out_h, out_w, stride_h, stride_w, pad_h, pad_w;
  index_t x_channel[kFilterRows<M>];  // c * h * w of the thread's patch entries, or -1 beyond
  int di[kFilterRows<M>], dj[kFilterRows<M>];  // i * dil_h, j * dil_w of those entries

  __device__ __forceinline__ void operator()(tile::Stage<M>& stage) {
    const int kk = t % kK;
    const bool p_valid = p < k_end;
    const index_t out_plane = static_cast<index_t>(out_h) * out_w;
    const float* gyp =
        gy + static_cast<index_t>(pos.hi) * c_out * out_plane + pos.mid * out_w + pos.lo;
    const float* xn = x + static_cast<index_t>(pos.hi) * c_in * h * wd;
    const int h0 = pos.mid * stride_h - pad_h, w0 = pos.lo * stride_w - pad_w;
    for (int l = 0; l < M / kRowGroup<M>; ++l) {
      const index_t co = m0 + t / kK + kRowGroup<M> * l;
      const bool valid = p_valid && co < c_out;
      cp_async<4>(&stage.a[kk][t / kK + kRowGroup<M> * l], valid ? gyp + co * out_plane : gy,
                  valid ? 4 : 0);
    }
    for (int l = 0; l < kFilterRows<M>; ++l) {
      const int hi = h0 + di[l], wi = w0 + dj[l];
      const bool valid = p_valid && x_channel[l] >= 0 && hi >= 0 && hi < h && wi >= 0 && wi < wd;
      cp_async<4>(&stage.b[kk][t / kK + kRowGroup<M> * l],
                  valid ? xn + x_channel[l] + static_cast<index_t>(hi) * wd + wi : x,
                  valid ? 4 : 0);
    }
    p += kK;
    advance(pos, step, out_h, out_w);
  }
};

// out[z][co][(c, i, j)] = sum over this split's positions of gy[n, co, oh, ow] * B; with one
// split `out` is gw itself.
template <int M>
__global__ void __launch_bounds__(kThreadsOf<M>, tile::kMinBlocksOf<M>)
    conv2d_backward_filter_kernel(ConvShape s, const float* x, const float* gy, float* out,
                                  index_t split_depth) {
  GLIA_STATIC_SHARED(tile::Stages<M>, stages);
  const int t = threadIdx.x, ty = t / tile::kThreadsN, tx = t % tile::kThreadsN;
  const index_t n0 = static_cast<index_t>(blockIdx.x) * kN;
  const index_t m0 = static_cast<index_t>(blockIdx.y) * M;
  const index_t patch = s.patch(), outputs = s.n * s.out_plane();
  const index_t k_begin = static_cast<index_t>(blockIdx.z) * split_depth;
  const index_t k_end = k_begin + split_depth < outputs ? k_begin + split_depth : outputs;
  const int k_tiles = k_end > k_begin ? static_cast<int>((k_end - k_begin + kK - 1) / kK) : 0;

  FilterLoader<M> load{};
  load.x = x;
  load.gy = gy;
  load.k_end = k_end;
  load.p = k_begin + t % kK;
  load.m0 = m0;
  load.t = t;
  load.c_out = static_cast<int>(s.c_out);
  load.c_in = static_cast<int>(s.c_in);
  load.h = static_cast<int>(s.h);
  load.wd = static_cast<int>(s.w);
  load.out_h = static_cast<int>(s.out_h);
  load.out_w = static_cast<int>(s.out_w);
  load.stride_h = static_cast<int>(s.stride_h);
  load.stride_w = static_cast<int>(s.stride_w);
  load.pad_h = static_cast<int>(s.pad_h);
  load.pad_w = static_cast<int>(s.pad_w);
  load.pos = digits_of(load.p < outputs ? load.p : 0, load.out_h, load.out_w);
  load.step = digits_of(kK, load.out_h, load.out_w);
  for (int l = 0; l < kFilterRows<M>; ++l) {
    const index_t k = n0 + t / kK + kRowGroup<M> * l;
    const Counter3 tap =
        digits_of(k < patch ? k : 0, static_cast<int>(s.kh), static_cast<int>(s.kw));
    load.x_channel[l] = k < patch ? tap.hi * s.in_plane() : -1;
    load.di[l] = tap.mid * static_cast<int>(s.dil_h);
    load.dj[l] = tap.lo * static_cast<int>(s.dil_w);
  }

  float acc[kMicro][kMicro] = {};
  tile::reduce_tiles(stages, k_tiles, load, acc, ty, tx);

  float* out_split = out + static_cast<index_t>(blockIdx.z) * s.w_numel();
  for (int i = 0; i < kMicro; ++i) {
    const index_t co = m0 + micro_index<M>(ty, i);
    if (co >= s.c_out) continue;
    for (int j = 0; j < kMicro; ++j) {
      const index_t k = n0 + micro_index<kN>(tx, j);
      if (k < patch) out_split[co * patch + k] = acc[i][j];
    }
  }
}
GLIA_LAUNCH_BOUNDS(conv2d_backward_filter_kernel<tile::kM>, kThreadsOf<tile::kM>);
GLIA_LAUNCH_BOUNDS(conv2d_backward_filter_kernel<tile::kSmallM>, kThreadsOf<tile::kSmallM>);

// gw[e] = sum_z partial[z][e], z in order. Grid-stride over the weight's elements.
__global__ void __launch_bounds__(kThreadsPerBlock)
    sum_filter_splits_kernel(const float* partial, float* gw, index_t numel, index_t splits) {
  for (index_t e = global_thread_index(); e < numel; e += grid_thread_count()) {
    float total = 0.0f;
    for (index_t z = 0; z < splits; ++z) total += partial[z * numel + e];
    gw[e] = total;
  }
}
GLIA_LAUNCH_BOUNDS(sum_filter_splits_kernel, kThreadsPerBlock);

// --- launch checks ----------------------------------------------------------------------------

[[noreturn]] void too_large(const char* pass, const ConvShape& s, const std::string& what) {
  throw std::invalid_argument(std::string(pass) + " (" + s.describe() + "): " + what +
                              " exceeds what one launch of the native kernel indexes");
}

// The tile counts along the grid's x (up to 2^31 - 1) and y (up to 65535) dimensions for tiles of
// tile_rows rows, and the int counters (planes, kernel, reduction), checked.
dim3 gemm_grid(const char* pass, const ConvShape& s, index_t cols, index_t rows, index_t depth,
               int tile_rows) {
  const index_t x_tiles = (cols + kN - 1) / kN, y_tiles = (rows + tile_rows - 1) / tile_rows;
  if (x_tiles > INT_MAX) too_large(pass, s, "the column count " + std::to_string(cols));
  if (y_tiles > kMaxGridYZ) too_large(pass, s, "the row count " + std::to_string(rows));
  if (depth > INT_MAX - kK) too_large(pass, s, "the reduction " + std::to_string(depth));
  constexpr index_t kMaxPlane = INT_MAX / 4;  // coordinates plus padding and dilated taps
  if (s.h + s.pad_h > kMaxPlane || s.w + s.pad_w > kMaxPlane || s.c_in > kMaxPlane ||
      s.c_out > kMaxPlane || s.dil_h * s.kh > kMaxPlane || s.dil_w * s.kw > kMaxPlane ||
      s.stride_h * s.out_h > kMaxPlane || s.stride_w * s.out_w > kMaxPlane) {
    too_large(pass, s, "a plane, channel or kernel extent");
  }
  return dim3(static_cast<unsigned>(x_tiles), static_cast<unsigned>(y_tiles), 1);
}

// The three passes with a block tile of M rows.
template <int M>
void launch_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                    Stream stream) {
  const dim3 grid = gemm_grid("conv2d forward", s, s.n * s.out_plane(), s.c_out, s.patch(), M);
  GLIA_LAUNCH(conv2d_forward_kernel<M>, grid, kThreadsOf<M>, 0, stream, s, x, w, bias, y);
}

template <int M>
void launch_backward_data(const ConvShape& s, const float* gy, const float* w, float* gx,
                          Stream stream) {
  // The largest phase has ceil(h / stride_h) x ceil(w / stride_w) pixels per image.
  const index_t phase_pixels =
      s.n * ((s.h + s.stride_h - 1) / s.stride_h) * ((s.w + s.stride_w - 1) / s.stride_w);
  dim3 grid = gemm_grid("conv2d backward data", s, phase_pixels, s.c_in, s.c_out * s.kh * s.kw, M);
  const index_t phases = s.stride_h * s.stride_w;
  if (phases > kMaxGridYZ) too_large("conv2d backward data", s, "the stride");
  grid.z = static_cast<unsigned>(phases);
  GLIA_LAUNCH(conv2d_backward_data_kernel<M>, grid, kThreadsOf<M>, 0, stream, s, gy, w, gx);
}

template <int M>
void launch_backward_filter(const ConvShape& s, const float* x, const float* gy, float* gw,
                            float* workspace, Stream stream) {
  dim3 grid = gemm_grid("conv2d backward filter", s, s.patch(), s.c_out, s.patch(), M);
  FilterSplit split = filter_split(s);
  if (workspace == nullptr || split.splits == 1) {
    // One block covers the whole reduction (an empty one writes zeros).
    split = {1, s.n * s.out_plane()};
  }
  if (split.depth > INT_MAX - kK) too_large("conv2d backward filter", s, "the reduction");
  grid.z = static_cast<unsigned>(split.splits);
  float* out = split.splits > 1 ? workspace : gw;
  GLIA_LAUNCH(conv2d_backward_filter_kernel<M>, grid, kThreadsOf<M>, 0, stream, s, x, gy, out,
              split.depth);
  if (split.splits > 1) {
    GLIA_LAUNCH(sum_filter_splits_kernel, grid_stride_blocks(s.w_numel()), kThreadsPerBlock, 0,
                stream, workspace, gw, s.w_numel(), split.splits);
  }
}

// gy as the NCHW tensor whose per-channel sums channel_sum takes (eps and momentum unused).
BatchNormShape bias_channels(const ConvShape& s) {
  BatchNormShape planes;
  planes.n = s.n;
  planes.c = s.c_out;
  planes.h = s.out_h;
  planes.w = s.out_w;
  return planes;
}

}  // namespace

// Each pass takes the 64-row tile where its M (c_out, or c_in for the data gradient) is at most
// 64, else the 128-row one (tile::tile_rows_for).
void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                    Stream stream) {
  if (s.y_numel() == 0) return;
  if (tile::tile_rows_for(s.c_out) == tile::kSmallM) {
    launch_forward<tile::kSmallM>(s, x, w, bias, y, stream);
  } else {
    launch_forward<tile::kM>(s, x, w, bias, y, stream);
  }
}

void conv2d_backward_data(const ConvShape& s, const float* gy, const float* w, float* gx,
                          Stream stream) {
  if (s.x_numel() == 0) return;
  if (tile::tile_rows_for(s.c_in) == tile::kSmallM) {
    launch_backward_data<tile::kSmallM>(s, gy, w, gx, stream);
  } else {
    launch_backward_data<tile::kM>(s, gy, w, gx, stream);
  }
}

index_t conv2d_backward_filter_workspace_size(const ConvShape& s) {
  const FilterSplit split = filter_split(s);
  return split.splits > 1 ? split.splits * s.w_numel() : 0;
}

void conv2d_backward_filter(const ConvShape& s, const float* x, const float* gy, float* gw,
                            float* workspace, Stream stream) {
  if (s.w_numel() == 0) return;
  if (tile::tile_rows_for(s.c_out) == tile::kSmallM) {
    launch_backward_filter<tile::kSmallM>(s, x, gy, gw, workspace, stream);
  } else {
    launch_backward_filter<tile::kM>(s, x, gy, gw, workspace, stream);
  }
}

index_t conv2d_backward_bias_workspace_size(const ConvShape& s) {
  return batch_norm_workspace_size(bias_channels(s));
}

void conv2d_backward_bias(const ConvShape& s, const float* gy, float* gb, float* workspace,
                          Stream stream) {
  if (s.c_out == 0) return;
  if (s.n * s.out_plane() == 0) {  // sums of nothing: channel_sum refuses empty channels
    fill(gb, s.c_out, 0.0f, stream);
    return;
  }
  channel_sum(gy, gb, bias_channels(s), workspace, stream);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
