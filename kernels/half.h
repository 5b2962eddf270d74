// The 16-bit floating formats as plain value types shared by every backend: bf16 (bfloat16: 1 sign,
// 8 exponent, 7 fraction bits, FP32's range) and f16 (IEEE binary16: 1, 5, 10; largest finite
// 65504, subnormals down to 2^-24). Each holds its bit pattern; arithmetic goes through float.
// Conversions from float round to nearest, ties to even, as cvt.rn does on a GPU: too large rounds
// to infinity, NaN stays NaN (made quiet, sign kept). Host+device under nvcc (GLIA_HD), so the
// cpu reference, the sim kernels and the cuda kernels convert bit for bit alike.
// Tested in tests/kernels/half_test.cpp (exhaustive f16 and bf16 round trips; float -> f16 against
// the compiler's _Float16, float -> bf16 against nearest-even chosen in double).
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/types.h"

namespace glia {

namespace half_detail {
GLIA_HD std::uint32_t float_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
GLIA_HD float bits_float(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
}  // namespace half_detail

// Float to bfloat16 bits: the top half of the float, rounded to nearest even.
GLIA_HD std::uint16_t float_to_bf16_bits(float x) {
  const std::uint32_t u = half_detail::float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
  const std::uint32_t bias = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + bias) >> 16);
}

GLIA_HD float bf16_bits_to_float(std::uint16_t b) {
  return half_detail::bits_float(static_cast<std::uint32_t>(b) << 16);
}

// Float to binary16 bits, rounded to nearest even, subnormals included.
GLIA_HD std::uint16_t float_to_f16_bits(float x) {
  const std::uint32_t u = half_detail::float_bits(x);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) {  // NaN: quiet, keep the top fraction bits
    return static_cast<std::uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  }
  if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520: infinity
  if (a >= 0x38800000u) {  // normal in binary16 (>= 2^-14)
    std::uint32_t h = ((a >> 23) - 112u) << 10 | ((a >> 13) & 0x3ffu);
    const std::uint32_t rest = a & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry moves into the exponent
    return static_cast<std::uint16_t>(sign | h);
  }
  if (a <= 0x33000000u) return sign;  // at most 2^-25, half the smallest subnormal: ties to 0
  // Subnormal: the value in units of 2^-24 is the 24-bit significand shifted right.
  const std::uint32_t exponent = a >> 23;
  const std::uint32_t significand = (a & 0x7fffffu) | 0x800000u;
  const std::uint32_t shift = 126u - exponent;  // 14 .. 24
  std::uint32_t h = significand >> shift;
  const std::uint32_t rest = significand & ((1u << shift) - 1u);
  const std::uint32_t halfway = 1u << (shift - 1u);
  if (rest > halfway || (rest == halfway && (h & 1u))) ++h;  // may become the smallest normal
  return static_cast<std::uint16_t>(sign | h);
}

GLIA_HD float f16_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t fraction = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: fraction x 2^-24, exact in float.
    const float magnitude = static_cast<float>(fraction) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return half_detail::bits_float(sign | 0x7f800000u | fraction << 13);
  return half_detail::bits_float(sign | (exponent + 112u) << 23 | fraction << 13);
}

// Rounds a float to TF32 (1, 8, 10 bits, kept in a float): to nearest, ties away from zero, as
// cvt.rna.tf32.f32 does. TF32 operands are converted so before a tensor-core product (the tensor
// cores themselves would ignore the low 13 bits, i.e. truncate).
GLIA_HD float round_to_tf32(float x) {
  const std::uint32_t u = half_detail::float_bits(x);
  if ((u & 0x7fffffffu) >= 0x7f800000u) return x;
  return half_detail::bits_float((u + 0x1000u) & 0xffffe000u);
}

struct bf16 {
  std::uint16_t bits = 0;
  bf16() = default;
  GLIA_HD explicit bf16(float x) : bits(float_to_bf16_bits(x)) {}
  GLIA_HD static bf16 from_bits(std::uint16_t b) {
    bf16 v;
    v.bits = b;
    return v;
  }
  GLIA_HD explicit operator float() const { return bf16_bits_to_float(bits); }
};

struct f16 {
  std::uint16_t bits = 0;
  f16() = default;
  GLIA_HD explicit f16(float x) : bits(float_to_f16_bits(x)) {}
  GLIA_HD static f16 from_bits(std::uint16_t b) {
    f16 v;
    v.bits = b;
    return v;
  }
  GLIA_HD explicit operator float() const { return f16_bits_to_float(bits); }
};

static_assert(sizeof(bf16) == 2 && sizeof(f16) == 2);

}  // namespace glia
