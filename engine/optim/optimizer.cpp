// The optimiser base: group bookkeeping, lazy per-parameter state, zero_grad, and the state map
// of engine/optim/optimizer.h. Tested in tests/engine/optim_test.cpp.
#include "engine/optim/optimizer.h"

#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "engine/profile.h"

namespace glia::optim {
namespace {

std::string number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

Tensor scalar(double value) {
  return from_vector(std::vector<double>{value}, {});
}

double scalar_value(const StateDict& state, const std::string& key, const char* kind) {
  const Tensor& t = state.at(key);
  if (!t.defined() || t.numel() != 1) {
    throw std::invalid_argument(std::string(kind) + " import_state: '" + key +
                                "' must be a one-element tensor, got " +
                                (t.defined() ? t.describe() : std::string("undefined")));
  }
  const Tensor c = t.to(Device::cpu()).to(DType::f64);
  return c.item<double>();
}

}  // namespace

void check_hyperparameter(bool ok, const char* kind, const char* what, double value,
                          const std::string& group) {
  if (!ok) {
    throw std::invalid_argument(std::string(kind) + ": invalid " + what + " " + number(value) +
                                " in " + group);
  }
}

std::string Optimizer::group_label(const ParamGroup& group, std::size_t index) {
  std::string label = "group " + std::to_string(index);
  if (!group.name.empty()) label += " ('" + group.name + "')";
  return label;
}

void Optimizer::add_param_group(ParamGroup group) {
  const std::string label = group_label(group, groups_.size());
  check_hyperparameter(std::isfinite(group.lr) && group.lr >= 0.0, kind_, "learning rate", group.lr,
                       label);
  check_hyperparameter(std::isfinite(group.weight_decay) && group.weight_decay >= 0.0, kind_,
                       "weight_decay", group.weight_decay, label);
  check_group(group, label);
  std::set<const TensorImpl*> seen;
  for (const ParamGroup& g : groups_) {
    for (const Tensor& p : g.params) seen.insert(p.impl());
  }
  for (std::size_t i = 0; i < group.params.size(); ++i) {
    const Tensor& p = group.params[i];
    if (!p.defined() || !is_floating(p.dtype())) {
      throw std::invalid_argument(std::string(kind_) + ": parameter " + std::to_string(i) + " of " +
                                  label + " must be a defined floating tensor, got " +
                                  (p.defined() ? p.describe() : std::string("undefined")));
    }
    if (!seen.insert(p.impl()).second) {
      throw std::invalid_argument(std::string(kind_) + ": parameter " + std::to_string(i) + " of " +
                                  label + " (" + p.describe() +
                                  ") appears in more than one place among the groups");
    }
  }
  state_.emplace_back(group.params.size());
  groups_.push_back(std::move(group));
}

void Optimizer::step() {
  const NoGradGuard no_grad;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    if (group.params.size() != state_[g].size()) {
      throw std::logic_error(std::string(kind_) + ": " + group_label(group, g) + " holds " +
                             std::to_string(group.params.size()) +
                             " parameters, it was added with " + std::to_string(state_[g].size()) +
                             " (add parameters through add_param_group)");
    }
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& param = group.params[i];
      const Tensor grad = param.grad();
      if (!grad.defined()) continue;
      if (grad.shape() != param.shape() || grad.dtype() != param.dtype() ||
          grad.device() != param.device()) {
        throw std::invalid_argument(std::string(kind_) + ": the gradient of parameter " +
                                    std::to_string(i) + " of " + group_label(group, g) + " is " +
                                    grad.describe() + ", the parameter " + param.describe());
      }
      std::optional<ParamState>& state = state_[g][i];
      if (!state) state.emplace();
      ++state->step;
      update(group, param, grad, *state);
      param.bump_version();  // a graph that saved the old values can no longer backward
    }
  }
  profile::step_end();  // a training step ends with its update
}

void Optimizer::zero_grad(bool set_to_none) {
  for (const ParamGroup& group : groups_) {
    for (const Tensor& p : group.params) {
      if (set_to_none) {
        p.impl()->grad.reset();
      } else {
        Tensor(p).zero_grad();
      }
    }
  }
}

const ParamState* Optimizer::state(std::size_t group, std::size_t index) const {
  if (group >= state_.size() || index >= state_[group].size()) {
    throw std::out_of_range(std::string(kind_) + ": no parameter " + std::to_string(index) +
                            " in group " + std::to_string(group));
  }
  const std::optional<ParamState>& s = state_[group][index];
  return s ? &*s : nullptr;
}

StateDict Optimizer::export_state() const {
  StateDict out;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string group_key = "group." + std::to_string(g) + ".";
    out[group_key + "lr"] = scalar(groups_[g].lr);
    out[group_key + "weight_decay"] = scalar(groups_[g].weight_decay);
    for (std::size_t i = 0; i < state_[g].size(); ++i) {
      const std::optional<ParamState>& s = state_[g][i];
      if (!s) continue;
      const std::string key = "state." + std::to_string(g) + "." + std::to_string(i) + ".";
      out[key + "step"] = scalar(static_cast<double>(s->step));
      for (const auto& [name, buffer] : s->buffers) out[key + name] = buffer.clone();
    }
  }
  return out;
}

void Optimizer::import_state(const StateDict& state) {
  const std::string what = std::string(kind_) + " import_state: ";
  std::set<std::string> used;
  std::vector<double> lrs(groups_.size()), decays(groups_.size());
  std::vector<std::vector<std::optional<ParamState>>> imported(groups_.size());
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const ParamGroup& group = groups_[g];
    const std::string group_key = "group." + std::to_string(g) + ".";
    for (const char* field : {"lr", "weight_decay"}) {
      if (!state.contains(group_key + field)) {
        throw std::invalid_argument(what + "missing '" + group_key + field + "'");
      }
      used.insert(group_key + field);
    }
    lrs[g] = scalar_value(state, group_key + "lr", kind_);
    decays[g] = scalar_value(state, group_key + "weight_decay", kind_);
    imported[g].resize(group.params.size());
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& param = group.params[i];
      const std::string key = "state." + std::to_string(g) + "." + std::to_string(i) + ".";
      if (!state.contains(key + "step")) continue;
      used.insert(key + "step");
      const double step = scalar_value(state, key + "step", kind_);
      if (!(step >= 1.0) || step != std::floor(step)) {
        throw std::invalid_argument(what + "'" + key + "step' is " + number(step) +
                                    ", not a positive whole number");
      }
      ParamState s;
      s.step = static_cast<std::int64_t>(step);
      for (const std::string& name : buffer_names(group)) {
        const auto it = state.find(key + name);
        if (it == state.end()) throw std::invalid_argument(what + "missing '" + key + name + "'");
        const Tensor& t = it->second;
        if (!t.defined() || t.shape() != param.shape() || t.dtype() != param.dtype()) {
          throw std::invalid_argument(what + "'" + key + name + "' is " +
                                      (t.defined() ? t.describe() : std::string("undefined")) +
                                      ", the parameter " + param.describe());
        }
        used.insert(key + name);
        s.buffers[name] = t.to(param.device()).clone();
      }
      imported[g][i] = std::move(s);
    }
  }
  for (const auto& [key, tensor] : state) {
    if (!used.contains(key)) {
      throw std::invalid_argument(what + "unexpected key '" + key + "' (" +
                                  std::to_string(groups_.size()) + " groups)");
    }
  }
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    groups_[g].lr = lrs[g];
    groups_[g].weight_decay = decays[g];
  }
  state_ = std::move(imported);
}

}  // namespace glia::optim
