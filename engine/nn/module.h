// nn::Module: the base of every layer and network (DESIGN.md section 4). A module owns named
// parameters (trainable leaves), named buffers (state such as batch-norm running statistics) and
// named child modules; the dotted paths ("encoder.blocks.0.conv1.weight") are PyTorch's, and are
// also the checkpoint keys. Train/eval mode and freezing propagate to children. Parameters and
// buffers are handles: moving a module to a device or loading a state dict replaces their storage
// in place, so handles a layer keeps in its members stay valid; that counts as an in-place write
// (their version is bumped, engine/autograd.h).
// Tested in tests/engine/nn_module_test.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace glia::nn {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Single-input modules override this (layers, Sequential); multi-input networks define their
  // own forward and leave this one throwing.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // --- structure ---
  // Every parameter with its dotted path, in registration order, children after own.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // The child at a dotted path ("encoder.blocks.0"); throws naming the path when absent.
  std::shared_ptr<Module> submodule(const std::string& path) const;
  // Number of elements over all parameters (trainable or not).
  std::int64_t parameter_count() const;

  // --- modes ---
  // Train mode for this module and its children (batch norm uses batch statistics, dropout
  // drops); eval() is train(false).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Freezes (false) or unfreezes (true) every parameter: frozen ones get no gradient.
  void set_requires_grad(bool requires_grad);

  // --- state ---
  // Moves every parameter and buffer to `device` in place (gradients are dropped).
  void to(Device device);
  // Parameters then buffers, by dotted path.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values into the existing parameters and buffers (converted to their dtype and device).
  // strict: every key must match both ways; the error lists missing and unexpected keys by name.
  // A shape mismatch is always an error naming the key and both shapes.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  // Sets every parameter's gradient to zero.
  void zero_grad();

 protected:
  // Registers a trainable leaf (requires_grad set) and returns its handle.
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool parameters,
               std::vector<std::pair<std::string, Tensor>>& out) const;

  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Replaces `dst`'s storage with a copy of `src`'s values converted to dst's dtype and device;
// the shapes must match. dst keeps its identity (handles, requires_grad, version counter, which is
// bumped); its gradient is kept.
// `what` names dst in the error.
void assign_values(Tensor& dst, const Tensor& src, const std::string& what);

}  // namespace glia::nn
