// Reference softmax and log-softmax over the rows of [rows, classes] (ClassShape), the oracle of
// kernels/cuda/softmax.cu. Each row is max-subtracted (m_n = max_c x[n, c]) and its sum
// S_n = sum_c exp(x[n, c] - m_n) accumulates in double:
//   softmax      y[n, c] = exp(x[n, c] - m_n) / S_n
//   log_softmax  y[n, c] = x[n, c] - m_n - log S_n
// Backward from the forward's output y, with the row sums in double:
//   softmax      gx = y * (gy - sum_c gy * y)
//   log_softmax  gx = gy - exp(y) * sum_c gy
// Tested in tests/kernels/softmax_test.cpp and tests/engine/softmax_test.cpp.
#include <cmath>
#include <limits>

#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

struct RowStats {
  double max;
  double sum;  // sum_c exp(x[c] - max)
};

template <class T>
RowStats row_stats(const T* xn, index_t classes) {
  double m = -std::numeric_limits<double>::infinity();
  for (index_t c = 0; c < classes; ++c) m = std::fmax(m, static_cast<double>(xn[c]));
  double sum = 0.0;
  for (index_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(xn[c]) - m);
  return {m, sum};
}

}  // namespace

template <class T>
void softmax(const T* x, T* y, const ClassShape& s) {
#pragma omp parallel for schedule(static) if (s.rows * s.classes > kParallelThreshold)
  for (index_t n = 0; n < s.rows; ++n) {
    const T* xn = x + n * s.classes;
    const RowStats r = row_stats(xn, s.classes);
    for (index_t c = 0; c < s.classes; ++c) {
      y[n * s.classes + c] = static_cast<T>(std::exp(static_cast<double>(xn[c]) - r.max) / r.sum);
    }
  }
}

template <class T>
void log_softmax(const T* x, T* y, const ClassShape& s) {
#pragma omp parallel for schedule(static) if (s.rows * s.classes > kParallelThreshold)
  for (index_t n = 0; n < s.rows; ++n) {
    const T* xn = x + n * s.classes;
    const RowStats r = row_stats(xn, s.classes);
    const double shift = r.max + std::log(r.sum);
    for (index_t c = 0; c < s.classes; ++c) {
      y[n * s.classes + c] = static_cast<T>(static_cast<double>(xn[c]) - shift);
    }
  }
}

template <class T>
void softmax_backward(const T* y, const T* gy, T* gx, const ClassShape& s) {
#pragma omp parallel for schedule(static) if (s.rows * s.classes > kParallelThreshold)
  for (index_t n = 0; n < s.rows; ++n) {
    const index_t row = n * s.classes;
    double dot = 0.0;
    for (index_t c = 0; c < s.classes; ++c) {
      dot += static_cast<double>(gy[row + c]) * static_cast<double>(y[row + c]);
    }
    for (index_t c = 0; c < s.classes; ++c) {
      gx[row + c] = static_cast<T>(static_cast<double>(y[row + c]) *
                                   (static_cast<double>(gy[row + c]) - dot));
    }
  }
}

template <class T>
void log_softmax_backward(const T* y, const T* gy, T* gx, const ClassShape& s) {
#pragma omp parallel for schedule(static) if (s.rows * s.classes > kParallelThreshold)
  for (index_t n = 0; n < s.rows; ++n) {
    const index_t row = n * s.classes;
    double sum = 0.0;
    for (index_t c = 0; c < s.classes; ++c) sum += static_cast<double>(gy[row + c]);
    for (index_t c = 0; c < s.classes; ++c) {
      gx[row + c] = static_cast<T>(static_cast<double>(gy[row + c]) -
                                   std::exp(static_cast<double>(y[row + c])) * sum);
    }
  }
}

#define GLIA_INSTANTIATE(T)                                                     \
  template void softmax<T>(const T*, T*, const ClassShape&);                    \
  template void log_softmax<T>(const T*, T*, const ClassShape&);                \
  template void softmax_backward<T>(const T*, const T*, T*, const ClassShape&); \
  template void log_softmax_backward<T>(const T*, const T*, T*, const ClassShape&);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
