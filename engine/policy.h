// Which implementation serves an op family on cuda (DESIGN.md section 2): our kernels (native,
// the default), cuDNN/cuBLAS (cudnn), or whichever is faster for each shape, timed once and
// remembered (auto_select, like cudnn.benchmark). A global setting per family, overridable per
// call; cpu and sim ignore it (they have one implementation). Tested in
// tests/engine/policy_test.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace glia {

enum class KernelPolicy { native, cudnn, auto_select };
// The op families that have a cuDNN/cuBLAS alternative. Layers add theirs here.
enum class OpFamily { gemm, conv, batchnorm, pool, softmax };

const char* kernel_policy_name(KernelPolicy p);  // "native", "cudnn", "auto"
const char* op_family_name(OpFamily f);
// "native", "cudnn" or "auto"; anything else throws.
KernelPolicy parse_kernel_policy(std::string_view text);

void set_kernel_policy(OpFamily family, KernelPolicy policy);
// Sets every family at once.
void set_kernel_policy(KernelPolicy policy);
KernelPolicy kernel_policy(OpFamily family);
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
