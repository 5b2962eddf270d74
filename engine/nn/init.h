// Parameter initialisation as PyTorch's defaults, drawn from the seeded Philox generator so a
// model initialises identically on every device. Conv and Linear weights use
// kaiming_uniform_(a = sqrt(5)), which reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); their biases
// use the same bound. fan_in of a weight is size(1) times the product of the trailing (kernel)
// dims, as torch.nn.init computes it (for a transposed convolution that is its out channels).
// Tested in tests/engine/nn_module_test.cpp.
#pragma once

#include "engine/random.h"
#include "engine/tensor.h"

namespace glia::nn::init {

// size(1) * prod(size(2..)) of a weight of rank >= 2.
index_t fan_in(const Tensor& weight);
// U(-bound, bound) in place, bound = 1 / sqrt(fan_in): PyTorch's default for Conv and Linear
// weights (kaiming_uniform_ with a = sqrt(5)) and for their biases.
void uniform_fan_in_(Tensor& t, index_t fan_in, Generator* generator = nullptr);
// kaiming_uniform_ with the ReLU gain: U(-b, b), b = sqrt(6 / fan_in).
void kaiming_uniform_relu_(Tensor& weight, Generator* generator = nullptr);

}  // namespace glia::nn::init
