// Parameter initialisation; see init.h. Tested in tests/engine/nn_module_test.cpp.
#include "engine/nn/init.h"

#include <cmath>
#include <stdexcept>

#include "engine/grad_mode.h"

namespace glia::nn::init {

index_t fan_in(const Tensor& weight) {
  if (weight.dim() < 2) {
    throw std::invalid_argument("fan_in needs a weight of rank >= 2, got " + weight.describe());
  }
  index_t fan = weight.size(1);
  for (int d = 2; d < weight.dim(); ++d) fan *= weight.size(d);
  return fan;
}

void uniform_fan_in_(Tensor& t, index_t fan_in, Generator* generator) {
  if (fan_in <= 0) throw std::invalid_argument("uniform_fan_in_: fan_in must be positive");
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  NoGradGuard no_grad;
  uniform_(t, -bound, bound, generator);
}

void kaiming_uniform_relu_(Tensor& weight, Generator* generator) {
  const double bound = std::sqrt(6.0 / static_cast<double>(fan_in(weight)));
  NoGradGuard no_grad;
  uniform_(weight, -bound, bound, generator);
}

}  // namespace glia::nn::init
