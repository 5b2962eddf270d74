// Reference elementwise kernels: y = f(x) for each UnaryOp and its backward gx = gy * f'(x), the
// broadcasting binary ops out = a (op) b and expand, all over BroadcastShape's index arithmetic
// (out index -> per-dim index -> sum of idx[d] * stride[d]). Math in T, scalar parameters as T.
// Tested in tests/kernels/elementwise_test.cpp.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

template <class T>
T unary_value(UnaryOp op, T x, T a, T b) {
  switch (op) {
    case UnaryOp::copy:
      return x;
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return std::exp(x);
    case UnaryOp::log:
      return std::log(x);
    case UnaryOp::sqrt:
      return std::sqrt(x);
    case UnaryOp::abs:
      return std::abs(x);
    case UnaryOp::relu:
      return x < T(0) ? T(0) : x;  // NaN propagates
    case UnaryOp::sigmoid:
      return T(1) / (T(1) + std::exp(-x));
    case UnaryOp::tanh:
      return std::tanh(x);
    case UnaryOp::add_scalar:
      return x + a;
    case UnaryOp::mul_scalar:
      return a * x;
    case UnaryOp::rsub_scalar:
      return a - x;
    case UnaryOp::rdiv_scalar:
      return a / x;
    case UnaryOp::pow_scalar:
      return std::pow(x, a);
    case UnaryOp::clamp:
      return x < a ? a : (x > b ? b : x);  // NaN propagates
  }
  return std::numeric_limits<T>::quiet_NaN();  // not reached: ops are checked before the loop
}

// dy/dx * gy, from whichever of x and y is cheaper.
template <class T>
T unary_grad(UnaryOp op, T x, T y, T gy, T a, T b) {
  switch (op) {
    case UnaryOp::copy:
      return gy;
    case UnaryOp::neg:
      return -gy;
    case UnaryOp::exp:
      return gy * y;
    case UnaryOp::log:
      return gy / x;
    case UnaryOp::sqrt:
      return gy / (T(2) * y);
    case UnaryOp::abs:
      return x > T(0) ? gy : (x < T(0) ? -gy : T(0));
    case UnaryOp::relu:
      return x > T(0) ? gy : T(0);
    case UnaryOp::sigmoid:
      return gy * y * (T(1) - y);
    case UnaryOp::tanh:
      return gy * (T(1) - y * y);
    case UnaryOp::add_scalar:
      return gy;
    case UnaryOp::mul_scalar:
      return a * gy;
    case UnaryOp::rsub_scalar:
      return -gy;
    case UnaryOp::rdiv_scalar:
      return -gy * a / (x * x);
    case UnaryOp::pow_scalar:
      return gy * a * std::pow(x, a - T(1));
    case UnaryOp::clamp:
      return (x >= a && x <= b) ? gy : T(0);  // as PyTorch: bounds pass
  }
  return std::numeric_limits<T>::quiet_NaN();  // not reached: ops are checked before the loop
}

template <class T>
T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add:
      return a + b;
    case BinaryOp::sub:
      return a - b;
    case BinaryOp::mul:
      return a * b;
    case BinaryOp::div:
      return a / b;
  }
  return std::numeric_limits<T>::quiet_NaN();  // not reached: ops are checked before the loop
}

void check_unary_op(UnaryOp op, const char* kernel) {
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(UnaryOp::clamp)) {
    throw std::invalid_argument(std::string(kernel) + ": unknown UnaryOp " +
                                std::to_string(static_cast<int>(op)));
  }
}

void check_binary_op(BinaryOp op) {
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(BinaryOp::div)) {
    throw std::invalid_argument("binary: unknown BinaryOp " + std::to_string(static_cast<int>(op)));
  }
}

// Offsets of output element i in a and b: i is decomposed into per-dim indices, last dim fastest.
struct Offsets {
  index_t a = 0, b = 0;
};
inline Offsets broadcast_offsets(const BroadcastShape& s, index_t i) {
  Offsets off;
  for (int d = s.ndim - 1; d >= 0; --d) {
    const index_t idx = i % s.shape[d];
    i /= s.shape[d];
    off.a += idx * s.a_stride[d];
    off.b += idx * s.b_stride[d];
  }
  return off;
}

}  // namespace

template <class T>
void unary(UnaryOp op, const T* x, T* y, index_t n, UnaryParams p) {
  check_unary_op(op, "unary");
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (index_t i = 0; i < n; ++i) y[i] = unary_value(op, x[i], a, b);
}

template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, index_t n,
                    UnaryParams p) {
  check_unary_op(op, "unary_backward");
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (index_t i = 0; i < n; ++i) gx[i] = unary_grad(op, x[i], y[i], gy[i], a, b);
}

template <class T>
void binary(BinaryOp op, const T* a, const T* b, T* out, const BroadcastShape& s) {
  check_binary_op(op);
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
