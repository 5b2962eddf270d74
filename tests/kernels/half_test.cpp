// The 16-bit float conversions of kernels/half.h against independent references: every f16 and
// bf16 bit pattern round-trips through float; float -> f16 equals the compiler's _Float16
// conversion (round to nearest even, done by the FPU or libgcc) on every special and boundary
// value and on random floats of every exponent; float -> bf16 and float -> TF32 equal the nearest
// representable value chosen in double (ties to even for bf16, away from zero for TF32).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/half.h"

namespace glia {
namespace {

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

// Floats worth converting: zeros, infinities, NaNs, every binary16 boundary and the points just
// around them, and random bit patterns (every exponent equally likely).
std::vector<float> test_floats() {
  std::vector<float> xs = {0.0f,
                           -0.0f,
                           1.0f,
                           -1.0f,
                           65504.0f,
                           65519.0f,
                           65520.0f,
                           65536.0f,
                           1e-8f,
                           2.98e-8f,
                           6.0e-8f,
                           6.103515625e-5f,
                           1e38f,
                           3.4e38f,
                           -65520.0f,
                           std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::denorm_min()};
  for (std::uint32_t h = 0; h < 0x7c00u; ++h) {
    // Each f16 value, and the exact midpoints between neighbours (ties) and a hair around them.
    const float v = f16_bits_to_float(static_cast<std::uint16_t>(h));
    const float next = f16_bits_to_float(static_cast<std::uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(v) + next) / 2);
    for (float x : {v, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      xs.push_back(x);
      xs.push_back(-x);
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) xs.push_back(float_of(rng()));
  return xs;
}

TEST(HalfTest, EveryF16RoundTrips) {
  for (std::uint32_t h = 0; h <= 0xffffu; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float x = f16_bits_to_float(bits);
    _Float16 ref;
    std::memcpy(&ref, &bits, sizeof ref);
    if (std::isnan(static_cast<float>(ref))) {
      ASSERT_TRUE(std::isnan(x)) << std::hex << h;
      ASSERT_TRUE(std::isnan(f16_bits_to_float(float_to_f16_bits(x)))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(bits_of(x), bits_of(static_cast<float>(ref))) << std::hex << h;
    ASSERT_EQ(float_to_f16_bits(x), bits) << std::hex << h;
  }
}

TEST(HalfTest, FloatToF16MatchesTheCompilersConversion) {
  for (float x : test_floats()) {
    const std::uint16_t got = float_to_f16_bits(x);
    const auto ref = static_cast<_Float16>(x);
    std::uint16_t want;
    std::memcpy(&want, &ref, sizeof want);
    if (std::isnan(x)) {
      ASSERT_EQ(got & 0x7c00u, 0x7c00u);
      ASSERT_NE(got & 0x3ffu, 0u);
      ASSERT_EQ(got >> 15, bits_of(x) >> 31);
      continue;
    }
    ASSERT_EQ(got, want) << "x = " << x << " (bits 0x" << std::hex << bits_of(x) << ")";
  }
}

TEST(HalfTest, EveryBf16RoundTrips) {
  for (std::uint32_t b = 0; b <= 0xffffu; ++b) {
    const float x = bf16_bits_to_float(static_cast<std::uint16_t>(b));
    ASSERT_EQ(bits_of(x), b << 16);
    if (std::isnan(x)) {
      ASSERT_TRUE(std::isnan(bf16_bits_to_float(float_to_bf16_bits(x))));
    } else {
      ASSERT_EQ(float_to_bf16_bits(x), b) << std::hex << b;
    }
  }
}

// The representable value nearest to x among lo < hi (x between them), chosen in double; a tie
// goes to `tie`.
float nearest(float x, float lo, float hi, float tie) {
  const double dlo = std::fabs(static_cast<double>(x) - lo);
  const double dhi = std::fabs(static_cast<double>(hi) - x);
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return tie;
}

TEST(HalfTest, FloatToBf16IsNearestEven) {
  for (float x : test_floats()) {
    const float got = bf16_bits_to_float(float_to_bf16_bits(x));
    if (std::isnan(x)) {
      ASSERT_TRUE(std::isnan(got));
      continue;
    }
    if (std::isinf(x)) {
      ASSERT_EQ(got, x);
      continue;
    }
    // Neighbours toward zero and away from it; the largest finite bf16 rounds up to infinity past
    // its halfway point to 2^128, which double holds.
    const std::uint32_t u = bits_of(x);
    const float toward = float_of(u & 0xffff0000u);
    const std::uint32_t up = (u & 0xffff0000u) + 0x10000u;
    const bool up_is_inf = (up & 0x7fffffffu) >= 0x7f800000u;
    const double away = up_is_inf ? std::copysign(std::ldexp(1.0, 128), x) : float_of(up);
    const double dt = std::fabs(static_cast<double>(x) - toward);
    const double da = std::fabs(away - x);
    const bool toward_is_even = ((u >> 16) & 1u) == 0;
    const bool pick_toward = dt < da || (dt == da && toward_is_even);
    const float want = pick_toward ? toward
                       : up_is_inf ? std::copysign(std::numeric_limits<float>::infinity(), x)
                                   : float_of(up);
    ASSERT_EQ(bits_of(got), bits_of(want)) << "x = " << x;
  }
}

TEST(HalfTest, Tf32RoundsToNearestTiesAway) {
  for (float x : test_floats()) {
    if (!std::isfinite(x)) continue;
    const float got = round_to_tf32(x);
    const std::uint32_t u = bits_of(x);
    const float toward = float_of(u & 0xffffe000u);
    const float away = float_of((u & 0xffffe000u) + 0x2000u);
    if (std::isinf(away)) continue;  // beyond TF32's largest finite value: not a product operand
    ASSERT_EQ(bits_of(got), bits_of(nearest(x, toward, away, away))) << "x = " << x;
    ASSERT_EQ(bits_of(got) & 0x1fffu, 0u);
  }
}

TEST(HalfTest, ValueTypesConvertThroughFloat) {
  EXPECT_EQ(static_cast<float>(bf16(1.0f / 3.0f)), bf16_bits_to_float(0x3eabu));
  EXPECT_EQ(static_cast<float>(f16(1.0f / 3.0f)), f16_bits_to_float(0x3555u));
  EXPECT_EQ(f16::from_bits(0x7bffu).bits, 0x7bffu);
  EXPECT_EQ(static_cast<float>(f16(70000.0f)), std::numeric_limits<float>::infinity());
}

}  // namespace
}  // namespace glia
