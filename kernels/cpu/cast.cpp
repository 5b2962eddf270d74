// Reference dtype casts y[i] = D(x[i]): between float, double, int32 and uint8 as a C cast (float
// to integer truncates toward zero), and between float/double and the 16-bit formats through
// kernels/half.h (to bf16/f16: nearest even, as cvt.rn; double is first rounded to float, as
// PyTorch does; from bf16/f16: exact). Also the rounding of float operands to tf32/bf16/f16 kept
// in float (kernels/rounding.h). Tested in tests/kernels/fill_test.cpp and cast_test.cpp.
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/kernels.h"
#include "kernels/half.h"
#include "kernels/rounding.h"

namespace glia::kernels::cpu {
namespace {

template <class T>
constexpr bool kIsHalf = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

template <class D, class S>
D convert(S x) {
  if constexpr (kIsHalf<S>) {
    return static_cast<D>(static_cast<float>(x));
  } else if constexpr (kIsHalf<D>) {
    return D(static_cast<float>(x));
  } else {
    return static_cast<D>(x);
  }
}

}  // namespace

template <class S, class D>
void cast(const S* x, D* y, index_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (index_t i = 0; i < n; ++i) y[i] = convert<D>(x[i]);
}

void round_to_format(const float* x, float* y, index_t n, TensorFormat format) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (index_t i = 0; i < n; ++i) y[i] = glia::kernels::round_to_format(x[i], format);
}

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

#define GLIA_INSTANTIATE_HALF_CAST(H)                        \
  template void cast<float, H>(const float*, H*, index_t);   \
  template void cast<double, H>(const double*, H*, index_t); \
  template void cast<H, float>(const H*, float*, index_t);   \
  template void cast<H, double>(const H*, double*, index_t);
GLIA_INSTANTIATE_HALF_CAST(bf16)
GLIA_INSTANTIATE_HALF_CAST(f16)
#undef GLIA_INSTANTIATE_HALF_CAST

}  // namespace glia::kernels::cpu
