// Reference reductions over the middle axis of a contiguous [outer, reduce, inner] view:
// y[o, i] = scale * sum_r x[o, r, i] (accumulated in double, so the float version is as exact as
// the data allows), y[o, i] = max_r x[o, r, i] with idx = its first r (NaN wins, first NaN), and
// its backward gx[o, r, i] = (r == idx[o, i]) ? gy[o, i] : 0. Tested in
// tests/kernels/reduce_test.cpp.
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

}  // namespace

template <class T>
void reduce_sum(const T* x, T* y, const ReduceShape& s, T scale) {
  const index_t work = s.outer * s.reduce * s.inner;
#pragma omp parallel for schedule(static) if (work > kParallelThreshold && s.outer > 1)
  for (index_t o = 0; o < s.outer; ++o) {
    std::vector<double> acc(static_cast<std::size_t>(s.inner), 0.0);
    const T* xo = x + o * s.reduce * s.inner;
    for (index_t r = 0; r < s.reduce; ++r) {
      for (index_t i = 0; i < s.inner; ++i) acc[i] += static_cast<double>(xo[r * s.inner + i]);
    }
    for (index_t i = 0; i < s.inner; ++i) {
      y[o * s.inner + i] = static_cast<T>(static_cast<double>(scale) * acc[i]);
    }
  }
}

template <class T>
void reduce_max(const T* x, T* y, std::int32_t* idx, const ReduceShape& s) {
  if (s.reduce < 1 && s.outer * s.inner > 0) {
    throw std::invalid_argument("reduce_max over an empty axis: shape " + s.describe());
  }
  const index_t work = s.outer * s.reduce * s.inner;
#pragma omp parallel for schedule(static) if (work > kParallelThreshold)
  for (index_t o = 0; o < s.outer; ++o) {
    for (index_t i = 0; i < s.inner; ++i) {
      const T* column = x + o * s.reduce * s.inner + i;
      T best = column[0];
      index_t best_r = 0;
      for (index_t r = 1; r < s.reduce && !std::isnan(best); ++r) {
        const T v = column[r * s.inner];
        if (v > best || std::isnan(v)) {
          best = v;
          best_r = r;
        }
      }
      y[o * s.inner + i] = best;
      idx[o * s.inner + i] = static_cast<std::int32_t>(best_r);
    }
  }
}

template <class T>
void reduce_max_backward(const T* gy, const std::int32_t* idx, T* gx, const ReduceShape& s) {
  const index_t work = s.outer * s.reduce * s.inner;
#pragma omp parallel for schedule(static) if (work > kParallelThreshold)
  for (index_t o = 0; o < s.outer; ++o) {
    for (index_t r = 0; r < s.reduce; ++r) {
      for (index_t i = 0; i < s.inner; ++i) {
        const index_t out = o * s.inner + i;
        gx[(o * s.reduce + r) * s.inner + i] = (idx[out] == r) ? gy[out] : T(0);
      }
    }
  }
}

#define GLIA_INSTANTIATE(T)                                                     \
  template void reduce_sum<T>(const T*, T*, const ReduceShape&, T);             \
  template void reduce_max<T>(const T*, T*, std::int32_t*, const ReduceShape&); \
  template void reduce_max_backward<T>(const T*, const std::int32_t*, T*, const ReduceShape&);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
