// Reference elementwise kernels: y = f(x) for each UnaryOp and its backward gx = gy * f'(x), the
// broadcasting binary ops out = a (op) b and expand, all over BroadcastShape's index arithmetic
// (out index -> per-dim index -> sum of idx[d] * stride[d]). Math in T, scalar parameters as T.
// Tested in tests/kernels/elementwise_test.cpp.
#include "kernels/cpu/kernels.h"
#include "kernels/elementwise_math.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

}  // namespace

template <class T>
void unary(UnaryOp op, const T* x, T* y, index_t n, UnaryParams p) {
  check_op(op, "unary");
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (index_t i = 0; i < n; ++i) y[i] = unary_value(op, x[i], a, b);
}

template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, index_t n,
                    UnaryParams p) {
  check_op(op, "unary_backward");
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (index_t i = 0; i < n; ++i) gx[i] = unary_grad(op, x[i], y[i], gy[i], a, b);
}

template <class T>
void binary(BinaryOp op, const T* a, const T* b, T* out, const BroadcastShape& s) {
  check_op(op, "binary");
#pragma omp parallel for schedule(static) if (s.numel > kParallelThreshold)
  for (index_t i = 0; i < s.numel; ++i) {
    const Offsets off = broadcast_offsets(s, i);
    out[i] = binary_value(op, a[off.a], b[off.b]);
  }
}

template <class T>
void expand(const T* x, T* y, const BroadcastShape& s) {
#pragma omp parallel for schedule(static) if (s.numel > kParallelThreshold)
  for (index_t i = 0; i < s.numel; ++i) y[i] = x[broadcast_offsets(s, i).a];
}

#define GLIA_INSTANTIATE(T)                                                           \
  template void unary<T>(UnaryOp, const T*, T*, index_t, UnaryParams);                \
  template void unary_backward<T>(UnaryOp, const T*, const T*, const T*, T*, index_t, \
                                  UnaryParams);                                       \
  template void binary<T>(BinaryOp, const T*, const T*, T*, const BroadcastShape&);   \
  template void expand<T>(const T*, T*, const BroadcastShape&);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
