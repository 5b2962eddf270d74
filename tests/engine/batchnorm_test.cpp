// batch_norm2d (engine/ops.h): the cpu backward to x, weight and bias against central finite
// differences in f64, in training mode (through the batch statistics) and evaluation mode, with and
// without affine parameters (Ops/...); sim and cuda forward, backward and running statistics
// against cpu in f32 (Sim/..., Cuda/... under the native, cudnn and auto policies; the cuda ones
// skipped without a GPU); running statistics after several training steps against a reference
// computed from the batches in double; evaluation mode normalising with the running statistics;
// batch_norm_relu2d against relu(batch_norm2d) on every device (forward, every gradient, running
// statistics; including channels long enough for sim and cuda to split them over many blocks);
// and the errors of bad arguments.
#include <gtest/gtest.h>

#include <cmath>
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
using glia::testing::Tolerance;

// f32 normalisation of a few hundred values per channel, compared across backends.
constexpr Tolerance kTol{1e-4, 1e-4};

struct Case {
  std::string name;
  Shape shape;
  bool training;
  bool affine;
  bool running;  // running statistics defined
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Case> cases() {
  return {
      {"train_affine", {2, 3, 5, 7}, true, true, true},
      {"train_no_affine", {3, 1, 4, 5}, true, false, true},
      {"train_batch1_17ch", {1, 17, 3, 4}, true, true, true},
      {"train_no_running", {2, 3, 4, 4}, true, true, false},
      {"eval_affine", {2, 3, 5, 7}, false, true, true},
      {"eval_no_affine", {1, 17, 3, 3}, false, false, true},
      {"eval_no_running_uses_batch", {2, 3, 3, 5}, false, true, false},
  };
}

// The inputs of one case on `device` in `dtype`: x, weight, bias, running mean and variance.
struct Inputs {
  Inputs(const Case& c, DType dtype, Device device, bool requires_grad) {
    const index_t channels = c.shape[1];
    x = random_tensor(c.shape, 1.0, 3.0, 11, dtype, device);
    x.set_requires_grad(requires_grad);
    if (c.affine) {
      weight = random_tensor({channels}, 0.5, 1.5, 12, dtype, device);
      bias = random_tensor({channels}, -0.5, 0.5, 13, dtype, device);
      weight.set_requires_grad(requires_grad);
      bias.set_requires_grad(requires_grad);
    }
    if (c.running) {
      running_mean = random_tensor({channels}, 1.5, 2.5, 14, dtype, device);
      running_var = random_tensor({channels}, 0.2, 0.6, 15, dtype, device);
    }
  }
  Tensor x, weight, bias, running_mean, running_var;
};

// --- cpu backward against finite differences (f64) -------------------------------------------

class BatchNormGradcheck : public ::testing::TestWithParam<Case> {};

TEST_P(BatchNormGradcheck, MatchesFiniteDifferences) {
  const Case& c = GetParam();
  const Inputs in(c, DType::f64, Device::cpu(), true);
  // The running statistics move with every call in training mode but never feed the output then.
  Tensor rm = in.running_mean, rv = in.running_var;
  std::vector<Tensor> inputs{in.x};
  if (c.affine) {
    inputs.push_back(in.weight);
    inputs.push_back(in.bias);
  }
  const auto f = [&](const std::vector<Tensor>& v) {
    return batch_norm2d(v[0], c.affine ? v[1] : Tensor(), c.affine ? v[2] : Tensor(), rm, rv,
                        c.training);
  };
  const GradcheckResult r = gradcheck(f, inputs);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_GT(r.checked, 0u) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Ops, BatchNormGradcheck, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// --- sim and cuda against cpu (f32) -----------------------------------------------------------

using testing::Target;

class BatchNormVsCpu : public ::testing::TestWithParam<std::tuple<Target, Case>> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(target().device); }
  const Target& target() const { return std::get<0>(GetParam()); }
  const Case& op() const { return std::get<1>(GetParam()); }
};

// y, the running statistics after the call, and the gradients of sum(y * w) for fixed random w.
struct Outcome {
  std::vector<double> y, running_mean, running_var, gx, gweight, gbias;
};

Outcome run_case(const Case& c, Device device, std::optional<KernelPolicy> policy) {
  Inputs in(c, DType::f32, device, true);
  const Tensor y = batch_norm2d(in.x, in.weight, in.bias, in.running_mean, in.running_var,
                                c.training, 0.1, 1e-5, policy);
  const Tensor w = random_tensor(y.shape(), -1.0, 1.0, 99, DType::f32, device);
  sum(y * w).backward();
  Outcome o;
  o.y = host_doubles(y);
  o.gx = host_doubles(in.x.grad());
  if (c.running) {
    o.running_mean = host_doubles(in.running_mean);
    o.running_var = host_doubles(in.running_var);
  }
  if (c.affine) {
    o.gweight = host_doubles(in.weight.grad());
    o.gbias = host_doubles(in.bias.grad());
  }
  return o;
}

TEST_P(BatchNormVsCpu, ForwardBackwardAndRunningStatsMatchCpu) {
  const Outcome want = run_case(op(), Device::cpu(), std::nullopt);
  const Outcome got = run_case(op(), target().device, target().policy);
  EXPECT_TRUE(all_close(got.y, want.y, kTol)) << "y";
  EXPECT_TRUE(all_close(got.running_mean, want.running_mean, kTol)) << "running_mean";
  EXPECT_TRUE(all_close(got.running_var, want.running_var, kTol)) << "running_var";
  EXPECT_TRUE(all_close(got.gx, want.gx, kTol)) << "gx";
  // Sums of a few hundred products over a channel.
  const Tolerance sums{1e-3, 1e-4};
  EXPECT_TRUE(all_close(got.gweight, want.gweight, sums)) << "gweight";
  EXPECT_TRUE(all_close(got.gbias, want.gbias, sums)) << "gbias";
}

std::string vs_cpu_name(const ::testing::TestParamInfo<std::tuple<Target, Case>>& info) {
  return std::get<0>(info.param).name + "_" + std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Sim, BatchNormVsCpu,
                         ::testing::Combine(::testing::Values(Target{Device::sim(), {}, "sim"}),
                                            ::testing::ValuesIn(cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(
    Cuda, BatchNormVsCpu,
    ::testing::Combine(::testing::Values(Target{Device::cuda(), KernelPolicy::native, "native"},
                                         Target{Device::cuda(), KernelPolicy::cudnn, "cudnn"},
                                         Target{Device::cuda(), KernelPolicy::auto_select, "auto"}),
                       ::testing::ValuesIn(cases())),
    vs_cpu_name);

// --- the fused BN + ReLU against its composition --------------------------------------------

class BatchNormReluVsComposition : public BatchNormVsCpu {};

// The cases above, plus channels of 4608 and 9216 values (split over several blocks on sim and
// cuda, the latter float4-aligned).
std::vector<Case> fused_cases() {
  std::vector<Case> all = cases();
  all.push_back({"train_long_channels", {2, 2, 48, 48}, true, true, true});
  all.push_back({"train_long_odd_planes", {4, 1, 37, 31}, true, false, true});
  return all;
}

Outcome run_fused(const Case& c, Device device, std::optional<KernelPolicy> policy, bool fused) {
  Inputs in(c, DType::f32, device, true);
  const Tensor y = fused ? batch_norm_relu2d(in.x, in.weight, in.bias, in.running_mean,
                                             in.running_var, c.training, 0.1, 1e-5, policy)
                         : relu(batch_norm2d(in.x, in.weight, in.bias, in.running_mean,
                                             in.running_var, c.training, 0.1, 1e-5, policy));
  const Tensor w = random_tensor(y.shape(), -1.0, 1.0, 98, DType::f32, device);
  sum(y * w).backward();
  Outcome o;
  o.y = host_doubles(y);
  o.gx = host_doubles(in.x.grad());
  if (c.running) {
    o.running_mean = host_doubles(in.running_mean);
    o.running_var = host_doubles(in.running_var);
  }
  if (c.affine) {
    o.gweight = host_doubles(in.weight.grad());
    o.gbias = host_doubles(in.bias.grad());
  }
  return o;
}

TEST_P(BatchNormReluVsComposition, MatchesReluOfBatchNorm) {
  const Outcome want = run_fused(op(), target().device, target().policy, false);
  const Outcome got = run_fused(op(), target().device, target().policy, true);
  EXPECT_TRUE(all_close(got.y, want.y, kTol)) << "y";
  EXPECT_TRUE(all_close(got.running_mean, want.running_mean, kTol)) << "running_mean";
  EXPECT_TRUE(all_close(got.running_var, want.running_var, kTol)) << "running_var";
  EXPECT_TRUE(all_close(got.gx, want.gx, kTol)) << "gx";
  const Tolerance sums{1e-3, 1e-4};
  EXPECT_TRUE(all_close(got.gweight, want.gweight, sums)) << "gweight";
  EXPECT_TRUE(all_close(got.gbias, want.gbias, sums)) << "gbias";
}

INSTANTIATE_TEST_SUITE_P(Ops, BatchNormReluVsComposition,
                         ::testing::Combine(::testing::Values(Target{Device::cpu(), {}, "cpu"}),
                                            ::testing::ValuesIn(fused_cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(Sim, BatchNormReluVsComposition,
                         ::testing::Combine(::testing::Values(Target{Device::sim(), {}, "sim"}),
                                            ::testing::ValuesIn(fused_cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(
    Cuda, BatchNormReluVsComposition,
    ::testing::Combine(::testing::Values(Target{Device::cuda(), KernelPolicy::native, "native"},
                                         Target{Device::cuda(), KernelPolicy::cudnn, "cudnn"}),
                       ::testing::ValuesIn(fused_cases())),
    vs_cpu_name);

// --- running statistics over several steps, evaluation mode -----------------------------------

// The per-channel mean and unbiased variance of an NCHW batch, in double.
void channel_stats(const std::vector<double>& x, const Shape& shape, std::vector<double>& mean,
                   std::vector<double>& unbiased_var) {
  const index_t n = shape[0], c = shape[1], plane = shape[2] * shape[3];
  mean.assign(static_cast<std::size_t>(c), 0.0);
  unbiased_var.assign(static_cast<std::size_t>(c), 0.0);
  for (index_t ch = 0; ch < c; ++ch) {
    double sum = 0.0;
    for (index_t b = 0; b < n; ++b) {
      for (index_t i = 0; i < plane; ++i)
        sum += x[static_cast<std::size_t>((b * c + ch) * plane + i)];
    }
    const double mu = sum / static_cast<double>(n * plane);
    double squares = 0.0;
    for (index_t b = 0; b < n; ++b) {
      for (index_t i = 0; i < plane; ++i) {
        const double d = x[static_cast<std::size_t>((b * c + ch) * plane + i)] - mu;
        squares += d * d;
      }
    }
    mean[static_cast<std::size_t>(ch)] = mu;
    unbiased_var[static_cast<std::size_t>(ch)] = squares / static_cast<double>(n * plane - 1);
  }
}

void check_running_statistics(Device device, std::optional<KernelPolicy> policy) {
  const Shape shape{3, 4, 5, 6};
  const double momentum = 0.2, eps = 1e-3;
  Tensor running_mean = zeros({4}, {.device = device});
  Tensor running_var = ones({4}, {.device = device});
  const Tensor weight = random_tensor({4}, 0.5, 1.5, 3, DType::f32, device);
  const Tensor bias = random_tensor({4}, -0.5, 0.5, 4, DType::f32, device);
  std::vector<double> ref_mean(4, 0.0), ref_var(4, 1.0);
  for (unsigned step = 0; step < 4; ++step) {
    // Each batch with its own centre and spread.
    const double centre = 1.0 + step, spread = 0.5 + 0.25 * step;
    const Tensor x =
        random_tensor(shape, centre - spread, centre + spread, 20 + step, DType::f32, device);
    (void)batch_norm2d(x, weight, bias, running_mean, running_var, true, momentum, eps, policy);
    std::vector<double> mean, var;
    channel_stats(host_doubles(x), shape, mean, var);
    for (std::size_t c = 0; c < 4; ++c) {
      ref_mean[c] = (1.0 - momentum) * ref_mean[c] + momentum * mean[c];
      ref_var[c] = (1.0 - momentum) * ref_var[c] + momentum * var[c];
    }
  }
  EXPECT_TRUE(all_close(host_doubles(running_mean), ref_mean, kTol));
  EXPECT_TRUE(all_close(host_doubles(running_var), ref_var, kTol));

  // Evaluation: normalised by the running statistics, which stay as they are.
  const Tensor x = random_tensor(shape, 0.0, 5.0, 40, DType::f32, device);
  const Tensor y =
      batch_norm2d(x, weight, bias, running_mean, running_var, false, momentum, eps, policy);
  const std::vector<double> xs = host_doubles(x), rm = host_doubles(running_mean),
                            rv = host_doubles(running_var), w = host_doubles(weight),
                            b = host_doubles(bias);
  std::vector<double> expected(xs.size());
  const std::size_t plane = 30;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const std::size_t c = (i / plane) % 4;
    expected[i] = (xs[i] - rm[c]) / std::sqrt(rv[c] + eps) * w[c] + b[c];
  }
  EXPECT_TRUE(all_close(host_doubles(y), expected, kTol));
  EXPECT_TRUE(all_close(host_doubles(running_mean), ref_mean, kTol));
  EXPECT_TRUE(all_close(host_doubles(running_var), ref_var, kTol));
}

TEST(BatchNormTest, RunningStatisticsFollowTheBatchesAndServeEvaluation) {
  check_running_statistics(Device::cpu(), std::nullopt);
}

TEST(BatchNormTest, RunningStatisticsInDoubleOnCpu) {
  const Shape shape{2, 3, 4, 5};
  Tensor running_mean = zeros({3}, {.dtype = DType::f64});
  Tensor running_var = ones({3}, {.dtype = DType::f64});
  const Tensor x = random_tensor(shape, 100.0, 101.0, 8, DType::f64);
  (void)batch_norm2d(x, Tensor(), Tensor(), running_mean, running_var, true);
  std::vector<double> mean, var;
  channel_stats(host_doubles(x), shape, mean, var);
  for (std::size_t c = 0; c < 3; ++c) {
    mean[c] *= 0.1;
    var[c] = 0.9 + 0.1 * var[c];
  }
  EXPECT_TRUE(all_close(host_doubles(running_mean), mean));
  EXPECT_TRUE(all_close(host_doubles(running_var), var));
}

class BatchNormRunningStats : public ::testing::TestWithParam<Target> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(GetParam().device); }
};

TEST_P(BatchNormRunningStats, FollowTheBatchesAndServeEvaluation) {
  check_running_statistics(GetParam().device, GetParam().policy);
}

INSTANTIATE_TEST_SUITE_P(Sim, BatchNormRunningStats,
                         ::testing::Values(Target{Device::sim(), {}, "sim"}),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Cuda, BatchNormRunningStats,
                         ::testing::Values(Target{Device::cuda(), KernelPolicy::native, "native"},
                                           Target{Device::cuda(), KernelPolicy::cudnn, "cudnn"},
                                           Target{Device::cuda(), KernelPolicy::auto_select,
                                                  "auto"}),
                         [](const auto& info) { return info.param.name; });

// Setting the batchnorm family leaves the others alone; cpu serves a cudnn or auto batchnorm
// policy with its reference kernels, so the output and the running statistics still equal ones
// computed here in double; the guard restores the family.
TEST(BatchNormTest, PolicyIsPerFamilyIgnoredOnCpuAndRestored) {
  EXPECT_STREQ(op_family_name(OpFamily::batchnorm), "batchnorm");
  const KernelPolicy before = kernel_policy(OpFamily::batchnorm);
  {
    ScopedKernelPolicy guard;
    glia::testing::set_only_family(OpFamily::batchnorm, KernelPolicy::cudnn);
    const Shape shape{2, 3, 4, 4};
    const double momentum = 0.1, eps = 1e-5;
    const Tensor x = random_tensor(shape, -1.0, 1.0, 5);
    const std::vector<double> xs = host_doubles(x);
    std::vector<double> mean, unbiased_var;
    channel_stats(xs, shape, mean, unbiased_var);
    const index_t c = shape[1], plane = shape[2] * shape[3];
    const double count = static_cast<double>(shape[0] * plane);
    std::vector<double> want_y(xs.size()), want_rm(mean.size()), want_rv(mean.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const std::size_t ch = static_cast<std::size_t>((static_cast<index_t>(i) / plane) % c);
      const double var = unbiased_var[ch] * (count - 1.0) / count;
      want_y[i] = (xs[i] - mean[ch]) / std::sqrt(var + eps);
    }
    for (std::size_t ch = 0; ch < mean.size(); ++ch) {
      want_rm[ch] = momentum * mean[ch];
      want_rv[ch] = (1.0 - momentum) + momentum * unbiased_var[ch];
    }
    for (std::optional<KernelPolicy> policy :
         {std::optional<KernelPolicy>(), std::optional<KernelPolicy>(KernelPolicy::auto_select)}) {
      Tensor rm = zeros({c}), rv = ones({c});
      const Tensor y = batch_norm2d(x, {}, {}, rm, rv, true, momentum, eps, policy);
      EXPECT_TRUE(all_close(host_doubles(y), want_y, kTol));
      EXPECT_TRUE(all_close(host_doubles(rm), want_rm, kTol));
      EXPECT_TRUE(all_close(host_doubles(rv), want_rv, kTol));
    }
  }
  EXPECT_EQ(kernel_policy(OpFamily::batchnorm), before);
}

// --- errors --------------------------------------------------------------------------------------

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

TEST(BatchNormTest, ErrorsNameTheShapes) {
  Tensor rm = zeros({3}), rv = ones({3}), none;
  const Tensor x = zeros({2, 3, 4, 4});
  expect_mentions(error_of([&] {
                    (void)batch_norm2d(zeros({2, 3, 4}), {}, {}, rm, rv, true);
                  }),
                  {"batch_norm2d", "[2, 3, 4]", "rank 4"});
  expect_mentions(error_of([&] { (void)batch_norm2d(x, zeros({4}), {}, rm, rv, true); }),
                  {"weight", "[3]", "[4]"});
  expect_mentions(error_of([&] { (void)batch_norm2d(x, {}, {}, rm, none, true); }),
                  {"running_mean and running_var"});
  Tensor rm1 = zeros({3}), rv1 = ones({3});
  expect_mentions(error_of([&] {
                    (void)batch_norm2d(zeros({1, 3, 1, 1}), {}, {}, rm1, rv1, true);
                  }),
                  {"[1, 3, 1, 1]", "more than one value per channel"});
  expect_mentions(error_of([&] { (void)batch_norm2d(x, {}, {}, rm, rv, true, 0.1, 0.0); }),
                  {"eps must be positive"});
  expect_mentions(error_of([&] { (void)batch_norm2d(x, {}, {}, rm, rv, true, 1.5); }),
                  {"momentum"});
  expect_mentions(
      error_of([&] { (void)batch_norm2d(x, zeros({3}, {.dtype = DType::f64}), {}, rm, rv, true); }),
      {"f64", ".to(dtype)"});
}

}  // namespace
}  // namespace glia
