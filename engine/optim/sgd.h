// Stochastic gradient descent with momentum and Nesterov momentum, as torch.optim.SGD with
// dampening 0: for parameter p with gradient g, d = g + wd * p; with momentum,
// buf = d on the first step, momentum * buf + d after, and d = nesterov ? d + momentum * buf : buf;
// then p -= lr * d. State per parameter: "momentum_buffer" (only when momentum != 0).
// Tested in tests/engine/optim_test.cpp.
#pragma once

#include "engine/optim/optimizer.h"

namespace glia::optim {

struct SgdOptions {
  double momentum = 0.0;
  bool nesterov = false;  // needs momentum > 0
};

class Sgd : public Optimizer {
 public:
  // Each group's lr and weight_decay are its own; its momentum and nesterov default to `options`.
  explicit Sgd(std::vector<ParamGroup> groups, SgdOptions options = {});

 protected:
  void check_group(const ParamGroup& group, const std::string& label) const override;
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
              ParamState& state) override;
  std::vector<std::string> buffer_names(const ParamGroup& group) const override;

 private:
  SgdOptions options_;
};

}  // namespace glia::optim
