// Reference dropout: element i keeps when the Philox uniform of (seed, offset, i) is >= p (word
// i % 4 of the block at counter offset + i / 4, the numbers of the uniform fill), so cpu, sim and
// cuda drop the same elements for the same draw. y = keep ? x * scale : 0 with mask = keep; the
// backward is gx = mask ? gy * scale : 0. Tested in tests/kernels/loss_test.cpp.
#include "kernels/cpu/kernels.h"
#include "kernels/philox.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

}  // namespace

template <class T>
void dropout(const T* x, T* y, std::uint8_t* mask, index_t n, float p, T scale, std::uint64_t seed,
             std::uint64_t offset) {
  const index_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (index_t j = 0; j < blocks; ++j) {
    const philox::Block block = philox::block_at(seed, offset, static_cast<std::uint64_t>(j));
    for (index_t w = 0; w < 4 && 4 * j + w < n; ++w) {
      const index_t i = 4 * j + w;
      const bool keep = philox::to_unit_float(block.v[w]) >= p;
      mask[i] = keep ? 1 : 0;
      y[i] = keep ? x[i] * scale : T(0);
    }
  }
}

template <class T>
void dropout_backward(const T* gy, const std::uint8_t* mask, T* gx, index_t n, T scale) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (index_t i = 0; i < n; ++i) gx[i] = mask[i] ? gy[i] * scale : T(0);
}

#define GLIA_INSTANTIATE(T)                                                               \
  template void dropout<T>(const T*, T*, std::uint8_t*, index_t, float, T, std::uint64_t, \
                           std::uint64_t);                                                \
  template void dropout_backward<T>(const T*, const std::uint8_t*, T*, index_t, T);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
