// Adam's and AdamW's checks and their update through the fused adam_step kernel
// (kernels/optim_math.h) of the parameter's device. Tested in tests/engine/optim_test.cpp.
#include "engine/optim/adam.h"

#include <cmath>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace glia::optim {

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options)
    : Adam("Adam", false, std::move(groups), options) {}

Adam::Adam(const char* kind, bool decoupled, std::vector<ParamGroup> groups, AdamOptions options)
    : Optimizer(kind), decoupled_(decoupled), options_(options) {
  for (ParamGroup& group : groups) add_param_group(std::move(group));
}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamOptions options)
    : Adam("AdamW", true, std::move(groups), options) {}

void Adam::check_group(const ParamGroup& group, const std::string& label) const {
  const double beta1 = group.beta1.value_or(options_.beta1);
  const double beta2 = group.beta2.value_or(options_.beta2);
  const double eps = group.eps.value_or(options_.eps);
  check_hyperparameter(beta1 >= 0.0 && beta1 < 1.0, kind_, "beta1 (must be in [0, 1))", beta1,
                       label);
  check_hyperparameter(beta2 >= 0.0 && beta2 < 1.0, kind_, "beta2 (must be in [0, 1))", beta2,
                       label);
  check_hyperparameter(std::isfinite(eps) && eps >= 0.0, kind_, "eps", eps, label);
}

std::vector<std::string> Adam::buffer_names(const ParamGroup&) const {
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                  ParamState& state) {
  const TensorOptions like{.dtype = param.dtype(), .device = param.device()};
  Tensor& exp_avg = state.buffers["exp_avg"];
  Tensor& exp_avg_sq = state.buffers["exp_avg_sq"];
  if (!exp_avg.defined()) exp_avg = zeros(param.shape(), like);
  if (!exp_avg_sq.defined()) exp_avg_sq = zeros(param.shape(), like);
  const index_t n = param.numel();
  ops::dispatch_float("adam_step", param.device(), param.dtype(), [&]<class T>(auto backend) {
    ops::kernel::adam_step(backend, param.data<T>(), grad.data<T>(), exp_avg.data<T>(),
                           exp_avg_sq.data<T>(), n, group.lr, group.beta1.value_or(options_.beta1),
                           group.beta2.value_or(options_.beta2), group.eps.value_or(options_.eps),
                           group.weight_decay, decoupled_, state.step);
  });
}

}  // namespace glia::optim
