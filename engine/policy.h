// Which implementation serves an op family on cuda (DESIGN.md section 2): our kernels (native,
// the default), cuDNN/cuBLAS (cudnn), or whichever is faster for each shape, timed once and
// remembered (auto_select, like cudnn.benchmark). A global setting per family, overridable per
// call; cpu and sim ignore it (they have one implementation). The ops apply it through one runner,
// engine/ops/policy_runner.h. Tested in tests/engine/policy_test.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace glia {

enum class KernelPolicy { native, cudnn, auto_select };
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

const char* kernel_policy_name(KernelPolicy p);  // "native", "cudnn", "auto"
const char* op_family_name(OpFamily f);
// "native", "cudnn" or "auto"; anything else throws.
KernelPolicy parse_kernel_policy(std::string_view text);

void set_kernel_policy(OpFamily family, KernelPolicy policy);
// Sets every family at once.
void set_kernel_policy(KernelPolicy policy);
KernelPolicy kernel_policy(OpFamily family);

// Saves every family's setting and restores them all when it goes out of scope, so code that
// changes the policy for a while (a test, a benchmark) leaves no trace.
class ScopedKernelPolicy {
 public:
  ScopedKernelPolicy();
  ~ScopedKernelPolicy();
  ScopedKernelPolicy(const ScopedKernelPolicy&) = delete;
  ScopedKernelPolicy& operator=(const ScopedKernelPolicy&) = delete;

 private:
  std::array<KernelPolicy, kOpFamilies.size()> saved_;
};

// The per-call override when given, else the global setting.
inline KernelPolicy resolve_kernel_policy(OpFamily family, std::optional<KernelPolicy> override) {
  return override ? *override : kernel_policy(family);
}

// auto_select's memory: the winner (native or cudnn) per family and problem key (device, shape,
// flags as the family defines them).
using AutotuneKey = std::vector<std::int64_t>;
std::optional<KernelPolicy> autotune_lookup(OpFamily family, const AutotuneKey& key);
void autotune_store(OpFamily family, const AutotuneKey& key, KernelPolicy winner);
std::size_t autotune_cache_size();
void clear_autotune_cache();

}  // namespace glia
