// Helpers shared by the engine tests: random host-generated tensors (independent of the engine's
// own RNG, so they can test it), host read-back as doubles whatever the float dtype, and the
// skip for devices this machine cannot use.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/policy.h"
#include "engine/tensor.h"

namespace glia::testing {

// Uniform in [lo, hi), drawn on the host from `seed`.
inline Tensor random_tensor(const Shape& shape, double lo, double hi, unsigned seed,
                            DType dtype = DType::f32, Device device = Device::cpu()) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> values(static_cast<std::size_t>(shape_numel(shape)));
  for (double& v : values) v = dist(rng);
  return from_vector(values, shape).to(dtype).to(device);
}

// The elements of an f32 or f64 tensor on any device, as host doubles.
inline std::vector<double> host_doubles(const Tensor& t) {
  const Tensor c = t.to(Device::cpu());
  if (c.dtype() == DType::f64) return c.to_vector<double>();
  const std::vector<float> f = c.to_vector<float>();
  return {f.begin(), f.end()};
}

// The name of a device-parameterised test instance: cpu, sim or cuda0 (gtest allows no colon).
inline std::string device_param_name(const ::testing::TestParamInfo<Device>& info) {
  std::string name = info.param.to_string();
  std::erase(name, ':');
  return name;
}

// The message of the exception `fn` throws; fails the test when it throws none.
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

// A device and, on cuda, the kernel policy a device-parameterised test runs under.
struct Target {
  Device device;
  std::optional<KernelPolicy> policy;
  std::string name;
};
inline void PrintTo(const Target& t, std::ostream* os) {
  *os << t.name;
}

// Sets `family` to `policy` and every other family to native, and checks that only `family` reads
// back `policy`: one family's setting must not leak into another's. Call it under a
// ScopedKernelPolicy, which puts every family back afterwards.
inline void set_only_family(OpFamily family, KernelPolicy policy) {
  set_kernel_policy(KernelPolicy::native);
  set_kernel_policy(family, policy);
  for (OpFamily f : kOpFamilies) {
    EXPECT_EQ(kernel_policy(f), f == family ? policy : KernelPolicy::native) << op_family_name(f);
  }
}

inline std::string skip_reason(Device d) {
  if (d.is_cuda() && !cuda_available()) {
    return "no CUDA device present (or glia built without CUDA): the cuda variant needs a GPU";
  }
  return {};
}

}  // namespace glia::testing

// Skips the current test with a one-line reason when `device` cannot be used here.
#define GLIA_SKIP_UNLESS_USABLE(device)                                         \
  do {                                                                          \
    const std::string glia_skip_reason_ = ::glia::testing::skip_reason(device); \
    if (!glia_skip_reason_.empty()) GTEST_SKIP() << glia_skip_reason_;          \
  } while (0)
