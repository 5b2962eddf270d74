// nn::Module, Sequential, ReLU and the initialisers: dotted names, modes, freezing, device moves
// that keep member handles valid, strict state dicts with named errors, and PyTorch's init bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "engine/nn/activation.h"
#include "engine/nn/init.h"
#include "engine/nn/module.h"
#include "engine/nn/sequential.h"
#include "engine/ops.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using testing::error_of;
using testing::host_doubles;

// y = relu(x * scale + shift), with a buffer that counts nothing but must travel with the module.
class Affine : public nn::Module {
 public:
  explicit Affine(index_t n) {
    scale = register_parameter("weight", ones({n}));
    shift = register_parameter("bias", zeros({n}));
    stat = register_buffer("running_mean", full({n}, 0.5));
  }
  Tensor forward(const Tensor& x) override { return relu(x * scale + shift); }
  Tensor scale, shift, stat;
};

class Net : public nn::Module {
 public:
  Net() {
    first = register_module("first", std::make_shared<Affine>(3));
    body = register_module("body", std::make_shared<nn::Sequential>());
    body->push_back(std::make_shared<Affine>(3));
    body->push_back(std::make_shared<nn::ReLU>());
  }
  Tensor forward(const Tensor& x) override { return body->forward(first->forward(x)); }
  std::shared_ptr<Affine> first;
  std::shared_ptr<nn::Sequential> body;
};

TEST(NnModuleTest, DottedNamesInRegistrationOrder) {
  Net net;
  std::vector<std::string> names;
  for (auto& [name, t] : net.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"first.weight", "first.bias", "body.0.weight",
                                             "body.0.bias"}));
  std::vector<std::string> buffers;
  for (auto& [name, t] : net.named_buffers()) buffers.push_back(name);
  EXPECT_EQ(buffers, (std::vector<std::string>{"first.running_mean", "body.0.running_mean"}));
  EXPECT_EQ(net.parameter_count(), 12);
  EXPECT_EQ(net.state_dict().size(), 6u);
  EXPECT_EQ(net.submodule("body.0").get(), net.body->operator[](0).get());
  EXPECT_NE(error_of([&] { (void)net.submodule("body.7"); }).find("body.7"), std::string::npos);
}

TEST(NnModuleTest, RegisteringANameTwiceOrWithADotIsAnError) {
  class Bad : public nn::Module {
   public:
    void twice() {
      register_parameter("w", ones({1}));
      register_buffer("w", ones({1}));
    }
    void dotted() { register_parameter("a.b", ones({1})); }
  } bad;
  EXPECT_NE(error_of([&] { bad.twice(); }).find("already registered"), std::string::npos);
  EXPECT_NE(error_of([&] { bad.dotted(); }).find("'a.b'"), std::string::npos);
}

TEST(NnModuleTest, TrainAndEvalPropagateToChildren) {
  Net net;
  EXPECT_TRUE(net.body->operator[](1)->is_training());
  net.eval();
  EXPECT_FALSE(net.first->is_training());
  EXPECT_FALSE(net.body->operator[](1)->is_training());
  net.train();
  EXPECT_TRUE(net.body->operator[](0)->is_training());
}

TEST(NnModuleTest, FrozenParametersGetNoGradient) {
  Net net;
  net.first->set_requires_grad(false);
  const Tensor x = testing::random_tensor({4, 3}, 0.1, 1.0, 3);
  sum(net(x)).backward();
  EXPECT_FALSE(net.first->scale.grad().defined());
  ASSERT_TRUE(net.body->parameters()[0].grad().defined());
  net.zero_grad();
  for (double g : host_doubles(net.body->parameters()[0].grad())) EXPECT_EQ(g, 0.0);
}

TEST(NnModuleTest, StateDictRoundTripAndStrictErrorsNameTheKeys) {
  Net a, b;
  {
    NoGradGuard no_grad;
    Tensor w = a.first->scale;
    fill_(w, 2.5);
  }
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(host_doubles(b.first->scale), (std::vector<double>{2.5, 2.5, 2.5}));
  // The values were copied, not aliased.
  EXPECT_FALSE(b.first->scale.shares_storage_with(a.first->scale));

  auto state = a.state_dict();
  state.erase("body.0.bias");
  state.emplace("body.9.weight", ones({3}));
  const std::string msg = error_of([&] { b.load_state_dict(state); });
  EXPECT_NE(msg.find("missing keys body.0.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected keys body.9.weight"), std::string::npos) << msg;
  EXPECT_NO_THROW(b.load_state_dict(state, /*strict=*/false));

  auto wrong = a.state_dict();
  wrong["first.weight"] = ones({4});
  const std::string shape_msg = error_of([&] { b.load_state_dict(wrong); });
  EXPECT_NE(shape_msg.find("'first.weight': shape [4] does not match [3]"), std::string::npos)
      << shape_msg;
}

TEST(NnModuleTest, LoadingConvertsDtype) {
  Net net;
  auto state = net.state_dict();
  state["first.bias"] = full({3}, 0.25, {.dtype = DType::f64});
  net.load_state_dict(state);
  EXPECT_EQ(net.first->shift.dtype(), DType::f32);
  EXPECT_EQ(host_doubles(net.first->shift), (std::vector<double>{0.25, 0.25, 0.25}));
}

TEST(NnModuleSimTest, MovingToSimKeepsMemberHandlesAndResults) {
  Net net;
  const Tensor x = testing::random_tensor({5, 3}, -1.0, 1.0, 11);
  const std::vector<double> expected = host_doubles(net(x));
  net.to(Device::sim());
  EXPECT_EQ(net.first->scale.device(), Device::sim());
  EXPECT_EQ(net.first->stat.device(), Device::sim());
  EXPECT_TRUE(net.first->scale.requires_grad());
  EXPECT_TRUE(net.first->scale.is_leaf());
  const Tensor y = net(x.to(Device::sim()));
  EXPECT_EQ(host_doubles(y), expected);
  sum(y).backward();
  EXPECT_EQ(net.first->scale.grad().device(), Device::sim());
}

TEST(NnInitTest, FanInAndPyTorchBounds) {
  EXPECT_EQ(nn::init::fan_in(zeros({8, 3, 3, 3})), 27);
  EXPECT_EQ(nn::init::fan_in(zeros({16, 32})), 32);
  EXPECT_NE(error_of([] { (void)nn::init::fan_in(zeros({4})); }).find("rank >= 2"),
            std::string::npos);

  Generator gen(5);
  Tensor w = empty({64, 16, 3, 3});
  nn::init::uniform_fan_in_(w, nn::init::fan_in(w), &gen);
  const double bound = 1.0 / std::sqrt(144.0);
  double sum_sq = 0.0;
  const std::vector<double> v = host_doubles(w);
  for (double x : v) {
    EXPECT_LE(std::fabs(x), bound);
    sum_sq += x * x;
  }
  // U(-b, b) has variance b^2 / 3; 9216 draws put the estimate within a few percent.
  EXPECT_NEAR(sum_sq / static_cast<double>(v.size()), bound * bound / 3.0, 0.05 * bound * bound);
}

}  // namespace
}  // namespace glia
