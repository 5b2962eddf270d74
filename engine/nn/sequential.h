// nn::Sequential: single-input modules applied in order; children are named "0", "1", ... as in
// PyTorch, so checkpoint keys match ("features.0.weight"). Tested in
// tests/engine/nn_module_test.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"

namespace glia::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules) {
    for (auto& m : modules) push_back(std::move(m));
  }

  void push_back(std::shared_ptr<Module> module) {
    layers_.push_back(register_module(std::to_string(layers_.size()), std::move(module)));
  }
  std::size_t size() const { return layers_.size(); }
  const std::shared_ptr<Module>& operator[](std::size_t i) const { return layers_.at(i); }

  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (auto& layer : layers_) y = layer->forward(y);
    return y;
  }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace glia::nn
