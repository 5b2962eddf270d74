// Shape ops. Tensors are always contiguous, so reshape (= view) shares storage and only changes
// the shape, while transpose of the last two dims is a copy through transpose_last2:
// y[b, c, r] = x[b, r, c] for x viewed as [batch, rows, cols]. Backward: reshape the gradient
// back; transpose it back. Tested in tests/engine/tensor_test.cpp and ops_test.cpp.
#include <stdexcept>
#include <string>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"

namespace glia {

Tensor reshape(const Tensor& x, const Shape& shape) {
  if (!x.defined()) throw std::invalid_argument("reshape: the tensor is undefined");
  Shape resolved = shape;
  index_t known = 1;
  int inferred = -1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      if (inferred >= 0) {
        throw std::invalid_argument("reshape of " + x.describe() + " to " + shape_to_string(shape) +
                                    ": only one size can be -1");
      }
      inferred = static_cast<int>(d);
    } else if (shape[d] < 0) {
      throw std::invalid_argument("reshape of " + x.describe() + " to " + shape_to_string(shape) +
                                  ": negative size");
    } else {
      known *= shape[d];
    }
  }
  const index_t n = x.numel();
  if (inferred >= 0) {
    if (known == 0 || n % known != 0) {
      throw std::invalid_argument("reshape of " + x.describe() + " to " + shape_to_string(shape) +
                                  ": " + std::to_string(n) + " elements do not divide into " +
                                  std::to_string(known));
    }
    resolved[static_cast<std::size_t>(inferred)] = n / known;
  }
  if (shape_numel(resolved) != n) {
    throw std::invalid_argument("reshape of " + x.describe() + " to " + shape_to_string(resolved) +
                                ": element counts differ (" + std::to_string(n) + " vs " +
                                std::to_string(shape_numel(resolved)) + ")");
  }
  if (resolved == x.shape()) return x;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.impl()->storage;
  impl->offset = x.impl()->offset;
  impl->shape = resolved;
  impl->dtype = x.dtype();
  impl->device = x.device();
  impl->version = x.impl()->version;  // a view: writes through either count for both
  Tensor y(std::move(impl));
  record("reshape", y, {x}, [in_shape = x.shape()](const Tensor& gy) -> std::vector<Tensor> {
    return {gy.reshape(in_shape)};
  });
  return y;
}

Tensor transpose(const Tensor& x) {
  ops::check_floating("transpose", x);
  if (x.dim() < 2) {
    throw std::invalid_argument("transpose swaps the last two dims; " + x.describe() +
                                " has fewer than two");
  }
  const index_t rows = x.size(-2), cols = x.size(-1);
  const index_t batch = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
  Shape out_shape = x.shape();
  std::swap(out_shape[out_shape.size() - 2], out_shape[out_shape.size() - 1]);
  Tensor y(out_shape, x.dtype(), x.device());
  if (y.numel() > 0) {
    ops::dispatch_float("transpose", x.device(), x.dtype(), [&]<class T>(auto backend) {
      ops::kernel::transpose_last2(backend, x.data<T>(), y.data<T>(), batch, rows, cols);
    });
  }
  record("transpose", y, {x},
         [](const Tensor& gy) -> std::vector<Tensor> { return {transpose(gy)}; });
  return y;
}

}  // namespace glia
