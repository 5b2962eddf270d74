// SGD's checks and its update through the fused sgd_step kernel (kernels/optim_math.h) of the
// parameter's device. Tested in tests/engine/optim_test.cpp.
#include "engine/optim/sgd.h"

#include <cmath>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"

namespace glia::optim {

Sgd::Sgd(std::vector<ParamGroup> groups, SgdOptions options) : Optimizer("SGD"), options_(options) {
  for (ParamGroup& group : groups) add_param_group(std::move(group));
}

void Sgd::check_group(const ParamGroup& group, const std::string& label) const {
  const double momentum = group.momentum.value_or(options_.momentum);
  check_hyperparameter(std::isfinite(momentum) && momentum >= 0.0, kind_, "momentum", momentum,
                       label);
  if (group.nesterov.value_or(options_.nesterov)) {
    check_hyperparameter(momentum > 0.0, kind_, "momentum (Nesterov needs momentum > 0)", momentum,
                         label);
  }
}

std::vector<std::string> Sgd::buffer_names(const ParamGroup& group) const {
  if (group.momentum.value_or(options_.momentum) == 0.0) return {};
  return {"momentum_buffer"};
}

void Sgd::update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                 ParamState& state) {
  const double momentum = group.momentum.value_or(options_.momentum);
  const bool nesterov = group.nesterov.value_or(options_.nesterov);
  Tensor buffer;
  bool first_step = false;
  if (momentum != 0.0) {
    Tensor& slot = state.buffers["momentum_buffer"];
    // The kernel sets the buffer to the first direction, so it starts uninitialised.
    first_step = !slot.defined();
    if (first_step) slot = empty(param.shape(), {.dtype = param.dtype(), .device = param.device()});
    buffer = slot;
  }
  const index_t n = param.numel();
  ops::dispatch_float("sgd_step", param.device(), param.dtype(), [&]<class T>(auto backend) {
    ops::kernel::sgd_step(backend, param.data<T>(), grad.data<T>(),
                          buffer.defined() ? buffer.data<T>() : static_cast<T*>(nullptr), n,
                          group.lr, momentum, group.weight_decay, nesterov, first_step);
  });
}

}  // namespace glia::optim
