// Kernel policy: names, the global setting per family and device kind (cpu and cuda) and the
// per-call override, the guard that restores every family, the auto_select cache, the policy
// runner (sim runs native only, cpu too for a family without a oneDNN candidate; cpu with one and
// cuda follow the policy and time once per key under auto), and on a GPU that native, cuBLAS and
// auto_select gemm agree with cpu and that auto_select times each shape once, and again under
// other cuDNN choices; the cuDNN choices round-trip and reach kernels/cudnn/settings.h with the
// math mode left alone. Tests engine/policy.h, engine/ops/policy_runner.h and
// engine/ops/matmul.cpp.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/policy_runner.h"
#include "engine/policy.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using glia::testing::all_close;
using glia::testing::host_doubles;
using glia::testing::random_tensor;

// Restores every family's policy and empties the autotune cache around each test.
class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_autotune_cache(); }
  void TearDown() override { clear_autotune_cache(); }

 private:
  ScopedKernelPolicy policies_;
};

TEST_F(PolicyTest, NamesRoundTrip) {
  for (KernelPolicy p :
       {KernelPolicy::native, KernelPolicy::cudnn, KernelPolicy::dnnl, KernelPolicy::auto_select}) {
    EXPECT_EQ(parse_kernel_policy(kernel_policy_name(p)), p);
  }
  std::set<std::string> names;
  for (OpFamily f : kOpFamilies) names.insert(op_family_name(f));
  EXPECT_EQ(names, (std::set<std::string>{"gemm", "conv", "batchnorm", "pool", "softmax"}));
  try {
    (void)parse_kernel_policy("fastest");
    FAIL() << "unknown policy accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("native, cudnn, dnnl or auto"), std::string::npos);
  }
}

// cpu and cuda keep a table each: a library policy lands on its own device only, native and auto
// on both; naming the other device's library for a device throws, and as a per-call override it
// means that device's setting.
TEST_F(PolicyTest, EachDeviceKindKeepsItsOwnSetting) {
  set_kernel_policy(KernelPolicy::native);
  set_kernel_policy(OpFamily::conv, KernelPolicy::dnnl);
  set_kernel_policy(OpFamily::gemm, KernelPolicy::cudnn);
  EXPECT_EQ(kernel_policy(OpFamily::conv, PolicyDevice::cpu), KernelPolicy::dnnl);
  EXPECT_EQ(kernel_policy(OpFamily::conv, PolicyDevice::cuda), KernelPolicy::native);
  EXPECT_EQ(kernel_policy(OpFamily::gemm, PolicyDevice::cpu), KernelPolicy::native);
  EXPECT_EQ(kernel_policy(OpFamily::gemm, PolicyDevice::cuda), KernelPolicy::cudnn);
  EXPECT_EQ(kernel_policy(OpFamily::gemm), KernelPolicy::cudnn);  // the one-argument form: cuda
  set_kernel_policy(OpFamily::pool, KernelPolicy::auto_select);
  EXPECT_EQ(kernel_policy(OpFamily::pool, PolicyDevice::cpu), KernelPolicy::auto_select);
  EXPECT_EQ(kernel_policy(OpFamily::pool, PolicyDevice::cuda), KernelPolicy::auto_select);
  EXPECT_THROW(set_kernel_policy(OpFamily::conv, PolicyDevice::cpu, KernelPolicy::cudnn),
               std::invalid_argument);
  EXPECT_THROW(set_kernel_policy(OpFamily::conv, PolicyDevice::cuda, KernelPolicy::dnnl),
               std::invalid_argument);
  EXPECT_EQ(resolve_kernel_policy(OpFamily::conv, KernelPolicy::cudnn, PolicyDevice::cpu),
            KernelPolicy::dnnl);
  EXPECT_EQ(resolve_kernel_policy(OpFamily::gemm, KernelPolicy::dnnl, PolicyDevice::cuda),
            KernelPolicy::cudnn);
  EXPECT_EQ(resolve_kernel_policy(OpFamily::conv, KernelPolicy::native, PolicyDevice::cpu),
            KernelPolicy::native);
}

// On cpu, a family that passes a oneDNN candidate follows the cpu setting: dnnl runs it, native
// the reference, auto times both once per key (the key kept apart from cuda's by a leading -1)
// and then serves the winner from the cache.
TEST_F(PolicyTest, CpuRunnerFollowsThePolicyWithADnnlCandidate) {
  int native_results = 0, dnnl_results = 0, native_timed = 0, dnnl_timed = 0;
  auto run = [&](std::optional<KernelPolicy> policy, const AutotuneKey& key) {
    native_results = dnnl_results = native_timed = dnnl_timed = 0;
    return ops::run_with_policy(
        OpFamily::conv, policy, key, ops::CpuBackend{},
        [&](ops::Run r) { ++(r == ops::Run::result ? native_results : native_timed); },
        GLIA_CUDNN([](auto) {}), GLIA_DNNL(float, [&](auto, ops::Run r) {
          ++(r == ops::Run::result ? dnnl_results : dnnl_timed);
        }));
  };
  if (!dnnl_available()) {
    EXPECT_EQ(run(KernelPolicy::dnnl, {1}), KernelPolicy::native);
    return;
  }
  EXPECT_EQ(run(KernelPolicy::native, {1}), KernelPolicy::native);
  EXPECT_EQ(native_results, 1);
  EXPECT_EQ(dnnl_results + native_timed + dnnl_timed, 0);
  set_kernel_policy(OpFamily::conv, PolicyDevice::cpu, KernelPolicy::dnnl);
  EXPECT_EQ(run(std::nullopt, {1}), KernelPolicy::dnnl);
  EXPECT_EQ(dnnl_results, 1);
  EXPECT_EQ(native_results + native_timed + dnnl_timed, 0);

  const KernelPolicy winner = run(KernelPolicy::auto_select, {1});
  EXPECT_GT(native_timed, 0);
  EXPECT_EQ(native_timed, dnnl_timed);
  EXPECT_EQ(native_results + dnnl_results, 1);
  EXPECT_EQ(autotune_lookup(OpFamily::conv, {-1, 1}), winner);
  EXPECT_EQ(run(KernelPolicy::auto_select, {1}), winner);
  EXPECT_EQ(native_timed + dnnl_timed, 0);
  // A double tensor's family has no oneDNN candidate: native, whatever the setting.
  int double_native = 0;
  EXPECT_EQ(ops::run_with_policy(
                OpFamily::conv, KernelPolicy::dnnl, {2}, ops::CpuBackend{},
                [&] { ++double_native; }, GLIA_CUDNN([](auto) {}), GLIA_DNNL(double, [](auto) {})),
            KernelPolicy::native);
  EXPECT_EQ(double_native, 1);
}

// Each family has its own setting, the override wins over it, and the all-families setting
// reaches every family. Starts from an explicit state, so no other test's leftovers matter.
TEST_F(PolicyTest, GlobalSettingPerFamilyAndPerCallOverride) {
  for (OpFamily family : kOpFamilies) {
    SCOPED_TRACE(op_family_name(family));
    glia::testing::set_only_family(family, KernelPolicy::cudnn);
    for (OpFamily other : kOpFamilies) {
      const KernelPolicy want = other == family ? KernelPolicy::cudnn : KernelPolicy::native;
      EXPECT_EQ(resolve_kernel_policy(other, std::nullopt), want) << op_family_name(other);
      EXPECT_EQ(resolve_kernel_policy(other, KernelPolicy::auto_select), KernelPolicy::auto_select)
          << op_family_name(other);
    }
  }
  set_kernel_policy(KernelPolicy::auto_select);
  for (OpFamily f : kOpFamilies) {
    EXPECT_EQ(kernel_policy(f), KernelPolicy::auto_select) << op_family_name(f);
  }
}

// The guard puts back every family's own setting, whatever happened in its scope.
TEST_F(PolicyTest, ScopedKernelPolicyRestoresEveryFamily) {
  const KernelPolicy cycle[] = {KernelPolicy::cudnn, KernelPolicy::auto_select,
                                KernelPolicy::native};
  auto policy_of = [&](OpFamily f) { return cycle[static_cast<std::size_t>(f) % 3]; };
  for (OpFamily f : kOpFamilies) set_kernel_policy(f, policy_of(f));
  {
    ScopedKernelPolicy guard;
    set_kernel_policy(KernelPolicy::native);
    set_kernel_policy(OpFamily::conv, KernelPolicy::cudnn);
  }
  for (OpFamily f : kOpFamilies) EXPECT_EQ(kernel_policy(f), policy_of(f)) << op_family_name(f);
}

TEST_F(PolicyTest, AutotuneCacheRemembersWinnersPerKey) {
  EXPECT_FALSE(autotune_lookup(OpFamily::gemm, {0, 4, 4, 4}).has_value());
  autotune_store(OpFamily::gemm, {0, 4, 4, 4}, KernelPolicy::cudnn);
  autotune_store(OpFamily::gemm, {0, 8, 4, 4}, KernelPolicy::native);
  EXPECT_EQ(autotune_lookup(OpFamily::gemm, {0, 4, 4, 4}), KernelPolicy::cudnn);
  EXPECT_EQ(autotune_lookup(OpFamily::gemm, {0, 8, 4, 4}), KernelPolicy::native);
  EXPECT_EQ(autotune_cache_size(), 2u);
  clear_autotune_cache();
  EXPECT_EQ(autotune_cache_size(), 0u);
}

// The runner with candidates that only count their calls: on cpu and sim the native one runs
// once, for the result, whatever the override or the family's setting; nothing is timed.
template <class Backend>
void check_runner_runs_native_only(Backend backend) {
  set_kernel_policy(OpFamily::pool, KernelPolicy::cudnn);
  for (std::optional<KernelPolicy> override :
       {std::optional<KernelPolicy>(), std::optional<KernelPolicy>(KernelPolicy::native),
        std::optional<KernelPolicy>(KernelPolicy::cudnn),
        std::optional<KernelPolicy>(KernelPolicy::auto_select)}) {
    SCOPED_TRACE(override ? kernel_policy_name(*override) : "no override");
    std::vector<ops::Run> native_runs;
    int cudnn_runs = 0;
    const KernelPolicy ran = ops::run_with_policy(
        OpFamily::pool, override, {1, 2, 3}, backend,
        [&](ops::Run run) { native_runs.push_back(run); }, GLIA_CUDNN([&](auto) { ++cudnn_runs; }));
    EXPECT_EQ(ran, KernelPolicy::native);
    EXPECT_EQ(native_runs, std::vector<ops::Run>{ops::Run::result});
    EXPECT_EQ(cudnn_runs, 0);
  }
  EXPECT_EQ(autotune_cache_size(), 0u);
}

TEST_F(PolicyTest, RunnerRunsNativeOnlyOnCpu) {
  check_runner_runs_native_only(ops::CpuBackend{});
}

TEST_F(PolicyTest, SimRunnerRunsNativeOnly) {
  check_runner_runs_native_only(ops::SimBackend{});
}

// On cuda the runner runs the candidate the policy names; auto_select times both candidates
// equally often (Run::timing) the first time a key is met, runs the winner for the result, and
// later serves the key from the cache without timing.
TEST_F(PolicyTest, CudaRunnerFollowsThePolicyAndTimesOncePerKey) {
  GLIA_SKIP_UNLESS_USABLE(Device::cuda());
#if defined(GLIA_HAVE_CUDA)
  const Device device = Device::cuda();
  const ops::CudaBackend backend{kernel_stream(device), device.index};
  int native_results = 0, cudnn_results = 0, native_timed = 0, cudnn_timed = 0;
  auto run = [&](std::optional<KernelPolicy> policy, const AutotuneKey& key) {
    native_results = cudnn_results = native_timed = cudnn_timed = 0;
    return ops::run_with_policy(
        OpFamily::softmax, policy, key, backend,
        [&](ops::Run r) { ++(r == ops::Run::result ? native_results : native_timed); },
        [&](auto ctx, ops::Run r) {
          EXPECT_EQ(ctx.device, device.index);
          ++(r == ops::Run::result ? cudnn_results : cudnn_timed);
        });
  };
  EXPECT_EQ(run(KernelPolicy::native, {1}), KernelPolicy::native);
  EXPECT_EQ(native_results + cudnn_results + native_timed + cudnn_timed, 1);
  EXPECT_EQ(native_results, 1);
  set_kernel_policy(OpFamily::softmax, KernelPolicy::cudnn);
  EXPECT_EQ(run(std::nullopt, {1}), KernelPolicy::cudnn);
  EXPECT_EQ(native_results + cudnn_results + native_timed + cudnn_timed, 1);
  EXPECT_EQ(cudnn_results, 1);

  const KernelPolicy winner = run(KernelPolicy::auto_select, {1});
  EXPECT_GT(native_timed, 0);
  EXPECT_EQ(native_timed, cudnn_timed);
  EXPECT_EQ(native_results + cudnn_results, 1);
  EXPECT_EQ(winner == KernelPolicy::native ? native_results : cudnn_results, 1);
  EXPECT_EQ(autotune_lookup(OpFamily::softmax, ops::cuda_autotune_key(device.index, {1})), winner);
  EXPECT_EQ(run(KernelPolicy::auto_select, {1}), winner);  // from the cache
  EXPECT_EQ(native_timed + cudnn_timed, 0);
  EXPECT_EQ(native_results + cudnn_results, 1);
  (void)run(KernelPolicy::auto_select, {2});  // a new key is timed
  EXPECT_GT(native_timed, 0);
  EXPECT_EQ(autotune_cache_size(), 2u);

  // Other cuDNN choices make the cuDNN candidate another algorithm: the key is timed again under
  // them, and the first choices' winner stays remembered for them.
  const CudnnChoices saved = cudnn_choices();
  set_cudnn_choices({!saved.deterministic, !saved.find});
  (void)run(KernelPolicy::auto_select, {1});
  EXPECT_GT(cudnn_timed, 0);
  EXPECT_EQ(autotune_cache_size(), 3u);
  set_cudnn_choices(saved);
  EXPECT_EQ(run(KernelPolicy::auto_select, {1}), winner);
  EXPECT_EQ(native_timed + cudnn_timed, 0);
#endif
}

// The cuDNN choices are process-wide (kernels/cudnn/settings.h in CUDA builds, where they leave
// the math mode alone) and default to deterministic algorithms under cuDNN's heuristics.
TEST_F(PolicyTest, CudnnChoicesRoundTrip) {
  const CudnnChoices saved = cudnn_choices();
  EXPECT_EQ(CudnnChoices{}, (CudnnChoices{true, false}));
  for (const CudnnChoices c :
       {CudnnChoices{false, true}, CudnnChoices{true, true}, CudnnChoices{false, false}}) {
    set_cudnn_choices(c);
    EXPECT_EQ(cudnn_choices(), c);
  }
  set_cudnn_choices(saved);
  EXPECT_EQ(cudnn_choices(), saved);
#if defined(GLIA_HAVE_CUDA)
  namespace cudnn = kernels::cudnn;
  const cudnn::Settings saved_settings = cudnn::settings();
  cudnn::set_settings({cudnn::Math::tf32, true, false});
  set_cudnn_choices({false, true});
  EXPECT_EQ(cudnn::settings(), (cudnn::Settings{cudnn::Math::tf32, false, true}));
  cudnn::set_settings(saved_settings);
#endif
}

TEST_F(PolicyTest, CpuIgnoresThePolicy) {
  const Tensor a = random_tensor({5, 6}, -1, 1, 1), b = random_tensor({6, 3}, -1, 1, 2);
  const std::vector<float> native = matmul(a, b).to_vector<float>();
  EXPECT_EQ(matmul(a, b, KernelPolicy::cudnn).to_vector<float>(), native);
  EXPECT_EQ(matmul(a, b, KernelPolicy::auto_select).to_vector<float>(), native);
  EXPECT_EQ(autotune_cache_size(), 0u);
}

TEST_F(PolicyTest, SimIgnoresThePolicy) {
  const Tensor a = random_tensor({5, 6}, -1, 1, 1, DType::f32, Device::sim());
  const Tensor b = random_tensor({6, 3}, -1, 1, 2, DType::f32, Device::sim());
  const std::vector<float> native = matmul(a, b).to_vector<float>();
  EXPECT_EQ(matmul(a, b, KernelPolicy::cudnn).to_vector<float>(), native);
  EXPECT_EQ(autotune_cache_size(), 0u);
}

TEST_F(PolicyTest, CudaEveryPolicyMatchesCpu) {
  GLIA_SKIP_UNLESS_USABLE(Device::cuda());
  const Tensor a = random_tensor({3, 37, 65}, -1, 1, 1), b = random_tensor({3, 65, 19}, -1, 1, 2);
  const std::vector<double> want = host_doubles(matmul(a, b));
  const Tensor ga = a.to(Device::cuda()), gb = b.to(Device::cuda());
  // cuBLAS and our kernel sum in different orders: k = 65 terms of magnitude below 1.
  const glia::testing::Tolerance tol{1e-4, 1e-4};
  for (KernelPolicy p : {KernelPolicy::native, KernelPolicy::cudnn, KernelPolicy::auto_select}) {
    EXPECT_TRUE(all_close(host_doubles(matmul(ga, gb, p)), want, tol)) << kernel_policy_name(p);
  }
  EXPECT_EQ(autotune_cache_size(), 1u);
  set_kernel_policy(OpFamily::gemm, KernelPolicy::auto_select);
  (void)matmul(ga, gb);  // the same shape: served from the cache
  EXPECT_EQ(autotune_cache_size(), 1u);
  (void)matmul(ga.reshape({111, 65}), b.reshape({195, 19}).to(Device::cuda()).reshape({65, 57}));
  EXPECT_EQ(autotune_cache_size(), 2u);
}

}  // namespace
}  // namespace glia
