// The tensor-core GEMM (kernels/cuda/gemm_tc.cu) per operand format (tf32, bf16, f16) against the
// cpu reference GEMM in double on the operands rounded to the format: all four transpose
// combinations, sizes that do and do not divide the 64 x 64 x 16 tiles (k tails included),
// batches with padded leading dimensions and strides, alpha/beta with beta == 0 ignoring NaN in
// C; on sim under every lane order (tests/kernels/backends.h). The kernel is given the unrounded
// floats, so its own rounding is checked too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#include "kernels/rounding.h"
#include "tests/kernels/backends.h"
#include "tests/kernels/gemm_case.h"

namespace glia::testing {
namespace {

using kernels::GemmShape;
using kernels::index_t;
using kernels::TensorFormat;

using Case = GemmCase;

std::vector<double> rounded(TensorFormat f, const std::vector<float>& x) {
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = kernels::round_to_format(x[i], f);
  return out;
}

std::vector<double> magnitudes(const std::vector<double>& x) {
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = std::fabs(x[i]);
  return out;
}

template <class B>
void check_gemm_tc(TensorFormat format, const Case& c, bool trans_a, bool trans_b,
                   std::uint32_t seed) {
  const GemmShape s = shape_of(c, trans_a, trans_b);
  SCOPED_TRACE(std::string(kernels::format_name(format)) + ": " + s.describe() + ", alpha " +
               std::to_string(s.alpha) + ", beta " + std::to_string(s.beta));
  const auto size = [&](index_t stride) { return static_cast<std::size_t>(stride * s.batch); };
  const std::vector<float> a = random_values(size(s.stride_a), -1.0, 1.0, seed);
  const std::vector<float> b = random_values(size(s.stride_b), -1.0, 1.0, seed + 1);
  const std::vector<float> c0 = s.beta == 0.0
                                    ? nan_poisoned(size(s.stride_c))
                                    : random_values(size(s.stride_c), -1.0, 1.0, seed + 2);

  // The reference on the rounded operands, and |alpha| sum |a b| + |beta c| for the bound.
  const std::vector<double> ra = rounded(format, a), rb = rounded(format, b);
  std::vector<double> expected = to_double(c0);
  kernels::cpu::gemm(s, ra.data(), rb.data(), expected.data());
  GemmShape abs_shape = s;
  abs_shape.alpha = std::fabs(s.alpha);
  abs_shape.beta = std::fabs(s.beta);
  std::vector<double> magnitude = magnitudes(to_double(c0));
  kernels::cpu::gemm(abs_shape, magnitudes(ra).data(), magnitudes(rb).data(), magnitude.data());

  const std::vector<float> got = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> da(a), db(b), dc(c0);
    if constexpr (is_sim<B>) {
      kernels::sim::gemm_tc(s, format, da.data(), db.data(), dc.data(), nullptr);
    }
#if defined(GLIA_HAVE_CUDA)
    if constexpr (std::is_same_v<B, Cuda>) {
      kernels::cuda::gemm_tc(s, format, da.data(), db.data(), dc.data(), nullptr);
    }
#endif
    return dc.to_host();
  });

  // The rounded operands are exact in FP32 and so are their products (at most 11 + 11
  // significant bits), so what remains is the FP32 accumulation of k products in an order the
  // tensor cores choose (first order: k u sum |a b|), then alpha * acc, beta * c and their sum
  // (3 more roundings). u is taken as 2^-23, not 2^-24, since tensor-core adders may truncate
  // rather than round. Padding and, where beta == 0, nothing else is NaN; NaN must match NaN.
  const double u = std::ldexp(1.0, -23);
  const double scale = (static_cast<double>(s.k) + 3.0) * u;
  double worst = 0.0;
  std::size_t worst_at = 0, failures = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(expected[i])) {
      if (!std::isnan(got[i])) ++failures;
      continue;
    }
    const double error = std::fabs(got[i] - expected[i]);
    const double bound = scale * magnitude[i] + 1e-30;
    if (!(error <= bound)) ++failures;
    if (!(error / bound <= worst)) {
      worst = error / bound;
      worst_at = i;
    }
  }
  EXPECT_EQ(failures, 0u) << "largest error / bound " << worst << " at " << worst_at << ": got "
                          << got[worst_at] << ", reference " << expected[worst_at] << ", bound "
                          << scale * magnitude[worst_at];
}

// Sizes around the 64-wide tiles and the 16-deep k slices: 1, 7, 33, 64, 65, 130.
const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {1, 1, 1},
      {7, 33, 65},
      {64, 64, 64},
      {65, 7, 130},
      {130, 65, 33},
      {33, 130, 7},
      {65, 64, 33, 3, 0.5, -1.5},
      {7, 65, 130, 3, -2.0, 0.0, 3},
      {64, 33, 1, 1, 1.0, 1.0, 1},
      {130, 66, 20, 1, 1.0, 0.0, 2},
  };
  return all;
}

template <class B>
void check_all(TensorFormat format, std::uint32_t seed) {
  for (const bool trans_a : {false, true}) {
    for (const bool trans_b : {false, true}) {
      for (const Case& c : cases()) check_gemm_tc<B>(format, c, trans_a, trans_b, seed += 3);
    }
  }
}

#if defined(GLIA_HAVE_CUDA)
using TensorCoreBackends = ::testing::Types<Sim, Cuda>;
#else
using TensorCoreBackends = ::testing::Types<Sim>;
#endif

template <class B>
class GemmTc : public BackendTest<B> {};
TYPED_TEST_SUITE(GemmTc, TensorCoreBackends, BackendNames);

TYPED_TEST(GemmTc, Tf32MatchesTheReferenceOnRoundedOperands) {
  check_all<TypeParam>(TensorFormat::tf32, 100);
}

TYPED_TEST(GemmTc, Bf16MatchesTheReferenceOnRoundedOperands) {
  check_all<TypeParam>(TensorFormat::bf16, 200);
}

TYPED_TEST(GemmTc, F16MatchesTheReferenceOnRoundedOperands) {
  check_all<TypeParam>(TensorFormat::f16, 300);
}

TYPED_TEST(GemmTc, EmptyInnerDimensionScalesC) {
  for (const TensorFormat f : {TensorFormat::tf32, TensorFormat::bf16, TensorFormat::f16}) {
    check_gemm_tc<TypeParam>(f, {5, 9, 0, 2, 1.0, 0.5}, false, false, 500);
    check_gemm_tc<TypeParam>(f, {5, 9, 0, 2, 1.0, 0.0}, true, true, 501);
  }
}

}  // namespace
}  // namespace glia::testing
