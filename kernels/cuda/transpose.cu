// Transpose of the last two dims on the device: y[b, c, r] = x[b, r, c] for x of shape
// [batch, rows, cols]. Launch: grid (column tiles, row tiles, batch), 32 x 8 threads per 32 x 32
// tile (grid-stride over row tiles and batch beyond the grid limits). Each thread reads 4 elements
// of a tile row-wise into shared memory and writes 4 column-wise, so both the global reads and
// writes are coalesced; the +1 padding keeps the column-wise shared reads free of bank conflicts.
// Tested in tests/kernels/transpose_test.cpp against kernels/cpu/transpose.cpp.
#include "kernels/cuda/portable.cuh"

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

constexpr int kTile = 32;
constexpr int kTileRowsPerPass = 8;  // blockDim.y: each thread moves kTile / 8 elements
constexpr index_t kMaxGridYZ = 65535;

__global__ void __launch_bounds__(kTile* kTileRowsPerPass)
    transpose_kernel(const float* x, float* y, index_t batch, index_t rows, index_t cols) {
  GLIA_STATIC_SHARED(float[kTile][kTile + 1], tile);
  const index_t row_tiles = (rows + kTile - 1) / kTile;
  const index_t c0 = static_cast<index_t>(blockIdx.x) * kTile;
  for (index_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const float* xb = x + b * rows * cols;
    float* yb = y + b * rows * cols;
    for (index_t row_tile = blockIdx.y; row_tile < row_tiles; row_tile += gridDim.y) {
      const index_t r0 = row_tile * kTile;
      for (int dr = threadIdx.y; dr < kTile; dr += kTileRowsPerPass) {
        const index_t r = r0 + dr, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[dr][threadIdx.x] = xb[r * cols + c];
      }
      __syncthreads();
      for (int dc = threadIdx.y; dc < kTile; dc += kTileRowsPerPass) {
        const index_t c = c0 + dc, r = r0 + threadIdx.x;
        if (c < cols && r < rows) yb[c * rows + r] = tile[threadIdx.x][dc];
      }
      __syncthreads();  // the tile is reloaded next iteration
    }
  }
}
GLIA_LAUNCH_BOUNDS(transpose_kernel, kTile* kTileRowsPerPass);

unsigned clamp_grid(index_t blocks, index_t limit) {
  limit = grid_limit(limit);
  return static_cast<unsigned>(blocks < limit ? blocks : limit);
}

}  // namespace

void transpose_last2(const float* x, float* y, index_t batch, index_t rows, index_t cols,
                     Stream stream) {
  if (batch == 0 || rows == 0 || cols == 0) return;
  const dim3 grid(static_cast<unsigned>((cols + kTile - 1) / kTile),
                  clamp_grid((rows + kTile - 1) / kTile, kMaxGridYZ),
                  clamp_grid(batch, kMaxGridYZ));
  const dim3 block(kTile, kTileRowsPerPass);
  GLIA_LAUNCH(transpose_kernel, grid, block, 0, stream, x, y, batch, rows, cols);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
