// The standard layer modules over the engine's ops, with PyTorch's parameter and buffer names
// (weight, bias, running_mean, running_var) and default initialisation (engine/nn/init.h, drawn
// from the given or the default Philox generator): Conv2d, ConvTranspose2d, BatchNorm2d,
// MaxPool2d, AvgPool2d, GlobalAvgPool, Dropout (masks from a generator it shares), Linear. ReLU and
// Sequential are in activation.h and sequential.h. Parameters are created on the cpu; Module::to
// moves them. Tested in tests/engine/nn_layers_test.cpp.
#pragma once

#include <memory>
#include <optional>

#include "engine/losses.h"
#include "engine/nn/module.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace glia::nn {

struct Conv2dOptions {
  index_t stride = 1;
  index_t padding = 0;
  index_t dilation = 1;
  index_t output_padding = 0;  // ConvTranspose2d only
  bool bias = true;
  Generator* generator = nullptr;  // for the initial weights; the default generator when null
};

// weight [out, in, k, k], bias [out].
class Conv2d : public Module {
 public:
  Conv2d(index_t in_channels, index_t out_channels, index_t kernel, Conv2dOptions options = {});
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;  // bias undefined without one

 private:
  Conv2dParams params_;
};

// weight [in, out, k, k] (PyTorch's layout), bias [out]; the U-Net's up-sampling is kernel 2,
// stride 2.
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(index_t in_channels, index_t out_channels, index_t kernel,
                  Conv2dOptions options = {});
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;

 private:
  Conv2dParams params_;
};

struct BatchNormOptions {
  double momentum = 0.1;
  double eps = 1e-5;
  bool affine = true;               // weight (ones) and bias (zeros) as parameters
  bool track_running_stats = true;  // running_mean (zeros) and running_var (ones) as buffers
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(index_t channels, BatchNormOptions options = {});
  // Batch statistics (and a running-statistics update) in train mode, the running ones in eval.
  // With a communicator (set_sync), train mode uses the statistics of every rank's batch
  // together (sync_batch_norm2d, PyTorch's SyncBatchNorm).
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) in the same passes over memory (batch_norm_relu2d).
  Tensor forward_relu(const Tensor& x);
  void set_sync(std::shared_ptr<dist::Communicator> comm) { sync_ = std::move(comm); }
  const std::shared_ptr<dist::Communicator>& sync() const { return sync_; }
  Tensor weight, bias, running_mean, running_var;

 private:
  BatchNormOptions options_;
  std::shared_ptr<dist::Communicator> sync_;
};

// Makes every BatchNorm2d in `root` (itself included) synchronise its statistics over `comm`
// (null: back to per-rank statistics); returns how many (torch's convert_sync_batchnorm).
int convert_sync_batchnorm(Module& root, const std::shared_ptr<dist::Communicator>& comm);

class MaxPool2d : public Module {
 public:
  // stride 0 means stride = kernel, as PyTorch's default.
  explicit MaxPool2d(int kernel, int stride = 0, int padding = 0)
      : kernel_(kernel), stride_(stride), padding_(padding) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, kernel_, stride_, padding_); }

 private:
  int kernel_, stride_, padding_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int kernel, int stride = 0, int padding = 0, bool count_include_pad = true)
      : kernel_(kernel),
        stride_(stride),
        padding_(padding),
        count_include_pad_(count_include_pad) {}
  Tensor forward(const Tensor& x) override {
    return avg_pool2d(x, kernel_, stride_, padding_, count_include_pad_);
  }

 private:
  int kernel_, stride_, padding_;
  bool count_include_pad_;
};

// [n, c, h, w] -> [n, c, 1, 1] (AdaptiveAvgPool2d(1)); flatten with reshape for a Linear.
class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& x) override { return global_avg_pool2d(x); }
};

// Drops in train mode only. The masks come from a generator the layer shares with whoever else
// draws from it (the trainer's, a predictor's), so it lives as long as any holder; without one
// the layer gets a private generator seeded 0. Never the process-wide default generator.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, std::shared_ptr<Generator> generator = nullptr);
  Tensor forward(const Tensor& x) override {
    return dropout(x, p_, is_training(), generator_.get());
  }
  double p() const { return p_; }
  const std::shared_ptr<Generator>& generator() const { return generator_; }
  // Throws std::invalid_argument on null: a Dropout always has a generator of its own.
  void set_generator(std::shared_ptr<Generator> generator);

 private:
  double p_;
  std::shared_ptr<Generator> generator_;
};

// weight [out, in], bias [out]; x [n, in] -> [n, out].
class Linear : public Module {
 public:
  Linear(index_t in_features, index_t out_features, bool bias = true,
         Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }
  Tensor weight, bias;
};

}  // namespace glia::nn
