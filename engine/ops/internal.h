// Internal to the engine: argument checks shared by the op families, and the tensor-level
// kernels that only backward functions call (they record nothing). Exercised by tests/engine.
#pragma once

#include "engine/ops.h"
#include "kernels/types.h"

namespace glia::ops {

// Both operands on one device with one dtype: nothing is converted or moved silently.
void check_compatible(const char* op, const Tensor& a, const Tensor& b);
// The tensor is defined and of a floating dtype.
void check_floating(const char* op, const Tensor& x);

// A kernel's device scratch: `floats` f32 elements, or undefined when its size query
// (ops::kernel::*_workspace_size, engine/ops/dispatch.h) says it needs none.
inline Tensor workspace(index_t floats, Device device) {
  return floats > 0 ? Tensor({floats}, DType::f32, device) : Tensor();
}

// gx = gy * f'(x) for the unary op f with output y.
Tensor unary_backward(kernels::UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy,
                      kernels::UnaryParams p);

}  // namespace glia::ops
