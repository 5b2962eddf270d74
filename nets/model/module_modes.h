// Scoped changes to a module tree that must be undone exactly: the train/eval flag of every
// module (a network may hold some submodules in eval while the rest trains) and whether each
// parameter records gradients. Used by Grad-CAM and MC-dropout inference, which change both and
// promise to leave the model as they found it; tested through tests/nets/explain/gradcam_test.cpp
// and tests/nets/infer/predictor_test.cpp.
#pragma once

#include <utility>
#include <vector>

#include "engine/grad_mode.h"
#include "engine/nn/module.h"

namespace glia::nets {

// Records every module's flag in pre-order and restores them in the same order on exit: train()
// propagates to children, so a parent is restored before its children overwrite their part.
class TrainModeGuard {
 public:
  explicit TrainModeGuard(nn::Module& root) { collect(root); }
  ~TrainModeGuard() {
    for (auto& [module, training] : modes_) module->train(training);
  }
  TrainModeGuard(const TrainModeGuard&) = delete;
  TrainModeGuard& operator=(const TrainModeGuard&) = delete;

 private:
  void collect(nn::Module& m) {
    modes_.emplace_back(&m, m.is_training());
    for (auto& [name, child] : m.named_children()) collect(*child);
  }
  std::vector<std::pair<nn::Module*, bool>> modes_;
};

// Stops every parameter from recording gradients for its scope, so a backward pass reaches only
// the tensors the caller asked for and leaves the parameters' gradients untouched; restores each
// parameter's own flag (frozen ones stay frozen).
class ParametersNoGradGuard {
 public:
  explicit ParametersNoGradGuard(const nn::Module& root) : parameters_(root.parameters()) {
    for (Tensor& p : parameters_) {
      flags_.push_back(p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~ParametersNoGradGuard() {
    for (std::size_t i = 0; i < parameters_.size(); ++i)
      parameters_[i].set_requires_grad(flags_[i]);
  }
  ParametersNoGradGuard(const ParametersNoGradGuard&) = delete;
  ParametersNoGradGuard& operator=(const ParametersNoGradGuard&) = delete;

 private:
  std::vector<Tensor> parameters_;
  std::vector<bool> flags_;
};

// Turns recording on for its scope (a caller may be inside a NoGradGuard) and restores it.
class EnableGradGuard {
 public:
  EnableGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(true); }
  ~EnableGradGuard() { GradMode::set_enabled(previous_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace glia::nets
