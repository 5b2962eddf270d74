// The per-element math of the elementwise ops, shared verbatim by the cpu reference (T = float,
// double) and the cuda/sim kernels (T = float), so every backend computes the same formula:
// y = f(x) per UnaryOp, its backward gx = gy * f'(x) from whichever of x and y is cheaper,
// a (op) b per BinaryOp, and the index arithmetic of BroadcastShape (out index -> per-dim index,
// last dim fastest -> sum of idx[d] * stride[d]). Tested through
// tests/kernels/elementwise_test.cpp.
#pragma once

#include <math.h>

#include <stdexcept>
#include <string>

#include "kernels/types.h"

namespace glia::kernels {

namespace math {
// The C library's float and double functions by overload, callable on host and device.
GLIA_HD float exp(float x) {
  return ::expf(x);
}
GLIA_HD double exp(double x) {
  return ::exp(x);
}
GLIA_HD float log(float x) {
  return ::logf(x);
}
GLIA_HD double log(double x) {
  return ::log(x);
}
GLIA_HD float sqrt(float x) {
  return ::sqrtf(x);
}
GLIA_HD double sqrt(double x) {
  return ::sqrt(x);
}
GLIA_HD float abs(float x) {
  return ::fabsf(x);
}
GLIA_HD double abs(double x) {
  return ::fabs(x);
}
GLIA_HD float tanh(float x) {
  return ::tanhf(x);
}
GLIA_HD double tanh(double x) {
  return ::tanh(x);
}
GLIA_HD float pow(float x, float y) {
  return ::powf(x, y);
}
GLIA_HD double pow(double x, double y) {
  return ::pow(x, y);
}
}  // namespace math

// Host-side guards of the launchers: an op code outside the enum is an error, not a silent copy.
inline void check_op(UnaryOp op, const char* kernel) {
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(UnaryOp::clamp)) {
    throw std::invalid_argument(std::string(kernel) + ": unknown UnaryOp " +
                                std::to_string(static_cast<int>(op)));
  }
}
inline void check_op(BinaryOp op, const char* kernel) {
  if (static_cast<int>(op) < 0 || static_cast<int>(op) > static_cast<int>(BinaryOp::div)) {
    throw std::invalid_argument(std::string(kernel) + ": unknown BinaryOp " +
                                std::to_string(static_cast<int>(op)));
  }
}

template <class T>
GLIA_HD T unary_value(UnaryOp op, T x, T a, T b) {
  switch (op) {
    case UnaryOp::copy:
      return x;
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return math::exp(x);
    case UnaryOp::log:
      return math::log(x);
    case UnaryOp::sqrt:
      return math::sqrt(x);
    case UnaryOp::abs:
      return math::abs(x);
    case UnaryOp::relu:
      return x < T(0) ? T(0) : x;  // NaN propagates
    case UnaryOp::sigmoid:
      return T(1) / (T(1) + math::exp(-x));
    case UnaryOp::tanh:
      return math::tanh(x);
    case UnaryOp::add_scalar:
      return x + a;
    case UnaryOp::mul_scalar:
      return a * x;
    case UnaryOp::rsub_scalar:
      return a - x;
    case UnaryOp::rdiv_scalar:
      return a / x;
    case UnaryOp::pow_scalar:
      return math::pow(x, a);
    case UnaryOp::clamp:
      return x < a ? a : (x > b ? b : x);  // NaN propagates
  }
  return x;  // not reached: the launchers check the op (check_op)
}

// dy/dx * gy, from whichever of x and y is cheaper.
template <class T>
GLIA_HD T unary_grad(UnaryOp op, T x, T y, T gy, T a, T b) {
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
      return gy * a * math::pow(x, a - T(1));
    case UnaryOp::clamp:
      return (x >= a && x <= b) ? gy : T(0);  // as PyTorch: bounds pass
  }
  return gy;  // not reached: the launchers check the op (check_op)
}

template <class T>
GLIA_HD T binary_value(BinaryOp op, T a, T b) {
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
  return a;  // not reached: the launchers check the op (check_op)
}

// Offsets of output element i in a and b: i is decomposed into per-dim indices, last dim fastest.
struct Offsets {
  index_t a = 0, b = 0;
};
GLIA_HD Offsets broadcast_offsets(const BroadcastShape& s, index_t i) {
  Offsets off;
  for (int d = s.ndim - 1; d >= 0; --d) {
    const index_t idx = i % s.shape[d];
    i /= s.shape[d];
    off.a += idx * s.a_stride[d];
    off.b += idx * s.b_stride[d];
  }
  return off;
}

}  // namespace glia::kernels
