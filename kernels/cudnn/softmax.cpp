// The cuDNN softmax fallback: [rows, classes] is described as the float NCHW tensor
// [rows, classes, 1, 1], so CUDNN_SOFTMAX_MODE_INSTANCE (over C, H, W of each n) is the softmax
// over a row's classes. CUDNN_SOFTMAX_ACCURATE subtracts the row max as our kernels do;
// CUDNN_SOFTMAX_LOG is the max-subtracted log-softmax. Every status is checked. Tested in
// tests/kernels/softmax_test.cpp and tests/engine/softmax_test.cpp (on a GPU only).
#include "kernels/cudnn/softmax.h"

#include <string>

#include "kernels/cudnn/descriptors.h"

namespace glia::kernels::cudnn {
namespace {

std::string describe(bool log, const ClassShape& s) {
  return std::string(log ? "log_softmax" : "softmax") + " of " + s.describe();
}

cudnnSoftmaxAlgorithm_t algorithm(bool log) {
  return log ? CUDNN_SOFTMAX_LOG : CUDNN_SOFTMAX_ACCURATE;
}

}  // namespace

void softmax_forward(cudnnHandle_t handle, bool log, const ClassShape& s, const float* x, float* y,
                     cudaStream_t stream) {
  if (s.rows == 0 || s.classes == 0) return;
  const std::string context = describe(log, s);
  const TensorDescriptor rows(s.rows, s.classes, 1, 1, context);
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnSetStream(handle, stream), "cudnnSetStream", context);
  check_cudnn(cudnnSoftmaxForward(handle, algorithm(log), CUDNN_SOFTMAX_MODE_INSTANCE, &one,
                                  rows.get(), x, &zero, rows.get(), y),
              "cudnnSoftmaxForward", context);
}

void softmax_backward(cudnnHandle_t handle, bool log, const ClassShape& s, const float* y,
                      const float* gy, float* gx, cudaStream_t stream) {
  if (s.rows == 0 || s.classes == 0) return;
  const std::string context = describe(log, s) + " backward";
  const TensorDescriptor rows(s.rows, s.classes, 1, 1, context);
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnSetStream(handle, stream), "cudnnSetStream", context);
  check_cudnn(cudnnSoftmaxBackward(handle, algorithm(log), CUDNN_SOFTMAX_MODE_INSTANCE, &one,
                                   rows.get(), y, rows.get(), gy, &zero, rows.get(), gx),
              "cudnnSoftmaxBackward", context);
}

}  // namespace glia::kernels::cudnn
