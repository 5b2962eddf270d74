// Tiled GEMM on the device, row-major and batched:
//   C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]   (op(A) m x k, op(B) k x n; see GemmShape)
// Launch: grid (m tiles, n tiles, batch) of 128 x 128 output tiles and 256 threads, or, for
// m <= 64, of 64 x 128 tiles and 128 threads: the block tile of kernels/cuda/gemm_tile.cuh (8 x 8
// register tiles, two cp.async stages of K = 8). Each operand is
// staged along its stored contiguous dimension: an operand whose rows (of the tile) are
// contiguous (op(A) = A^T, op(B) = B) moves as 16-byte cp.async copies when its pointer, leading
// dimension and batch stride are multiples of 4 floats, else as 4-byte copies; a K-contiguous
// operand moves as 4-byte copies (a transpose on the way into shared
// memory). Copies beyond the matrix edges zero-fill. Batches beyond the grid limit are covered by
// a grid-stride loop over z. Tested in tests/kernels/gemm_test.cpp against kernels/cpu/gemm.cpp.
#include "kernels/cuda/portable.cuh"

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/gemm_tile.cuh"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

using tile::kK;
using tile::kMicro;
using tile::kN;
constexpr index_t kMaxGridYZ = 65535;

template <int M>
struct GemmLoader {
  tile::OperandLoader<M, tile::kThreadsOf<M>> a;
  tile::OperandLoader<kN, tile::kThreadsOf<M>> b;
  __device__ void operator()(tile::Stage<M>& stage) {
    a(stage.a);
    b(stage.b);
  }
};

// One M x 128 tile of C per block (M = 128, or 64 when m <= 64).
template <int M>
__global__ void __launch_bounds__(tile::kThreadsOf<M>, tile::kMinBlocksOf<M>)
    gemm_kernel(GemmShape s, const float* a, const float* b, float* c, float alpha, float beta,
                bool vector_a, bool vector_b) {
  GLIA_STATIC_SHARED(tile::Stages<M>, stages);
  const int t = threadIdx.x, ty = t / tile::kThreadsN, tx = t % tile::kThreadsN;
  const index_t m0 = static_cast<index_t>(blockIdx.x) * M;
  const index_t n0 = static_cast<index_t>(blockIdx.y) * kN;
  const int k_tiles = static_cast<int>((s.k + kK - 1) / kK);

  for (index_t batch = blockIdx.z; batch < s.batch; batch += gridDim.z) {
    const float* ab = a + batch * s.stride_a;
    const float* bb = b + batch * s.stride_b;
    float* cb = c + batch * s.stride_c;
    // op(A)(m, k) is A[m * lda + k], or A[k * lda + m] when transposed; op(B)(k, n) likewise.
    const int depth = static_cast<int>(s.k);
    GemmLoader<M> load{{s.trans_a ? ab + m0 : ab + m0 * s.lda, s.lda, tile::rows_left<M>(s.m, m0),
                        depth, !s.trans_a, vector_a, t},
                       {s.trans_b ? bb + n0 * s.ldb : bb + n0, s.ldb, tile::rows_left<kN>(s.n, n0),
                        depth, s.trans_b, vector_b, t}};
    float acc[kMicro][kMicro] = {};
    tile::reduce_tiles(stages, k_tiles, load, acc, ty, tx);

    for (int i = 0; i < kMicro; ++i) {
      const index_t m = m0 + tile::micro_index<M>(ty, i);
      if (m >= s.m) continue;
      for (int j = 0; j < kMicro; ++j) {
        const index_t n = n0 + tile::micro_index<kN>(tx, j);
        if (n >= s.n) continue;
        float& out = cb[m * s.ldc + n];
        // beta == 0: C is write-only, so garbage (even NaN) there never leaks into the result.
        out = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * out;
      }
    }
  }
}
GLIA_LAUNCH_BOUNDS(gemm_kernel<tile::kM>, tile::kThreadsOf<tile::kM>);
GLIA_LAUNCH_BOUNDS(gemm_kernel<tile::kSmallM>, tile::kThreadsOf<tile::kSmallM>);

// Whether an operand whose tile rows are contiguous may move in 16-byte copies: every row start
// of every batch entry is 16-byte aligned.
bool aligned_rows(const float* x, index_t ld, index_t batch_stride, index_t batch) {
  return reinterpret_cast<std::uintptr_t>(x) % 16 == 0 && ld % 4 == 0 &&
         (batch == 1 || batch_stride % 4 == 0);
}

template <int M>
void launch_gemm(const GemmShape& s, const float* a, const float* b, float* c, Stream stream) {
  const index_t m_tiles = (s.m + M - 1) / M;
  const index_t n_tiles = (s.n + kN - 1) / kN;
  if (m_tiles > 0x7fffffff || n_tiles > kMaxGridYZ || s.k > 0x7fffffff - kK) {
    throw std::invalid_argument("gemm: " + s.describe() + " exceeds what one launch indexes");
  }
  const bool vector_a = s.trans_a && aligned_rows(a, s.lda, s.stride_a, s.batch);
  const bool vector_b = !s.trans_b && aligned_rows(b, s.ldb, s.stride_b, s.batch);
  const index_t batch_limit = grid_limit(kMaxGridYZ);
  const dim3 grid(static_cast<unsigned>(m_tiles), static_cast<unsigned>(n_tiles),
                  static_cast<unsigned>(s.batch < batch_limit ? s.batch : batch_limit));
  GLIA_LAUNCH(gemm_kernel<M>, grid, tile::kThreadsOf<M>, 0, stream, s, a, b, c,
              static_cast<float>(s.alpha), static_cast<float>(s.beta), vector_a, vector_b);
}

}  // namespace

void gemm(const GemmShape& s, const float* a, const float* b, float* c, Stream stream) {
  if (s.m == 0 || s.n == 0 || s.batch == 0) return;
  if (tile::tile_rows_for(s.m) == tile::kSmallM) {
    launch_gemm<tile::kSmallM>(s, a, b, c, stream);
  } else {
    launch_gemm<tile::kM>(s, a, b, c, stream);
  }
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
