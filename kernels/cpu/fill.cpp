// Reference fills: y = value, y[i] = start + i * step (computed in double, then converted). The
// dtype casts are kernels/cpu/cast.cpp. Tested in tests/kernels/fill_test.cpp.
#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {

template <class T>
void fill(T* y, index_t n, T value) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (index_t i = 0; i < n; ++i) y[i] = value;
}

template <class T>
void arange(T* y, index_t n, double start, double step) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (index_t i = 0; i < n; ++i) y[i] = static_cast<T>(start + static_cast<double>(i) * step);
}

#define GLIA_INSTANTIATE_FILL(T)         \
  template void fill<T>(T*, index_t, T); \
  template void arange<T>(T*, index_t, double, double);
GLIA_INSTANTIATE_FILL(float)
GLIA_INSTANTIATE_FILL(double)
GLIA_INSTANTIATE_FILL(std::int32_t)
GLIA_INSTANTIATE_FILL(std::uint8_t)
#undef GLIA_INSTANTIATE_FILL

}  // namespace glia::kernels::cpu
