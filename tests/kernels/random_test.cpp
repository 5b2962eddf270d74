// Philox fills: the generator against Random123's known-answer vectors; uniform and normal fills on
// every backend against kernels/cpu (bit for bit on cpu and sim, which share the host math library;
// within float tolerance on a GPU, whose transcendentals round differently); the counter layout
// (offset + 1 is the same stream four elements on); and the moments of 100k samples.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#include "kernels/philox.h"
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::index_t;
namespace philox = kernels::philox;

// Random123's kat_vectors for philox4x32_10: counter, key -> output.
TEST(Philox, KnownAnswers) {
  struct Vector {
    std::uint32_t counter[4], key[2], out[4];
  };
  const Vector vectors[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Vector& v : vectors) {
    const philox::Block got = philox::philox4x32_10(v.counter[0], v.counter[1], v.counter[2],
                                                    v.counter[3], v.key[0], v.key[1]);
    for (int w = 0; w < 4; ++w) EXPECT_EQ(got.v[w], v.out[w]) << "word " << w;
  }
}

TEST(Philox, UnitFloatsStayInTheirIntervals) {
  EXPECT_EQ(philox::to_unit_float(0u), 0.0f);
  EXPECT_LT(philox::to_unit_float(0xffffffffu), 1.0f);
  EXPECT_GT(philox::to_unit_float_open0(0u), 0.0f);
  EXPECT_EQ(philox::to_unit_float_open0(0xffffffffu), 1.0f);
  // The smallest u1 still gives a finite Box-Muller radius.
  const philox::NormalPair z = philox::box_muller(0u, 0u);
  EXPECT_TRUE(std::isfinite(z.z0) && std::isfinite(z.z1));
}

template <class B>
void uniform_on(float* y, index_t n, std::uint64_t seed, std::uint64_t offset, float lo, float hi) {
  if constexpr (is_cpu<B>) kernels::cpu::uniform(y, n, seed, offset, lo, hi);
  if constexpr (is_sim<B>) kernels::sim::uniform(y, n, seed, offset, lo, hi, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>)
    kernels::cuda::uniform(y, n, seed, offset, lo, hi, nullptr);
#endif
}

template <class B>
void normal_on(float* y, index_t n, std::uint64_t seed, std::uint64_t offset, float mean,
               float stddev) {
  if constexpr (is_cpu<B>) kernels::cpu::normal(y, n, seed, offset, mean, stddev);
  if constexpr (is_sim<B>) kernels::sim::normal(y, n, seed, offset, mean, stddev, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::normal(y, n, seed, offset, mean, stddev, nullptr);
  }
#endif
}

enum class Distribution { uniform, normal };

// n samples of (seed, offset) on backend B; (a, b) = (lo, hi) or (mean, stddev).
template <class B>
std::vector<float> sample(Distribution d, index_t n, std::uint64_t seed, std::uint64_t offset,
                          float a, float b) {
  return run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dy(nan_poisoned(static_cast<std::size_t>(n)));
    if (d == Distribution::uniform) {
      uniform_on<B>(dy.data(), n, seed, offset, a, b);
    } else {
      normal_on<B>(dy.data(), n, seed, offset, a, b);
    }
    return dy.to_host();
  });
}

template <class B>
void check_against_cpu(Distribution d, index_t n, std::uint64_t seed, std::uint64_t offset, float a,
                       float b) {
  SCOPED_TRACE("n " + std::to_string(n) + ", seed " + std::to_string(seed) + ", offset " +
               std::to_string(offset));
  const auto size = static_cast<std::size_t>(n);
  std::vector<double> expected(size);
  std::vector<float> expected_f(size);
  if (d == Distribution::uniform) {
    kernels::cpu::uniform(expected.data(), n, seed, offset, a, b);
    kernels::cpu::uniform(expected_f.data(), n, seed, offset, a, b);
  } else {
    kernels::cpu::normal(expected.data(), n, seed, offset, a, b);
    kernels::cpu::normal(expected_f.data(), n, seed, offset, a, b);
  }
  const std::vector<float> got = sample<B>(d, n, seed, offset, a, b);
  EXPECT_TRUE(all_close(got, expected));
  if constexpr (is_cpu<B> || is_sim<B>) {
    EXPECT_TRUE(all_equal(got, expected_f));
  }
}

template <class B>
class Random : public BackendTest<B> {};
TYPED_TEST_SUITE(Random, Backends, BackendNames);

TYPED_TEST(Random, UniformMatchesCpu) {
  check_against_cpu<TypeParam>(Distribution::uniform, 1, 1, 0, 0.0f, 1.0f);
  check_against_cpu<TypeParam>(Distribution::uniform, 1001, 42, 7, -2.0f, 3.0f);
  check_against_cpu<TypeParam>(Distribution::uniform, 4096, 0xdeadbeefcafef00dull,
                               (std::uint64_t{1} << 32) - 3, -1.0f, 1.0f);
}

TYPED_TEST(Random, NormalMatchesCpu) {
  check_against_cpu<TypeParam>(Distribution::normal, 3, 1, 0, 0.0f, 1.0f);
  check_against_cpu<TypeParam>(Distribution::normal, 1001, 42, 7, 0.5f, 2.0f);
  check_against_cpu<TypeParam>(Distribution::normal, 4096, 0xdeadbeefcafef00dull,
                               (std::uint64_t{1} << 32) - 3, -1.0f, 0.1f);
}

// Element i at offset o + 1 is element i + 4 at offset o: a caller advancing the offset by
// ceil(n / 4) after each fill never reuses a block.
TYPED_TEST(Random, OffsetAdvancesByBlocksOfFour) {
  for (const Distribution d : {Distribution::uniform, Distribution::normal}) {
    const std::vector<float> base = sample<TypeParam>(d, 403, 9, 100, 0.0f, 1.0f);
    const std::vector<float> next = sample<TypeParam>(d, 399, 9, 101, 0.0f, 1.0f);
    EXPECT_TRUE(all_equal(next, std::vector<float>(base.begin() + 4, base.end())));
  }
}

TYPED_TEST(Random, SampleMoments) {
  constexpr index_t n = 100000;
  const auto moments = [](const std::vector<float>& v) {
    double sum = 0.0, sum_sq = 0.0;
    for (const float x : v) sum += x;
    const double mean = sum / static_cast<double>(v.size());
    for (const float x : v) sum_sq += (x - mean) * (x - mean);
    return std::pair{mean, std::sqrt(sum_sq / static_cast<double>(v.size() - 1))};
  };
  // Bounds of about five standard errors: a correct generator fails them with odds ~1e-6.
  const std::vector<float> normal = sample<TypeParam>(Distribution::normal, n, 2026, 0, 1.5f, 2.0f);
  const auto [normal_mean, normal_std] = moments(normal);
  EXPECT_NEAR(normal_mean, 1.5, 5.0 * 2.0 / std::sqrt(double{n}));
  EXPECT_NEAR(normal_std, 2.0, 5.0 * 2.0 / std::sqrt(2.0 * n));

  const std::vector<float> uniform =
      sample<TypeParam>(Distribution::uniform, n, 2026, 0, -1.0f, 3.0f);
  const auto [uniform_mean, uniform_std] = moments(uniform);
  const double width = 4.0, sigma = width / std::sqrt(12.0);
  EXPECT_NEAR(uniform_mean, 1.0, 5.0 * sigma / std::sqrt(double{n}));
  EXPECT_NEAR(uniform_std, sigma, 0.01 * sigma);
  for (const float x : uniform) {
    ASSERT_TRUE(x >= -1.0f && x < 3.0f) << x;
  }
}

// No element to draw: no launch, and the outputs stay as they were.
TYPED_TEST(Random, EmptyLaunchesNothing) {
  auto u = sentinel_buffer<TypeParam>(7.0f);
  auto g = sentinel_buffer<TypeParam>(7.0f);
  const std::uint64_t before = launches_on<TypeParam>();
  uniform_on<TypeParam>(u.data(), 0, 1, 0, 0.0f, 1.0f);
  normal_on<TypeParam>(g.data(), 0, 1, 0, 0.0f, 1.0f);
  EXPECT_EQ(launches_on<TypeParam>(), before);
  EXPECT_TRUE(untouched(u, 7.0f));
  EXPECT_TRUE(untouched(g, 7.0f));
}

}  // namespace
}  // namespace glia::testing
