// Version counters and the saved-tensor check (engine/tensor.h, engine/autograd.h): every in-place
// write bumps the version (fills, random fills, optimiser steps, gradient clipping, batch-norm
// running statistics, module loads and moves); aliases share the counter; backward through a
// saved tensor written since the forward throws naming the op; writes to tensors no backward
// reads, and the ordinary training loop, do not.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/losses.h"
#include "engine/nn/activation.h"
#include "engine/nn/init.h"
#include "engine/nn/layers.h"
#include "engine/nn/sequential.h"
#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/sgd.h"
#include "engine/random.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using testing::host_doubles;
using testing::random_tensor;

Tensor leaf(const Shape& shape, unsigned seed, Device device = Device::cpu()) {
  Tensor t = random_tensor(shape, -1.0, 1.0, seed, DType::f32, device);
  t.set_requires_grad(true);
  return t;
}

// The message of the std::runtime_error `fn` throws; fails the test on none or another type.
template <class Fn>
std::string runtime_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected std::runtime_error, got: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected std::runtime_error";
  return {};
}

// Checks that `message` is the saved-tensor error of `op` for a tensor of `shape`.
void expect_modified_error(const std::string& message, const std::string& op, const Shape& shape) {
  EXPECT_NE(message.find("modified by an in-place operation"), std::string::npos) << message;
  EXPECT_NE(message.find(op + " saved a tensor of shape " + shape_to_string(shape)),
            std::string::npos)
      << message;
}

// --- every in-place write bumps ----------------------------------------------------------------

TEST(VersionCounterTest, FillsBumpAndOutOfPlaceOpsDoNot) {
  Tensor x = empty({2, 3});
  const std::uint64_t v = x.version();
  fill_(x, 1.0);
  EXPECT_EQ(x.version(), v + 1);
  uniform_(x, -1.0, 1.0);
  EXPECT_EQ(x.version(), v + 2);
  normal_(x);
  EXPECT_EQ(x.version(), v + 3);
  nn::init::kaiming_uniform_relu_(x);
  EXPECT_EQ(x.version(), v + 4);
  nn::init::uniform_fan_in_(x, 3);
  EXPECT_EQ(x.version(), v + 5);

  // Reading x into new tensors is no write.
  const Tensor y = relu(x) + x * 2.0;
  const Tensor c = x.clone();
  const Tensor moved = x.to(Device::sim());
  EXPECT_EQ(x.version(), v + 5);
  EXPECT_EQ(c.version(), 0u);
  EXPECT_EQ(from_vector(std::vector<float>{1, 2}, {2}).version(), 0u);
  EXPECT_EQ(zeros({2}).version(), 0u);
}

TEST(VersionCounterTest, ZeroGradBumpsTheGradientNotTheParameter) {
  Tensor p = leaf({3}, 1);
  sum(p * p).backward();
  const std::uint64_t pv = p.version(), gv = p.grad().version();
  p.zero_grad();
  EXPECT_EQ(p.grad().version(), gv + 1);
  EXPECT_EQ(p.version(), pv);
}

TEST(VersionCounterTest, DetachedAndReshapedAliasesShareTheCounter) {
  Tensor x = leaf({2, 3}, 2);
  Tensor d = x.detach();
  Tensor r = x.reshape({3, 2});
  Tensor rd = d.reshape({6});
  const std::uint64_t v = x.version();
  fill_(rd, 0.5);  // a write through an alias of an alias
  EXPECT_EQ(x.version(), v + 1);
  EXPECT_EQ(d.version(), v + 1);
  EXPECT_EQ(r.version(), v + 1);
  Tensor c = x.clone();
  fill_(c, 0.0);  // a copy has its own counter
  EXPECT_EQ(x.version(), v + 1);
  EXPECT_EQ(c.version(), 1u);
}

// One optimiser step bumps each updated parameter once and leaves the others alone.
TEST(VersionCounterTest, OptimiserStepsBumpUpdatedParameters) {
  using Make = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
  const std::map<std::string, Make> makers{
      {"SGD",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::Sgd>(
             std::vector<optim::ParamGroup>{{.params = p, .lr = 0.1}});
       }},
      {"SGD momentum",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::Sgd>(
             std::vector<optim::ParamGroup>{{.params = p, .lr = 0.1}},
             optim::SgdOptions{.momentum = 0.9});
       }},
      {"Adam",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::Adam>(std::vector<optim::ParamGroup>{{.params = p}});
       }},
      {"AdamW",
       [](std::vector<Tensor> p) {
         return std::make_unique<optim::AdamW>(
             std::vector<optim::ParamGroup>{{.params = p, .weight_decay = 0.01}});
       }},
  };
  for (const auto& [name, make] : makers) {
    SCOPED_TRACE(name);
    Tensor used = leaf({4}, 3), unused = leaf({2}, 4);
    const std::unique_ptr<optim::Optimizer> opt = make({used, unused});
    sum(used * used).backward();
    const std::uint64_t v_used = used.version(), v_unused = unused.version();
    opt->step();
    EXPECT_EQ(used.version(), v_used + 1);
    EXPECT_EQ(unused.version(), v_unused);  // no gradient: not updated
    opt->step();
    EXPECT_EQ(used.version(), v_used + 2);
  }
}

TEST(VersionCounterTest, ClipGradNormBumpsTheGradientsItScales) {
  Tensor p = leaf({3}, 5);
  sum(p * 10.0).backward();  // gradient norm 10 sqrt(3)
  const std::uint64_t v = p.grad().version();
  optim::clip_grad_norm_({p}, 1e6);  // below the limit: nothing written
  EXPECT_EQ(p.grad().version(), v);
  optim::clip_grad_norm_({p}, 1.0);
  EXPECT_EQ(p.grad().version(), v + 1);
}

TEST(VersionCounterTest, BatchNormTrainingBumpsTheRunningStatistics) {
  nn::BatchNorm2d bn(2);
  const Tensor x = random_tensor({3, 2, 2, 2}, -1.0, 1.0, 6);
  const std::uint64_t vm = bn.running_mean.version(), vv = bn.running_var.version();
  bn.forward(x);
  EXPECT_EQ(bn.running_mean.version(), vm + 1);
  EXPECT_EQ(bn.running_var.version(), vv + 1);
  bn.eval();
  bn.forward(x);
  EXPECT_EQ(bn.running_mean.version(), vm + 1);
  EXPECT_EQ(bn.running_var.version(), vv + 1);
}

TEST(VersionCounterTest, LoadingAndAssigningParametersBumps) {
  nn::Conv2d conv(2, 3, 3);
  Tensor weight_alias = conv.weight.detach();  // made before the load: shares the counter
  const std::uint64_t vw = conv.weight.version(), vb = conv.bias.version();
  std::map<std::string, Tensor> state;
  state["weight"] = random_tensor(conv.weight.shape(), -1.0, 1.0, 7);
  state["bias"] = random_tensor(conv.bias.shape(), -1.0, 1.0, 8);
  conv.load_state_dict(state);
  EXPECT_EQ(conv.weight.version(), vw + 1);
  EXPECT_EQ(conv.bias.version(), vb + 1);
  EXPECT_EQ(weight_alias.version(), vw + 1);
  nn::assign_values(conv.bias, zeros(conv.bias.shape()), "bias");
  EXPECT_EQ(conv.bias.version(), vb + 2);
  EXPECT_EQ(host_doubles(conv.bias), (std::vector<double>{0, 0, 0}));
}

TEST(VersionCounterSimTest, MovingAModuleBumps) {
  nn::Linear linear(3, 2);
  const std::uint64_t v = linear.weight.version();
  linear.to(Device::sim());
  EXPECT_EQ(linear.weight.version(), v + 1);
  linear.to(Device::sim());  // already there: nothing moves
  EXPECT_EQ(linear.weight.version(), v + 1);
}

// --- backward through a modified saved tensor throws naming the op ------------------------------

TEST(SavedTensorTest, MulSavesTheOtherOperand) {
  Tensor a = leaf({3}, 10), b = leaf({3}, 11);
  const Tensor y = sum(a * b);
  fill_(a, 2.0);  // a * b saved a for b's gradient
  const std::string message = runtime_error_of([&] { y.backward(); });
  expect_modified_error(message, "mul", {3});
  EXPECT_NE(message.find("at version 0, it is now at version 1"), std::string::npos) << message;
}

TEST(SavedTensorTest, AWriteThroughADetachedAliasIsCaught) {
  Tensor a = leaf({2, 2}, 12), b = leaf({2, 2}, 13);
  const Tensor y = sum(matmul(a, b));
  Tensor view = b.detach().reshape({4});
  uniform_(view);
  expect_modified_error(runtime_error_of([&] { y.backward(); }), "matmul", {2, 2});
}

TEST(SavedTensorTest, Conv2dSavesItsWeightAndInput) {
  const Tensor x = leaf({1, 2, 5, 5}, 14);
  Tensor w = leaf({3, 2, 3, 3}, 15);
  const Tensor bias = leaf({3}, 16);
  const Tensor y = sum(conv2d(x, w, bias));
  normal_(w);
  expect_modified_error(runtime_error_of([&] { y.backward(); }), "conv2d", {3, 2, 3, 3});

  Tensor input = x.detach().clone().set_requires_grad(true);
  const Tensor z = sum(conv2d(input, w, bias));
  fill_(input, 0.0);
  expect_modified_error(runtime_error_of([&] { z.backward(); }), "conv2d", {1, 2, 5, 5});
}

TEST(SavedTensorTest, OutputsSavedBySigmoidAndSoftmax) {
  const Tensor x = leaf({2, 3}, 17);
  Tensor s = sigmoid(x);
  const Tensor ls = sum(s);
  fill_(s, 0.5);  // sigmoid's backward reads its output
  expect_modified_error(runtime_error_of([&] { ls.backward(); }), "sigmoid", {2, 3});

  Tensor p = softmax(x);
  const Tensor lp = sum(p * random_tensor({2, 3}, -1.0, 1.0, 18));
  fill_(p, 0.0);
  expect_modified_error(runtime_error_of([&] { lp.backward(); }), "softmax", {2, 3});
}

TEST(SavedTensorTest, ReluModuleSavesWhatItsBackwardReads) {
  const Tensor x = leaf({2, 4}, 19);
  nn::ReLU relu_module;
  Tensor h = x * 2.0;
  const Tensor y = sum(relu_module(h));
  fill_(h, 1.0);  // relu's gradient is read off its input
  expect_modified_error(runtime_error_of([&] { y.backward(); }), "relu", {2, 4});
}

TEST(SavedTensorTest, RetainedGraphChecksEveryBackward) {
  Tensor a = leaf({2}, 20), b = leaf({2}, 21);
  const Tensor y = sum(a * b);
  y.backward(/*retain_graph=*/true);
  fill_(b, 3.0);
  expect_modified_error(runtime_error_of([&] { y.backward(); }), "mul", {2});
}

TEST(SavedTensorTest, OptimizerStepBetweenForwardAndBackwardThrows) {
  nn::Sequential net({std::make_shared<nn::Conv2d>(1, 2, 3, nn::Conv2dOptions{.padding = 1}),
                      std::make_shared<nn::ReLU>(),
                      std::make_shared<nn::Conv2d>(2, 1, 3, nn::Conv2dOptions{.padding = 1})});
  optim::Sgd opt({{.params = net.parameters(), .lr = 0.1}});
  const Tensor x = random_tensor({2, 1, 4, 4}, -1.0, 1.0, 22);
  sum(net(x)).backward();  // every parameter has a gradient
  const Tensor loss = sum(net(x));
  opt.step();  // writes the second conv's weight, which its backward reads
  expect_modified_error(runtime_error_of([&] { loss.backward(); }), "conv2d", {1, 2, 3, 3});
}

TEST(SavedTensorSimTest, TheCheckRunsOnSim) {
  const Tensor x = leaf({1, 1, 4, 4}, 23, Device::sim());
  Tensor w = leaf({1, 1, 3, 3}, 24, Device::sim());
  const Tensor y = sum(conv2d(x, w, Tensor()));
  fill_(w, 0.0);
  const std::string message = runtime_error_of([&] { y.backward(); });
  expect_modified_error(message, "conv2d", {1, 1, 3, 3});
  EXPECT_NE(message.find("f32 on sim"), std::string::npos) << message;
}

// --- what must keep working -------------------------------------------------------------------

TEST(SavedTensorTest, WritesToTensorsNoBackwardReadsAreFine) {
  // add reads neither operand; mul by a constant reads only the constant.
  Tensor a = leaf({3}, 25), b = leaf({3}, 26);
  const Tensor c = random_tensor({3}, -1.0, 1.0, 27);
  const Tensor y = sum(a + b) + sum(a * c);
  fill_(a, 5.0);
  fill_(b, 5.0);
  y.backward();
  std::vector<double> expected;  // d/da = 1 + c, summed in f32 as backward does
  for (float v : c.to_vector<float>()) expected.push_back(1.0f + v);
  EXPECT_EQ(host_doubles(a.grad()), expected);
  EXPECT_EQ(host_doubles(b.grad()), (std::vector<double>{1, 1, 1}));

  // An op's own output, when its backward does not read it (add), may be written.
  Tensor s = a + b;
  const Tensor z = sum(s);
  fill_(s, 0.0);
  EXPECT_NO_THROW(z.backward());

  // And a saved tensor may be written once the backward that read it is done.
  Tensor m = leaf({3}, 28);
  sum(m * m).backward();
  EXPECT_NO_THROW(fill_(m, 0.0));
}

TEST(SavedTensorTest, TrainingLoopsDoNotThrow) {
  for (const bool adam : {false, true}) {
    SCOPED_TRACE(adam ? "Adam" : "SGD");
    Generator g(1);
    nn::Sequential net(
        {std::make_shared<nn::Conv2d>(1, 4, 3, nn::Conv2dOptions{.padding = 1, .generator = &g}),
         std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::ReLU>(),
         std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::GlobalAvgPool>()});
    nn::Linear head(4, 2, true, &g);
    std::vector<Tensor> params = net.parameters();
    for (const Tensor& p : head.parameters()) params.push_back(p);
    std::unique_ptr<optim::Optimizer> opt;
    if (adam) {
      opt = std::make_unique<optim::Adam>(std::vector<optim::ParamGroup>{{.params = params}});
    } else {
      opt = std::make_unique<optim::Sgd>(
          std::vector<optim::ParamGroup>{{.params = params, .lr = 0.1}},
          optim::SgdOptions{.momentum = 0.9});
    }
    const Tensor x = random_tensor({4, 1, 6, 6}, -1.0, 1.0, 29);
    const Tensor target = from_vector(std::vector<std::int32_t>{0, 1, 1, 0}, {4});
    for (int step = 0; step < 3; ++step) {
      opt->zero_grad();
      const Tensor logits = head(net(x).reshape({4, 4}));
      const Tensor loss = cross_entropy(logits, target);
      ASSERT_NO_THROW(loss.backward());
      optim::clip_grad_norm_(params, 1.0);
      opt->step();
    }
  }
}

}  // namespace
}  // namespace glia
