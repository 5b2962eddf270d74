// Reference fused optimiser updates, in place: sgd_step and adam_step apply the per-element math
// of kernels/optim_math.h (PyTorch's SGD, Adam and AdamW rules) to every element, in T.
// Tested in tests/kernels/optim_test.cpp.
#include "kernels/cpu/kernels.h"
#include "kernels/optim_math.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

}  // namespace

template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buf, index_t n, double lr, double momentum,
              double weight_decay, bool nesterov, bool first_step) {
  const SgdCoefficients<T> c =
      sgd_coefficients<T>(momentum_buf, n, lr, momentum, weight_decay, nesterov, first_step);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (index_t i = 0; i < n; ++i) sgd_update(c, param, grad, momentum_buf, i);
}

template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, index_t n, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled,
               std::int64_t step) {
  const AdamCoefficients<T> c =
      adam_coefficients<T>(n, lr, beta1, beta2, eps, weight_decay, decoupled, step);
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
  for (index_t i = 0; i < n; ++i) adam_update(c, param, grad, exp_avg, exp_avg_sq, i);
}

#define GLIA_INSTANTIATE(T)                                                                 \
  template void sgd_step<T>(T*, const T*, T*, index_t, double, double, double, bool, bool); \
  template void adam_step<T>(T*, const T*, T*, T*, index_t, double, double, double, double, \
                             double, bool, std::int64_t);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
