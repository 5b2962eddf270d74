// The block tile that the GEMM and the three convolution GEMMs share (kernels/cuda/gemm.cu,
// conv.cu): C_tile[M x 128] = sum over K of A_tile[M x K] * B_tile[K x 128], one tile per block
// of 2 M threads, M = 128 or (for M <= 64, tile_rows_for) 64. K is consumed 8 at a time through
// two shared-memory stages: while the block multiplies stage kt % 2, the cp.async copies of tile
// kt + 1 fill the other (double buffering), so one wait and two barriers separate the steps. A
// stage holds a[kk][m] and b[kk][n] (K-major, rows padded by 4 floats so every row stays 16-byte
// aligned). Thread (ty, tx) = (t / 16, t % 16) owns an 8 x 8 register tile: rows ty * 4 + {0..3}
// and M / 2 + ty * 4 + {0..3}, columns likewise with tx, read per k as four float4 shared loads (4
// loads per 64 FMAs; a warp reads 16 consecutive float4 of b and broadcasts 2 of a, without bank
// conflicts). The loaders (one per kernel) walk K with stepping counters (Counter3) instead of
// dividing per element. Tested through tests/kernels/gemm_test.cpp and conv_test.cpp.
#pragma once

#include "kernels/cuda/async_copy.cuh"
#include "kernels/cuda/portable.cuh"
#include "kernels/types.h"

namespace glia::kernels::GLIA_KERNEL_NS::tile {

inline constexpr int kN = 128;        // columns of the block tile
inline constexpr int kK = 8;          // K per stage
inline constexpr int kThreadsN = 16;  // tx = t % 16, ty = t / 16
inline constexpr int kMicro = 8;      // 8 x 8 outputs per thread ...
inline constexpr int kQuad = 4;       // ... as 2 x 2 quadrants of 4 x 4, half a tile apart
inline constexpr int kStages = 2;

// The rows of the block tile: 128, or 64 where the GEMM's M (output or input channels) is at most
// 64, which would leave most of a 128-row tile idle (a U-Net's 32-channel levels, its 1-channel
// input and head). Both tiles are 128 columns wide and give each thread an 8 x 8 register tile;
// the 64-row tile runs 128 threads.
inline constexpr int kM = 128;
inline constexpr int kSmallM = 64;
inline constexpr int tile_rows_for(index_t m) {
  return m <= kSmallM ? kSmallM : kM;
}
template <int M>
inline constexpr int kThreadsOf = (M / kMicro) * kThreadsN;
// __launch_bounds__(kThreadsOf<M>, kMinBlocksOf<M>): two blocks of the 128-row tile per SM cap a
// thread at 128 registers; three of the 64-row one at 168, since its loaders stage 8 elements of B
// per thread (at 128 registers, as four blocks, the 64-row GEMM spilled 152 bytes, ptxas sm_90).
template <int M>
inline constexpr int kMinBlocksOf = M == kM ? 2 : 3;
static_assert(kThreadsOf<kM> * 4 == kM * kK && kThreadsOf<kSmallM> * 4 == kSmallM * kK,
              "four elements of A per thread and stage");

template <int M>
struct Stage {
  float a[kK][M + 4];   // a[kk][mm] = A(m0 + mm, k0 + kk); +4 floats keep rows 16-byte aligned
  float b[kK][kN + 4];  // b[kk][nn] = B(k0 + kk, n0 + nn)
};
template <int M>
using Stages = Stage<M>[kStages];  // 16.5 KiB of static shared memory (12.4 KiB for 64 rows)

// The block-tile row (or column) of slot r (0..7) of the thread at position p (ty or tx) along a
// tile dimension of `extent`.
template <int extent>
__device__ __forceinline__ int micro_index(int p, int r) {
  return (r / kQuad) * (extent / 2) + p * kQuad + r % kQuad;
}

// acc[i][j] += sum_kk a[kk][micro_index<M>(ty, i)] * b[kk][micro_index<kN>(tx, j)]
template <int M>
__device__ __forceinline__ void multiply_stage(const Stage<M>& s, float (&acc)[kMicro][kMicro],
                                               int ty, int tx) {
  for (int kk = 0; kk < kK; ++kk) {
    const float4 a_lo = load_float4(&s.a[kk][ty * kQuad]);
    const float4 a_hi = load_float4(&s.a[kk][M / 2 + ty * kQuad]);
    const float4 b_lo = load_float4(&s.b[kk][tx * kQuad]);
    const float4 b_hi = load_float4(&s.b[kk][kN / 2 + tx * kQuad]);
    const float a[kMicro] = {a_lo.x, a_lo.y, a_lo.z, a_lo.w, a_hi.x, a_hi.y, a_hi.z, a_hi.w};
    const float b[kMicro] = {b_lo.x, b_lo.y, b_lo.z, b_lo.w, b_hi.x, b_hi.y, b_hi.z, b_hi.w};
    for (int i = 0; i < kMicro; ++i) {
      for (int j = 0; j < kMicro; ++j) acc[i][j] += a[i] * b[j];
    }
  }
}

// Reduces k_tiles tiles of K into acc. load(stage) issues the cp.async copies of the loader's
// current K tile into `stage` and moves the loader to the next tile. k_tiles must be the same for
// every thread of the block.
template <int M, class Loader>
__device__ __forceinline__ void reduce_tiles(Stage<M> (&stages)[kStages], int k_tiles, Loader& load,
                                             float (&acc)[kMicro][kMicro], int ty, int tx) {
  if (k_tiles > 0) load(stages[0]);
  cp_async_commit();
  for (int kt = 0; kt < k_tiles; ++kt) {
    if (kt + 1 < k_tiles) load(stages[(kt + 1) % kStages]);
    cp_async_commit();
    cp_async_wait<1>();  // this thread's copies of tile kt have landed (tile kt + 1 may fly on)
    __syncthreads();     // ... and every other thread's
    multiply_stage(stages[kt % kStages], acc, ty, tx);
    __syncthreads();  // the stage is refilled in the next iteration
  }
}

// Stages K slices of one stored matrix operand whose tile has `extent` rows (M for A, kN for B),
// by a block of `threads`: element (r, k) of the tile's rows r0 + r (rows of A, or columns of B)
// sits at x[r * ld + k] when K-contiguous, at x[k * ld + r] otherwise. Each thread moves
// extent * kK / threads elements (4 or 8); consecutive threads take consecutive elements along
// the stored contiguous dimension; with `vector` (rows contiguous, x and ld multiples of 16 bytes)
// they move as float4: rows 4 (e % (extent / 4)) .. + 3 of K row e / (extent / 4), the last row
// group copying what exists. Copies beyond the matrix edges zero-fill.
template <int extent, int threads>
struct OperandLoader {
  static constexpr int kPerThread = extent * kK / threads;
  static_assert(kPerThread % 4 == 0, "whole float4 per thread");
  const float* x;  // element (r0, 0)
  index_t ld;      // leading dimension
  int rows;        // rows left from r0 (at least 1; more than a tile counts as a tile)
  int depth;       // K
  bool k_contiguous;
  bool vector;
  int t;
  int k0 = 0;

  __device__ __forceinline__ void operator()(float (&dst)[kK][extent + 4]) {
    if (vector) {
      for (int l = 0; l < kPerThread / 4; ++l) {
        const int e = t + l * threads;
        const int kk = e / (extent / 4), r = (e % (extent / 4)) * 4;
        const int k = k0 + kk, left = rows - r;
        const int bytes = k < depth && left > 0 ? (left < 4 ? left : 4) * 4 : 0;
        cp_async<16>(&dst[kk][r], bytes > 0 ? x + k * ld + r : x, bytes);
      }
    } else {
      for (int l = 0; l < kPerThread; ++l) {
        const int e = t + l * threads;
        const int kk = k_contiguous ? e % kK : e / extent, r = k_contiguous ? e / kK : e % extent;
        const int k = k0 + kk;
        const bool valid = k < depth && r < rows;
        const float* src = k_contiguous ? x + r * ld + k : x + k * ld + r;
        cp_async<4>(&dst[kk][r], valid ? src : x, valid ? 4 : 0);
      }
    }
    k0 += kK;
  }
};

// The rows of a block tile of `extent` rows that exist from r0 on, at most a tile (an int).
template <int extent>
__device__ __forceinline__ int rows_left(index_t extent_total, index_t r0) {
  return extent_total - r0 < extent ? static_cast<int>(extent_total - r0) : extent;
}

// A mixed-radix index (hi, mid, lo), lo in [0, lo_radix), mid in [0, mid_radix), e.g. a patch
// entry (c, i, j) or an output position (n, oh, ow), stepped by a fixed amount without division.
struct Counter3 {
  int hi = 0, mid = 0, lo = 0;
};

// The digits of `value` (decomposed once, with division).
__device__ __forceinline__ Counter3 digits_of(index_t value, int mid_radix, int lo_radix) {
  const index_t plane = static_cast<index_t>(mid_radix) * lo_radix;
  const index_t rest = value % plane;
  return {static_cast<int>(value / plane), static_cast<int>(rest / lo_radix),
          static_cast<int>(rest % lo_radix)};
}

// c += step, both given as digits (step.mid < mid_radix, step.lo < lo_radix).
__device__ __forceinline__ void advance(Counter3& c, const Counter3& step, int mid_radix,
                                        int lo_radix) {
  c.lo += step.lo;
  int carry = c.lo >= lo_radix ? 1 : 0;
  c.lo -= carry * lo_radix;
  c.mid += step.mid + carry;
  carry = c.mid >= mid_radix ? 1 : 0;
  c.mid -= carry * mid_radix;
  c.hi += step.hi + carry;
}

// c += 1.
__device__ __forceinline__ void increment(Counter3& c, int mid_radix, int lo_radix) {
  if (++c.lo < lo_radix) return;
  c.lo = 0;
  if (++c.mid < mid_radix) return;
  c.mid = 0;
  ++c.hi;
}

}  // namespace glia::kernels::GLIA_KERNEL_NS::tile
