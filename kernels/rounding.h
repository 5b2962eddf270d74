// Rounding of FP32 operands to a lower-precision format while keeping them in float storage: the
// reference semantics of the tf32/bf16/fp16 precisions (engine/precision.h), in the formats of
// kernels/types.h TensorFormat. A product of operands so rounded, accumulated in FP32, is what a
// tensor core computes from TF32/BF16/FP16 inputs.
//   tf32: round_to_tf32 (nearest, ties away, as cvt.rna.tf32.f32)
//   bf16, f16: float -> 16 bits -> float, nearest even (cvt.rn); f16 overflows to infinity
// One function for every backend (host+device), so cpu, sim and cuda round bit for bit alike.
// Tested in tests/kernels/cast_test.cpp.
#pragma once

#include "kernels/half.h"
#include "kernels/types.h"

namespace glia::kernels {

GLIA_HD float round_to_format(float x, TensorFormat format) {
  switch (format) {
    case TensorFormat::tf32:
      return round_to_tf32(x);
    case TensorFormat::bf16:
      return bf16_bits_to_float(float_to_bf16_bits(x));
    case TensorFormat::f16:
      return f16_bits_to_float(float_to_f16_bits(x));
  }
  return x;
}

}  // namespace glia::kernels
