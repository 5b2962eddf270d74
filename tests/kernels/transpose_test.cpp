// Transpose of the last two dims on every backend against the cpu reference in double: square
// tiles, sizes that do not divide the 32 x 32 tile, single rows and columns, several batches.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::index_t;

template <class B>
void transpose_on(const float* x, float* y, index_t batch, index_t rows, index_t cols) {
  if constexpr (is_cpu<B>) kernels::cpu::transpose_last2(x, y, batch, rows, cols);
  if constexpr (is_sim<B>) kernels::sim::transpose_last2(x, y, batch, rows, cols, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::transpose_last2(x, y, batch, rows, cols, nullptr);
  }
#endif
}

struct Case {
  index_t batch, rows, cols;
};

template <class B>
class Transpose : public BackendTest<B> {};
TYPED_TEST_SUITE(Transpose, Backends, BackendNames);

TYPED_TEST(Transpose, MatchesReference) {
  const std::vector<Case> cases = {{1, 1, 1},   {1, 32, 32}, {2, 33, 65}, {3, 7, 130},
                                   {1, 100, 3}, {2, 64, 1},  {1, 1, 97},  {4, 31, 33}};
  std::uint32_t seed = 7;
  for (const Case& c : cases) {
    SCOPED_TRACE("batch " + std::to_string(c.batch) + ", rows " + std::to_string(c.rows) +
                 ", cols " + std::to_string(c.cols));
    const auto n = static_cast<std::size_t>(c.batch * c.rows * c.cols);
    const std::vector<float> x = random_values(n, -1.0, 1.0, ++seed);
    std::vector<double> expected(n);
    kernels::cpu::transpose_last2(to_double(x).data(), expected.data(), c.batch, c.rows, c.cols);

    const std::vector<float> got = run_in_every_lane_order<TypeParam>([&] {
      typename TypeParam::template Buffer<float> dx(x), dy(nan_poisoned(n));
      transpose_on<TypeParam>(dx.data(), dy.data(), c.batch, c.rows, c.cols);
      return dy.to_host();
    });
    EXPECT_TRUE(all_equal(converted<double>(got), expected));
  }
}

// No element to move: no launch, and the output stays as it was.
TYPED_TEST(Transpose, EmptyLaunchesNothing) {
  auto x = sentinel_buffer<TypeParam>(1.0f);
  auto y = sentinel_buffer<TypeParam>(7.0f);
  const std::uint64_t before = launches_on<TypeParam>();
  transpose_on<TypeParam>(x.data(), y.data(), 0, 4, 4);
  transpose_on<TypeParam>(x.data(), y.data(), 2, 0, 4);
  transpose_on<TypeParam>(x.data(), y.data(), 2, 4, 0);
  EXPECT_EQ(launches_on<TypeParam>(), before);
  EXPECT_TRUE(untouched(y, 7.0f));
}

}  // namespace
}  // namespace glia::testing
