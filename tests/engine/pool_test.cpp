// max_pool2d, avg_pool2d and global_avg_pool2d (engine/ops.h): the cpu backward against central
// finite differences in f64 (Ops/...; max pooling skips the elements that nearly tie with another
// of their plane, where the derivative jumps), sim and cuda forward and backward against cpu in f32
// (Sim/..., Cuda/... under the native, cudnn and auto policies; the cuda ones skipped without a
// GPU), the first maximum taking the gradient on exact ties, and the errors of bad windows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "tests/common/gradcheck.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using glia::testing::all_close;
using glia::testing::host_doubles;
using glia::testing::random_tensor;

using PoolFn = std::function<Tensor(const Tensor&, std::optional<KernelPolicy>)>;

struct Case {
  std::string name;
  Shape shape;
  PoolFn fn;
  bool is_max = false;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Case> cases() {
  using P = std::optional<KernelPolicy>;
  return {
      {"max_k2_s2",
       {2, 3, 6, 7},
       [](const Tensor& x, P p) { return max_pool2d(x, 2, 0, 0, p); },
       true},
      {"max_k3_s1_p1",
       {1, 3, 5, 6},
       [](const Tensor& x, P p) { return max_pool2d(x, 3, 1, 1, p); },
       true},
      {"max_k3_s2_p1",
       {2, 17, 7, 5},
       [](const Tensor& x, P p) { return max_pool2d(x, 3, 2, 1, p); },
       true},
      {"max_k2_s1_p1",
       {1, 1, 4, 5},
       [](const Tensor& x, P p) { return max_pool2d(x, 2, 1, 1, p); },
       true},
      {"avg_k2_s2",
       {2, 3, 6, 7},
       [](const Tensor& x, P p) { return avg_pool2d(x, 2, 0, 0, true, p); }},
      {"avg_k3_s1_p1",
       {1, 3, 5, 6},
       [](const Tensor& x, P p) { return avg_pool2d(x, 3, 1, 1, true, p); }},
      {"avg_k3_s2_p1_exclude_pad",
       {2, 17, 7, 5},
       [](const Tensor& x, P p) { return avg_pool2d(x, 3, 2, 1, false, p); }},
      {"avg_k2_s1_p1",
       {1, 1, 4, 5},
       [](const Tensor& x, P p) { return avg_pool2d(x, 2, 1, 1, true, p); }},
      {"global_avg", {2, 3, 5, 7}, [](const Tensor& x, P p) { return global_avg_pool2d(x, p); }},
      {"global_avg_large_plane",
       {1, 17, 19, 17},
       [](const Tensor& x, P p) { return global_avg_pool2d(x, p); }},
  };
}

// --- cpu backward against finite differences (f64) -------------------------------------------

// Elements within 1e-4 of another element of their plane: a max window holding both may switch
// between them under the finite difference's step.
std::function<bool(std::size_t, std::size_t, double)> near_ties(const Tensor& x) {
  const std::vector<double> v = host_doubles(x);
  const std::size_t plane = static_cast<std::size_t>(x.size(2) * x.size(3));
  std::vector<bool> tied(v.size(), false);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::size_t start = i / plane * plane;
    for (std::size_t j = start; j < start + plane; ++j) {
      if (j != i && std::fabs(v[i] - v[j]) < 1e-4) tied[i] = true;
    }
  }
  return [tied](std::size_t, std::size_t index, double) { return tied[index]; };
}

class PoolGradcheck : public ::testing::TestWithParam<Case> {};

TEST_P(PoolGradcheck, MatchesFiniteDifferences) {
  const Case& c = GetParam();
  Tensor x = random_tensor(c.shape, -2.0, 2.0, 7, DType::f64);
  x.set_requires_grad(true);
  GradcheckOptions options;
  if (c.is_max) options.skip = near_ties(x);
  const GradcheckResult r = gradcheck(
      [&](const std::vector<Tensor>& v) { return c.fn(v[0], std::nullopt); }, {x}, options);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_GT(r.checked, 0u) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Ops, PoolGradcheck, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// --- sim and cuda against cpu (f32) -----------------------------------------------------------

using testing::Target;

class PoolVsCpu : public ::testing::TestWithParam<std::tuple<Target, Case>> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(target().device); }
  const Target& target() const { return std::get<0>(GetParam()); }
  const Case& op() const { return std::get<1>(GetParam()); }
};

TEST_P(PoolVsCpu, ForwardAndBackwardMatchCpu) {
  // y and the gradient of sum(y * w) for fixed random w.
  auto run = [&](Device d, std::optional<KernelPolicy> policy) {
    Tensor x = random_tensor(op().shape, -2.0, 2.0, 7, DType::f32, d);
    x.set_requires_grad(true);
    const Tensor y = op().fn(x, policy);
    EXPECT_EQ(y.device(), d);
    const Tensor w = random_tensor(y.shape(), -1.0, 1.0, 99, DType::f32, d);
    sum(y * w).backward();
    return std::pair{host_doubles(y), host_doubles(x.grad())};
  };
  const auto [want_y, want_gx] = run(Device::cpu(), std::nullopt);
  const auto [got_y, got_gx] = run(target().device, target().policy);
  const glia::testing::Tolerance tol = glia::testing::default_tolerance<float>();
  EXPECT_TRUE(all_close(got_y, want_y, tol)) << "y";
  EXPECT_TRUE(all_close(got_gx, want_gx, tol)) << "gx";
}

std::string vs_cpu_name(const ::testing::TestParamInfo<std::tuple<Target, Case>>& info) {
  return std::get<0>(info.param).name + "_" + std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Sim, PoolVsCpu,
                         ::testing::Combine(::testing::Values(Target{Device::sim(), {}, "sim"}),
                                            ::testing::ValuesIn(cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(
    Cuda, PoolVsCpu,
    ::testing::Combine(::testing::Values(Target{Device::cuda(), KernelPolicy::native, "native"},
                                         Target{Device::cuda(), KernelPolicy::cudnn, "cudnn"},
                                         Target{Device::cuda(), KernelPolicy::auto_select, "auto"}),
                       ::testing::ValuesIn(cases())),
    vs_cpu_name);

// --- ties, shapes, errors ----------------------------------------------------------------------

// A constant plane: every window ties, and its first (top-left) element takes the gradient.
void check_ties(Device device) {
  Tensor x = full({1, 2, 4, 6}, 3.0, {.device = device});
  x.set_requires_grad(true);
  const Tensor y = max_pool2d(x, 2);
  EXPECT_EQ(y.shape(), (Shape{1, 2, 2, 3}));
  sum(y).backward();
  std::vector<double> expected(48, 0.0);
  for (std::size_t p = 0; p < 2; ++p) {
    for (std::size_t h = 0; h < 4; h += 2) {
      for (std::size_t w = 0; w < 6; w += 2) expected[p * 24 + h * 6 + w] = 1.0;
    }
  }
  EXPECT_EQ(host_doubles(x.grad()), expected);
}

TEST(PoolTest, MaxTiesSendTheGradientToTheFirstElement) {
  check_ties(Device::cpu());
}

TEST(PoolTestSim, MaxTiesSendTheGradientToTheFirstElement) {
  check_ties(Device::sim());
}

// Square max pooling of an NCHW host tensor, written out here as the independent reference.
std::vector<double> reference_max_pool(const std::vector<double>& x, const Shape& shape, int kernel,
                                       int stride, int padding) {
  const index_t planes = shape[0] * shape[1], h = shape[2], w = shape[3];
  const index_t out_h = (h + 2 * padding - kernel) / stride + 1;
  const index_t out_w = (w + 2 * padding - kernel) / stride + 1;
  std::vector<double> y;
  for (index_t p = 0; p < planes; ++p) {
    for (index_t oh = 0; oh < out_h; ++oh) {
      for (index_t ow = 0; ow < out_w; ++ow) {
        double best = -INFINITY;
        for (index_t ih = oh * stride - padding; ih < oh * stride - padding + kernel; ++ih) {
          for (index_t iw = ow * stride - padding; iw < ow * stride - padding + kernel; ++iw) {
            if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
            best = std::max(best, x[static_cast<std::size_t>((p * h + ih) * w + iw)]);
          }
        }
        y.push_back(best);
      }
    }
  }
  return y;
}

// Setting the pool family leaves the others alone; cpu serves a cudnn or auto pool policy with
// its reference kernels, so the result still equals the reference; the guard restores the family.
TEST(PoolTest, PolicyIsPerFamilyIgnoredOnCpuAndRestored) {
  EXPECT_STREQ(op_family_name(OpFamily::pool), "pool");
  const KernelPolicy before = kernel_policy(OpFamily::pool);
  {
    ScopedKernelPolicy guard;
    glia::testing::set_only_family(OpFamily::pool, KernelPolicy::cudnn);
    const Shape shape{2, 3, 5, 6};
    const Tensor x = random_tensor(shape, -1.0, 1.0, 3);
    const std::vector<double> want = reference_max_pool(host_doubles(x), shape, 2, 1, 1);
    EXPECT_EQ(host_doubles(max_pool2d(x, 2, 1, 1)), want);
    EXPECT_EQ(host_doubles(max_pool2d(x, 2, 1, 1, KernelPolicy::auto_select)), want);
  }
  EXPECT_EQ(kernel_policy(OpFamily::pool), before);
}

TEST(PoolTest, OutputShapesFollowPyTorch) {
  const Tensor x = zeros({2, 3, 7, 6});
  EXPECT_EQ(max_pool2d(x, 2).shape(), (Shape{2, 3, 3, 3}));
  EXPECT_EQ(max_pool2d(x, 3, 2, 1).shape(), (Shape{2, 3, 4, 3}));
  EXPECT_EQ(avg_pool2d(x, 3, 1, 1).shape(), (Shape{2, 3, 7, 6}));
  EXPECT_EQ(global_avg_pool2d(x).shape(), (Shape{2, 3, 1, 1}));
}

TEST(PoolTest, NanPropagatesThroughMaxPooling) {
  std::vector<float> v(16, 1.0f);
  v[5] = std::nanf("");
  const Tensor y = max_pool2d(from_vector(v, {1, 1, 4, 4}), 2);
  const std::vector<float> got = y.to_vector<float>();
  EXPECT_TRUE(std::isnan(got[0]));
  EXPECT_EQ(got[1], 1.0f);
  EXPECT_EQ(got[2], 1.0f);
  EXPECT_EQ(got[3], 1.0f);
}

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

void expect_mentions(const std::string& msg, std::initializer_list<const char*> parts) {
  for (const char* p : parts) {
    EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST(PoolTest, ErrorsNameTheShapeAndWindow) {
  const Tensor x = zeros({2, 3, 4, 4});
  expect_mentions(error_of([&] {
                    (void)max_pool2d(zeros({3, 4, 4}), 2);
                  }),
                  {"max_pool2d", "[3, 4, 4]", "rank 4"});
  expect_mentions(error_of([&] { (void)max_pool2d(x, 0); }), {"[2, 3, 4, 4]", "kernel 0"});
  expect_mentions(error_of([&] { (void)avg_pool2d(x, 2, -1); }), {"avg_pool2d", "stride -1"});
  expect_mentions(error_of([&] { (void)max_pool2d(x, 2, 1, 2); }), {"padding 2", "kernel 2"});
  expect_mentions(error_of([&] {
                    (void)avg_pool2d(zeros({1, 1, 2, 5}), 3);
                  }),
                  {"2 x 5", "smaller than the kernel 3"});
  expect_mentions(error_of([&] {
                    (void)global_avg_pool2d(zeros({2, 3}));
                  }),
                  {"global_avg_pool2d", "[2, 3]"});
  expect_mentions(error_of([&] {
                    (void)max_pool2d(zeros({1, 1, 4, 4}, {.dtype = DType::i32}), 2);
                  }),
                  {"max_pool2d", "i32"});
}

}  // namespace
}  // namespace glia
