// Reference fills: y = value, y[i] = start + i * step (computed in double, then converted), and
// dtype casts y[i] = D(x[i]) (float to integer truncates toward zero, as a C cast).
// Tested in tests/kernels/fill_test.cpp.
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

template <class S, class D>
void cast(const S* x, D* y, index_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (index_t i = 0; i < n; ++i) y[i] = static_cast<D>(x[i]);
}

#define GLIA_INSTANTIATE_FILL(T)         \
  template void fill<T>(T*, index_t, T); \
  template void arange<T>(T*, index_t, double, double);
GLIA_INSTANTIATE_FILL(float)
GLIA_INSTANTIATE_FILL(double)
GLIA_INSTANTIATE_FILL(std::int32_t)
GLIA_INSTANTIATE_FILL(std::uint8_t)
#undef GLIA_INSTANTIATE_FILL

#define GLIA_INSTANTIATE_CAST(S)                                         \
  template void cast<S, float>(const S*, float*, index_t);               \
  template void cast<S, double>(const S*, double*, index_t);             \
  template void cast<S, std::int32_t>(const S*, std::int32_t*, index_t); \
  template void cast<S, std::uint8_t>(const S*, std::uint8_t*, index_t);
GLIA_INSTANTIATE_CAST(float)
GLIA_INSTANTIATE_CAST(double)
GLIA_INSTANTIATE_CAST(std::int32_t)
GLIA_INSTANTIATE_CAST(std::uint8_t)
#undef GLIA_INSTANTIATE_CAST

}  // namespace glia::kernels::cpu
