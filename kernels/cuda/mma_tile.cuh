// The block tile of the tensor-core kernels (kernels/cuda/gemm_tc.cu, conv_tc.cu): one block of
// 128 threads = 4 warps in 2 x 2 computes a 64 x 64 tile of D = A * B (A: 64 rows x depth,
// B: depth x 64 columns), each warp a 32 x 32 tile of 2 x 4 mma tiles of 16 x 8 in registers.
// The depth advances 16 at a time: each thread loads 8 elements of A's and 8 of B's slice through
// the kernel's loaders into registers (the next slice's loads are issued before the current one
// is multiplied), rounds them to the format F and stores them to shared memory as A[m][k] and
// B[n][k] (k contiguous). 16-bit fragments come from ldmatrix (A .x4; B .x2, since B stored
// n-major is the col-major operand that mma wants), TF32 fragments from plain shared loads, two
// m16n8k8 per slice. A loader gives, for each of a thread's 8 elements e, its (row, k) in the
// slice (position) and the 8 values of slice k0 as floats (load), zero beyond the operand's
// edges. Tested through tests/kernels/gemm_tc_test.cpp and conv_tc_test.cpp.
#pragma once

#include "kernels/cuda/portable.cuh"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda/mma.cuh"
#include "kernels/half.h"
#include "kernels/types.h"

namespace glia::kernels::GLIA_KERNEL_NS::tc {

constexpr int kBM = 64, kBN = 64, kBK = 16;
constexpr int kThreads = 128;                 // 4 warps, 2 x 2 over the block tile
constexpr int kWM = 32, kWN = 32;             // one warp's tile
constexpr int kMi = kWM / 16, kNi = kWN / 8;  // mma tiles per warp
constexpr int kLoads = kBM * kBK / kThreads;  // elements of each operand per thread and slice
constexpr int kLogBM = 6, kLogBK = 4;
static_assert(kBM == kBN && kBM == 1 << kLogBM && kBK == 1 << kLogBK && kBM * kBK % kThreads == 0,
              "A and B slices load alike, with power-of-two extents");

// Shared-memory elements: 16-bit patterns, or TF32 values kept in floats. Rows are padded by 16
// bytes, which keeps each row 16-byte aligned for ldmatrix and staggers the banks.
template <TensorFormat F>
using Elem = std::conditional_t<F == TensorFormat::tf32, float, std::uint16_t>;
template <TensorFormat F>
constexpr int kPad = 16 / static_cast<int>(sizeof(Elem<F>));
template <TensorFormat F>
using Slice = Elem<F>[kBM][kBK + kPad<F>];

template <TensorFormat F>
__device__ __forceinline__ Elem<F> convert(float x) {
  if constexpr (F == TensorFormat::tf32) {
    return round_to_tf32(x);
  } else if constexpr (F == TensorFormat::bf16) {
    return float_to_bf16_bits(x);
  } else {
    return float_to_f16_bits(x);
  }
}

// Element e of a thread's share of a slice: threads go along the slice's fast dimension (k, or
// the rows), which the loaders choose as the operand's contiguous one, so loads coalesce.
// Branch-free, so that nvcc does not version the loops over both choices.
__device__ __forceinline__ void slice_position(int e, bool k_fast, int& row, int& k) {
  const int idx = static_cast<int>(threadIdx.x) + e * kThreads;
  const int shift = k_fast ? kLogBK : kLogBM;
  const int fast = idx & ((1 << shift) - 1), slow = idx >> shift;
  row = k_fast ? slow : fast;
  k = k_fast ? fast : slow;
}

// A rows x depth operand whose (row, k) is at x[row * row_step + k * k_step].
struct MatrixLoader {
  const float* x;
  index_t row_step, k_step;
  index_t rows, depth;  // rows left in this tile, and the depth
  bool k_contiguous;

  __device__ void position(int e, int& row, int& k) const {
    slice_position(e, k_contiguous, row, k);
  }

  __device__ void load(index_t k0, float (&v)[kLoads]) const {
    GLIA_UNROLL
    for (int e = 0; e < kLoads; ++e) {
      int row = 0, k = 0;
      position(e, row, k);
      v[e] = row < rows && k0 + k < depth ? x[row * row_step + (k0 + k) * k_step] : 0.0f;
    }
  }
};

template <TensorFormat F, class Loader>
__device__ __forceinline__ void stage(const Loader& loader, const float (&v)[kLoads],
                                      Slice<F>& tile) {
  GLIA_UNROLL
  for (int e = 0; e < kLoads; ++e) {
    int row = 0, k = 0;
    loader.position(e, row, k);
    tile[row][k] = convert<F>(v[e]);
  }
}

__device__ __forceinline__ std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// acc += the warp's 32 x 32 tile of A (rows wm..) times B (columns wn..) over one slice.
template <TensorFormat F>
__device__ __forceinline__ void multiply_slice(const Slice<F>& as, const Slice<F>& bs, int wm,
                                               int wn, int lane, float (&acc)[kMi][kNi][4]) {
  if constexpr (F == TensorFormat::tf32) {
    const int g = lane >> 2, t = lane % 4;
    GLIA_UNROLL
    for (int kk = 0; kk < kBK; kk += 8) {
      std::uint32_t a[kMi][4], b[kNi][2];
      GLIA_UNROLL
      for (int mi = 0; mi < kMi; ++mi) {
        GLIA_UNROLL
        for (int i = 0; i < 4; ++i) {
          a[mi][i] = bits_of(as[wm + mi * 16 + g + 8 * (i & 1)][kk + t + 4 * (i >> 1)]);
        }
      }
      GLIA_UNROLL
      for (int ni = 0; ni < kNi; ++ni) {
        GLIA_UNROLL
        for (int i = 0; i < 2; ++i) b[ni][i] = bits_of(bs[wn + ni * 8 + g][kk + t + 4 * i]);
      }
      GLIA_UNROLL
      for (int mi = 0; mi < kMi; ++mi) {
        GLIA_UNROLL
        for (int ni = 0; ni < kNi; ++ni) mma_sync<8, F>(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
      }
    }
  } else {
    // A: matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15) from lanes 0-7, 8-15, 16-23, 24-31 are
    // registers a0..a3; B: k 0-7 and 8-15 of 8 columns from lanes 0-7 and 8-15 are b0, b1.
    std::uint32_t a[kMi][4], b[kNi][2];
    GLIA_UNROLL
    for (int mi = 0; mi < kMi; ++mi) {
      ldmatrix_sync<4>(a[mi], &as[wm + mi * 16 + lane % 16][8 * (lane / 16)]);
    }
    GLIA_UNROLL
    for (int ni = 0; ni < kNi; ++ni) {
      ldmatrix_sync<2>(b[ni], &bs[wn + ni * 8 + lane % 8][8 * ((lane / 8) % 2)]);
    }
    GLIA_UNROLL
    for (int mi = 0; mi < kMi; ++mi) {
      GLIA_UNROLL
      for (int ni = 0; ni < kNi; ++ni) mma_sync<16, F>(acc[mi][ni], a[mi], b[ni], acc[mi][ni]);
    }
  }
}

// The block's 64 x 64 tile of A * B over `depth`, handed to store(m, n, value) element by element
// (m, n within the tile; the caller masks the edges). Every thread of the block must call it.
template <TensorFormat F, class LoaderA, class LoaderB, class Store>
__device__ __forceinline__ void block_product(const LoaderA& load_a, const LoaderB& load_b,
                                              index_t depth, Store store) {
  GLIA_STATIC_SHARED(Slice<F>, as);
  GLIA_STATIC_SHARED(Slice<F>, bs);
  const int warp = static_cast<int>(threadIdx.x) / warpSize;
  const int lane = static_cast<int>(threadIdx.x) % warpSize;
  const int wm = (warp / 2) * kWM, wn = (warp % 2) * kWN;
  float acc[kMi][kNi][4];
  GLIA_UNROLL
  for (int mi = 0; mi < kMi; ++mi) {
    GLIA_UNROLL
    for (int ni = 0; ni < kNi; ++ni) {
      GLIA_UNROLL
      for (int i = 0; i < 4; ++i) acc[mi][ni][i] = 0.0f;
    }
  }
  float va[kLoads], vb[kLoads];
  load_a.load(0, va);
  load_b.load(0, vb);
  for (index_t k0 = 0; k0 < depth; k0 += kBK) {
    __syncthreads();  // every warp is done with the previous slice
    stage<F>(load_a, va, as);
    stage<F>(load_b, vb, bs);
    __syncthreads();
    if (k0 + kBK < depth) {
      load_a.load(k0 + kBK, va);
      load_b.load(k0 + kBK, vb);
    }
    multiply_slice<F>(as, bs, wm, wn, lane, acc);
  }
  const int g = lane >> 2, t = lane % 4;
  GLIA_UNROLL
  for (int mi = 0; mi < kMi; ++mi) {
    GLIA_UNROLL
    for (int ni = 0; ni < kNi; ++ni) {
      GLIA_UNROLL
      for (int i = 0; i < 4; ++i) {
        store(wm + mi * 16 + g + 8 * (i >> 1), wn + ni * 8 + 2 * t + (i & 1), acc[mi][ni][i]);
      }
    }
  }
}

// Host side: calls launch(std::integral_constant<TensorFormat, F>{}) for the format F named at run
// time, so a launcher instantiates its kernel template once per format; `op` names the launcher
// in the error for a format outside the enum.
template <class Launch>
void with_format(const char* op, TensorFormat format, Launch&& launch) {
  switch (format) {
    case TensorFormat::tf32:
      launch(std::integral_constant<TensorFormat, TensorFormat::tf32>{});
      return;
    case TensorFormat::bf16:
      launch(std::integral_constant<TensorFormat, TensorFormat::bf16>{});
      return;
    case TensorFormat::f16:
      launch(std::integral_constant<TensorFormat, TensorFormat::f16>{});
      return;
  }
  throw std::invalid_argument(std::string(op) + ": unknown tensor format " +
                              std::to_string(static_cast<int>(format)));
}

}  // namespace glia::kernels::GLIA_KERNEL_NS::tc
