// nn::Module: registration, dotted names, modes, device moves and state dicts; see module.h.
// Tested in tests/engine/nn_module_test.cpp.
#include "engine/nn/module.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "engine/storage.h"

namespace glia::nn {
namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// Points `dst` at `src`'s storage, so every handle to dst sees the new values. That is an
// in-place write for autograd: dst keeps its version counter and bumps it, so a graph that saved
// the old values (through an alias sharing the counter) fails at backward.
void rebind_storage(Tensor& dst, const Tensor& src) {
  TensorImpl* d = dst.impl();
  d->storage = src.impl()->storage;
  d->offset = src.impl()->offset;
  d->device = src.device();
  dst.bump_version();
}

}  // namespace

Tensor Module::forward(const Tensor&) {
  throw std::logic_error(
      "this module has no single-input forward: call the forward of its own type");
}

void Module::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos) {
    throw std::invalid_argument("module member name '" + name +
                                "' must be non-empty and contain no '.'");
  }
  auto taken = [&name](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_)) {
    throw std::invalid_argument("module member name '" + name + "' is already registered");
  }
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_new_name(name);
  if (!value.defined()) throw std::invalid_argument("parameter '" + name + "' is undefined");
  value.set_requires_grad(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  if (!value.defined()) throw std::invalid_argument("buffer '" + name + "' is undefined");
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  if (!module) throw std::invalid_argument("child module '" + name + "' is null");
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool parameters,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : parameters ? parameters_ : buffers_) {
    out.emplace_back(join(prefix, name), t);
  }
  for (const auto& [name, child] : children_) child->collect(join(prefix, name), parameters, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::shared_ptr<Module> Module::submodule(const std::string& path) const {
  const Module* current = this;
  std::shared_ptr<Module> found;
  std::istringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '.')) {
    auto it = std::find_if(current->children_.begin(), current->children_.end(),
                           [&](const auto& e) { return e.first == part; });
    if (it == current->children_.end()) {
      throw std::invalid_argument("no submodule '" + path + "' (missing '" + part + "')");
    }
    found = it->second;
    current = found.get();
  }
  if (!found) throw std::invalid_argument("empty submodule path");
  return found;
}

std::int64_t Module::parameter_count() const {
  std::int64_t count = 0;
  for (const auto& [name, t] : named_parameters()) count += t.numel();
  return count;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::set_requires_grad(bool requires_grad) {
  for (auto& [name, t] : named_parameters()) {
    Tensor p = t;
    p.set_requires_grad(requires_grad);
  }
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  auto move = [device](Tensor t) {
    if (t.device() == device) return;
    rebind_storage(t, t.detach().to(device));
    t.impl()->grad.reset();
  };
  for (auto& [name, t] : named_parameters()) move(t);
  for (auto& [name, t] : named_buffers()) move(t);
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : named_parameters()) out.emplace(name, t);
  for (auto& [name, t] : named_buffers()) out.emplace(name, t);
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::map<std::string, Tensor> own = state_dict();
  std::vector<std::string> missing, unexpected;
  for (const auto& [name, t] : own) {
    if (!state.count(name)) missing.push_back(name);
  }
  for (const auto& [name, t] : state) {
    if (!own.count(name)) unexpected.push_back(name);
  }
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::string msg = "state dict does not match the module:";
    auto list = [&msg](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      msg += std::string(" ") + what + " keys";
      for (std::size_t i = 0; i < keys.size(); ++i) msg += (i ? ", " : " ") + keys[i];
      msg += ";";
    };
    list("missing", missing);
    list("unexpected", unexpected);
    msg.pop_back();
    throw std::invalid_argument(msg);
  }
  for (auto& [name, dst] : own) {
    auto it = state.find(name);
    if (it != state.end()) assign_values(dst, it->second, name);
  }
}

void Module::zero_grad() {
  glia::zero_grad(parameters());
}

void assign_values(Tensor& dst, const Tensor& src, const std::string& what) {
  if (dst.shape() != src.shape()) {
    throw std::invalid_argument("'" + what + "': shape " + shape_to_string(src.shape()) +
                                " does not match " + shape_to_string(dst.shape()));
  }
  NoGradGuard no_grad;
  // Convert on the host when the source sits elsewhere, so f64 sources reach sim/cuda as f32.
  Tensor converted = src.device() == dst.device()
                         ? src.detach().to(dst.dtype())
                         : src.detach().to(Device::cpu()).to(dst.dtype()).to(dst.device());
  if (converted.shares_storage_with(src)) converted = converted.clone();
  rebind_storage(dst, converted);
}

}  // namespace glia::nn
