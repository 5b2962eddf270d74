// Parameter-free activation modules over the engine's ops. Tested in
// tests/engine/nn_module_test.cpp.
#pragma once

#include "engine/nn/module.h"
#include "engine/ops.h"

namespace glia::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};

}  // namespace glia::nn
