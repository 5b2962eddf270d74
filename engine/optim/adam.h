// Adam and AdamW, as torch.optim.Adam and torch.optim.AdamW (no amsgrad): for parameter p with
// gradient g at step t (from 1),
//   Adam:  g += wd * p            AdamW: p *= 1 - lr * wd     (the decay, when wd != 0)
//   m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// State per parameter: "exp_avg" (m) and "exp_avg_sq" (v), zeros at first, and the step count.
// Tested in tests/engine/optim_test.cpp.
#pragma once

#include "engine/optim/optimizer.h"

namespace glia::optim {

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

class Adam : public Optimizer {
 public:
  // Each group's lr and weight_decay are its own; its betas and eps default to `options`.
  explicit Adam(std::vector<ParamGroup> groups, AdamOptions options = {});

 protected:
  Adam(const char* kind, bool decoupled, std::vector<ParamGroup> groups, AdamOptions options);
  void check_group(const ParamGroup& group, const std::string& label) const override;
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  std::vector<std::string> buffer_names(const ParamGroup& group) const override;

 private:
  bool decoupled_;
  AdamOptions options_;
};

// Adam with decoupled weight decay. Note PyTorch's AdamW defaults weight_decay to 1e-2, where a
// ParamGroup's default is 0: set it on each group.
class AdamW : public Adam {
 public:
  explicit AdamW(std::vector<ParamGroup> groups, AdamOptions options = {});
};

}  // namespace glia::optim
