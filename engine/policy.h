// Which implementation serves an op family (DESIGN.md section 2). On cuda: our kernels (native,
// the default), cuDNN/cuBLAS (cudnn), or whichever is faster for each shape, timed once and
// remembered (auto_select, like cudnn.benchmark). On cpu likewise: the reference kernels (native),
// oneDNN (dnnl) or auto_select. One global setting per family and device kind, overridable per
// call; sim has one implementation. The cpu default is dnnl when glia is built with oneDNN (the
// product's fast path without flags) unless the environment variable GLIA_CPU_KERNELS names
// another policy (the test suites set it to native: the reference kernels are every test's
// oracle); families without a oneDNN implementation run native whatever the setting. The ops apply
// the setting through one runner, engine/ops/policy_runner.h. Tested in
// tests/engine/policy_test.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace glia {

enum class KernelPolicy { native, cudnn, dnnl, auto_select };
// The device kinds that keep a policy table: the policy of a family on cpu and on cuda.
enum class PolicyDevice { cpu, cuda };
// The op families that have a cuDNN/cuBLAS alternative, each with its name. Adding a family is one
// entry here; its op then calls ops::run_with_policy (engine/ops/policy_runner.h).
#define GLIA_OP_FAMILIES(X) \
  X(gemm)                   \
  X(conv)                   \
  X(batchnorm)              \
  X(pool)                   \
  X(softmax)

#define GLIA_OP_FAMILY_ENUM(name) name,
enum class OpFamily { GLIA_OP_FAMILIES(GLIA_OP_FAMILY_ENUM) };
#undef GLIA_OP_FAMILY_ENUM

#define GLIA_OP_FAMILY_VALUE(name) OpFamily::name,
inline constexpr std::array kOpFamilies{GLIA_OP_FAMILIES(GLIA_OP_FAMILY_VALUE)};
#undef GLIA_OP_FAMILY_VALUE

const char* kernel_policy_name(KernelPolicy p);  // "native", "cudnn", "dnnl", "auto"
const char* op_family_name(OpFamily f);
// "native", "cudnn", "dnnl" or "auto"; anything else throws.
KernelPolicy parse_kernel_policy(std::string_view text);
// Whether oneDNN is built in (GLIA_HAVE_DNNL): without it, dnnl runs native.
bool dnnl_available();

// Sets the family on the device kinds the policy applies to: cudnn on cuda, dnnl on cpu, native
// and auto on both.
void set_kernel_policy(OpFamily family, KernelPolicy policy);
// Sets every family at once, as above.
void set_kernel_policy(KernelPolicy policy);
// Sets one device kind's table; throws std::invalid_argument for a policy of the other device
// (cudnn on cpu, dnnl on cuda).
void set_kernel_policy(OpFamily family, PolicyDevice device, KernelPolicy policy);
// The family's setting on cuda (the one-argument form) or on `device`.
KernelPolicy kernel_policy(OpFamily family);
KernelPolicy kernel_policy(OpFamily family, PolicyDevice device);

// Saves every family's setting and restores them all when it goes out of scope, so code that
// changes the policy for a while (a test, a benchmark) leaves no trace.
class ScopedKernelPolicy {
 public:
  ScopedKernelPolicy();
  ~ScopedKernelPolicy();
  ScopedKernelPolicy(const ScopedKernelPolicy&) = delete;
  ScopedKernelPolicy& operator=(const ScopedKernelPolicy&) = delete;

 private:
  std::array<KernelPolicy, kOpFamilies.size()> saved_cpu_, saved_cuda_;
};

// The per-call override when given, else the global setting (on cuda).
inline KernelPolicy resolve_kernel_policy(OpFamily family, std::optional<KernelPolicy> override) {
  return override ? *override : kernel_policy(family);
}
// The same on `device`; an override that names the other device's library (cudnn on cpu, dnnl on
// cuda) means "this device's setting", so one override can travel from a forward to its backward.
KernelPolicy resolve_kernel_policy(OpFamily family, std::optional<KernelPolicy> override,
                                   PolicyDevice device);

// auto_select's memory: the winner (native, cudnn or dnnl) per family and problem key (device,
// shape, flags as the family defines them).
using AutotuneKey = std::vector<std::int64_t>;
std::optional<KernelPolicy> autotune_lookup(OpFamily family, const AutotuneKey& key);
void autotune_store(OpFamily family, const AutotuneKey& key, KernelPolicy winner);
std::size_t autotune_cache_size();
void clear_autotune_cache();

// The cuDNN choices of a run (kernels/cudnn/settings.h holds them process-wide, with the math
// mode, which these leave as it is): deterministic, only algorithms that cuDNN reports
// deterministic (default, as torch.backends.cudnn.deterministic = True); find, cudnnFind times
// the candidate algorithms once per shape instead of cuDNN's heuristics picking one (as
// cudnn.benchmark). auto_select times the cuDNN candidate with the algorithm these choose, and
// remembers winners per choice. Set by the training configuration's cudnn.* keys and the apps'
// --cudnn-deterministic / --cudnn-find flags; builds without CUDA keep them for nothing.
struct CudnnChoices {
  bool deterministic = true;
  bool find = false;
  bool operator==(const CudnnChoices&) const = default;
};
CudnnChoices cudnn_choices();
void set_cudnn_choices(const CudnnChoices& choices);

}  // namespace glia
