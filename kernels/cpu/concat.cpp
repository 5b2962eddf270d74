// Reference channel-offset copies behind concat and split: the part [outer, part_channels, inner]
// is channels [offset, offset + part_channels) of the whole [outer, whole_channels, inner]
// (NCHW with inner = H * W, or [N, F] with inner = 1). Tested in tests/kernels/loss_test.cpp.
#include <algorithm>

#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

}  // namespace

template <class T>
void copy_into_channels(const T* part, T* whole, const ChannelSlice& s) {
  const index_t run = s.part_channels * s.inner;  // one sample's slice is contiguous
#pragma omp parallel for schedule(static) if (s.outer * run > kParallelThreshold)
  for (index_t o = 0; o < s.outer; ++o) {
    std::copy_n(part + o * run, run, whole + (o * s.whole_channels + s.offset) * s.inner);
  }
}

template <class T>
void copy_from_channels(const T* whole, T* part, const ChannelSlice& s) {
  const index_t run = s.part_channels * s.inner;
#pragma omp parallel for schedule(static) if (s.outer * run > kParallelThreshold)
  for (index_t o = 0; o < s.outer; ++o) {
    std::copy_n(whole + (o * s.whole_channels + s.offset) * s.inner, run, part + o * run);
  }
}

#define GLIA_INSTANTIATE(T)                                               \
  template void copy_into_channels<T>(const T*, T*, const ChannelSlice&); \
  template void copy_from_channels<T>(const T*, T*, const ChannelSlice&);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
