// Philox4x32-10 fills on the device, the same numbers as kernels/cpu/random.cpp for the same
// (seed, offset): element i takes word i % 4 of the block at counter offset + i / 4 (key = seed);
// uniform maps a word to lo + (hi - lo) * u, normal runs Box-Muller on the word pairs (0, 1) and
// (2, 3), both through the shared code of kernels/philox.h.
// Launch: 1-D grid-stride loop, 256 threads; each thread generates one Philox block and writes
// its (up to) four elements. Tested in tests/kernels/random_test.cpp (bit-exact against cpu on
// sim).
#include "kernels/cuda/portable.cuh"

#include <cstdint>

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/philox.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

// Writes the first min(4, n - 4j) of values to y[4j ...].
__device__ inline void store_block(float* y, index_t n, index_t j, const float values[4]) {
  const index_t first = 4 * j;
  const int count = n - first < 4 ? static_cast<int>(n - first) : 4;
  for (int w = 0; w < count; ++w) y[first + w] = values[w];
}

__global__ void __launch_bounds__(kThreadsPerBlock)
    uniform_kernel(float* y, index_t n, std::uint64_t seed, std::uint64_t offset, float lo,
                   float hi) {
  const index_t blocks = (n + 3) / 4;
  for (index_t j = global_thread_index(); j < blocks; j += grid_thread_count()) {
    const philox::Block block = philox::block_at(seed, offset, static_cast<std::uint64_t>(j));
    float values[4];
    for (int w = 0; w < 4; ++w) values[w] = philox::uniform_value(block.v[w], lo, hi);
    store_block(y, n, j, values);
  }
}
GLIA_LAUNCH_BOUNDS(uniform_kernel, kThreadsPerBlock);

__global__ void __launch_bounds__(kThreadsPerBlock)
    normal_kernel(float* y, index_t n, std::uint64_t seed, std::uint64_t offset, float mean,
                  float stddev) {
  const index_t blocks = (n + 3) / 4;
  for (index_t j = global_thread_index(); j < blocks; j += grid_thread_count()) {
    float values[4];
    philox::normal4(philox::block_at(seed, offset, static_cast<std::uint64_t>(j)), mean, stddev,
                    values);
    store_block(y, n, j, values);
  }
}
GLIA_LAUNCH_BOUNDS(normal_kernel, kThreadsPerBlock);

}  // namespace

void uniform(float* y, index_t n, std::uint64_t seed, std::uint64_t offset, float lo, float hi,
             Stream stream) {
  if (n == 0) return;
  GLIA_LAUNCH(uniform_kernel, grid_stride_blocks((n + 3) / 4), kThreadsPerBlock, 0, stream, y, n,
              seed, offset, lo, hi);
}

void normal(float* y, index_t n, std::uint64_t seed, std::uint64_t offset, float mean, float stddev,
            Stream stream) {
  if (n == 0) return;
  GLIA_LAUNCH(normal_kernel, grid_stride_blocks((n + 3) / 4), kThreadsPerBlock, 0, stream, y, n,
              seed, offset, mean, stddev);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
