// Reference elementwise kernels: y = f(x) for each UnaryOp and its backward gx = gy * f'(x), the
// broadcasting binary ops out = a (op) b and expand, all over BroadcastShape's index arithmetic
// (out index -> per-dim index -> sum of idx[d] * stride[d]). Math in T, scalar parameters as T.
// The op is made a compile-time constant for the loops (one branch per call, not per element, so
// the loops vectorise), and the broadcast index arithmetic runs once per row of the last dim, whose
// elements are then a strided run. Tested in tests/kernels/elementwise_test.cpp.
#include <type_traits>

#include "kernels/cpu/kernels.h"
#include "kernels/elementwise_math.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

// f(std::integral_constant<UnaryOp, op>) for the ops that dominate training (relu, copy,
// mul_scalar, add_scalar); f(op) for the rest.
template <class F>
void with_unary_op(UnaryOp op, F&& f) {
  switch (op) {
    case UnaryOp::relu:
      return f(std::integral_constant<UnaryOp, UnaryOp::relu>{});
    case UnaryOp::copy:
      return f(std::integral_constant<UnaryOp, UnaryOp::copy>{});
    case UnaryOp::mul_scalar:
      return f(std::integral_constant<UnaryOp, UnaryOp::mul_scalar>{});
    case UnaryOp::add_scalar:
      return f(std::integral_constant<UnaryOp, UnaryOp::add_scalar>{});
    default:
      return f(op);
  }
}

template <class F>
void with_binary_op(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::add:
      return f(std::integral_constant<BinaryOp, BinaryOp::add>{});
    case BinaryOp::sub:
      return f(std::integral_constant<BinaryOp, BinaryOp::sub>{});
    case BinaryOp::mul:
      return f(std::integral_constant<BinaryOp, BinaryOp::mul>{});
    case BinaryOp::div:
      return f(std::integral_constant<BinaryOp, BinaryOp::div>{});
  }
}

}  // namespace

template <class T>
void unary(UnaryOp op, const T* x, T* y, index_t n, UnaryParams p) {
  check_op(op, "unary");
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
  with_unary_op(op, [&](auto op_c) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (index_t i = 0; i < n; ++i) y[i] = unary_value(UnaryOp(op_c), x[i], a, b);
  });
}

template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, index_t n,
                    UnaryParams p) {
  check_op(op, "unary_backward");
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
  with_unary_op(op, [&](auto op_c) {
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (index_t i = 0; i < n; ++i) gx[i] = unary_grad(UnaryOp(op_c), x[i], y[i], gy[i], a, b);
  });
}

template <class T>
void binary(BinaryOp op, const T* a, const T* b, T* out, const BroadcastShape& s) {
  check_op(op, "binary");
  if (s.numel == 0) return;
  const index_t inner = s.ndim > 0 ? s.shape[s.ndim - 1] : 1;
  const index_t sa = s.ndim > 0 ? s.a_stride[s.ndim - 1] : 0;
  const index_t sb = s.ndim > 0 ? s.b_stride[s.ndim - 1] : 0;
  const index_t rows = s.numel / inner;
  with_binary_op(op, [&](auto op_c) {
#pragma omp parallel for schedule(static) if (s.numel > kParallelThreshold)
    for (index_t r = 0; r < rows; ++r) {
      const Offsets off = broadcast_offsets(s, r * inner);
      const T* ar = a + off.a;
      const T* br = b + off.b;
      T* o = out + r * inner;
      if (sa == 1 && sb == 1) {
        for (index_t i = 0; i < inner; ++i) o[i] = binary_value(BinaryOp(op_c), ar[i], br[i]);
      } else if (sa == 1 && sb == 0) {
        const T bv = *br;
        for (index_t i = 0; i < inner; ++i) o[i] = binary_value(BinaryOp(op_c), ar[i], bv);
      } else {
        for (index_t i = 0; i < inner; ++i) {
          o[i] = binary_value(BinaryOp(op_c), ar[i * sa], br[i * sb]);
        }
      }
    }
  });
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
