// The backends every kernel test runs on, as the type parameter of typed tests:
//   CpuF32  kernels/cpu in float
//   Sim     kernels/cuda on the SIMT emulator (float), repeated under several lane orders
//   Cuda    kernels/cuda on a GPU (float); built with CUDA only, skipped when no device is present
// Each is compared against kernels/cpu run in double on the same inputs. A backend supplies its
// memory (Buffer<T>: upload, download) and the lane orders a kernel is run under; the helpers below
// make random inputs, NaN-poisoned outputs, and run a kernel in every lane order.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "tests/common/tolerance.h"
#include "tests/kernels/sim_config.h"
#if defined(GLIA_HAVE_CUDA)
#include "tests/kernels/cuda_buffer.h"
#endif

namespace glia::testing {

// Host memory: the cpu backends and the emulator address it directly.
template <class T>
class HostBuffer {
 public:
  explicit HostBuffer(std::vector<T> values) : values_(std::move(values)) {}
  T* data() { return values_.data(); }
  const T* data() const { return values_.data(); }
  std::vector<T> to_host() const { return values_; }

 private:
  std::vector<T> values_;
};

struct CpuF32 {
  static constexpr const char* kName = "CpuF32";
  template <class T>
  using Buffer = HostBuffer<T>;
  static constexpr int kLaneOrders = 1;
  static bool available(std::string*) { return true; }
  template <class Run>
  static auto in_lane_order(int, Run& run) {
    return run();
  }
  static std::string lane_order_name(int) { return "sequential"; }
};

struct Sim {
  static constexpr const char* kName = "Sim";
  template <class T>
  using Buffer = HostBuffer<T>;
  // Forward, reverse and a seeded random permutation: a missing barrier shows as a difference. The
  // reverse run and a second random run also lower the grid limit (sim_config.h), so grid-stride
  // loops take later passes, the latter with warps running ahead of each other.
  static constexpr int kLaneOrders = 4;
  static bool available(std::string*) { return true; }
  template <class Run>
  static auto in_lane_order(int order, Run& run) {
    const SimLaneOrder scope(order);
    return run();
  }
  static std::string lane_order_name(int order) {
    return order == 0   ? "forward"
           : order == 1 ? "reverse with grid limit " + std::to_string(kSimLoweredGridLimit)
           : order == 2 ? "random"
                        : "random with grid limit " + std::to_string(kSimLoweredGridLimit);
  }
};

#if defined(GLIA_HAVE_CUDA)
struct Cuda {
  static constexpr const char* kName = "Cuda";
  template <class T>
  using Buffer = CudaBuffer<T>;
  static constexpr int kLaneOrders = 1;
  static bool available(std::string* reason) { return cuda_device_present(reason); }
  template <class Run>
  static auto in_lane_order(int, Run& run) {
    return run();
  }
  static std::string lane_order_name(int) { return "gpu"; }
};
using Backends = ::testing::Types<CpuF32, Sim, Cuda>;
#else
using Backends = ::testing::Types<CpuF32, Sim>;
#endif

// Names the typed-test instances by backend, so the ctest label rule (Sim -> sim, Cuda -> gpu)
// applies to them.
struct BackendNames {
  template <class B>
  static std::string GetName(int) {
    return B::kName;
  }
};

// The fixture of every typed kernel test: skips with the reason when the backend cannot run here.
template <class B>
class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    if (!B::available(&reason)) GTEST_SKIP() << reason;
  }
};

template <class B>
inline constexpr bool is_cpu = std::is_same_v<B, CpuF32>;
template <class B>
inline constexpr bool is_sim = std::is_same_v<B, Sim>;

// In a function templated on the backend B: calls B's kernel `name` with the arguments, appending
// the (null) stream on sim and cuda.
#if defined(GLIA_HAVE_CUDA)
#define GLIA_CUDA_CALL(name, ...) \
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::name(__VA_ARGS__, nullptr)
#else
#define GLIA_CUDA_CALL(name, ...)
#endif
#define GLIA_ON_BACKEND(name, ...)                                     \
  do {                                                                 \
    if constexpr (is_cpu<B>) kernels::cpu::name(__VA_ARGS__);          \
    if constexpr (is_sim<B>) kernels::sim::name(__VA_ARGS__, nullptr); \
    GLIA_CUDA_CALL(name, __VA_ARGS__);                                 \
  } while (0)

// --- inputs and outputs ------------------------------------------------------------------------

template <class T = float>
std::vector<T> random_values(std::size_t n, double lo, double hi, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(gen));
  return v;
}

template <class T = float>
std::vector<T> nan_poisoned(std::size_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

template <class D, class S>
std::vector<D> converted(const std::vector<S>& v) {
  return std::vector<D>(v.begin(), v.end());
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return converted<double>(v);
}

// --- empty calls -------------------------------------------------------------------------------

// The kernel launches B was asked for so far: the emulator's count on sim, 0 elsewhere (a cpu
// kernel launches nothing, and a GPU's launches are not counted here; their buffers are checked).
template <class B>
std::uint64_t launches_on() {
  if constexpr (is_sim<B>) {
    return sim_launch_count();
  } else {
    return 0;
  }
}

// A buffer of B holding `n` copies of `value`, for a call on empty shapes to leave untouched.
template <class B, class T>
typename B::template Buffer<T> sentinel_buffer(T value, std::size_t n = 4) {
  return typename B::template Buffer<T>(std::vector<T>(n, value));
}

template <class Buffer, class T>
::testing::AssertionResult untouched(const Buffer& buffer, T value, std::size_t n = 4) {
  return all_equal(buffer.to_host(), std::vector<T>(n, value));
}

// --- lane orders -------------------------------------------------------------------------------

template <class T>
::testing::AssertionResult same_bits(const std::vector<T>& got, const std::vector<T>& first) {
  return all_equal(got, first);
}

template <class Tuple, std::size_t... I>
::testing::AssertionResult same_bits_each(const Tuple& got, const Tuple& first,
                                          std::index_sequence<I...>) {
  ::testing::AssertionResult result = ::testing::AssertionSuccess();
  ((result = result ? same_bits(std::get<I>(got), std::get<I>(first)) : result), ...);
  return result;
}

template <class... Ts>
::testing::AssertionResult same_bits(const std::tuple<Ts...>& got, const std::tuple<Ts...>& first) {
  return same_bits_each(got, first, std::index_sequence_for<Ts...>{});
}

// Runs `run` (launch the kernel, return its outputs as host vectors) once per lane order of B and
// expects every order to give bitwise the first order's outputs, which it returns.
template <class B, class Run>
auto run_in_every_lane_order(Run run) {
  auto first = B::in_lane_order(0, run);
  for (int order = 1; order < B::kLaneOrders; ++order) {
    const auto again = B::in_lane_order(order, run);
    EXPECT_TRUE(same_bits(again, first))
        << "lane order " << B::lane_order_name(order) << " differs from " << B::lane_order_name(0);
  }
  return first;
}

}  // namespace glia::testing
