// Reference Philox4x32-10 fills: element i takes word i % 4 of the block at counter offset + i / 4
// (key = seed). uniform: lo + (hi - lo) * u with u the top 24 bits in [0, 1); normal: Box-Muller
// on the word pairs (0, 1) and (2, 3), all in float through kernels/philox.h (the code the cuda
// kernels run), then converted to T. Tested in tests/kernels/random_test.cpp.
#include "kernels/cpu/kernels.h"
#include "kernels/philox.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

// Calls fill(j, values) for each Philox block j of an n-element fill and copies the (up to) four
// float values it produced to y[4j .. 4j + 3].
template <class T, class Fill>
void fill_blocks(T* y, index_t n, Fill fill) {
  const index_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (index_t j = 0; j < blocks; ++j) {
    float values[4];
    fill(j, values);
    const index_t count = n - 4 * j < 4 ? n - 4 * j : 4;
    for (index_t w = 0; w < count; ++w) y[4 * j + w] = static_cast<T>(values[w]);
  }
}

}  // namespace

template <class T>
void uniform(T* y, index_t n, std::uint64_t seed, std::uint64_t offset, float lo, float hi) {
  fill_blocks(y, n, [=](index_t j, float values[4]) {
    const philox::Block block = philox::block_at(seed, offset, static_cast<std::uint64_t>(j));
    for (int w = 0; w < 4; ++w) values[w] = philox::uniform_value(block.v[w], lo, hi);
  });
}

template <class T>
void normal(T* y, index_t n, std::uint64_t seed, std::uint64_t offset, float mean, float stddev) {
  fill_blocks(y, n, [=](index_t j, float values[4]) {
    philox::normal4(philox::block_at(seed, offset, static_cast<std::uint64_t>(j)), mean, stddev,
                    values);
  });
}

#define GLIA_INSTANTIATE(T)                                                          \
  template void uniform<T>(T*, index_t, std::uint64_t, std::uint64_t, float, float); \
  template void normal<T>(T*, index_t, std::uint64_t, std::uint64_t, float, float);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
