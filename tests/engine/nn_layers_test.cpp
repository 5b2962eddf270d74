// The standard layer modules: PyTorch's names, shapes and default-init bounds, forward equal to
// the functional op they wrap, train/eval behaviour of BatchNorm2d and Dropout, Dropout's shared
// generator (outliving the layer, never the default one), and a tiny conv-bn-relu-pool network
// that overfits one batch with Adam on cpu and on sim, the two losses agreeing step by step.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "engine/losses.h"
#include "engine/nn/activation.h"
#include "engine/nn/layers.h"
#include "engine/nn/sequential.h"
#include "engine/optim/adam.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using testing::error_of;
using testing::host_doubles;
using testing::random_tensor;

Shape shape_of(const nn::Module& m, const std::string& name) {
  return m.state_dict().at(name).shape();
}

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (double v : host_doubles(t)) m = std::max(m, std::fabs(v));
  return m;
}

TEST(NnLayersTest, NamesShapesAndPyTorchInitBounds) {
  Generator gen(1);
  nn::Conv2d conv(3, 8, 3, {.padding = 1, .generator = &gen});
  EXPECT_EQ(shape_of(conv, "weight"), (Shape{8, 3, 3, 3}));
  EXPECT_EQ(shape_of(conv, "bias"), (Shape{8}));
  EXPECT_LE(max_abs(conv.weight), 1.0 / std::sqrt(27.0));
  EXPECT_LE(max_abs(conv.bias), 1.0 / std::sqrt(27.0));

  nn::Conv2d no_bias(3, 8, 3, {.bias = false});
  EXPECT_EQ(no_bias.state_dict().size(), 1u);

  // A transposed convolution's fan_in is its weight's size(1) * k * k: out channels, as torch.
  nn::ConvTranspose2d up(8, 4, 2, {.stride = 2, .generator = &gen});
  EXPECT_EQ(shape_of(up, "weight"), (Shape{8, 4, 2, 2}));
  EXPECT_LE(max_abs(up.weight), 1.0 / std::sqrt(16.0));

  nn::BatchNorm2d bn(5);
  std::vector<std::string> names;
  for (auto& [name, t] : bn.state_dict()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"bias", "running_mean", "running_var", "weight"}));
  EXPECT_EQ(host_doubles(bn.running_var), std::vector<double>(5, 1.0));
  EXPECT_EQ(bn.parameter_count(), 10);

  nn::Linear fc(32, 10, true, &gen);
  EXPECT_EQ(shape_of(fc, "weight"), (Shape{10, 32}));
  EXPECT_LE(max_abs(fc.weight), 1.0 / std::sqrt(32.0));

  EXPECT_NE(error_of([] { nn::Conv2d bad(0, 4, 3); }).find("in_channels must be positive"),
            std::string::npos);
  EXPECT_NE(error_of([] { nn::Dropout bad(1.5); }).find("[0, 1]"), std::string::npos);
}

TEST(NnLayersTest, ForwardIsTheFunctionalOp) {
  nn::Conv2d conv(2, 3, 3, {.stride = 2, .padding = 1});
  const Tensor x = random_tensor({2, 2, 7, 9}, -1, 1, 4);
  Conv2dParams p;
  p.stride = {2, 2};
  p.padding = {1, 1};
  EXPECT_EQ(host_doubles(conv(x)), host_doubles(conv2d(x, conv.weight, conv.bias, p)));

  nn::ConvTranspose2d up(3, 2, 2, {.stride = 2});
  EXPECT_EQ(up(random_tensor({1, 3, 4, 5}, -1, 1, 5)).shape(), (Shape{1, 2, 8, 10}));

  EXPECT_EQ(nn::MaxPool2d(2)(x).shape(), (Shape{2, 2, 3, 4}));
  EXPECT_EQ(nn::AvgPool2d(3, 1, 1)(x).shape(), (Shape{2, 2, 7, 9}));
  EXPECT_EQ(nn::GlobalAvgPool()(x).shape(), (Shape{2, 2, 1, 1}));

  nn::Linear fc(4, 3);
  const Tensor f = random_tensor({5, 4}, -1, 1, 6);
  EXPECT_EQ(host_doubles(fc(f)), host_doubles(linear(f, fc.weight, fc.bias)));
}

TEST(NnLayersTest, BatchNormUpdatesRunningStatsOnlyInTraining) {
  nn::BatchNorm2d bn(3);
  const Tensor x = random_tensor({4, 3, 5, 5}, 1.0, 3.0, 7);
  (void)bn(x);
  const std::vector<double> after_train = host_doubles(bn.running_mean);
  for (double m : after_train) EXPECT_GT(m, 0.1);  // 0.1 * a batch mean near 2
  bn.eval();
  const Tensor y = bn(x);
  EXPECT_EQ(host_doubles(bn.running_mean), after_train);
  // Eval normalises with the running statistics: (x - rm) / sqrt(rv + eps), weight 1, bias 0.
  const std::vector<double> rv = host_doubles(bn.running_var), xs = host_doubles(x),
                            ys = host_doubles(y);
  const double expected = (xs[0] - after_train[0]) / std::sqrt(rv[0] + 1e-5);
  EXPECT_NEAR(ys[0], expected, 1e-5);
}

TEST(NnLayersTest, DropoutDropsOnlyInTraining) {
  nn::Dropout drop(0.5, std::make_shared<Generator>(3));
  const Tensor x = ones({1000});
  const std::vector<double> trained = host_doubles(drop(x));
  int zeros_seen = 0;
  for (double v : trained) {
    EXPECT_TRUE(v == 0.0 || v == 2.0);
    zeros_seen += v == 0.0;
  }
  EXPECT_GT(zeros_seen, 400);
  EXPECT_LT(zeros_seen, 600);
  drop.eval();
  EXPECT_EQ(host_doubles(drop(x)), std::vector<double>(1000, 1.0));
}

TEST(NnLayersTest, DropoutSharesItsGeneratorAndNeverTheDefaultOne) {
  const Tensor x = ones({64});
  const std::uint64_t default_offset = default_generator().offset();
  // The reference: the op drawing from a generator of the same seed.
  Generator reference(5);
  const std::vector<double> first = host_doubles(dropout(x, 0.5, true, &reference));
  const std::vector<double> second = host_doubles(dropout(x, 0.5, true, &reference));

  auto generator = std::make_shared<Generator>(5);
  std::shared_ptr<Generator> kept;
  {
    // The layer's generator outlives the layer and whoever created it.
    auto creator = std::make_shared<nn::Dropout>(0.5, std::make_shared<Generator>(5));
    EXPECT_EQ(host_doubles((*creator)(x)), first);
    kept = creator->generator();
  }
  EXPECT_EQ(kept->offset(), reference.offset() / 2);
  EXPECT_EQ(host_doubles(dropout(x, 0.5, true, kept.get())), second);

  // Installed generators are shared: two layers on one generator draw one stream.
  nn::Dropout a(0.5), b(0.5);
  a.set_generator(generator);
  b.set_generator(generator);
  EXPECT_EQ(host_doubles(a(x)), first);
  EXPECT_EQ(host_doubles(b(x)), second);
  generator.reset();
  EXPECT_EQ(a.generator(), b.generator());
  EXPECT_EQ(a.generator()->offset(), reference.offset());

  // Without a generator a layer gets a private one seeded 0.
  nn::Dropout own(0.5), other(0.5);
  Generator zero(0);
  EXPECT_EQ(host_doubles(own(x)), host_doubles(dropout(x, 0.5, true, &zero)));
  EXPECT_NE(own.generator(), other.generator());
  EXPECT_EQ(default_generator().offset(), default_offset);
  EXPECT_NE(error_of([&] { own.set_generator(nullptr); }).find("null"), std::string::npos);
}

// conv(1->4, 3x3) -> bn -> relu -> maxpool 2 -> conv(4->1, 1x1): segmentation logits at half
// resolution, trained with Dice + BCE against a fixed mask.
std::shared_ptr<nn::Sequential> tiny_net(std::uint64_t seed) {
  Generator gen(seed);
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(
      std::make_shared<nn::Conv2d>(1, 4, 3, nn::Conv2dOptions{.padding = 1, .generator = &gen}));
  net->push_back(std::make_shared<nn::BatchNorm2d>(4));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::MaxPool2d>(2));
  net->push_back(std::make_shared<nn::Conv2d>(4, 1, 1, nn::Conv2dOptions{.generator = &gen}));
  return net;
}

std::vector<double> train_losses(Device device, int steps) {
  auto net = tiny_net(42);
  net->to(device);
  const Tensor x = random_tensor({4, 1, 8, 8}, -1.0, 1.0, 8).to(device);
  // A fixed binary mask: 1 where a uniform draw exceeds 0.5.
  std::vector<double> mask = host_doubles(random_tensor({4, 1, 4, 4}, 0.0, 1.0, 9));
  for (double& v : mask) v = v > 0.5 ? 1.0 : 0.0;
  const Tensor t = from_vector(mask, {4, 1, 4, 4}).to(DType::f32).to(device);

  optim::Adam adam({optim::ParamGroup{.params = net->parameters(), .lr = 0.05}});
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    adam.zero_grad();
    const Tensor loss = dice_bce_loss((*net)(x), t);
    loss.backward();
    adam.step();
    losses.push_back(host_doubles(loss)[0]);
  }
  return losses;
}

TEST(NnLayersSimTest, TinyNetworkOverfitsOneBatchIdenticallyOnCpuAndSim) {
  constexpr int kSteps = 40;
  const std::vector<double> cpu = train_losses(Device::cpu(), kSteps);
  const std::vector<double> sim = train_losses(Device::sim(), kSteps);
  EXPECT_LT(cpu.back(), 0.5 * cpu.front()) << "the network did not fit its one batch";
  // float32 on both sides, different summation orders; 40 Adam steps let the differences grow a
  // little, hence a looser tolerance than a single op's.
  EXPECT_TRUE(glia::testing::all_close(sim, cpu, {1e-4, 1e-3}));
}

}  // namespace
}  // namespace glia
