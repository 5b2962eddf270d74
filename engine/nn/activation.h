// The activation module the networks use between layers: ReLU over the engine's op. Other
// activations are applied as ops on logits where needed (sigmoid, softmax), so they have no
// module. Tested in tests/engine/nn_module_test.cpp.
#pragma once

#include "engine/nn/module.h"
#include "engine/ops.h"

namespace glia::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
};

}  // namespace glia::nn
