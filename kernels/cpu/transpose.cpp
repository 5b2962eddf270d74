// Reference transpose of the last two dims: y[b, c, r] = x[b, r, c] for x of shape
// [batch, rows, cols]. Tested in tests/kernels/transpose_test.cpp.
#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {

template <class T>
void transpose_last2(const T* x, T* y, index_t batch, index_t rows, index_t cols) {
  // Blocked so that both the reads and the writes stay within a few cache lines.
  constexpr index_t kTile = 32;
  const index_t row_tiles = (rows + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static) if (batch * rows * cols > (1 << 15))
  for (index_t b = 0; b < batch; ++b) {
    for (index_t rt = 0; rt < row_tiles; ++rt) {
      const T* xb = x + b * rows * cols;
      T* yb = y + b * rows * cols;
      const index_t r_end = (rt + 1) * kTile < rows ? (rt + 1) * kTile : rows;
      for (index_t c0 = 0; c0 < cols; c0 += kTile) {
        const index_t c_end = c0 + kTile < cols ? c0 + kTile : cols;
        for (index_t r = rt * kTile; r < r_end; ++r) {
          for (index_t c = c0; c < c_end; ++c) yb[c * rows + r] = xb[r * cols + c];
        }
      }
    }
  }
}

template void transpose_last2<float>(const float*, float*, index_t, index_t, index_t);
template void transpose_last2<double>(const double*, double*, index_t, index_t, index_t);

}  // namespace glia::kernels::cpu
