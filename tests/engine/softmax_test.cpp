// softmax and log_softmax (engine/ops.h): the cpu backward of both against central finite
// differences in f64 (Ops/...); rows of softmax summing to 1 and log_softmax agreeing with
// log(softmax) on cpu in f64 and f32; sim and cuda forward and backward against cpu in f32
// (Sim/..., Cuda/... under the native, cudnn and auto policies; the cuda ones skipped without a
// GPU); and the errors of an axis other than the last, a rank-0 tensor and an integer dtype.
// Shapes: 1-D, [rows, classes] with classes 1, 17 and 1000 (a block per row on the device), and a
// 3-D tensor whose leading dims fold into the rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "engine/ops.h"
#include "tests/common/gradcheck.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using glia::testing::all_close;
using glia::testing::error_of;
using glia::testing::host_doubles;
using glia::testing::random_tensor;
using glia::testing::Tolerance;

// f32 exponentials and row sums of up to a thousand terms, compared across backends.
constexpr Tolerance kTol{1e-5, 1e-4};

struct Case {
  std::string name;
  Shape shape;
  bool log;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Case> cases() {
  std::vector<Case> all;
  const std::vector<std::pair<std::string, Shape>> shapes = {
      {"vector7", {7}},          {"rows3x1", {3, 1}},       {"rows3x17", {3, 17}},
      {"rows4x1000", {4, 1000}}, {"batch2x3x5", {2, 3, 5}}, {"rows64x45", {64, 45}}};
  for (const auto& [name, shape] : shapes) {
    all.push_back({"softmax_" + name, shape, false});
    all.push_back({"log_softmax_" + name, shape, true});
  }
  return all;
}

Tensor apply(const Case& c, const Tensor& x, std::optional<KernelPolicy> policy = std::nullopt) {
  return c.log ? log_softmax(x, -1, policy) : softmax(x, -1, policy);
}

// --- cpu backward against finite differences (f64) -------------------------------------------

class SoftmaxGradcheck : public ::testing::TestWithParam<Case> {};

TEST_P(SoftmaxGradcheck, MatchesFiniteDifferences) {
  const Case& c = GetParam();
  const Tensor x = random_tensor(c.shape, -3.0, 3.0, 21, DType::f64);
  const GradcheckResult r =
      gradcheck([&](const std::vector<Tensor>& v) { return apply(c, v[0]); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_GT(r.checked, 0u) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Ops, SoftmaxGradcheck, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// --- properties on cpu -----------------------------------------------------------------------

// Every row of softmax sums to 1, and log_softmax is log(softmax), including logits of +-80 whose
// exponentials overflow without the max subtraction.
void check_properties(DType dtype, Tolerance tol) {
  for (const Shape& shape : {Shape{3, 17}, Shape{4, 1000}, Shape{2, 3, 5}}) {
    SCOPED_TRACE(shape_to_string(shape));
    for (const double scale : {3.0, 80.0}) {
      const Tensor x = random_tensor(shape, -scale, scale, 31, dtype);
      const std::vector<double> p = host_doubles(softmax(x));
      const std::vector<double> logp = host_doubles(log_softmax(x));
      const std::size_t classes = static_cast<std::size_t>(shape.back());
      std::vector<double> row_sums, ones, log_of_p;
      for (std::size_t row = 0; row < p.size() / classes; ++row) {
        double s = 0.0;
        for (std::size_t c = 0; c < classes; ++c) s += p[row * classes + c];
        row_sums.push_back(s);
        ones.push_back(1.0);
      }
      for (const double v : p) log_of_p.push_back(std::log(v));
      EXPECT_TRUE(all_close(row_sums, ones, tol)) << "rows sum to 1, scale " << scale;
      // Where softmax underflows to 0 its log is -inf; log_softmax stays finite there.
      std::vector<double> finite_logp, finite_log_of_p;
      for (std::size_t i = 0; i < logp.size(); ++i) {
        ASSERT_TRUE(std::isfinite(logp[i])) << "log_softmax[" << i << "], scale " << scale;
        if (p[i] > 1e-30) {
          finite_logp.push_back(logp[i]);
          finite_log_of_p.push_back(log_of_p[i]);
        }
      }
      EXPECT_TRUE(all_close(finite_logp, finite_log_of_p, tol)) << "log(softmax), scale " << scale;
    }
  }
}

TEST(SoftmaxTest, RowsSumToOneAndLogSoftmaxIsLogOfSoftmaxF64) {
  check_properties(DType::f64, {1e-12, 1e-10});
}

TEST(SoftmaxTest, RowsSumToOneAndLogSoftmaxIsLogOfSoftmaxF32) {
  check_properties(DType::f32, {1e-6, 1e-5});
}

// --- sim and cuda against cpu (f32) -----------------------------------------------------------

using testing::Target;

class SoftmaxVsCpu : public ::testing::TestWithParam<std::tuple<Target, Case>> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(target().device); }
  const Target& target() const { return std::get<0>(GetParam()); }
  const Case& op() const { return std::get<1>(GetParam()); }
};

// y and the gradient of sum(y * w) for fixed random w.
struct Outcome {
  std::vector<double> y, gx;
};

Outcome run_case(const Case& c, Device device, std::optional<KernelPolicy> policy) {
  Tensor x = random_tensor(c.shape, -4.0, 4.0, 41, DType::f32, device);
  x.set_requires_grad(true);
  const Tensor y = apply(c, x, policy);
  const Tensor w = random_tensor(y.shape(), -1.0, 1.0, 42, DType::f32, device);
  sum(y * w).backward();
  return {host_doubles(y), host_doubles(x.grad())};
}

TEST_P(SoftmaxVsCpu, ForwardAndBackwardMatchCpu) {
  const Outcome want = run_case(op(), Device::cpu(), std::nullopt);
  const Outcome got = run_case(op(), target().device, target().policy);
  EXPECT_TRUE(all_close(got.y, want.y, kTol)) << "y";
  EXPECT_TRUE(all_close(got.gx, want.gx, kTol)) << "gx";
}

std::string vs_cpu_name(const ::testing::TestParamInfo<std::tuple<Target, Case>>& info) {
  return std::get<0>(info.param).name + "_" + std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Sim, SoftmaxVsCpu,
                         ::testing::Combine(::testing::Values(Target{Device::sim(), {}, "sim"}),
                                            ::testing::ValuesIn(cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(
    Cuda, SoftmaxVsCpu,
    ::testing::Combine(::testing::Values(Target{Device::cuda(), KernelPolicy::native, "native"},
                                         Target{Device::cuda(), KernelPolicy::cudnn, "cudnn"},
                                         Target{Device::cuda(), KernelPolicy::auto_select, "auto"}),
                       ::testing::ValuesIn(cases())),
    vs_cpu_name);

// --- errors and policy ------------------------------------------------------------------------

TEST(SoftmaxTest, OnlyTheLastAxisIsSupported) {
  const Tensor x = random_tensor({3, 4}, -1.0, 1.0, 51);
  for (const int axis : {0, 2, -2}) {
    const std::string softmax_error = error_of([&] { (void)softmax(x, axis); });
    EXPECT_NE(softmax_error.find("softmax"), std::string::npos) << softmax_error;
    EXPECT_NE(softmax_error.find("axis " + std::to_string(axis)), std::string::npos)
        << softmax_error;
    EXPECT_NE(softmax_error.find("[3, 4]"), std::string::npos) << softmax_error;
    const std::string log_error = error_of([&] { (void)log_softmax(x, axis); });
    EXPECT_NE(log_error.find("log_softmax"), std::string::npos) << log_error;
    EXPECT_NE(log_error.find("axis " + std::to_string(axis)), std::string::npos) << log_error;
  }
  EXPECT_EQ(softmax(x, 1).shape(), x.shape());
  EXPECT_EQ(log_softmax(x, -1).shape(), x.shape());
}

TEST(SoftmaxTest, RejectsScalarsAndIntegers) {
  const std::string scalar_error =
      error_of([] { (void)softmax(random_tensor({}, -1.0, 1.0, 52)); });
  EXPECT_NE(scalar_error.find("rank"), std::string::npos) << scalar_error;
  const Tensor ints = full({2, 3}, 1.0, TensorOptions{DType::i32});
  const std::string int_error = error_of([&] { (void)log_softmax(ints); });
  EXPECT_NE(int_error.find("log_softmax"), std::string::npos) << int_error;
}

// Setting the softmax family leaves the others alone; cpu serves a cudnn or auto softmax policy
// with its reference kernels, so the result still equals a softmax written out here; the guard
// restores the family.
TEST(SoftmaxTest, PolicyIsPerFamilyIgnoredOnCpuAndRestored) {
  EXPECT_STREQ(op_family_name(OpFamily::softmax), "softmax");
  const KernelPolicy before = kernel_policy(OpFamily::softmax);
  {
    ScopedKernelPolicy guard;
    glia::testing::set_only_family(OpFamily::softmax, KernelPolicy::cudnn);
    const index_t rows = 3, classes = 17;
    const Tensor x = random_tensor({rows, classes}, -3.0, 3.0, 53);
    const std::vector<double> xs = host_doubles(x);
    std::vector<double> want(xs.size());
    for (index_t r = 0; r < rows; ++r) {
      const auto row = xs.begin() + r * classes;
      const double top = *std::max_element(row, row + classes);
      double total = 0.0;
      for (index_t k = 0; k < classes; ++k) total += std::exp(row[k] - top);
      for (index_t k = 0; k < classes; ++k) {
        want[static_cast<std::size_t>(r * classes + k)] = std::exp(row[k] - top) / total;
      }
    }
    EXPECT_TRUE(all_close(host_doubles(softmax(x)), want, kTol));
    EXPECT_TRUE(all_close(host_doubles(softmax(x, -1, KernelPolicy::auto_select)), want, kTol));
  }
  EXPECT_EQ(kernel_policy(OpFamily::softmax), before);
}

}  // namespace
}  // namespace glia
