// Autograd semantics: accumulation over backward calls, retain_graph, retain_grad on a non-leaf,
// detach, the no-grad guard, inputs used more than once, gradients through device moves, and the
// errors of misuse. Values are small enough to work out by hand. Tests engine/autograd.h.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using testing::error_of;

using Floats = std::vector<float>;

Tensor leaf(const Floats& values, const Shape& shape, Device device = Device::cpu()) {
  Tensor t = from_vector(values, shape, device);
  t.set_requires_grad(true);
  return t;
}

TEST(AutogradTest, LeavesAndNonLeaves) {
  const Tensor x = leaf({1, 2}, {2});
  const Tensor y = x * 3.0;
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(y.is_leaf());
  EXPECT_TRUE(y.requires_grad());
  ASSERT_NE(y.grad_fn(), nullptr);
  EXPECT_EQ(y.grad_fn()->name(), "mul");
  EXPECT_FALSE((zeros({2}) * 3.0).requires_grad());
}

TEST(AutogradTest, GradientsAccumulateOverBackwardCalls) {
  const Tensor x = leaf({1, -2, 3}, {3});
  sum(x * x).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{2, -4, 6}));
  sum(x * x).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{4, -8, 12}));
  Tensor handle = x;
  handle.zero_grad();
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{0, 0, 0}));
  sum(x).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{1, 1, 1}));
}

TEST(AutogradTest, ZeroGradOfAList) {
  const Tensor a = leaf({1}, {1}), b = leaf({2}, {1}), c = leaf({3}, {1});
  sum(a * b).backward();
  zero_grad({a, b, c});  // c has no gradient yet: left as it is
  EXPECT_EQ(a.grad().to_vector<float>(), (Floats{0}));
  EXPECT_EQ(b.grad().to_vector<float>(), (Floats{0}));
  EXPECT_FALSE(c.grad().defined());
}

TEST(AutogradTest, SecondBackwardNeedsRetainGraph) {
  const Tensor x = leaf({2}, {1});
  const Tensor y = sum(exp(x));
  y.backward(/*retain_graph=*/true);
  y.backward();
  EXPECT_FLOAT_EQ(x.grad().item<float>(), 2 * std::exp(2.0f));
  const std::string msg = error_of([&] { y.backward(); });
  EXPECT_NE(msg.find("retain_graph"), std::string::npos) << msg;
}

TEST(AutogradTest, RetainGradKeepsANonLeafGradient) {
  const Tensor x = leaf({1, 2, 3}, {3});
  Tensor h = x * 2.0;
  h.retain_grad();
  const Tensor other = x + 1.0;  // not retained
  sum(h * h + other).backward();
  EXPECT_TRUE(h.retains_grad());
  EXPECT_EQ(h.grad().to_vector<float>(), (Floats{4, 8, 12}));  // d(h^2)/dh = 2h
  EXPECT_FALSE(other.grad().defined());
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{9, 17, 25}));  // 2h * 2 + 1
}

TEST(AutogradTest, RetainGradOnTheRoot) {
  const Tensor x = leaf({1, 2}, {2});
  Tensor y = x * x;
  y.retain_grad();
  y.backward(from_vector(Floats{1, 10}, {2}));
  EXPECT_EQ(y.grad().to_vector<float>(), (Floats{1, 10}));
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{2, 40}));
}

TEST(AutogradTest, DetachStopsTheGradient) {
  const Tensor x = leaf({3, 4}, {2});
  const Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_TRUE(d.shares_storage_with(x));
  sum(x * d).backward();  // only the first factor carries a gradient
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{3, 4}));
}

TEST(AutogradTest, NoGradGuardRecordsNothing) {
  const Tensor x = leaf({1, 2}, {2});
  EXPECT_TRUE(GradMode::enabled());
  {
    NoGradGuard guard;
    EXPECT_FALSE(GradMode::enabled());
    { NoGradGuard nested; }
    EXPECT_FALSE(GradMode::enabled());
    const Tensor y = exp(x) * x;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
  }
  EXPECT_TRUE(GradMode::enabled());
}

TEST(AutogradTest, AnInputUsedTwiceGetsTheSummedGradient) {
  const Tensor x = leaf({1, -2, 0.5f}, {3});
  sum(x * x + x).backward();  // 2x + 1
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{3, -3, 2}));
  const Tensor z = leaf({1.5f}, {1});
  const Tensor a = z * 2.0;
  sum(a + a * a).backward();  // a diamond: d/dz = 2 + 2a * 2 = 2 + 8z
  EXPECT_FLOAT_EQ(z.grad().item<float>(), 14.0f);
}

TEST(AutogradTest, BroadcastGradientsHaveTheInputShapes) {
  const Tensor a = leaf({1, 2, 3}, {3, 1});
  const Tensor b = leaf({1, 1, 1, 1}, {4});
  sum(a * b).backward();
  EXPECT_EQ(a.grad().shape(), (Shape{3, 1}));
  EXPECT_EQ(a.grad().to_vector<float>(), (Floats{4, 4, 4}));
  EXPECT_EQ(b.grad().shape(), (Shape{4}));
  EXPECT_EQ(b.grad().to_vector<float>(), (Floats{6, 6, 6, 6}));
}

// A linear layer's frozen bias: add's backward still returns the bias gradient, which must be
// dropped, not checked against the empty edge of an input that needs none.
TEST(AutogradTest, ABroadcastConstantGetsNoGradient) {
  const Tensor a = leaf({1, 2, 3, 4, 5, 6}, {3, 2});
  const Tensor bias = from_vector<float>({1, 1}, {2});
  sum(add(a, bias)).backward();
  EXPECT_EQ(a.grad().to_vector<float>(), (Floats{1, 1, 1, 1, 1, 1}));
  EXPECT_FALSE(bias.grad().defined());
}

TEST(AutogradTest, GradientsFlowThroughDTypeMoves) {
  const Tensor x = leaf({1, 2}, {2});
  const Tensor y = x.to(DType::f64);
  sum(y * y).backward();
  EXPECT_EQ(x.grad().dtype(), DType::f32);
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{2, 4}));
}

TEST(AutogradTest, MisuseIsAClearError) {
  const Tensor x = leaf({1, 2, 3, 4}, {2, 2});
  std::string msg = error_of([&] { (x * 2.0).backward(); });
  EXPECT_NE(msg.find("one-element"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 2]"), std::string::npos) << msg;
  msg = error_of([&] { sum(zeros({3})).backward(); });
  EXPECT_NE(msg.find("does not require grad"), std::string::npos) << msg;
  msg = error_of([&] { (x * 2.0).backward(zeros({4})); });
  EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 2]"), std::string::npos) << msg;
  msg = error_of([&] { zeros({2}, {.dtype = DType::i32}).set_requires_grad(true); });
  EXPECT_NE(msg.find("i32"), std::string::npos) << msg;
  msg = error_of([&] {
    Tensor y = x * 2.0;
    y.set_requires_grad(false);
  });
  EXPECT_NE(msg.find("non-leaf"), std::string::npos) << msg;
  msg = error_of([&] { zeros({2}).retain_grad(); });
  EXPECT_NE(msg.find("does not require grad"), std::string::npos) << msg;
}

TEST(AutogradTest, BackwardFreesSavedTensors) {
  const Tensor x = leaf({1, 2}, {2});
  Tensor e = exp(x);
  const std::weak_ptr<Storage> storage = e.impl()->storage;
  const Tensor loss = sum(e * e);
  e = Tensor();
  EXPECT_FALSE(storage.expired());  // saved by exp and mul for their backward
  loss.backward();
  EXPECT_TRUE(storage.expired());
}

TEST(AutogradTest, LongChainsRunAndFreeWithoutDeepRecursion) {
  const Tensor x = leaf({1}, {1});
  {
    Tensor y = x;
    for (int i = 0; i < 50000; ++i) y = y + 1.0;
    y.backward();
  }  // the chain is freed here
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{1}));
}

TEST(AutogradSimTest, GradientsFlowThroughDeviceMoves) {
  const Tensor x = leaf({1, 2, 3}, {3});
  const Tensor on_sim = x.to(Device::sim());
  sum(on_sim * on_sim).backward();
  EXPECT_EQ(x.grad().device(), Device::cpu());
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{2, 4, 6}));
}

TEST(AutogradSimTest, LeavesOnSimAccumulate) {
  const Tensor x = leaf({1, -1}, {2}, Device::sim());
  sum(x * 3.0).backward();
  sum(relu(x)).backward();
  EXPECT_EQ(x.grad().device(), Device::sim());
  EXPECT_EQ(x.grad().to_vector<float>(), (Floats{4, 3}));
}

}  // namespace
}  // namespace glia
