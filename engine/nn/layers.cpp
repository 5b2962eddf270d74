// The standard layer modules; see layers.h. Tested in tests/engine/nn_layers_test.cpp.
#include "engine/nn/layers.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "engine/nn/init.h"

namespace glia::nn {
namespace {

void check_positive(index_t value, const char* layer, const char* what) {
  if (value <= 0) {
    throw std::invalid_argument(std::string(layer) + ": " + what + " must be positive, got " +
                                std::to_string(value));
  }
}

Conv2dParams conv_params(const Conv2dOptions& o) {
  Conv2dParams p;
  p.stride = {o.stride, o.stride};
  p.padding = {o.padding, o.padding};
  p.dilation = {o.dilation, o.dilation};
  p.output_padding = {o.output_padding, o.output_padding};
  return p;
}

// PyTorch's Conv/Linear default: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void init_weight_and_bias(Tensor& weight, Tensor& bias, Generator* generator) {
  const index_t fan = init::fan_in(weight);
  init::uniform_fan_in_(weight, fan, generator);
  if (bias.defined()) init::uniform_fan_in_(bias, fan, generator);
}

}  // namespace

Conv2d::Conv2d(index_t in_channels, index_t out_channels, index_t kernel, Conv2dOptions options)
    : params_(conv_params(options)) {
  check_positive(in_channels, "Conv2d", "in_channels");
  check_positive(out_channels, "Conv2d", "out_channels");
  check_positive(kernel, "Conv2d", "kernel");
  Tensor w = empty({out_channels, in_channels, kernel, kernel});
  Tensor b = options.bias ? empty({out_channels}) : Tensor();
  init_weight_and_bias(w, b, options.generator);
  weight = register_parameter("weight", w);
  if (b.defined()) bias = register_parameter("bias", b);
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, params_);
}

ConvTranspose2d::ConvTranspose2d(index_t in_channels, index_t out_channels, index_t kernel,
                                 Conv2dOptions options)
    : params_(conv_params(options)) {
  check_positive(in_channels, "ConvTranspose2d", "in_channels");
  check_positive(out_channels, "ConvTranspose2d", "out_channels");
  check_positive(kernel, "ConvTranspose2d", "kernel");
  Tensor w = empty({in_channels, out_channels, kernel, kernel});
  Tensor b = options.bias ? empty({out_channels}) : Tensor();
  init_weight_and_bias(w, b, options.generator);
  weight = register_parameter("weight", w);
  if (b.defined()) bias = register_parameter("bias", b);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  return conv_transpose2d(x, weight, bias, params_);
}

BatchNorm2d::BatchNorm2d(index_t channels, BatchNormOptions options) : options_(options) {
  check_positive(channels, "BatchNorm2d", "channels");
  if (options.affine) {
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
  }
  if (options.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({channels}));
    running_var = register_buffer("running_var", ones({channels}));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  if (sync_) {
    return sync_batch_norm2d(x, weight, bias, running_mean, running_var, is_training(),
                             options_.momentum, options_.eps, sync_);
  }
  return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), options_.momentum,
                      options_.eps);
}

Tensor BatchNorm2d::forward_relu(const Tensor& x) {
  if (sync_) return relu(forward(x));  // the statistics of every rank's batch, then the ReLU
  return batch_norm_relu2d(x, weight, bias, running_mean, running_var, is_training(),
                           options_.momentum, options_.eps);
}

int convert_sync_batchnorm(Module& root, const std::shared_ptr<dist::Communicator>& comm) {
  int converted = 0;
  if (auto* bn = dynamic_cast<BatchNorm2d*>(&root)) {
    bn->set_sync(comm);
    ++converted;
  }
  for (auto& [name, child] : root.named_children()) {
    converted += convert_sync_batchnorm(*child, comm);
  }
  return converted;
}

Dropout::Dropout(double p, std::shared_ptr<Generator> generator)
    : p_(p), generator_(generator ? std::move(generator) : std::make_shared<Generator>(0)) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw std::invalid_argument("Dropout: p must be in [0, 1], got " + std::to_string(p));
  }
}

void Dropout::set_generator(std::shared_ptr<Generator> generator) {
  if (!generator) throw std::invalid_argument("Dropout: set_generator needs a generator, got null");
  generator_ = std::move(generator);
}

Linear::Linear(index_t in_features, index_t out_features, bool with_bias, Generator* generator) {
  check_positive(in_features, "Linear", "in_features");
  check_positive(out_features, "Linear", "out_features");
  Tensor w = empty({out_features, in_features});
  Tensor b = with_bias ? empty({out_features}) : Tensor();
  init_weight_and_bias(w, b, generator);
  weight = register_parameter("weight", w);
  if (b.defined()) bias = register_parameter("bias", b);
}

}  // namespace glia::nn
