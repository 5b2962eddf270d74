// Dynamic loss scaling for fp16 training, as torch.cuda.amp.GradScaler: the loss is multiplied by
// a scale S before backward, so small gradients survive the FP16 rounding of the backward
// products (engine/precision.h) instead of flushing to zero; the gradients are divided by S again
// before clipping and the optimiser step. If any gradient is inf or NaN (S was too large: a
// product overflowed FP16's 65504), the step is skipped (parameters and optimiser state
// untouched) and S is multiplied by backoff_factor; after growth_interval consecutive clean steps
// S is multiplied by growth_factor (kept only if finite). The per-step order is
//   scaled = scaler.scale(loss); scaled.backward(); scaler.unscale_(params);
//   clip_grad_norm_(...) when no inf was found; scaler.step(optimizer, params); scaler.update();
// The state (scale and clean-step count) goes into resumable checkpoints (nets/train/trainer.cpp).
// Tested in tests/engine/grad_scaler_test.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/optim/optimizer.h"
#include "engine/tensor.h"

namespace glia::optim {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;
};

struct GradScalerState {
  double scale = 65536.0;
  std::int64_t growth_tracker = 0;  // clean steps since the scale last changed
};

class GradScaler {
 public:
  // Throws std::invalid_argument for init_scale <= 0, growth_factor <= 1, backoff_factor outside
  // (0, 1) or growth_interval < 1.
  explicit GradScaler(const GradScalerOptions& options = {});

  // loss * scale, differentiable.
  Tensor scale(const Tensor& loss) const;
  // Divides the gradient of every parameter that has one by the scale, in place, and records
  // whether any of them holds inf or NaN; returns that. Once per step (a second call throws).
  bool unscale_(const std::vector<Tensor>& params);
  // optimizer.step() unless a gradient was non-finite; unscales first when unscale_ was not
  // called. Returns whether the optimiser stepped.
  bool step(Optimizer& optimizer, const std::vector<Tensor>& params);
  // Adjusts the scale from this step's finding and starts the next step.
  void update();

  double current_scale() const { return state_.scale; }
  const GradScalerState& state() const { return state_; }
  // Restores a saved state; throws std::invalid_argument for a non-positive or non-finite scale
  // or a negative tracker.
  void set_state(const GradScalerState& state);
  const GradScalerOptions& options() const { return options_; }

 private:
  GradScalerOptions options_;
  GradScalerState state_;
  bool unscaled_ = false;
  bool found_inf_ = false;
};

}  // namespace glia::optim
