// Tensor-core GEMM on the device, row-major and batched, with the interface of gemm.cu plus the
// operand format:
//   C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]   (op(A) m x k, op(B) k x n; see GemmShape)
// A and B are float in global memory, rounded to `format` (tf32: round_to_tf32, as cvt.rna does;
// bf16 / f16: to nearest even) on their way into shared memory; the products run on mma.sync
// (kernels/cuda/mma.cuh) with FP32 accumulation; alpha and beta are applied in float.
// Launch: grid (m tiles, n tiles, batch) of 64 x 64 output tiles, 128 threads = 4 warps in 2 x 2,
// each warp a 32 x 32 tile of 2 x 4 mma tiles of 16 x 8 held in registers. K advances 16 at a
// time: each thread loads 8 elements of op(A) and 8 of op(B) per slice into registers (the next
// slice's loads are issued before the current one is multiplied), converts and stores them to
// shared memory as A[m][k] and B[n][k] (k contiguous); 16-bit fragments come from ldmatrix
// (A .x4, B .x2: B stored n-major is the col-major operand mma wants), TF32 fragments from plain
// shared loads, two m16n8k8 per slice. Elements beyond the matrix edges load as zero and
// outputs beyond them are not stored, so any m, n, k works. Batches beyond the grid limit are
// covered by a grid-stride loop over z. Tested in tests/kernels/gemm_tc_test.cpp against
// kernels/cpu/gemm.cpp on operands rounded to the format.
#include "kernels/cuda/portable.cuh"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/mma.cuh"
#include "kernels/half.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16;
constexpr int kThreads = 128;                 // 4 warps, 2 x 2 over the block tile
constexpr int kWM = 32, kWN = 32;             // one warp's tile
constexpr int kMi = kWM / 16, kNi = kWN / 8;  // mma tiles per warp
constexpr int kLoads = kBM * kBK / kThreads;  // elements of each operand per thread and slice
constexpr index_t kMaxGridYZ = 65535;
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
__device__ __forceinline__ Elem<F> convert(float x) {
  if constexpr (F == TensorFormat::tf32) {
    return round_to_tf32(x);
  } else if constexpr (F == TensorFormat::bf16) {
    return float_to_bf16_bits(x);
  } else {
    return float_to_f16_bits(x);
  }
}

// The operand slice a thread loads: element e of slice k0 is (row, k) of a rows x depth operand
// whose (row, k) is at x[row * row_step + k * k_step]; threads go along the stored contiguous
// dimension, so the loads coalesce.
struct SliceLoader {
  const float* x;
  index_t row_step, k_step;
  index_t rows, depth;  // rows left in this tile, and k
  bool k_contiguous;

  // Branch-free, so that nvcc does not version the loops over both layouts.
  __device__ void position(int e, int& row, int& k) const {
    const int idx = static_cast<int>(threadIdx.x) + e * kThreads;
    const int shift = k_contiguous ? kLogBK : kLogBM;  // the fast dimension's extent
    const int fast = idx & ((1 << shift) - 1), slow = idx >> shift;
    row = k_contiguous ? slow : fast;
    k = k_contiguous ? fast : slow;
  }

  __device__ void load(index_t k0, float (&v)[kLoads]) const {
    GLIA_UNROLL
    for (int e = 0; e < kLoads; ++e) {
      int row = 0, k = 0;
      position(e, row, k);
      v[e] = row < rows && k0 + k < depth ? x[row * row_step + (k0 + k) * k_step] : 0.0f;
    }
  }

  template <TensorFormat F>
  __device__ void store(const float (&v)[kLoads], Elem<F> (*tile)[kBK + kPad<F>]) const {
    GLIA_UNROLL
    for (int e = 0; e < kLoads; ++e) {
      int row = 0, k = 0;
      position(e, row, k);
      tile[row][k] = convert<F>(v[e]);
    }
  }
};

__device__ __forceinline__ std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// acc += the warp's 32 x 32 tile of A (rows wm..) times B (columns wn..) over one slice.
template <TensorFormat F>
__device__ void multiply_slice(const Elem<F> (*as)[kBK + kPad<F>],
                               const Elem<F> (*bs)[kBK + kPad<F>], int wm, int wn, int lane,
                               float (&acc)[kMi][kNi][4]) {
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

template <TensorFormat F>
__device__ void gemm_tc_block(const GemmShape& s, const float* a, const float* b, float* c,
                              float alpha, float beta) {
  GLIA_STATIC_SHARED(Elem<F>[kBM][kBK + kPad<F>], as);
  GLIA_STATIC_SHARED(Elem<F>[kBN][kBK + kPad<F>], bs);
  const int warp = static_cast<int>(threadIdx.x) / warpSize;
  const int lane = static_cast<int>(threadIdx.x) % warpSize;
  const int wm = (warp / 2) * kWM, wn = (warp % 2) * kWN;
  const index_t m0 = static_cast<index_t>(blockIdx.x) * kBM;
  const index_t n0 = static_cast<index_t>(blockIdx.y) * kBN;
  const index_t m_left = s.m - m0, n_left = s.n - n0;

  for (index_t batch = blockIdx.z; batch < s.batch; batch += gridDim.z) {
    const float* ab = a + batch * s.stride_a;
    const float* bb = b + batch * s.stride_b;
    float* cb = c + batch * s.stride_c;
    // op(A)(m, k) is A[m * lda + k], or A[k * lda + m] when transposed; op(B)(k, n) is
    // B[k * ldb + n], or B[n * ldb + k] when transposed.
    const SliceLoader load_a{s.trans_a ? ab + m0 : ab + m0 * s.lda,
                             s.trans_a ? 1 : s.lda,
                             s.trans_a ? s.lda : 1,
                             m_left,
                             s.k,
                             !s.trans_a};
    const SliceLoader load_b{s.trans_b ? bb + n0 * s.ldb : bb + n0,
                             s.trans_b ? s.ldb : 1,
                             s.trans_b ? 1 : s.ldb,
                             n_left,
                             s.k,
                             s.trans_b};
    float acc[kMi][kNi][4];
    GLIA_UNROLL
    for (int mi = 0; mi < kMi; ++mi) {
      GLIA_UNROLL
      GLIA_UNROLL
      for (int ni = 0; ni < kNi; ++ni) {
        GLIA_UNROLL
        GLIA_UNROLL
        for (int i = 0; i < 4; ++i) acc[mi][ni][i] = 0.0f;
      }
    }
    float va[kLoads], vb[kLoads];
    load_a.load(0, va);
    load_b.load(0, vb);
    for (index_t k0 = 0; k0 < s.k; k0 += kBK) {
      __syncthreads();  // every warp is done with the previous slice
      load_a.store<F>(va, as);
      load_b.store<F>(vb, bs);
      __syncthreads();
      if (k0 + kBK < s.k) {
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
          const index_t m = wm + mi * 16 + g + 8 * (i >> 1);
          const index_t n = wn + ni * 8 + 2 * t + (i & 1);
          if (m >= m_left || n >= n_left) continue;
          float& out = cb[(m0 + m) * s.ldc + n0 + n];
          // beta == 0: C is write-only, so garbage (even NaN) there never leaks into the result.
          out = beta == 0.0f ? alpha * acc[mi][ni][i] : alpha * acc[mi][ni][i] + beta * out;
        }
      }
    }
  }
}

__global__ void __launch_bounds__(kThreads)
    gemm_tc_tf32_kernel(GemmShape s, const float* a, const float* b, float* c, float alpha,
                        float beta) {
  gemm_tc_block<TensorFormat::tf32>(s, a, b, c, alpha, beta);
}
GLIA_LAUNCH_BOUNDS(gemm_tc_tf32_kernel, kThreads);

__global__ void __launch_bounds__(kThreads)
    gemm_tc_bf16_kernel(GemmShape s, const float* a, const float* b, float* c, float alpha,
                        float beta) {
  gemm_tc_block<TensorFormat::bf16>(s, a, b, c, alpha, beta);
}
GLIA_LAUNCH_BOUNDS(gemm_tc_bf16_kernel, kThreads);

__global__ void __launch_bounds__(kThreads)
    gemm_tc_f16_kernel(GemmShape s, const float* a, const float* b, float* c, float alpha,
                       float beta) {
  gemm_tc_block<TensorFormat::f16>(s, a, b, c, alpha, beta);
}
GLIA_LAUNCH_BOUNDS(gemm_tc_f16_kernel, kThreads);

}  // namespace

void gemm_tc(const GemmShape& s, TensorFormat format, const float* a, const float* b, float* c,
             Stream stream) {
  if (s.m == 0 || s.n == 0 || s.batch == 0) return;
  const index_t m_tiles = (s.m + kBM - 1) / kBM;
  const index_t n_tiles = (s.n + kBN - 1) / kBN;
  if (m_tiles > 0x7fffffff || n_tiles > kMaxGridYZ || s.k > 0x7fffffff - kBK) {
    throw std::invalid_argument("gemm_tc: " + s.describe() + " exceeds what one launch indexes");
  }
  const index_t batch_limit = grid_limit(kMaxGridYZ);
  const dim3 grid(static_cast<unsigned>(m_tiles), static_cast<unsigned>(n_tiles),
                  static_cast<unsigned>(s.batch < batch_limit ? s.batch : batch_limit));
  const auto alpha = static_cast<float>(s.alpha), beta = static_cast<float>(s.beta);
  switch (format) {
    case TensorFormat::tf32:
      GLIA_LAUNCH(gemm_tc_tf32_kernel, grid, kThreads, 0, stream, s, a, b, c, alpha, beta);
      return;
    case TensorFormat::bf16:
      GLIA_LAUNCH(gemm_tc_bf16_kernel, grid, kThreads, 0, stream, s, a, b, c, alpha, beta);
      return;
    case TensorFormat::f16:
      GLIA_LAUNCH(gemm_tc_f16_kernel, grid, kThreads, 0, stream, s, a, b, c, alpha, beta);
      return;
  }
  throw std::invalid_argument("gemm_tc: unknown tensor format " +
                              std::to_string(static_cast<int>(format)));
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
