// Dynamic loss scaling; see grad_scaler.h. The non-finite check is exact and overflow-free:
// sum(g * 0) is 0 for finite g and NaN as soon as one element is inf or NaN; the sums of one
// device are added there and read back once per step. Tested in
// tests/engine/grad_scaler_test.cpp.
#include "engine/optim/grad_scaler.h"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "engine/optim/clip_grad.h"

namespace glia::optim {

GradScaler::GradScaler(const GradScalerOptions& options) : options_(options) {
  const GradScalerOptions& o = options_;
  if (!(o.init_scale > 0.0) || !std::isfinite(o.init_scale) || !(o.growth_factor > 1.0) ||
      !std::isfinite(o.growth_factor) || !(o.backoff_factor > 0.0 && o.backoff_factor < 1.0) ||
      o.growth_interval < 1) {
    std::ostringstream msg;
    msg << "GradScaler: init_scale " << o.init_scale << " must be positive, growth_factor "
        << o.growth_factor << " above 1, backoff_factor " << o.backoff_factor
        << " in (0, 1) and growth_interval " << o.growth_interval << " at least 1";
    throw std::invalid_argument(msg.str());
  }
  state_.scale = o.init_scale;
}

Tensor GradScaler::scale(const Tensor& loss) const {
  return mul(loss, state_.scale);
}

bool GradScaler::unscale_(const std::vector<Tensor>& params) {
  if (unscaled_) {
    throw std::logic_error("GradScaler::unscale_ called twice in one step; call update() first");
  }
  const NoGradGuard no_grad;
  // The reciprocal in float as PyTorch computes it (exact for the usual powers of two).
  const double inv = static_cast<double>(static_cast<float>(1.0 / state_.scale));
  // One NaN-propagating sum per device, read back once.
  std::vector<Tensor> checks;
  for (const Tensor& p : params) {
    if (!p.defined() || !p.grad().defined() || p.grad().numel() == 0) continue;
    const Tensor g = p.grad();
    scale_grad_(g, inv);
    const Tensor check = sum(mul(g, 0.0));
    bool added = false;
    for (Tensor& c : checks) {
      if (c.device() == check.device() && c.dtype() == check.dtype()) {
        c = c + check;
        added = true;
        break;
      }
    }
    if (!added) checks.push_back(check);
  }
  bool found = false;
  for (const Tensor& c : checks) {
    found = found || std::isnan(c.to(Device::cpu()).to(DType::f64).item<double>());
  }
  unscaled_ = true;
  found_inf_ = found;
  return found;
}

bool GradScaler::step(Optimizer& optimizer, const std::vector<Tensor>& params) {
  if (!unscaled_) unscale_(params);
  if (found_inf_) return false;
  optimizer.step();
  return true;
}

void GradScaler::update() {
  if (!unscaled_) {
    throw std::logic_error("GradScaler::update before unscale_ or step of this step");
  }
  if (found_inf_) {
    state_.scale *= options_.backoff_factor;
    state_.growth_tracker = 0;
  } else if (++state_.growth_tracker == options_.growth_interval) {
    const double grown = state_.scale * options_.growth_factor;
    if (std::isfinite(grown)) state_.scale = grown;
    state_.growth_tracker = 0;
  }
  unscaled_ = false;
  found_inf_ = false;
}

void GradScaler::set_state(const GradScalerState& state) {
  if (!(state.scale > 0.0) || !std::isfinite(state.scale) || state.growth_tracker < 0) {
    throw std::invalid_argument("GradScaler: saved scale " + std::to_string(state.scale) +
                                " and growth tracker " + std::to_string(state.growth_tracker) +
                                " must be positive and finite, and non-negative");
  }
  state_ = state;
  unscaled_ = false;
  found_inf_ = false;
}

}  // namespace glia::optim
