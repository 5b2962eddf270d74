// The kernel-policy settings and the auto_select cache; see policy.h. Tested in
// tests/engine/policy_test.cpp.
#include "engine/policy.h"

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace glia {
namespace {

std::array<std::atomic<KernelPolicy>, kOpFamilies.size()> g_policies{KernelPolicy::native};

std::mutex g_cache_mutex;
std::map<std::pair<OpFamily, AutotuneKey>, KernelPolicy> g_cache;

std::size_t family_index(OpFamily f) {
  return static_cast<std::size_t>(f);
}

}  // namespace

const char* kernel_policy_name(KernelPolicy p) {
  switch (p) {
    case KernelPolicy::native:
      return "native";
    case KernelPolicy::cudnn:
      return "cudnn";
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
  if (text == "auto") return KernelPolicy::auto_select;
  throw std::invalid_argument("unknown kernel policy '" + std::string(text) +
                              "': expected native, cudnn or auto");
}

void set_kernel_policy(OpFamily family, KernelPolicy policy) {
  g_policies[family_index(family)].store(policy);
}

void set_kernel_policy(KernelPolicy policy) {
  for (auto& p : g_policies) p.store(policy);
}

KernelPolicy kernel_policy(OpFamily family) {
  return g_policies[family_index(family)].load();
}

ScopedKernelPolicy::ScopedKernelPolicy() {
  for (OpFamily f : kOpFamilies) saved_[family_index(f)] = kernel_policy(f);
}

ScopedKernelPolicy::~ScopedKernelPolicy() {
  for (OpFamily f : kOpFamilies) set_kernel_policy(f, saved_[family_index(f)]);
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

}  // namespace glia
