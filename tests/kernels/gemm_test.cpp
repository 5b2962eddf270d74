// GEMM on every backend against the cpu reference in double: all four transpose combinations,
// sizes that do and do not divide the 128 x 128 x 8 tiles of kernels/cuda/gemm.cu, leading
// dimensions that allow its 16-byte copies (multiples of 4 floats) and ones that do not, batch 1,
// 2 and 3, padded leading dimensions and batch strides, alpha/beta with beta == 0 ignoring NaN in
// C, k == 0.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/gemm.h"
#endif
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"
#include "tests/kernels/gemm_case.h"

namespace glia::testing {
namespace {

using kernels::GemmShape;
using kernels::index_t;

template <class B>
void gemm_on(const GemmShape& s, const float* a, const float* b, float* c) {
  if constexpr (is_cpu<B>) kernels::cpu::gemm(s, a, b, c);
  if constexpr (is_sim<B>) kernels::sim::gemm(s, a, b, c, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::gemm(s, a, b, c, nullptr);
#endif
}

using Case = GemmCase;

std::string describe(const GemmShape& s) {
  return "m " + std::to_string(s.m) + ", n " + std::to_string(s.n) + ", k " + std::to_string(s.k) +
         ", trans_a " + std::to_string(s.trans_a) + ", trans_b " + std::to_string(s.trans_b) +
         ", batch " + std::to_string(s.batch) + ", alpha " + std::to_string(s.alpha) + ", beta " +
         std::to_string(s.beta);
}

// Runs launch(s, a, b, c) on backend B's memory and compares with the cpu reference in double.
template <class B, class Launch>
void check_gemm(const Case& c, bool trans_a, bool trans_b, std::uint32_t seed, Launch launch) {
  const GemmShape s = shape_of(c, trans_a, trans_b);
  SCOPED_TRACE(describe(s));
  const auto size = [&](index_t stride) { return static_cast<std::size_t>(stride * s.batch); };
  const std::vector<float> a = random_values(size(s.stride_a), -1.0, 1.0, seed);
  const std::vector<float> b = random_values(size(s.stride_b), -1.0, 1.0, seed + 1);
  // beta == 0 must not read C: start from NaN there, from data otherwise.
  const std::vector<float> c0 = s.beta == 0.0
                                    ? nan_poisoned(size(s.stride_c))
                                    : random_values(size(s.stride_c), -1.0, 1.0, seed + 2);

  std::vector<double> expected = to_double(c0);
  kernels::cpu::gemm(s, to_double(a).data(), to_double(b).data(), expected.data());

  const std::vector<float> got = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> da(a), db(b), dc(c0);
    launch(s, da.data(), db.data(), dc.data());
    return dc.to_host();
  });
  // Padding is never written: compare it too. Where beta == 0 it stays NaN in both, so NaN may
  // match NaN; every element the GEMM writes has a finite reference.
  EXPECT_TRUE(all_close(got, expected, default_tolerance<float>(), NanMatch::equal));
}

template <class B>
void check_gemm(const Case& c, bool trans_a, bool trans_b, std::uint32_t seed) {
  check_gemm<B>(c, trans_a, trans_b, seed, gemm_on<B>);
}

// Sizes around the tiles (64 or 128 rows, 128 columns) and the k slices: 1, 7, 33, 64, 65, 130.
const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {1, 1, 1},
      {7, 33, 65},
      {64, 64, 64},
      {65, 7, 130},
      {130, 65, 33},
      {33, 130, 7},
      {1, 130, 64},
      {130, 1, 65, 3},
      {65, 64, 33, 3, 0.5, -1.5},
      {7, 65, 130, 3, -2.0, 0.0, 3},
      {64, 33, 1, 1, 1.0, 1.0, 1},
      // Over the 128 x 128 tiles; leading dimensions that allow the 16-byte copies (pad 2 makes
      // 130 + 2 and 66 + 2 multiples of 4, so the last group of a row is partial) and ones that
      // do not (odd sizes, pad 1 and 3 above).
      {130, 66, 20, 1, 1.0, 0.0, 2},
      {132, 136, 9, 2},
      {129, 257, 17},
      // The 64 x 128 tile (m <= 64): a full one over three column tiles with a k tail, and a
      // partial one with 16-byte copies (pad 2) over a batch.
      {64, 257, 13},
      {47, 130, 17, 2, 1.0, 0.5, 2},
  };
  return all;
}

template <class B>
class Gemm : public BackendTest<B> {};
TYPED_TEST_SUITE(Gemm, Backends, BackendNames);

TYPED_TEST(Gemm, NoTranspose) {
  std::uint32_t seed = 100;
  for (const Case& c : cases()) check_gemm<TypeParam>(c, false, false, seed += 3);
}

TYPED_TEST(Gemm, TransposedA) {
  std::uint32_t seed = 200;
  for (const Case& c : cases()) check_gemm<TypeParam>(c, true, false, seed += 3);
}

TYPED_TEST(Gemm, TransposedB) {
  std::uint32_t seed = 300;
  for (const Case& c : cases()) check_gemm<TypeParam>(c, false, true, seed += 3);
}

TYPED_TEST(Gemm, BothTransposed) {
  std::uint32_t seed = 400;
  for (const Case& c : cases()) check_gemm<TypeParam>(c, true, true, seed += 3);
}

TYPED_TEST(Gemm, EmptyInnerDimensionScalesC) {
  check_gemm<TypeParam>({5, 9, 0, 2, 1.0, 0.5}, false, false, 500);
  check_gemm<TypeParam>({5, 9, 0, 2, 1.0, 0.0}, true, true, 501);
}

TYPED_TEST(Gemm, EmptyOutputLaunchesNothing) {
  GemmShape s;
  s.m = 0;
  s.n = 4;
  s.k = 3;
  gemm_on<TypeParam>(s, nullptr, nullptr, nullptr);
  s.m = 4;
  s.n = 0;
  gemm_on<TypeParam>(s, nullptr, nullptr, nullptr);
}

#if defined(GLIA_HAVE_CUDA)
// The cuBLAS fallback of kernels/cudnn under the same cases.
TEST(CudaCublasGemm, MatchesReference) {
  std::string reason;
  if (!cuda_device_present(&reason)) GTEST_SKIP() << reason;
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  const auto cublas_gemm = [handle](const GemmShape& s, const float* a, const float* b, float* c) {
    kernels::cudnn::gemm(handle, s, a, b, c, nullptr);
  };
  std::uint32_t seed = 600;
  for (const bool trans_a : {false, true}) {
    for (const bool trans_b : {false, true}) {
      for (const Case& c : cases()) check_gemm<Cuda>(c, trans_a, trans_b, seed += 3, cublas_gemm);
      check_gemm<Cuda>({5, 9, 0, 2, 1.0, 0.5}, trans_a, trans_b, seed += 3, cublas_gemm);
    }
  }
  EXPECT_EQ(cublasDestroy(handle), CUBLAS_STATUS_SUCCESS);
}
#endif

}  // namespace
}  // namespace glia::testing
