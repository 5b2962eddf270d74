// The gradient checker itself: it passes correct gradients, catches a wrong one and names the
// worst element, skips points at kinks when told, and rejects inputs it cannot check. Tests
// tests/common/gradcheck.h.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "engine/ops.h"
#include "tests/common/gradcheck.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using glia::testing::random_tensor;

TEST(GradcheckTest, PassesACorrectGradient) {
  const GradcheckResult r = gradcheck(
      [](const std::vector<Tensor>& x) { return exp(x[0]) * x[1]; },
      {random_tensor({3, 4}, -1, 1, 1, DType::f64), random_tensor({4}, -1, 1, 2, DType::f64)});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.checked, 16u);  // all inputs, since none was marked
  EXPECT_EQ(r.skipped, 0u);
}

TEST(GradcheckTest, ChecksOnlyMarkedInputsWhenSomeAre) {
  Tensor a = random_tensor({3}, -1, 1, 1, DType::f64);
  const Tensor b = random_tensor({3}, -1, 1, 2, DType::f64);
  a.set_requires_grad(true);
  const GradcheckResult r =
      gradcheck([](const std::vector<Tensor>& x) { return x[0] * x[1]; }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.checked, 3u);
  EXPECT_FALSE(a.grad().defined());  // the caller's tensors are left alone
}

TEST(GradcheckTest, CatchesAWrongGradientAndNamesTheWorstElement) {
  // exp whose recorded backward is off by a factor of two.
  auto wrong = [](const std::vector<Tensor>& x) {
    Tensor y = exp(x[0].detach());
    record("wrong_exp", y, {x[0]}, [ys = y.detach()](const Tensor& gy) -> std::vector<Tensor> {
      return {mul(mul(gy, ys), 2.0)};
    });
    return y;
  };
  const GradcheckResult r = gradcheck(wrong, {random_tensor({5}, -1, 1, 3, DType::f64)});
  EXPECT_FALSE(r.ok);
  EXPECT_GT(r.worst_excess, 0.0);
  EXPECT_NEAR(r.worst_analytic, 2.0 * r.worst_numeric, 1e-6 * std::fabs(r.worst_numeric));
  EXPECT_NE(r.message.find("FAILED"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("element " + std::to_string(r.worst_index)), std::string::npos)
      << r.message;
}

TEST(GradcheckTest, SkipsKinksWhenTold) {
  const Tensor x = from_vector(std::vector<double>{-1.0, 0.0, 2.0}, {3});
  auto f = [](const std::vector<Tensor>& v) { return relu(v[0]); };
  EXPECT_FALSE(gradcheck(f, {x}).ok);  // at 0 the numeric slope is 1/2, the analytic 0
  GradcheckOptions by_value;
  by_value.kinks = {0.0};
  GradcheckResult r = gradcheck(f, {x}, by_value);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.skipped, 1u);
  GradcheckOptions by_predicate;
  by_predicate.skip = [](std::size_t, std::size_t index, double) { return index == 1; };
  r = gradcheck(f, {x}, by_predicate);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.skipped, 1u);
}

TEST(GradcheckTest, RejectsInputsItCannotCheck) {
  auto f = [](const std::vector<Tensor>& v) { return v[0]; };
  try {
    (void)gradcheck(f, {zeros({2})});
    FAIL() << "f32 input accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("f64"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace glia
