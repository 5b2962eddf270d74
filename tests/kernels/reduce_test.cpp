// Reductions on every backend against the cpu reference in double: sums and arg-max over the
// outer, middle and inner position of a tensor, with inner == 1 and > 1, the column-per-thread and
// block-per-column shapes, long rows (the two-pass sum, with and without its workspace, and with
// most of the sum in each row's tail), an empty axis; arg-max ties, NaN and -inf; and the arg-max
// backward.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::index_t;
using kernels::ReduceShape;

// The float scratch the two-pass sum of `s` needs on backend B (none on cpu).
template <class B>
index_t workspace_size(const ReduceShape& s) {
  if constexpr (is_sim<B>) return kernels::sim::reduce_sum_workspace_size(s);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) return kernels::cuda::reduce_sum_workspace_size(s);
#endif
  (void)s;
  return 0;
}

template <class B>
void reduce_sum_on(const float* x, float* y, const ReduceShape& s, float scale, float* workspace) {
  if constexpr (is_cpu<B>) kernels::cpu::reduce_sum(x, y, s, scale);
  if constexpr (is_sim<B>) kernels::sim::reduce_sum(x, y, s, scale, workspace, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::reduce_sum(x, y, s, scale, workspace, nullptr);
  }
#endif
  (void)workspace;
}

template <class B>
void reduce_max_on(const float* x, float* y, std::int32_t* idx, const ReduceShape& s) {
  if constexpr (is_cpu<B>) kernels::cpu::reduce_max(x, y, idx, s);
  if constexpr (is_sim<B>) kernels::sim::reduce_max(x, y, idx, s, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::reduce_max(x, y, idx, s, nullptr);
#endif
}

template <class B>
void reduce_max_backward_on(const float* gy, const std::int32_t* idx, float* gx,
                            const ReduceShape& s) {
  if constexpr (is_cpu<B>) kernels::cpu::reduce_max_backward(gy, idx, gx, s);
  if constexpr (is_sim<B>) kernels::sim::reduce_max_backward(gy, idx, gx, s, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>)
    kernels::cuda::reduce_max_backward(gy, idx, gx, s, nullptr);
#endif
}

std::string describe(const ReduceShape& s) {
  return "[outer " + std::to_string(s.outer) + ", reduce " + std::to_string(s.reduce) + ", inner " +
         std::to_string(s.inner) + "]";
}

std::size_t input_size(const ReduceShape& s) {
  return static_cast<std::size_t>(s.outer * s.reduce * s.inner);
}
std::size_t output_size(const ReduceShape& s) {
  return static_cast<std::size_t>(s.outer * s.inner);
}

// Positive inputs: a float sum's rounding error grows with sum |x|, so this keeps it within the
// relative tolerance of |sum| (signed data could cancel to a sum far below its rounding error).
template <class B>
void check_sum(const ReduceShape& s, const std::vector<float>& x, bool with_workspace) {
  SCOPED_TRACE(describe(s));
  const float scale = 0.75f;
  std::vector<double> expected(output_size(s));
  kernels::cpu::reduce_sum(to_double(x).data(), expected.data(), s, double{scale});

  const std::size_t scratch =
      with_workspace ? static_cast<std::size_t>(workspace_size<B>(s)) : std::size_t{0};
  const std::vector<float> got = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(x), dy(nan_poisoned(output_size(s))),
        dw(nan_poisoned(scratch));
    reduce_sum_on<B>(dx.data(), dy.data(), s, scale, scratch > 0 ? dw.data() : nullptr);
    return dy.to_host();
  });
  EXPECT_TRUE(all_close(got, expected));
}

template <class B>
void check_sum(const ReduceShape& s, bool with_workspace, std::uint32_t seed) {
  check_sum<B>(s, random_values(input_size(s), 0.25, 1.25, seed), with_workspace);
}

template <class B>
void check_max(const ReduceShape& s, const std::vector<float>& x) {
  SCOPED_TRACE(describe(s));
  std::vector<double> expected(output_size(s));
  std::vector<std::int32_t> expected_idx(output_size(s));
  kernels::cpu::reduce_max(to_double(x).data(), expected.data(), expected_idx.data(), s);

  const auto [got, got_idx] = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(x), dy(nan_poisoned(output_size(s)));
    typename B::template Buffer<std::int32_t> didx(
        std::vector<std::int32_t>(output_size(s), std::numeric_limits<std::int32_t>::min()));
    reduce_max_on<B>(dx.data(), dy.data(), didx.data(), s);
    return std::tuple{dy.to_host(), didx.to_host()};
  });
  EXPECT_TRUE(all_equal(converted<double>(got), expected));
  EXPECT_TRUE(all_equal(got_idx, expected_idx));
}

// Shapes covering each path of kernels/cuda/reduce.cu: one block per column (inner == 1 and
// inner > 1 with few columns), one thread per column (inner > 1 with >= 2048 columns), and the
// reduced axis in the outer (outer == 1), middle and inner (inner == 1) position.
const std::vector<ReduceShape>& shapes() {
  static const std::vector<ReduceShape> all = {
      {1, 1, 1},   {1, 7, 1},   {7, 33, 1},  {3, 1000, 1},  {1, 33, 7},  {2, 33, 7},
      {5, 300, 3}, {3, 5, 700}, {4, 1, 513}, {1, 65, 2049}, {257, 2, 1}, {2, 3, 1100},
  };
  return all;
}

template <class B>
class Reduce : public BackendTest<B> {};
TYPED_TEST_SUITE(Reduce, Backends, BackendNames);

TYPED_TEST(Reduce, SumOverEachPosition) {
  std::uint32_t seed = 10;
  for (const ReduceShape& s : shapes()) check_sum<TypeParam>(s, true, ++seed);
}

TYPED_TEST(Reduce, SumOfLongRowsInTwoPasses) {
  check_sum<TypeParam>({1, 100000, 1}, true, 31);
  check_sum<TypeParam>({3, 20000, 1}, true, 32);
  check_sum<TypeParam>({2, 17000, 3}, true, 33);
}

// The last 300 elements of each long row are 1000 times larger than the rest and carry most of
// the sum, so a pass that drops any of them (a last segment that stops short) is off by far more
// than the tolerance.
TYPED_TEST(Reduce, SumOfLongRowsCountsTheirTails) {
  std::uint32_t seed = 35;
  for (const ReduceShape& s : {ReduceShape{1, 100001, 1}, ReduceShape{2, 20001, 3}}) {
    std::vector<float> x = random_values(input_size(s), 0.25, 1.25, ++seed);
    for (index_t o = 0; o < s.outer; ++o) {
      for (index_t r = s.reduce - 300; r < s.reduce; ++r) {
        for (index_t i = 0; i < s.inner; ++i)
          x[static_cast<std::size_t>((o * s.reduce + r) * s.inner + i)] *= 1000.0f;
      }
    }
    check_sum<TypeParam>(s, x, true);
  }
}

TYPED_TEST(Reduce, SumOfLongRowsWithoutWorkspace) {
  check_sum<TypeParam>({1, 100000, 1}, false, 41);
  check_sum<TypeParam>({2, 17000, 3}, false, 42);
}

TYPED_TEST(Reduce, SumOverEmptyAxisIsZero) {
  check_sum<TypeParam>({3, 0, 5}, true, 51);
}

TYPED_TEST(Reduce, MaxOverEachPosition) {
  std::uint32_t seed = 60;
  for (const ReduceShape& s : shapes()) {
    check_max<TypeParam>(s, random_values(input_size(s), -1.0, 1.0, ++seed));
  }
  const ReduceShape long_row{1, 100000, 1};
  check_max<TypeParam>(long_row, random_values(input_size(long_row), -1.0, 1.0, 70));
}

// Few distinct values, so most columns hold their maximum more than once: the first must win.
TYPED_TEST(Reduce, MaxTiesPickTheFirstIndex) {
  std::uint32_t seed = 80;
  for (const ReduceShape& s : shapes()) {
    std::vector<float> x = random_values(input_size(s), 0.0, 4.0, ++seed);
    for (float& v : x) v = std::floor(v);
    check_max<TypeParam>(s, x);
  }
}

// NaN wins (the first NaN of a column), and an all -inf column still reports index 0's -inf.
TYPED_TEST(Reduce, MaxPropagatesNanAndHandlesInfinity) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const ReduceShape& s :
       {ReduceShape{3, 300, 1}, ReduceShape{2, 40, 5}, ReduceShape{2, 6, 1100}}) {
    std::vector<float> x = random_values(input_size(s), -1.0, 1.0, 90);
    const auto at = [&](index_t o, index_t r, index_t i) -> float& {
      return x[static_cast<std::size_t>((o * s.reduce + r) * s.inner + i)];
    };
    at(0, s.reduce - 1, 0) = nan;  // the last element of a column
    at(1, 2, 0) = nan;             // two NaNs in one column: the first counts
    at(1, s.reduce - 2, 0) = nan;
    for (index_t r = 0; r < s.reduce; ++r) at(s.outer - 1, r, s.inner - 1) = -inf;
    check_max<TypeParam>(s, x);
  }
}

TYPED_TEST(Reduce, MaxBackwardRoutesGradientToTheArgMax) {
  std::uint32_t seed = 100;
  for (const ReduceShape& s : shapes()) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> x = random_values(input_size(s), -1.0, 1.0, ++seed);
    const std::vector<float> gy = random_values(output_size(s), -1.0, 1.0, ++seed);
    std::vector<float> y(output_size(s));
    std::vector<std::int32_t> idx(output_size(s));
    kernels::cpu::reduce_max(x.data(), y.data(), idx.data(), s);

    std::vector<double> expected(input_size(s));
    kernels::cpu::reduce_max_backward(to_double(gy).data(), idx.data(), expected.data(), s);
    const std::vector<float> got = run_in_every_lane_order<TypeParam>([&] {
      typename TypeParam::template Buffer<float> dgy(gy), dgx(nan_poisoned(input_size(s)));
      typename TypeParam::template Buffer<std::int32_t> didx(idx);
      reduce_max_backward_on<TypeParam>(dgy.data(), didx.data(), dgx.data(), s);
      return dgx.to_host();
    });
    EXPECT_TRUE(all_equal(converted<double>(got), expected));
  }
}

}  // namespace
}  // namespace glia::testing
