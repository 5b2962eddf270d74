// Tensor-core GEMM on the device, row-major and batched, with the interface of gemm.cu plus the
// operand format:
//   C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]   (op(A) m x k, op(B) k x n; see GemmShape)
// A and B are float in global memory, rounded to `format` (tf32: round_to_tf32, as cvt.rna does;
// bf16 / f16: to nearest even) on their way into shared memory; the products run on mma.sync
// (kernels/cuda/mma.cuh) with FP32 accumulation; alpha and beta are applied in float.
// Launch: grid (m tiles, n tiles, batch) of 64 x 64 output tiles of 128 threads, the block tile of
// kernels/cuda/mma_tile.cuh over op(A) and op(B) as they are stored (each operand's slice is
// loaded along its contiguous dimension). Elements beyond the matrix edges load as zero and
// outputs beyond them are not stored, so any m, n, k works. Batches beyond the grid limit are
// covered by a grid-stride loop over z. Tested in tests/kernels/gemm_tc_test.cpp against
// kernels/cpu/gemm.cpp on operands rounded to the format.
#include "kernels/cuda/portable.cuh"

#include <stdexcept>
#include <string>

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/mma_tile.cuh"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

using tc::kBK;
using tc::kBM;
using tc::kBN;
using tc::kThreads;
constexpr index_t kMaxGridYZ = 65535;

template <TensorFormat F>
__device__ __forceinline__ void gemm_tc_block(const GemmShape& s, const float* a, const float* b,
                                              float* c, float alpha, float beta) {
  const index_t m0 = static_cast<index_t>(blockIdx.x) * kBM;
  const index_t n0 = static_cast<index_t>(blockIdx.y) * kBN;
  const index_t m_left = s.m - m0, n_left = s.n - n0;
  for (index_t batch = blockIdx.z; batch < s.batch; batch += gridDim.z) {
    const float* ab = a + batch * s.stride_a;
    const float* bb = b + batch * s.stride_b;
    float* cb = c + batch * s.stride_c + m0 * s.ldc + n0;
    // op(A)(m, k) is A[m * lda + k], or A[k * lda + m] when transposed; op(B)(k, n) is
    // B[k * ldb + n], or B[n * ldb + k] when transposed (B's rows here are n).
    const tc::MatrixLoader load_a{s.trans_a ? ab + m0 : ab + m0 * s.lda,
                                  s.trans_a ? 1 : s.lda,
                                  s.trans_a ? s.lda : 1,
                                  m_left,
                                  s.k,
                                  !s.trans_a};
    const tc::MatrixLoader load_b{s.trans_b ? bb + n0 * s.ldb : bb + n0,
                                  s.trans_b ? s.ldb : 1,
                                  s.trans_b ? 1 : s.ldb,
                                  n_left,
                                  s.k,
                                  s.trans_b};
    tc::block_product<F>(load_a, load_b, s.k, [&](int m, int n, float acc) {
      if (m >= m_left || n >= n_left) return;
      float& out = cb[m * s.ldc + n];
      // beta == 0: C is write-only, so garbage (even NaN) there never leaks into the result.
      out = beta == 0.0f ? alpha * acc : alpha * acc + beta * out;
    });
  }
}

template <TensorFormat F>
__global__ void __launch_bounds__(kThreads)
    gemm_tc_kernel(GemmShape s, const float* a, const float* b, float* c, float alpha, float beta) {
  gemm_tc_block<F>(s, a, b, c, alpha, beta);
}
GLIA_LAUNCH_BOUNDS(gemm_tc_kernel<TensorFormat::tf32>, kThreads);
GLIA_LAUNCH_BOUNDS(gemm_tc_kernel<TensorFormat::bf16>, kThreads);
GLIA_LAUNCH_BOUNDS(gemm_tc_kernel<TensorFormat::f16>, kThreads);

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
  tc::with_format("gemm_tc", format, [&](auto f) {
    GLIA_LAUNCH(gemm_tc_kernel<decltype(f)::value>, grid, kThreads, 0, stream, s, a, b, c, alpha,
                beta);
  });
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
