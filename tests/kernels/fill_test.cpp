// Fills, ranges and dtype casts on every backend against kernels/cpu: float ranges against the
// double reference, integer results and casts exactly (the cast of the same value on cpu), on
// lengths that do and do not fill a block.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::index_t;

template <class B, class T>
void fill_on(T* y, index_t n, T value) {
  if constexpr (is_cpu<B>) kernels::cpu::fill(y, n, value);
  if constexpr (is_sim<B>) kernels::sim::fill(y, n, value, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::fill(y, n, value, nullptr);
#endif
}

template <class B, class T>
void arange_on(T* y, index_t n, double start, double step) {
  if constexpr (is_cpu<B>) kernels::cpu::arange(y, n, start, step);
  if constexpr (is_sim<B>) kernels::sim::arange(y, n, start, step, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::arange(y, n, start, step, nullptr);
#endif
}

template <class B, class S, class D>
void cast_on(const S* x, D* y, index_t n) {
  if constexpr (is_cpu<B>) kernels::cpu::cast(x, y, n);
  if constexpr (is_sim<B>) kernels::sim::cast(x, y, n, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::cast(x, y, n, nullptr);
#endif
}

constexpr index_t kLengths[] = {1, 255, 256, 4099};

// Garbage that no fill or cast below produces, so unwritten elements fail.
template <class T>
std::vector<T> poisoned(std::size_t n) {
  if constexpr (std::is_floating_point_v<T>) {
    return nan_poisoned<T>(n);
  } else {
    return std::vector<T>(n, static_cast<T>(0x5A5A5A5A));
  }
}

template <class B, class T>
void check_fill(T value) {
  for (const index_t n : kLengths) {
    SCOPED_TRACE("n " + std::to_string(n));
    const auto size = static_cast<std::size_t>(n);
    const std::vector<T> got = run_in_every_lane_order<B>([&] {
      typename B::template Buffer<T> dy(poisoned<T>(size));
      fill_on<B>(dy.data(), n, value);
      return dy.to_host();
    });
    EXPECT_TRUE(all_equal(got, std::vector<T>(size, value)));
  }
}

template <class B, class T>
void check_arange(double start, double step) {
  for (const index_t n : kLengths) {
    SCOPED_TRACE("n " + std::to_string(n));
    const auto size = static_cast<std::size_t>(n);
    std::vector<double> expected(size);
    kernels::cpu::arange(expected.data(), n, start, step);
    std::vector<T> expected_t(size);
    kernels::cpu::arange(expected_t.data(), n, start, step);
    const std::vector<T> got = run_in_every_lane_order<B>([&] {
      typename B::template Buffer<T> dy(poisoned<T>(size));
      arange_on<B>(dy.data(), n, start, step);
      return dy.to_host();
    });
    if constexpr (std::is_floating_point_v<T>) {
      EXPECT_TRUE(all_close(got, expected));
    }
    // Computed in double and converted once, the same everywhere.
    EXPECT_TRUE(all_equal(got, expected_t));
  }
}

// x in [lo, hi), cast to D on B and on cpu.
template <class B, class S, class D>
void check_cast(double lo, double hi, std::uint32_t seed) {
  for (const index_t n : kLengths) {
    SCOPED_TRACE("n " + std::to_string(n));
    const auto size = static_cast<std::size_t>(n);
    std::vector<S> x(size);
    kernels::cpu::cast(random_values<double>(size, lo, hi, ++seed).data(), x.data(), n);
    std::vector<D> expected(size);
    kernels::cpu::cast(x.data(), expected.data(), n);
    const std::vector<D> got = run_in_every_lane_order<B>([&] {
      typename B::template Buffer<S> dx(x);
      typename B::template Buffer<D> dy(poisoned<D>(size));
      cast_on<B>(dx.data(), dy.data(), n);
      return dy.to_host();
    });
    EXPECT_TRUE(all_equal(got, expected));
  }
}

template <class B>
class Fill : public BackendTest<B> {};
TYPED_TEST_SUITE(Fill, Backends, BackendNames);

TYPED_TEST(Fill, Constant) {
  check_fill<TypeParam, float>(-1.5f);
  check_fill<TypeParam, std::int32_t>(-7);
  check_fill<TypeParam, std::uint8_t>(200);
}

TYPED_TEST(Fill, Arange) {
  check_arange<TypeParam, float>(-3.0, 0.25);
  check_arange<TypeParam, float>(1.0e6, -0.1);
  check_arange<TypeParam, std::int32_t>(-1000.0, 1.0);
  check_arange<TypeParam, std::int32_t>(5.0, -0.5);  // truncates toward zero across 0
}

// Float to integer truncates toward zero, negative values included.
TYPED_TEST(Fill, Casts) {
  check_cast<TypeParam, float, std::int32_t>(-1000.0, 1000.0, 1);
  check_cast<TypeParam, float, std::uint8_t>(0.0, 255.99, 2);
  check_cast<TypeParam, std::int32_t, float>(-100000.0, 100000.0, 3);
  check_cast<TypeParam, std::int32_t, std::uint8_t>(0.0, 255.99, 4);
  check_cast<TypeParam, std::uint8_t, float>(0.0, 255.99, 5);
  check_cast<TypeParam, std::uint8_t, std::int32_t>(0.0, 255.99, 6);
}

// No element to write: no launch, and the outputs stay as they were.
TYPED_TEST(Fill, EmptyLaunchesNothing) {
  auto y = sentinel_buffer<TypeParam>(7.0f);
  auto iy = sentinel_buffer<TypeParam>(std::int32_t{7});
  auto x = sentinel_buffer<TypeParam>(1.0f);
  auto uy = sentinel_buffer<TypeParam>(std::uint8_t{7});
  const std::uint64_t before = launches_on<TypeParam>();
  fill_on<TypeParam>(y.data(), 0, 1.0f);
  arange_on<TypeParam>(iy.data(), 0, 0.0, 1.0);
  cast_on<TypeParam>(static_cast<const float*>(x.data()), uy.data(), 0);
  EXPECT_EQ(launches_on<TypeParam>(), before);
  EXPECT_TRUE(untouched(y, 7.0f));
  EXPECT_TRUE(untouched(iy, std::int32_t{7}));
  EXPECT_TRUE(untouched(uy, std::uint8_t{7}));
}

}  // namespace
}  // namespace glia::testing
