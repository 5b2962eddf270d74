// The cuDNN pooling fallback: one pooling descriptor (window, padding, stride from Pool2dShape;
// NaN propagated; max pooling in its deterministic mode unless settings() allow otherwise) and
// float NCHW descriptors for x [n, c, h, w] and y [n, c, out_h, out_w]. cuDNN computes its own
// output size; it must equal the shape's, which is checked so the two paths cannot disagree
// silently. Every status is checked. Tested in tests/kernels/pool_test.cpp (on a GPU only).
#include "kernels/cudnn/pool.h"

#include <stdexcept>
#include <string>

#include "kernels/cudnn/descriptors.h"
#include "kernels/cudnn/settings.h"

namespace glia::kernels::cudnn {
namespace {

std::string describe(PoolMode mode, const Pool2dShape& s) {
  return std::string(mode == PoolMode::max ? "max" : "average") + " pooling of " + s.describe();
}

cudnnPoolingMode_t cudnn_mode(PoolMode mode, const Pool2dShape& s) {
  // The deterministic variant's backward does not race on overlapping windows.
  if (mode == PoolMode::max) {
    return settings().deterministic ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_MAX;
  }
  return s.count_include_pad ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                             : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
}

struct Descriptors {
  Descriptors(PoolMode mode, const Pool2dShape& s)
      : context(describe(mode, s)),
        pool(context),
        x(s.n, s.c, s.h, s.w, context),
        y(s.n, s.c, s.out_h, s.out_w, context) {
    if (!s.valid()) throw std::invalid_argument("cuDNN: invalid " + context);
    check_cudnn(
        cudnnSetPooling2dDescriptor(
            pool.get(), cudnn_mode(mode, s), CUDNN_PROPAGATE_NAN,
            cudnn_int(s.kernel_h, "kernel_h", context), cudnn_int(s.kernel_w, "kernel_w", context),
            cudnn_int(s.pad_h, "pad_h", context), cudnn_int(s.pad_w, "pad_w", context),
            cudnn_int(s.stride_h, "stride_h", context), cudnn_int(s.stride_w, "stride_w", context)),
        "cudnnSetPooling2dDescriptor", context);
    int n = 0, c = 0, h = 0, w = 0;
    check_cudnn(cudnnGetPooling2dForwardOutputDim(pool.get(), x.get(), &n, &c, &h, &w),
                "cudnnGetPooling2dForwardOutputDim", context);
    if (h != s.out_h || w != s.out_w) {
      throw std::logic_error("cuDNN's output " + std::to_string(h) + "x" + std::to_string(w) +
                             " differs from the shape's " + std::to_string(s.out_h) + "x" +
                             std::to_string(s.out_w) + " for " + context);
    }
  }
  std::string context;
  PoolingDescriptor pool;
  TensorDescriptor x;
  TensorDescriptor y;
};

}  // namespace

void pool2d_forward(cudnnHandle_t handle, PoolMode mode, const Pool2dShape& s, const float* x,
                    float* y, cudaStream_t stream) {
  if (s.out_numel() == 0) return;
  const Descriptors d(mode, s);
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnSetStream(handle, stream), "cudnnSetStream", d.context);
  check_cudnn(cudnnPoolingForward(handle, d.pool.get(), &one, d.x.get(), x, &zero, d.y.get(), y),
              "cudnnPoolingForward", d.context);
}

void pool2d_backward(cudnnHandle_t handle, PoolMode mode, const Pool2dShape& s, const float* x,
                     const float* y, const float* gy, float* gx, cudaStream_t stream) {
  if (s.in_numel() == 0) return;
  const Descriptors d(mode, s);
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnSetStream(handle, stream), "cudnnSetStream", d.context);
  check_cudnn(cudnnPoolingBackward(handle, d.pool.get(), &one, d.y.get(), y, d.y.get(), gy,
                                   d.x.get(), x, &zero, d.x.get(), gx),
              "cudnnPoolingBackward", d.context);
}

}  // namespace glia::kernels::cudnn
