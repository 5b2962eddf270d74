// The cuDNN batch-norm fallback: CUDNN_BATCHNORM_SPATIAL on float NCHW, the per-channel parameter
// descriptor derived from x's (1 x C x 1 x 1). cuDNN's conventions match the native kernels':
// the running variance is the unbiased one, running = (1 - factor) * running + factor * batch with
// factor = momentum, and the saved "inverse variance" is 1 / sqrt(var + eps). Every status is
// checked. Tested in tests/kernels/batchnorm_test.cpp (on a GPU only).
#include "kernels/cudnn/batchnorm.h"

#include <stdexcept>
#include <string>

#include "kernels/cudnn/descriptors.h"

namespace glia::kernels::cudnn {
namespace {

// The descriptors of one call: x (also y, dx, dy) and the per-channel parameters.
struct Descriptors {
  explicit Descriptors(const BatchNormShape& s)
      : context("batch norm of " + s.describe()), x(s.n, s.c, s.h, s.w, context), param(context) {
    if (s.eps < CUDNN_BN_MIN_EPSILON) {
      throw std::invalid_argument("cuDNN " + context + ": eps below CUDNN_BN_MIN_EPSILON");
    }
    check_cudnn(cudnnDeriveBNTensorDescriptor(param.get(), x.get(), CUDNN_BATCHNORM_SPATIAL),
                "cudnnDeriveBNTensorDescriptor", context);
  }
  std::string context;
  TensorDescriptor x;
  TensorDescriptor param;
};

bool empty(const BatchNormShape& s) {
  return s.numel() == 0;
}

}  // namespace

void batch_norm_forward_training(cudnnHandle_t handle, const BatchNormShape& s, const float* x,
                                 const float* weight, const float* bias, float* y,
                                 float* running_mean, float* running_var, float* save_mean,
                                 float* save_invstd, cudaStream_t stream) {
  if (empty(s)) return;
  if ((running_mean == nullptr) != (running_var == nullptr)) {
    throw std::invalid_argument("cuDNN batch norm of " + s.describe() +
                                ": running_mean and running_var must both be given or both null");
  }
  const Descriptors d(s);
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnSetStream(handle, stream), "cudnnSetStream", d.context);
  check_cudnn(cudnnBatchNormalizationForwardTraining(handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                     d.x.get(), x, d.x.get(), y, d.param.get(),
                                                     weight, bias, s.momentum, running_mean,
                                                     running_var, s.eps, save_mean, save_invstd),
              "cudnnBatchNormalizationForwardTraining", d.context);
}

void batch_norm_forward_inference(cudnnHandle_t handle, const BatchNormShape& s, const float* x,
                                  const float* weight, const float* bias, const float* running_mean,
                                  const float* running_var, float* y, cudaStream_t stream) {
  if (empty(s)) return;
  const Descriptors d(s);
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnSetStream(handle, stream), "cudnnSetStream", d.context);
  check_cudnn(cudnnBatchNormalizationForwardInference(
                  handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x.get(), x, d.x.get(), y,
                  d.param.get(), weight, bias, running_mean, running_var, s.eps),
              "cudnnBatchNormalizationForwardInference", d.context);
}

void batch_norm_backward(cudnnHandle_t handle, const BatchNormShape& s, const float* x,
                         const float* gy, const float* weight, const float* save_mean,
                         const float* save_invstd, float* gx, float* grad_weight, float* grad_bias,
                         cudaStream_t stream) {
  if (empty(s)) return;
  const Descriptors d(s);
  // alpha 1, beta 0 for both the data and the parameter gradients: written, not accumulated.
  const float one = 1.0f, zero = 0.0f;
  check_cudnn(cudnnSetStream(handle, stream), "cudnnSetStream", d.context);
  check_cudnn(cudnnBatchNormalizationBackward(handle, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one,
                                              &zero, d.x.get(), x, d.x.get(), gy, d.x.get(), gx,
                                              d.param.get(), weight, grad_weight, grad_bias, s.eps,
                                              save_mean, save_invstd),
              "cudnnBatchNormalizationBackward", d.context);
}

}  // namespace glia::kernels::cudnn
