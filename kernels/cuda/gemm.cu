// Shared-memory tiled GEMM on the device, row-major and batched:
//   C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]   (op(A) m x k, op(B) k x n; see GemmShape)
// Launch: grid (m tiles, n tiles, batch) of 64 x 64 output tiles, 256 threads. Per step over k the
// block stages a 64 x 16 slice of op(A) and a 16 x 64 slice of op(B) in shared memory (zero beyond
// the matrix edges), reading each stored matrix along its contiguous dim whatever the transpose.
// Thread (ty, tx) = (t / 16, t % 16) accumulates a 4 x 4 register micro-tile: rows ty + 16 i and
// cols tx + 16 j of the block tile, so a warp reads consecutive shared-memory words of the B slice
// (no bank conflicts) and writes consecutive columns of C (coalesced). Batches beyond the grid
// limit are covered by a grid-stride loop over z. Tested in tests/kernels/gemm_test.cpp against
// kernels/cpu/gemm.cpp.
#include "kernels/cuda/portable.cuh"

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
constexpr int kMicroM = kTileM / kThreadsM;          // 4 rows per thread
constexpr int kMicroN = kTileN / kThreadsN;          // 4 cols per thread
constexpr int kLoadsA = kTileM * kTileK / kThreads;  // slice elements each thread stages
constexpr int kLoadsB = kTileK * kTileN / kThreads;
constexpr index_t kMaxGridYZ = 65535;

__global__ void gemm_kernel(GemmShape s, const float* a, const float* b, float* c, float alpha,
                            float beta) {
  // a_slice[kk][mm] = op(A)(m0 + mm, k0 + kk); b_slice[kk][nn] = op(B)(k0 + kk, n0 + nn). The +1
  // padding spreads the transposed stores over all banks.
  __shared__ float a_slice[kTileK][kTileM + 1];
  __shared__ float b_slice[kTileK][kTileN + 1];
  const int t = threadIdx.x, ty = t / kThreadsN, tx = t % kThreadsN;
  const index_t m0 = static_cast<index_t>(blockIdx.x) * kTileM;
  const index_t n0 = static_cast<index_t>(blockIdx.y) * kTileN;

  for (index_t batch = blockIdx.z; batch < s.batch; batch += gridDim.z) {
    const float* ab = a + batch * s.stride_a;
    const float* bb = b + batch * s.stride_b;
    float* cb = c + batch * s.stride_c;
    float acc[kMicroM][kMicroN] = {};

    for (index_t k0 = 0; k0 < s.k; k0 += kTileK) {
      // Consecutive threads take consecutive elements of the stored matrix's contiguous dim.
      for (int l = 0; l < kLoadsA; ++l) {
        const int e = t + l * kThreads;
        const int mm = s.trans_a ? e % kTileM : e / kTileK;
        const int kk = s.trans_a ? e / kTileM : e % kTileK;
        const index_t m = m0 + mm, k = k0 + kk;
        float v = 0.0f;
        if (m < s.m && k < s.k) v = s.trans_a ? ab[k * s.lda + m] : ab[m * s.lda + k];
        a_slice[kk][mm] = v;
      }
      for (int l = 0; l < kLoadsB; ++l) {
        const int e = t + l * kThreads;
        const int nn = s.trans_b ? e / kTileK : e % kTileN;
        const int kk = s.trans_b ? e % kTileK : e / kTileN;
        const index_t k = k0 + kk, n = n0 + nn;
        float v = 0.0f;
        if (k < s.k && n < s.n) v = s.trans_b ? bb[n * s.ldb + k] : bb[k * s.ldb + n];
        b_slice[kk][nn] = v;
      }
      __syncthreads();

      for (int kk = 0; kk < kTileK; ++kk) {
        float a_frag[kMicroM], b_frag[kMicroN];
        for (int i = 0; i < kMicroM; ++i) a_frag[i] = a_slice[kk][ty + kThreadsM * i];
        for (int j = 0; j < kMicroN; ++j) b_frag[j] = b_slice[kk][tx + kThreadsN * j];
        for (int i = 0; i < kMicroM; ++i) {
          for (int j = 0; j < kMicroN; ++j) acc[i][j] += a_frag[i] * b_frag[j];
        }
      }
      __syncthreads();  // the slices are restaged next step
    }

    for (int i = 0; i < kMicroM; ++i) {
      const index_t m = m0 + ty + kThreadsM * i;
      if (m >= s.m) continue;
      for (int j = 0; j < kMicroN; ++j) {
        const index_t n = n0 + tx + kThreadsN * j;
        if (n >= s.n) continue;
        float& out = cb[m * s.ldc + n];
        // beta == 0: C is write-only, so garbage (even NaN) there never leaks into the result.
        out = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * out;
      }
    }
  }
}

}  // namespace

void gemm(const GemmShape& s, const float* a, const float* b, float* c, Stream stream) {
  if (s.m == 0 || s.n == 0 || s.batch == 0) return;
  const index_t m_tiles = (s.m + kTileM - 1) / kTileM;
  const index_t n_tiles = (s.n + kTileN - 1) / kTileN;
  if (m_tiles > 0x7fffffff || n_tiles > kMaxGridYZ) {
    throw std::invalid_argument("gemm: output " + std::to_string(s.m) + " x " +
                                std::to_string(s.n) + " exceeds the grid of one launch");
  }
  const index_t batch_limit = grid_limit(kMaxGridYZ);
  const dim3 grid(static_cast<unsigned>(m_tiles), static_cast<unsigned>(n_tiles),
                  static_cast<unsigned>(s.batch < batch_limit ? s.batch : batch_limit));
  GLIA_LAUNCH(gemm_kernel, grid, kThreads, 0, stream, s, a, b, c, static_cast<float>(s.alpha),
              static_cast<float>(s.beta));
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
