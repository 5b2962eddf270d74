// Fused optimiser updates on the device, in place, math in float: sgd_step and adam_step apply
// the per-element rules of kernels/optim_math.h (PyTorch's SGD, Adam and AdamW) in one pass over
// the parameter, its gradient and its state, instead of the half-dozen elementwise launches the
// same update would take through the ops.
// Launch: 1-D grid-stride loops, 256 threads; each thread updates element i of the parameter and
// its state per step of the loop. The step-dependent coefficients come from the host.
// Tested in tests/kernels/optim_test.cpp against kernels/cpu/optim.cpp.
#include "kernels/cuda/portable.cuh"

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/optim_math.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

__global__ void __launch_bounds__(kThreadsPerBlock)
    sgd_step_kernel(SgdCoefficients<float> c, float* param, const float* grad, float* momentum_buf,
                    index_t n) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    sgd_update(c, param, grad, momentum_buf, i);
  }
}
GLIA_LAUNCH_BOUNDS(sgd_step_kernel, kThreadsPerBlock);

__global__ void __launch_bounds__(kThreadsPerBlock)
    adam_step_kernel(AdamCoefficients<float> c, float* param, const float* grad, float* exp_avg,
                     float* exp_avg_sq, index_t n) {
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    adam_update(c, param, grad, exp_avg, exp_avg_sq, i);
  }
}
GLIA_LAUNCH_BOUNDS(adam_step_kernel, kThreadsPerBlock);

}  // namespace

void sgd_step(float* param, const float* grad, float* momentum_buf, index_t n, double lr,
              double momentum, double weight_decay, bool nesterov, bool first_step, Stream stream) {
  const SgdCoefficients<float> c =
      sgd_coefficients<float>(momentum_buf, n, lr, momentum, weight_decay, nesterov, first_step);
  if (n == 0) return;
  GLIA_LAUNCH(sgd_step_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, c, param, grad,
              momentum_buf, n);
}

void adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, index_t n,
               double lr, double beta1, double beta2, double eps, double weight_decay,
               bool decoupled, std::int64_t step, Stream stream) {
  const AdamCoefficients<float> c =
      adam_coefficients<float>(n, lr, beta1, beta2, eps, weight_decay, decoupled, step);
  if (n == 0) return;
  GLIA_LAUNCH(adam_step_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, c, param, grad,
              exp_avg, exp_avg_sq, n);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
