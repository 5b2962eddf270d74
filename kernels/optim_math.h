// The per-element math of the fused optimiser updates, shared verbatim by the cpu reference
// (T = float, double) and the cuda/sim kernels (T = float), with PyTorch's update rules
// (torch.optim.SGD, Adam, AdamW; dampening 0, no amsgrad). For parameter p, gradient g:
//   SGD:   d = g + wd * p;  buf = first step ? d : momentum * buf + d;
//          d = nesterov ? d + momentum * buf : buf   (when momentum != 0);  p -= lr * d
//   Adam:  g += wd * p (coupled)  or  p *= 1 - lr * wd (decoupled, AdamW);
//          m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2;
//          p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The scalar coefficients that depend on the step t (bias corrections) are computed once per
// launch on the host in double (adam_coefficients), then converted to T. Tested through
// tests/kernels/optim_test.cpp and tests/engine/optim_test.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/elementwise_math.h"
#include "kernels/types.h"

namespace glia::kernels {

template <class T>
struct SgdCoefficients {
  T lr, momentum, weight_decay;
  bool nesterov;
  bool first_step;  // the momentum buffer is initialised to the first direction, not decayed
};

template <class T>
struct AdamCoefficients {
  T beta1, beta2, eps, weight_decay;
  bool decoupled;
  T decay_factor;           // 1 - lr * wd: AdamW's shrink of the parameter
  T step_size;              // lr / (1 - beta1^t)
  T bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

// Host-side guards and coefficients of the launchers: every backend rejects the same arguments.
inline void check_optim_length(index_t n, const char* kernel) {
  if (n < 0)
    throw std::invalid_argument(std::string(kernel) + ": negative length " + std::to_string(n));
}

template <class T>
SgdCoefficients<T> sgd_coefficients(const void* momentum_buf, index_t n, double lr, double momentum,
                                    double weight_decay, bool nesterov, bool first_step) {
  check_optim_length(n, "sgd_step");
  if (momentum != 0.0 && momentum_buf == nullptr && n > 0) {
    throw std::invalid_argument("sgd_step: momentum " + std::to_string(momentum) +
                                " needs a momentum buffer (got null)");
  }
  return {static_cast<T>(lr), static_cast<T>(momentum), static_cast<T>(weight_decay), nesterov,
          first_step};
}

template <class T>
AdamCoefficients<T> adam_coefficients(index_t n, double lr, double beta1, double beta2, double eps,
                                      double weight_decay, bool decoupled, std::int64_t step) {
  check_optim_length(n, "adam_step");
  if (step < 1) {
    throw std::invalid_argument(
        "adam_step: step " + std::to_string(step) +
        " must be at least 1 (the bias corrections divide by 1 - beta^step)");
  }
  const double t = static_cast<double>(step);
  return {static_cast<T>(beta1),
          static_cast<T>(beta2),
          static_cast<T>(eps),
          static_cast<T>(weight_decay),
          decoupled,
          static_cast<T>(1.0 - lr * weight_decay),
          static_cast<T>(lr / (1.0 - std::pow(beta1, t))),
          static_cast<T>(std::sqrt(1.0 - std::pow(beta2, t)))};
}

// One SGD update of element i; buf is read and written only when momentum != 0.
template <class T>
GLIA_HD void sgd_update(const SgdCoefficients<T>& c, T* param, const T* grad, T* buf, index_t i) {
  const T p = param[i];
  T d = grad[i];
  if (c.weight_decay != T(0)) d = d + c.weight_decay * p;
  if (c.momentum != T(0)) {
    const T b = c.first_step ? d : c.momentum * buf[i] + d;
    buf[i] = b;
    d = c.nesterov ? d + c.momentum * b : b;
  }
  param[i] = p - c.lr * d;
}

// One Adam / AdamW update of element i.
template <class T>
GLIA_HD void adam_update(const AdamCoefficients<T>& c, T* param, const T* grad, T* exp_avg,
                         T* exp_avg_sq, index_t i) {
  T p = param[i];
  T g = grad[i];
  if (c.weight_decay != T(0)) {
    if (c.decoupled) {
      p = p * c.decay_factor;
    } else {
      g = g + c.weight_decay * p;
    }
  }
  const T m = c.beta1 * exp_avg[i] + (T(1) - c.beta1) * g;
  const T v = c.beta2 * exp_avg_sq[i] + (T(1) - c.beta2) * g * g;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  const T denom = math::sqrt(v) / c.bias_correction2_sqrt + c.eps;
  param[i] = p - c.step_size * (m / denom);
}

}  // namespace glia::kernels
