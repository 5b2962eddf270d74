// clip_grad_norm_: per-device partial norms through the reduce ops, the scale through the
// elementwise kernel in place on each gradient. Tested in tests/engine/optim_test.cpp.
#include "engine/optim/clip_grad.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace glia::optim {
namespace {

double host_value(const Tensor& t) {
  return t.to(Device::cpu()).to(DType::f64).item<double>();
}

}  // namespace

void scale_grad_(const Tensor& g, double coef) {
  const index_t n = g.numel();
  ops::dispatch_float("scale_grad_", g.device(), g.dtype(), [&]<class T>(auto backend) {
    ops::kernel::unary(backend, kernels::UnaryOp::mul_scalar, g.data<T>(), g.data<T>(), n,
                       kernels::UnaryParams{coef, 0.0});
  });
  g.bump_version();
}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type) {
  if (!(norm_type > 0.0) || std::isnan(max_norm) || max_norm < 0.0) {
    std::ostringstream msg;
    msg << "clip_grad_norm_: max_norm " << max_norm << " must be >= 0 and norm_type " << norm_type
        << " > 0 (or infinity)";
    throw std::invalid_argument(msg.str());
  }
  const NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0.0;

  const bool infinity = std::isinf(norm_type);
  double total = 0.0;
  // Sums of |g|^q, accumulated per device and dtype so each is read back once.
  std::vector<Tensor> partials;
  for (const Tensor& g : grads) {
    if (g.numel() == 0) continue;
    if (infinity) {
      // NaN wins, as in reduce_max, so a NaN gradient gives a NaN norm.
      const double m = host_value(max(abs(g).reshape({g.numel()}), 0).values);
      if (std::isnan(m) || m > total) total = m;
      continue;
    }
    const Tensor s = norm_type == 2.0 ? sum(g * g) : sum(pow(abs(g), norm_type));
    bool added = false;
    for (Tensor& acc : partials) {
      if (acc.device() == s.device() && acc.dtype() == s.dtype()) {
        acc = acc + s;
        added = true;
        break;
      }
    }
    if (!added) partials.push_back(s);
  }
  if (!infinity) {
    double power_sum = 0.0;
    for (const Tensor& acc : partials) power_sum += host_value(acc);
    total = norm_type == 2.0 ? std::sqrt(power_sum) : std::pow(power_sum, 1.0 / norm_type);
  }
  if (!std::isfinite(total)) return total;
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (const Tensor& g : grads) scale_grad_(g, coef);
  }
  return total;
}

}  // namespace glia::optim
