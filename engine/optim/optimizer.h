// The optimiser base: parameter groups (each with its own learning rate and weight decay, plus
// optional per-group overrides of the optimiser's hyper-parameters), per-parameter state
// allocated lazily on the parameter's device, zero_grad, and the state as a name -> Tensor map for
// checkpoints. The update rules are in the subclasses (engine/optim/sgd.h, engine/optim/adam.h);
// each runs under no-grad, in place on the parameter's storage, on the parameter's own device
// (cpu, sim, cuda) through the fused kernels of kernels/optim_math.h, and step() bumps each
// updated parameter's version, so backward through a graph recorded before the step throws.
//
// State map (export_state / import_state), group g and parameter index i within it:
//   "group.<g>.lr", "group.<g>.weight_decay"  f64 scalars on cpu (schedules change lr)
//   "state.<g>.<i>.step"                      f64 scalar on cpu: the updates applied so far
//   "state.<g>.<i>.<buffer>"                  the parameter's state tensors (momentum_buffer;
//                                             exp_avg, exp_avg_sq), on the parameter's device
// A parameter without state (never updated) has no "state." keys. Importing moves each tensor to
// its parameter's device and checks names, shapes and dtypes against this optimiser's groups.
// Tested in tests/engine/optim_test.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace glia::optim {

// Every member has an initialiser, so designated initialisers naming only some of them
// ({.params = p, .lr = 0.1}) compile warning-free.
struct ParamGroup {
  std::vector<Tensor> params{};
  double lr = 1e-3;  // PyTorch Adam's default; set it for SGD
  double weight_decay = 0.0;
  // Per-group overrides; unset means the optimiser's own value.
  std::optional<double> momentum{};  // SGD
  std::optional<bool> nesterov{};    // SGD
  std::optional<double> beta1{};     // Adam, AdamW
  std::optional<double> beta2{};     // Adam, AdamW
  std::optional<double> eps{};       // Adam, AdamW
  std::string name{};                // for messages ("encoder"); may be empty
};

// What an optimiser keeps per parameter.
struct ParamState {
  std::int64_t step = 0;
  std::map<std::string, Tensor> buffers;
};

using StateDict = std::map<std::string, Tensor>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; parameters whose grad is undefined are
  // skipped (their state is untouched).
  void step();
  // Drops every parameter's gradient (set_to_none, PyTorch's default: the next backward
  // allocates fresh ones, and step() skips parameters no backward reached) or, with
  // set_to_none = false, sets existing gradients to zero in place.
  void zero_grad(bool set_to_none = true);

  // Appends a group; its hyper-parameters are checked, and a parameter may belong to one group.
  void add_param_group(ParamGroup group);
  // Mutable for schedules and for changing hyper-parameters; the parameter lists must stay as
  // they were added (step() checks their sizes).
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }

  // The state of parameter `index` of group `group`; null when it has not been updated yet.
  const ParamState* state(std::size_t group, std::size_t index) const;

  StateDict export_state() const;
  // Replaces the whole state (and the groups' lr and weight decay) by `state`, as exported by an
  // optimiser of the same kind over parameters of the same shapes.
  void import_state(const StateDict& state);

 protected:
  explicit Optimizer(const char* kind) : kind_(kind) {}
  // Checks the hyper-parameters of `group` (as resolved against the optimiser's defaults); throws
  // naming the group (`label`) and the value.
  virtual void check_group(const ParamGroup& group, const std::string& label) const = 0;
  // Applies one update to `param` (its grad defined and matching), `state` already counting it.
  virtual void update(const ParamGroup& group, const Tensor& param, const Tensor& grad,
                      ParamState& state) = 0;
  // The state buffers the optimiser keeps per parameter for `group`, for import checks.
  virtual std::vector<std::string> buffer_names(const ParamGroup& group) const = 0;

  // "group 1 ('encoder')": for messages.
  static std::string group_label(const ParamGroup& group, std::size_t index);

  const char* kind_;

 private:
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<std::optional<ParamState>>> state_;  // [group][param]
};

// Throws std::invalid_argument "<kind>: invalid <what> <value> in <group>" unless ok.
void check_hyperparameter(bool ok, const char* kind, const char* what, double value,
                          const std::string& group);

}  // namespace glia::optim
