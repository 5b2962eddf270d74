// Casts between float and bf16/f16 and the rounding of float operands to tf32/bf16/f16
// (kernels/cuda/cast.cu, kernels/cpu/cast.cpp) on every backend, bit for bit: the cpu kernels
// against kernels/half.h's conversions applied one element at a time, sim and cuda against the
// cpu kernels. Inputs: every 16-bit pattern widened to float (so each format's every value,
// infinities and NaNs round-trip), every halfway point between neighbouring f16 and bf16 values
// (ties to even), the f16 overflow edge, subnormals, and random floats over a wide range.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/cast.h"
#include "kernels/half.h"
#include "kernels/rounding.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::index_t;
using kernels::TensorFormat;

std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

float float_of(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// Every value of both formats, the points halfway between neighbours, the edges, random floats.
std::vector<float> cast_inputs() {
  std::vector<float> v;
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    v.push_back(f16_bits_to_float(h));
    v.push_back(bf16_bits_to_float(h));
    // Halfway to the next pattern up (for finite values): the tie cases of both roundings.
    v.push_back(float_of(bits_of(bf16_bits_to_float(h)) + 0x8000u));
    const float f = f16_bits_to_float(h);
    if (std::isfinite(f)) {
      const float next = f16_bits_to_float(static_cast<std::uint16_t>(h + 1));
      if (std::isfinite(next)) v.push_back(0.5f * (f + next));
    }
  }
  for (const float x : {65504.0f, 65519.99f, 65520.0f, 1e-8f, -2.98e-8f, 1e-45f, 3.4e38f,
                        std::numeric_limits<float>::infinity()}) {
    v.push_back(x);
    v.push_back(-x);
  }
  std::mt19937 gen(16);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  for (int i = 0; i < 20000; ++i) v.push_back(float_of(any_bits(gen)));
  return v;
}

template <class B, class S, class D>
void cast_on(const S* x, D* y, index_t n) {
  GLIA_ON_BACKEND(cast, x, y, n);
}

template <class B>
void round_on(const float* x, float* y, index_t n, TensorFormat format) {
  GLIA_ON_BACKEND(round_to_format, x, y, n, format);
}

template <class H>
std::vector<std::uint16_t> half_bits(const std::vector<H>& v) {
  std::vector<std::uint16_t> out;
  for (const H& h : v) out.push_back(h.bits);
  return out;
}

std::vector<std::uint32_t> float_bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> out;
  for (const float x : v) out.push_back(bits_of(x));
  return out;
}

// The cast float -> H on backend B, as bit patterns.
template <class B, class H>
std::vector<std::uint16_t> to_half_on(const std::vector<float>& x) {
  const auto n = static_cast<index_t>(x.size());
  return run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(x);
    typename B::template Buffer<H> dy(std::vector<H>(x.size(), H::from_bits(0x7d5au)));
    cast_on<B>(dx.data(), dy.data(), n);
    return half_bits(dy.to_host());
  });
}

// The cast H -> float of every 16-bit pattern on backend B, as bit patterns.
template <class B, class H>
std::vector<std::uint32_t> every_half_to_float_on() {
  std::vector<H> x;
  for (std::uint32_t b = 0; b < 0x10000u; ++b)
    x.push_back(H::from_bits(static_cast<std::uint16_t>(b)));
  return run_in_every_lane_order<B>([&] {
    typename B::template Buffer<H> dx(x);
    typename B::template Buffer<float> dy(nan_poisoned(x.size()));
    cast_on<B>(dx.data(), dy.data(), static_cast<index_t>(x.size()));
    return float_bits(dy.to_host());
  });
}

template <class B>
std::vector<std::uint32_t> rounded_on(const std::vector<float>& x, TensorFormat format) {
  return run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(x);
    typename B::template Buffer<float> dy(nan_poisoned(x.size()));
    round_on<B>(dx.data(), dy.data(), static_cast<index_t>(x.size()), format);
    return float_bits(dy.to_host());
  });
}

template <class H>
std::vector<std::uint16_t> reference_half_bits(const std::vector<float>& x) {
  std::vector<std::uint16_t> out;
  for (const float v : x) out.push_back(H(v).bits);
  return out;
}

template <class B>
class Cast : public BackendTest<B> {};
TYPED_TEST_SUITE(Cast, Backends, BackendNames);

TYPED_TEST(Cast, FloatToBf16AndF16MatchTheCpuCastBitForBit) {
  using B = TypeParam;
  const std::vector<float> x = cast_inputs();
  std::vector<bf16> cpu_bf16(x.size());
  std::vector<f16> cpu_f16(x.size());
  kernels::cpu::cast(x.data(), cpu_bf16.data(), static_cast<index_t>(x.size()));
  kernels::cpu::cast(x.data(), cpu_f16.data(), static_cast<index_t>(x.size()));
  // The cpu kernel is half.h's conversion; every backend then equals the cpu kernel.
  ASSERT_TRUE(all_equal(half_bits(cpu_bf16), reference_half_bits<bf16>(x)));
  ASSERT_TRUE(all_equal(half_bits(cpu_f16), reference_half_bits<f16>(x)));
  EXPECT_TRUE(all_equal(to_half_on<B, bf16>(x), half_bits(cpu_bf16)));
  EXPECT_TRUE(all_equal(to_half_on<B, f16>(x), half_bits(cpu_f16)));
}

TYPED_TEST(Cast, EveryBf16AndF16PatternWidensExactly) {
  using B = TypeParam;
  std::vector<std::uint32_t> want_bf16, want_f16;
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    want_bf16.push_back(bits_of(bf16_bits_to_float(static_cast<std::uint16_t>(b))));
    want_f16.push_back(bits_of(f16_bits_to_float(static_cast<std::uint16_t>(b))));
  }
  EXPECT_TRUE(all_equal(every_half_to_float_on<B, bf16>(), want_bf16));
  EXPECT_TRUE(all_equal(every_half_to_float_on<B, f16>(), want_f16));
}

TYPED_TEST(Cast, RoundToFormatMatchesTheCpuKernelBitForBit) {
  using B = TypeParam;
  const std::vector<float> x = cast_inputs();
  for (const TensorFormat format : {TensorFormat::tf32, TensorFormat::bf16, TensorFormat::f16}) {
    SCOPED_TRACE("format " + std::to_string(static_cast<int>(format)));
    std::vector<float> cpu(x.size());
    kernels::cpu::round_to_format(x.data(), cpu.data(), static_cast<index_t>(x.size()), format);
    std::vector<std::uint32_t> want;
    for (const float v : x) {
      want.push_back(bits_of(format == TensorFormat::tf32   ? round_to_tf32(v)
                             : format == TensorFormat::bf16 ? static_cast<float>(bf16(v))
                                                            : static_cast<float>(f16(v))));
    }
    ASSERT_TRUE(all_equal(float_bits(cpu), want));
    EXPECT_TRUE(all_equal(rounded_on<B>(x, format), want));
  }
}

TYPED_TEST(Cast, EmptyCallsLaunchNothing) {
  using B = TypeParam;
  const std::uint64_t before = launches_on<B>();
  auto dx = sentinel_buffer<B>(1.0f);
  auto dy = sentinel_buffer<B>(bf16::from_bits(0x1234u));
  cast_on<B>(dx.data(), dy.data(), 0);
  round_on<B>(dx.data(), dx.data(), 0, TensorFormat::f16);
  EXPECT_EQ(launches_on<B>(), before);
  EXPECT_EQ(dy.to_host()[0].bits, 0x1234u);
}

}  // namespace
}  // namespace glia::testing
