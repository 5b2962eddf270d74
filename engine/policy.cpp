// The kernel-policy settings, the auto_select cache and the cuDNN choices; see policy.h. Tested in
// tests/engine/policy_test.cpp.
#include "engine/policy.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/settings.h"
#endif

namespace glia {
namespace {

std::size_t family_index(OpFamily f) {
  return static_cast<std::size_t>(f);
}

// The cpu default: GLIA_CPU_KERNELS when set (native, dnnl or auto), else dnnl when built in.
KernelPolicy default_cpu_policy() {
  if (const char* env = std::getenv("GLIA_CPU_KERNELS"); env != nullptr && *env != '\0') {
    const KernelPolicy p = parse_kernel_policy(env);
    if (p == KernelPolicy::cudnn) {
      throw std::invalid_argument(
          "GLIA_CPU_KERNELS=cudnn: the cpu device takes native, dnnl or auto");
    }
    return p;
  }
  return dnnl_available() ? KernelPolicy::dnnl : KernelPolicy::native;
}

struct Tables {
  std::array<std::atomic<KernelPolicy>, kOpFamilies.size()> cpu, cuda;
  Tables() {
    const KernelPolicy cpu_default = default_cpu_policy();
    for (auto& p : cpu) p.store(cpu_default);
    for (auto& p : cuda) p.store(KernelPolicy::native);
  }
};

Tables& tables() {
  static Tables t;
  return t;
}

std::array<std::atomic<KernelPolicy>, kOpFamilies.size()>& table(PolicyDevice device) {
  return device == PolicyDevice::cpu ? tables().cpu : tables().cuda;
}

std::mutex g_cache_mutex;
std::map<std::pair<OpFamily, AutotuneKey>, KernelPolicy> g_cache;

}  // namespace

const char* kernel_policy_name(KernelPolicy p) {
  switch (p) {
    case KernelPolicy::native:
      return "native";
    case KernelPolicy::cudnn:
      return "cudnn";
    case KernelPolicy::dnnl:
      return "dnnl";
    case KernelPolicy::auto_select:
      return "auto";
  }
  return "?";
}

const char* op_family_name(OpFamily f) {
#define GLIA_OP_FAMILY_NAME(name) #name,
  static constexpr const char* kNames[] = {GLIA_OP_FAMILIES(GLIA_OP_FAMILY_NAME)};
#undef GLIA_OP_FAMILY_NAME
  const std::size_t i = family_index(f);
  return i < kOpFamilies.size() ? kNames[i] : "?";
}

KernelPolicy parse_kernel_policy(std::string_view text) {
  if (text == "native") return KernelPolicy::native;
  if (text == "cudnn") return KernelPolicy::cudnn;
  if (text == "dnnl") return KernelPolicy::dnnl;
  if (text == "auto") return KernelPolicy::auto_select;
  throw std::invalid_argument("unknown kernel policy '" + std::string(text) +
                              "': expected native, cudnn, dnnl or auto");
}

bool dnnl_available() {
#if defined(GLIA_HAVE_DNNL)
  return true;
#else
  return false;
#endif
}

void set_kernel_policy(OpFamily family, PolicyDevice device, KernelPolicy policy) {
  if ((device == PolicyDevice::cpu && policy == KernelPolicy::cudnn) ||
      (device == PolicyDevice::cuda && policy == KernelPolicy::dnnl)) {
    throw std::invalid_argument(std::string("kernel policy ") + kernel_policy_name(policy) +
                                " does not apply to the " +
                                (device == PolicyDevice::cpu ? "cpu" : "cuda") + " device (" +
                                op_family_name(family) + ")");
  }
  table(device)[family_index(family)].store(policy);
}

void set_kernel_policy(OpFamily family, KernelPolicy policy) {
  if (policy != KernelPolicy::dnnl) set_kernel_policy(family, PolicyDevice::cuda, policy);
  if (policy != KernelPolicy::cudnn) set_kernel_policy(family, PolicyDevice::cpu, policy);
}

void set_kernel_policy(KernelPolicy policy) {
  for (OpFamily f : kOpFamilies) set_kernel_policy(f, policy);
}

KernelPolicy kernel_policy(OpFamily family) {
  return kernel_policy(family, PolicyDevice::cuda);
}

KernelPolicy kernel_policy(OpFamily family, PolicyDevice device) {
  return table(device)[family_index(family)].load();
}

KernelPolicy resolve_kernel_policy(OpFamily family, std::optional<KernelPolicy> override,
                                   PolicyDevice device) {
  const KernelPolicy foreign =
      device == PolicyDevice::cpu ? KernelPolicy::cudnn : KernelPolicy::dnnl;
  return override && *override != foreign ? *override : kernel_policy(family, device);
}

ScopedKernelPolicy::ScopedKernelPolicy() {
  for (OpFamily f : kOpFamilies) {
    saved_cpu_[family_index(f)] = kernel_policy(f, PolicyDevice::cpu);
    saved_cuda_[family_index(f)] = kernel_policy(f, PolicyDevice::cuda);
  }
}

ScopedKernelPolicy::~ScopedKernelPolicy() {
  for (OpFamily f : kOpFamilies) {
    set_kernel_policy(f, PolicyDevice::cpu, saved_cpu_[family_index(f)]);
    set_kernel_policy(f, PolicyDevice::cuda, saved_cuda_[family_index(f)]);
  }
}

std::optional<KernelPolicy> autotune_lookup(OpFamily family, const AutotuneKey& key) {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  auto it = g_cache.find({family, key});
  if (it == g_cache.end()) return std::nullopt;
  return it->second;
}

void autotune_store(OpFamily family, const AutotuneKey& key, KernelPolicy winner) {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  g_cache[{family, key}] = winner;
}

std::size_t autotune_cache_size() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  return g_cache.size();
}

void clear_autotune_cache() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  g_cache.clear();
}

#if defined(GLIA_HAVE_CUDA)

CudnnChoices cudnn_choices() {
  const kernels::cudnn::Settings s = kernels::cudnn::settings();
  return {s.deterministic, s.find};
}

void set_cudnn_choices(const CudnnChoices& choices) {
  kernels::cudnn::Settings s = kernels::cudnn::settings();
  s.deterministic = choices.deterministic;
  s.find = choices.find;
  kernels::cudnn::set_settings(s);
}

#else

namespace {
std::mutex g_cudnn_mutex;
CudnnChoices g_cudnn_choices;
}  // namespace

CudnnChoices cudnn_choices() {
  std::lock_guard<std::mutex> lock(g_cudnn_mutex);
  return g_cudnn_choices;
}

void set_cudnn_choices(const CudnnChoices& choices) {
  std::lock_guard<std::mutex> lock(g_cudnn_mutex);
  g_cudnn_choices = choices;
}

#endif

}  // namespace glia
