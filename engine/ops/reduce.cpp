// Reductions. A reduction over one axis of a contiguous tensor is a reduction over the middle of
// its [outer, reduce, inner] view (kernels/types.h ReduceShape); several axes are reduced one at
// a time, keeping size-1 dims until the end. Backward:
//   sum: gx = expand(gy)      mean: gx = expand(gy) / count
//   max: gx = gy at the index that won, 0 elsewhere (reduce_max_backward)
// Tested in tests/engine/ops_test.cpp.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"

namespace glia {
namespace {

// The [outer, reduce, inner] view of `shape` around `axis`.
kernels::ReduceShape reduce_shape(const Shape& shape, std::size_t axis) {
  kernels::ReduceShape s;
  for (std::size_t d = 0; d < axis; ++d) s.outer *= shape[d];
  s.reduce = shape[axis];
  for (std::size_t d = axis + 1; d < shape.size(); ++d) s.inner *= shape[d];
  return s;
}

// Axes as non-negative, each checked against the rank and used once; empty means every axis
// (as in numpy and PyTorch).
std::vector<std::size_t> normalize_axes(const char* op, const Tensor& x,
                                        const std::vector<int>& axes) {
  const int rank = x.dim();
  std::vector<std::size_t> out;
  if (axes.empty()) {
    for (int d = 0; d < rank; ++d) out.push_back(static_cast<std::size_t>(d));
    return out;
  }
  for (int a : axes) {
    const int d = a < 0 ? a + rank : a;
    if (d < 0 || d >= rank) {
      throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(a) +
                                  " is out of range for " + x.describe());
    }
    if (std::find(out.begin(), out.end(), static_cast<std::size_t>(d)) != out.end()) {
      throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(a) +
                                  " is given twice for " + x.describe());
    }
    out.push_back(static_cast<std::size_t>(d));
  }
  return out;
}

Shape reduced_shape(const Shape& shape, const std::vector<std::size_t>& axes, bool keepdim) {
  Shape out;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
    if (!reduced) {
      out.push_back(shape[d]);
    } else if (keepdim) {
      out.push_back(1);
    }
  }
  return out;
}

// scale * sum over `axes`, without recording.
Tensor reduce_sum_raw(const char* op, const Tensor& x, const std::vector<std::size_t>& axes,
                      double scale) {
  Tensor t = x;
  Shape shape = x.shape();
  if (axes.empty()) {
    // Nothing to reduce (a 0-dim input): still a new tensor, scaled.
    return mul(x, scale);
  }
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const kernels::ReduceShape s = reduce_shape(shape, axes[i]);
    shape[axes[i]] = 1;
    Tensor y(shape, x.dtype(), x.device());
    // The whole scale goes on the last pass so a mean is one division of the full sum.
    const double step_scale = i + 1 == axes.size() ? scale : 1.0;
    if (shape_numel(shape) > 0) {
      ops::dispatch_float(op, x.device(), x.dtype(), [&]<class T>(auto backend) {
        const index_t workspace = ops::kernel::reduce_sum_workspace_size(backend, s);
        if constexpr (!std::is_same_v<decltype(backend), ops::CpuBackend>) {
          if (workspace > 0) {
            // Few outputs over a long axis: the kernel splits each sum over many blocks.
            const Tensor scratch({workspace}, DType::f32, x.device());
            ops::kernel::reduce_sum(backend, t.data<T>(), y.data<T>(), s,
                                    static_cast<T>(step_scale), scratch.data<float>());
            return;
          }
        }
        ops::kernel::reduce_sum(backend, t.data<T>(), y.data<T>(), s, static_cast<T>(step_scale));
      });
    }
    t = y;
  }
  return t;
}

Tensor reduce_op(const char* op, const Tensor& x, const std::vector<int>& axes_in, bool keepdim,
                 bool is_mean) {
  ops::check_floating(op, x);
  const std::vector<std::size_t> axes = normalize_axes(op, x, axes_in);
  index_t count = 1;
  for (std::size_t a : axes) count *= x.shape()[a];
  const double scale = is_mean ? 1.0 / static_cast<double>(count) : 1.0;
  Tensor y;
  {
    NoGradGuard no_grad;  // the pieces are not differentiated; the whole op records below
    y = reduce_sum_raw(op, x, axes, scale).reshape(reduced_shape(x.shape(), axes, keepdim));
  }
  if (needs_grad({x})) {
    record(op, y, {x},
           [in_shape = x.shape(), kept = reduced_shape(x.shape(), axes, true),
            scale](const Tensor& gy) -> std::vector<Tensor> {
             Tensor g = expand(gy.reshape(kept), in_shape);
             return {scale == 1.0 ? g : mul(g, scale)};
           });
  }
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) {
  return reduce_op("sum", x, {}, false, false);
}
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  return reduce_op("sum", x, axes, keepdim, false);
}
Tensor mean(const Tensor& x) {
  return reduce_op("mean", x, {}, false, true);
}
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  return reduce_op("mean", x, axes, keepdim, true);
}

MaxResult max(const Tensor& x, int axis, bool keepdim) {
  ops::check_floating("max", x);
  const std::size_t a = normalize_axes("max", x, {axis})[0];
  if (x.shape()[a] == 0) {
    throw std::invalid_argument("max over axis " + std::to_string(axis) + " of " + x.describe() +
                                ": the axis is empty");
  }
  const kernels::ReduceShape s = reduce_shape(x.shape(), a);
  const Shape kept = reduced_shape(x.shape(), {a}, true);
  Tensor values(kept, x.dtype(), x.device());
  Tensor indices(kept, DType::i32, x.device());
  if (x.numel() > 0) {
    ops::dispatch_float("max", x.device(), x.dtype(), [&]<class T>(auto backend) {
      ops::kernel::reduce_max(backend, x.data<T>(), values.data<T>(), indices.data<std::int32_t>(),
                              s);
    });
  }
  if (!keepdim) {
    const Shape dropped = reduced_shape(x.shape(), {a}, false);
    NoGradGuard no_grad;
    values = values.reshape(dropped);
    indices = indices.reshape(dropped);
  }
  if (needs_grad({x})) {
    record("max", values, {x}, {indices},
           [in_shape = x.shape(), kept, s, idx = indices.detach()](const Tensor& gy) {
             Tensor gx(in_shape, gy.dtype(), gy.device());
             const Tensor g = gy.reshape(kept);
             if (gx.numel() > 0) {
               ops::dispatch_float(
                   "max backward", gy.device(), gy.dtype(), [&]<class T>(auto backend) {
                     ops::kernel::reduce_max_backward(backend, g.data<T>(),
                                                      idx.data<std::int32_t>(), gx.data<T>(), s);
                   });
             }
             return std::vector<Tensor>{gx};
           });
  }
  return {values, indices};
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (broadcast_shapes(shape, x.shape()) != x.shape()) {
    throw std::invalid_argument("sum_to: " + x.describe() + " cannot be summed down to " +
                                shape_to_string(shape) + " (it is not a broadcast of it)");
  }
  const std::size_t lead = x.shape().size() - shape.size();
  std::vector<int> axes;
  for (std::size_t d = 0; d < x.shape().size(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1))
      axes.push_back(static_cast<int>(d));
  }
  return sum(x, axes, true).reshape(shape);
}

}  // namespace glia
