// Dropout on the device, bit for bit the mask of kernels/cpu/dropout.cpp: element i keeps when the
// Philox uniform of (seed, offset, i) is >= p (word i % 4 of the block at counter
// offset + i / 4); y = keep ? x * scale : 0 and mask = keep (u8), which the backward reads back:
// gx = mask ? gy * scale : 0.
// Launch: 1-D grid-stride, 256 threads; in the forward each thread generates one Philox block and
// writes its (up to) four elements, in the backward each thread writes one element.
// Tested in tests/kernels/loss_test.cpp (cpu vs sim, identical masks).
#include "kernels/cuda/portable.cuh"

#include <cstdint>

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/philox.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

__global__ void __launch_bounds__(kThreadsPerBlock)
    dropout_kernel(const float* x, float* y, std::uint8_t* mask, index_t n, float p, float scale,
                   std::uint64_t seed, std::uint64_t offset) {
  const index_t blocks = (n + 3) / 4;
  for (index_t j = global_thread_index(); j < blocks; j += grid_thread_count()) {
    const philox::Block block = philox::block_at(seed, offset, static_cast<std::uint64_t>(j));
    for (int w = 0; w < 4 && 4 * j + w < n; ++w) {
      const index_t i = 4 * j + w;
      const bool keep = philox::to_unit_float(block.v[w]) >= p;
      mask[i] = keep ? 1 : 0;
      y[i] = keep ? x[i] * scale : 0.0f;
    }
  }
}
GLIA_LAUNCH_BOUNDS(dropout_kernel, kThreadsPerBlock);

__global__ void __launch_bounds__(kThreadsPerBlock)
    dropout_backward_kernel(const float* gy, const std::uint8_t* mask, float* gx, index_t n,
                            float scale) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    gx[i] = mask[i] ? gy[i] * scale : 0.0f;
  }
}
GLIA_LAUNCH_BOUNDS(dropout_backward_kernel, kThreadsPerBlock);

}  // namespace

void dropout(const float* x, float* y, std::uint8_t* mask, index_t n, float p, float scale,
             std::uint64_t seed, std::uint64_t offset, Stream stream) {
  if (n == 0) return;
  GLIA_LAUNCH(dropout_kernel, grid_stride_blocks((n + 3) / 4), kThreadsPerBlock, 0, stream, x, y,
              mask, n, p, scale, seed, offset);
}

void dropout_backward(const float* gy, const std::uint8_t* mask, float* gx, index_t n, float scale,
                      Stream stream) {
  if (n == 0) return;
  GLIA_LAUNCH(dropout_backward_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, gy, mask,
              gx, n, scale);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
