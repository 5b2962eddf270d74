// The public ops on tensors. Each op checks its inputs (same device, same dtype: nothing is
// converted or moved silently), runs the kernel of the tensor's device (engine/ops/dispatch.h)
// and, when an input requires grad, records its backward on the tape (engine/autograd.h).
// Families, one source each under engine/ops/: copy (device/dtype moves), creation, elementwise,
// reduce, shape, matmul. Float ops take f32 on every device and f64 on cpu.
// Tested in tests/engine/ops_test.cpp, autograd_test.cpp and tensor_test.cpp.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "engine/autograd.h"
#include "engine/policy.h"
#include "engine/precision.h"
#include "engine/tensor.h"

namespace glia {

namespace dist {
class Communicator;
}

// --- copy.cpp: moves between devices and dtypes (differentiable for floating dtypes) ----------
Tensor to_device(const Tensor& x, Device device);
Tensor to_dtype(const Tensor& x, DType dtype);
Tensor clone(const Tensor& x);
// x's values rounded to precision p's format, kept in f32 (kernels/rounding.h); x itself for fp32
// or a non-f32 tensor. Records nothing: ops use it on their operands (engine/precision.h).
Tensor round_to_precision(const Tensor& x, Precision p);

// --- creation.cpp -------------------------------------------------------------------------------
Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
// [start, start + step, ...) while below `end` (above, for a negative step); f32, f64 or i32.
Tensor arange(double start, double end, double step = 1.0, TensorOptions options = {});
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
// Sets every element of `x` to `value` (converted to x's dtype), in place (bumps x's version).
void fill_(Tensor& x, double value);
// A tensor of `shape` on `device` holding a copy of `values`; the dtype follows T (float, double,
// int32_t, uint8_t). The element count must match the shape.
Tensor from_host(const void* values, std::size_t count, DType dtype, const Shape& shape,
                 Device device, bool requires_grad);
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu(),
                   bool requires_grad = false) {
  return from_host(values.data(), values.size(), dtype_v<T>, shape, device, requires_grad);
}

// --- elementwise.cpp: broadcasting binary ops (numpy rules: align trailing dims; a size-1 dim
// stretches) and unary maps -------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& x, double s);
Tensor sub(const Tensor& x, double s);
Tensor sub(double s, const Tensor& x);
Tensor mul(const Tensor& x, double s);
Tensor div(const Tensor& x, double s);
Tensor div(double s, const Tensor& x);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor abs(const Tensor& x);
// The shape both operands broadcast to; throws naming both shapes when they do not.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// x copied out to `shape` (x must broadcast to it).
Tensor expand(const Tensor& x, const Shape& shape);

// --- reduce.cpp ---------------------------------------------------------------------------------
// Sum over every element: a 0-dim tensor.
Tensor sum(const Tensor& x);
// Sum over `axes` (negative counts from the last; each at most once); kept as size 1 if keepdim.
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
struct MaxResult {
  Tensor values;
  Tensor indices;  // i32: the position along `axis` (the first on ties)
};
MaxResult max(const Tensor& x, int axis, bool keepdim = false);
// Sums x down to `shape`, the inverse of broadcasting: the gradient of an operand that was
// broadcast to x's shape.
Tensor sum_to(const Tensor& x, const Shape& shape);

// --- shape.cpp ----------------------------------------------------------------------------------
// Same storage, new shape; one size may be -1 (inferred).
Tensor reshape(const Tensor& x, const Shape& shape);
inline Tensor view(const Tensor& x, const Shape& shape) {
  return reshape(x, shape);
}
// A contiguous copy with the last two dims swapped (rank >= 2).
Tensor transpose(const Tensor& x);

// --- matmul.cpp ---------------------------------------------------------------------------------
// [m, k] x [k, n] -> [m, n]; [b, m, k] x [b, k, n] -> [b, m, n]; [b, m, k] x [k, n] -> [b, m, n].
// On cuda the gemm policy (engine/policy.h) picks our kernel or cuBLAS; `policy` overrides it.
Tensor matmul(const Tensor& a, const Tensor& b, std::optional<KernelPolicy> policy = std::nullopt);

// --- batchnorm.cpp ------------------------------------------------------------------------------
// Batch norm of NCHW x [n, c, h, w] per channel (BatchNorm2d): y = (x - mean) / sqrt(var + eps) *
// weight + bias. Training mode (or no running statistics) uses the batch's mean and biased
// variance, and updates running_mean / running_var in place when defined (without grad):
// running = (1 - momentum) * running + momentum * batch, with the unbiased variance for
// running_var (as PyTorch). Evaluation mode uses the running statistics. weight and bias are [c]
// or undefined (no affine); running_mean and running_var are [c], both defined or both undefined.
// Backward to x, weight and bias: through the batch statistics in training, the affine map in
// evaluation. On cuda the batchnorm policy picks our kernels or cuDNN; `policy` overrides it.
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                    Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5,
                    std::optional<KernelPolicy> policy = std::nullopt);
// batch_norm2d followed by a ReLU, in the same passes over memory: y = max(bn(x), 0) (NaN
// propagates); the backward passes gy where y > 0, as relu(batch_norm2d(...)) would.
Tensor batch_norm_relu2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         Tensor& running_mean, Tensor& running_var, bool training,
                         double momentum = 0.1, double eps = 1e-5,
                         std::optional<KernelPolicy> policy = std::nullopt);

// Synchronised batch norm (SyncBatchNorm) of a data-parallel run: in training, the statistics
// are those of the global batch, every rank's x together. Forward all-reduces, per channel, the
// sum, the sum of squares and the count (one collective); backward all-reduces sum gy and
// sum gy * xhat (one collective) for the input gradient, while the weight and bias gradients
// stay this rank's own sums (the gradient reducer averages them, as for every parameter). The
// running statistics get the global batch's mean and unbiased variance. Evaluation mode is
// batch_norm2d. Every rank must call it (it is a collective); cpu, sim and cuda run the batch-norm
// kernels of batch_norm2d (the native ones). Tested in tests/dist/ddp_test.cpp.
Tensor sync_batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         Tensor& running_mean, Tensor& running_var, bool training, double momentum,
                         double eps, const std::shared_ptr<dist::Communicator>& comm);

// --- pool.cpp -----------------------------------------------------------------------------------
// 2-D pooling of NCHW x with a square window; stride 0 means stride = kernel; padding at most half
// the kernel; out = (in + 2 * padding - kernel) / stride + 1 (PyTorch, ceil_mode false). On cuda
// the pool policy picks our kernels or cuDNN; `policy` overrides it.
// Max: padding is -inf, the gradient goes to the first maximum of each window, NaN propagates.
Tensor max_pool2d(const Tensor& x, int kernel, int stride = 0, int padding = 0,
                  std::optional<KernelPolicy> policy = std::nullopt);
// Average: the window's mean, padding counted as zeros in it unless count_include_pad is false.
Tensor avg_pool2d(const Tensor& x, int kernel, int stride = 0, int padding = 0,
                  bool count_include_pad = true, std::optional<KernelPolicy> policy = std::nullopt);
// [n, c, h, w] -> [n, c, 1, 1], the mean of each plane.
Tensor global_avg_pool2d(const Tensor& x, std::optional<KernelPolicy> policy = std::nullopt);

// --- conv.cpp: 2-D convolution, NCHW, groups = 1 (kernels/conv_shape.h) --------------------------
// Per-dimension (h, w) parameters of conv2d and conv_transpose2d, as PyTorch's.
struct Conv2dParams {
  std::array<index_t, 2> stride{1, 1};
  std::array<index_t, 2> padding{0, 0};
  std::array<index_t, 2> dilation{1, 1};
  std::array<index_t, 2> output_padding{0, 0};  // conv_transpose2d only; below the stride
};
// x [n, c_in, h, w], w [c_out, c_in, kh, kw], bias [c_out] or undefined (none) ->
// y [n, c_out, out_h, out_w] (cross-correlation, as torch.nn.functional.conv2d). Differentiable
// w.r.t. x, w and bias. On cuda the conv policy (engine/policy.h) picks our kernels or cuDNN;
// `policy` overrides it.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Conv2dParams p = {},
              std::optional<KernelPolicy> policy = std::nullopt);
// The transposed convolution (the data gradient of conv2d): x [n, c_in, h, w],
// w [c_in, c_out, kh, kw] (PyTorch's layout), bias [c_out] or undefined -> y [n, c_out, oh, ow]
// with oh = (h - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, Conv2dParams p = {},
                        std::optional<KernelPolicy> policy = std::nullopt);

// --- softmax.cpp: over the last axis, x viewed as [rows, classes] -----------------------------
// softmax y = exp(x - m) / sum exp(x - m) and log_softmax y = x - m - log sum exp(x - m), m the
// max along `axis`, which must be the last (-1 or dim() - 1; others throw). Same shape as x;
// differentiable. On cuda the softmax policy (engine/policy.h) picks our kernels or cuDNN;
// `policy` overrides it.
Tensor softmax(const Tensor& x, int axis = -1, std::optional<KernelPolicy> policy = std::nullopt);
Tensor log_softmax(const Tensor& x, int axis = -1,
                   std::optional<KernelPolicy> policy = std::nullopt);

// --- operators ----------------------------------------------------------------------------------
inline Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
inline Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
inline Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
inline Tensor operator+(const Tensor& x, double s) {
  return add(x, s);
}
inline Tensor operator+(double s, const Tensor& x) {
  return add(x, s);
}
inline Tensor operator-(const Tensor& x, double s) {
  return sub(x, s);
}
inline Tensor operator-(double s, const Tensor& x) {
  return sub(s, x);
}
inline Tensor operator*(const Tensor& x, double s) {
  return mul(x, s);
}
inline Tensor operator*(double s, const Tensor& x) {
  return mul(x, s);
}
inline Tensor operator/(const Tensor& x, double s) {
  return div(x, s);
}
inline Tensor operator/(double s, const Tensor& x) {
  return div(s, x);
}
inline Tensor operator-(const Tensor& x) {
  return neg(x);
}

}  // namespace glia
