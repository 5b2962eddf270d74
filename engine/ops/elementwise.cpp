// Elementwise ops. Binary ops broadcast numpy-style: shapes align at their last dim, missing
// leading dims count as 1, and a size-1 dim stretches to the other's size (read with stride 0).
// Their backward sums the gradient back to each operand's shape (sum_to):
//   add: ga = gy, gb = gy   sub: ga = gy, gb = -gy   mul: ga = gy b, gb = gy a
//   div: ga = gy / b, gb = -gy y / b   (y = a / b)
// Unary ops run one kernel forward and its unary_backward (gx = gy f'(x)) backward.
// Tested in tests/engine/ops_test.cpp.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"

namespace glia {

using kernels::BinaryOp;
using kernels::UnaryOp;
using kernels::UnaryParams;

namespace ops {

void check_compatible(const char* op, const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) {
    throw std::invalid_argument(std::string(op) + ": an operand is undefined");
  }
  if (a.device() != b.device()) {
    throw std::invalid_argument(std::string(op) + ": operands on different devices (" +
                                a.describe() + " and " + b.describe() +
                                "): move one with .to(device)");
  }
  if (a.dtype() != b.dtype()) {
    throw std::invalid_argument(std::string(op) + ": operands of different dtypes (" +
                                a.describe() + " and " + b.describe() +
                                "): convert one with .to(dtype)");
  }
}

void check_floating(const char* op, const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument(std::string(op) + ": the input is undefined");
  if (!is_floating(x.dtype()) || is_half(x.dtype())) {
    throw std::invalid_argument(std::string(op) + " needs an f32 or f64 tensor, got " +
                                x.describe() +
                                (is_half(x.dtype()) ? " (16-bit tensors are for storage: convert "
                                                      "with .to(DType::f32))"
                                                    : ""));
  }
}

Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy,
                      UnaryParams p) {
  Tensor gx(x.shape(), x.dtype(), x.device());
  const index_t n = x.numel();
  if (n == 0) return gx;
  dispatch_float("unary backward", x.device(), x.dtype(), [&]<class T>(auto backend) {
    kernel::unary_backward(backend, op, x.data<T>(), y.data<T>(), gy.data<T>(), gx.data<T>(), n, p);
  });
  return gx;
}

}  // namespace ops

namespace {

// Row-major strides of a contiguous shape.
Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  return strides;
}

// Strides that read `in` at each index of `out` (in broadcasts to out): stride 0 on stretched
// and missing dims. A 0-dim output is treated as [1] so kernels always see at least one dim.
void broadcast_strides(const Shape& out, const Shape& in, kernels::index_t* stride) {
  const Shape in_strides = contiguous_strides(in);
  const std::size_t lead = out.size() - in.size();
  for (std::size_t d = 0; d < out.size(); ++d) {
    stride[d] = (d < lead || in[d - lead] == 1) ? 0 : in_strides[d - lead];
  }
}

kernels::BroadcastShape make_broadcast(const Shape& out, const Shape& a, const Shape& b) {
  kernels::BroadcastShape s;
  s.numel = shape_numel(out);
  if (out.empty()) {
    s.ndim = 1;
    s.shape[0] = 1;
    return s;  // both strides 0: the single element of each operand
  }
  s.ndim = static_cast<int>(out.size());
  for (std::size_t d = 0; d < out.size(); ++d) s.shape[d] = out[d];
  broadcast_strides(out, a, s.a_stride);
  broadcast_strides(out, b, s.b_stride);
  return s;
}

Tensor binary_op(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  ops::check_compatible(name, a, b);
  Shape out_shape;
  try {
    out_shape = broadcast_shapes(a.shape(), b.shape());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(name) + ": " + e.what() + " (" + a.describe() +
                                " and " + b.describe() + ")");
  }
  Tensor y(out_shape, a.dtype(), a.device());
  const kernels::BroadcastShape s = make_broadcast(out_shape, a.shape(), b.shape());
  if (s.numel > 0) {
    ops::dispatch_float(name, a.device(), a.dtype(), [&]<class T>(auto backend) {
      ops::kernel::binary(backend, op, a.data<T>(), b.data<T>(), y.data<T>(), s);
    });
  }
  return y;
}

// What the backward of `op` reads (kernels::unary_grad): the output, the input, or nothing.
std::vector<Tensor> unary_saved(UnaryOp op, const Tensor& x, const Tensor& y) {
  switch (op) {
    case UnaryOp::exp:
    case UnaryOp::sqrt:
    case UnaryOp::sigmoid:
    case UnaryOp::tanh:
      return {y};
    case UnaryOp::log:
    case UnaryOp::abs:
    case UnaryOp::relu:
    case UnaryOp::rdiv_scalar:
    case UnaryOp::pow_scalar:
    case UnaryOp::clamp:
      return {x};
    case UnaryOp::copy:
    case UnaryOp::neg:
    case UnaryOp::add_scalar:
    case UnaryOp::mul_scalar:
    case UnaryOp::rsub_scalar:
      return {};
  }
  return {x, y};  // not reached: every op is listed
}

Tensor unary_op(UnaryOp op, const char* name, const Tensor& x, UnaryParams p = {}) {
  ops::check_floating(name, x);
  Tensor y(x.shape(), x.dtype(), x.device());
  const index_t n = x.numel();
  if (n > 0) {
    ops::dispatch_float(name, x.device(), x.dtype(), [&]<class T>(auto backend) {
      ops::kernel::unary(backend, op, x.data<T>(), y.data<T>(), n, p);
    });
  }
  if (needs_grad({x})) {
    record(name, y, {x}, unary_saved(op, x, y),
           [op, p, xs = x.detach(), ys = y.detach()](const Tensor& gy) -> std::vector<Tensor> {
             return {ops::unary_backward(op, xs, ys, gy, p)};
           });
  }
  return y;
}

}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    // Walk from the last dim; a missing dim counts as 1.
    const index_t da = i < a.size() ? a[a.size() - 1 - i] : 1;
    const index_t db = i < b.size() ? b[b.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1) {
      throw std::invalid_argument("shapes " + shape_to_string(a) + " and " + shape_to_string(b) +
                                  " do not broadcast (dim " + std::to_string(n - 1 - i) +
                                  " of the result: " + std::to_string(da) + " vs " +
                                  std::to_string(db) + ")");
    }
    out[n - 1 - i] = da == 1 ? db : da;
  }
  return out;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  ops::check_floating("expand", x);
  if (broadcast_shapes(x.shape(), shape) != shape) {
    throw std::invalid_argument("expand: " + x.describe() + " cannot be expanded to " +
                                shape_to_string(shape));
  }
  if (x.shape() == shape) return x;
  Tensor y(shape, x.dtype(), x.device());
  const kernels::BroadcastShape s = make_broadcast(shape, x.shape(), x.shape());
  if (s.numel > 0) {
    ops::dispatch_float("expand", x.device(), x.dtype(), [&]<class T>(auto backend) {
      ops::kernel::expand(backend, x.data<T>(), y.data<T>(), s);
    });
  }
  const Shape in_shape = x.shape();
  record("expand", y, {x},
         [in_shape](const Tensor& gy) -> std::vector<Tensor> { return {sum_to(gy, in_shape)}; });
  return y;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_op(BinaryOp::add, "add", a, b);
  record("add", y, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& gy) {
    return std::vector<Tensor>{sum_to(gy, sa), sum_to(gy, sb)};
  });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_op(BinaryOp::sub, "sub", a, b);
  record("sub", y, {a, b},
         [sa = a.shape(), sb = b.shape(), gb = b.requires_grad()](const Tensor& gy) {
           return std::vector<Tensor>{sum_to(gy, sa), gb ? neg(sum_to(gy, sb)) : Tensor()};
         });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_op(BinaryOp::mul, "mul", a, b);
  if (needs_grad({a, b})) {
    record("mul", y, {a, b}, {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()},
           [as = a.detach(), bs = b.detach(), ga = a.requires_grad(),
            gb = b.requires_grad()](const Tensor& gy) {
             return std::vector<Tensor>{ga ? sum_to(mul(gy, bs), as.shape()) : Tensor(),
                                        gb ? sum_to(mul(gy, as), bs.shape()) : Tensor()};
           });
  }
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_op(BinaryOp::div, "div", a, b);
  if (needs_grad({a, b})) {
    record("div", y, {a, b}, {b, b.requires_grad() ? y : Tensor()},
           [sa = a.shape(), bs = b.detach(), ys = y.detach(), ga = a.requires_grad(),
            gb = b.requires_grad()](const Tensor& gy) {
             return std::vector<Tensor>{
                 ga ? sum_to(div(gy, bs), sa) : Tensor(),
                 gb ? neg(sum_to(div(mul(gy, ys), bs), bs.shape())) : Tensor()};
           });
  }
  return y;
}

Tensor add(const Tensor& x, double s) {
  return unary_op(UnaryOp::add_scalar, "add", x, {s, 0});
}
Tensor sub(const Tensor& x, double s) {
  return unary_op(UnaryOp::add_scalar, "sub", x, {-s, 0});
}
Tensor sub(double s, const Tensor& x) {
  return unary_op(UnaryOp::rsub_scalar, "sub", x, {s, 0});
}
Tensor mul(const Tensor& x, double s) {
  return unary_op(UnaryOp::mul_scalar, "mul", x, {s, 0});
}
// x / s as x * (1 / s): one rounding more than a true division, the same on every device.
Tensor div(const Tensor& x, double s) {
  return unary_op(UnaryOp::mul_scalar, "div", x, {1.0 / s, 0});
}
Tensor div(double s, const Tensor& x) {
  return unary_op(UnaryOp::rdiv_scalar, "div", x, {s, 0});
}
Tensor neg(const Tensor& x) {
  return unary_op(UnaryOp::neg, "neg", x);
}
Tensor exp(const Tensor& x) {
  return unary_op(UnaryOp::exp, "exp", x);
}
Tensor log(const Tensor& x) {
  return unary_op(UnaryOp::log, "log", x);
}
Tensor sqrt(const Tensor& x) {
  return unary_op(UnaryOp::sqrt, "sqrt", x);
}
Tensor pow(const Tensor& x, double exponent) {
  return unary_op(UnaryOp::pow_scalar, "pow", x, {exponent, 0});
}
Tensor relu(const Tensor& x) {
  return unary_op(UnaryOp::relu, "relu", x);
}
Tensor sigmoid(const Tensor& x) {
  return unary_op(UnaryOp::sigmoid, "sigmoid", x);
}
Tensor tanh(const Tensor& x) {
  return unary_op(UnaryOp::tanh, "tanh", x);
}
Tensor abs(const Tensor& x) {
  return unary_op(UnaryOp::abs, "abs", x);
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  if (!(lo <= hi)) {
    throw std::invalid_argument("clamp(" + x.describe() + ", " + std::to_string(lo) + ", " +
                                std::to_string(hi) + "): needs lo <= hi");
  }
  return unary_op(UnaryOp::clamp, "clamp", x, {lo, hi});
}

}  // namespace glia
