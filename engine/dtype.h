// Element types of a Tensor: f32 (the working type on every device), f64 (cpu only, for gradient
// checks), bf16 and f16 (16-bit storage formats of kernels/half.h: casts and file I/O only, no
// arithmetic), i32 (indices, labels) and u8 (masks, images). Maps C++ types to DType and back.
// Tested in tests/engine/device_test.cpp and tests/engine/half_tensor_test.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/half.h"

namespace glia {

enum class DType { f32, f64, i32, u8, bf16, f16 };

const char* dtype_name(DType t);
std::size_t dtype_size(DType t);
inline bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16;
}
// bf16 or f16: floating, but only cast and stored, never computed with.
inline bool is_half(DType t) {
  return t == DType::bf16 || t == DType::f16;
}

// The DType of a C++ element type; only the six supported types have one.
template <class T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct dtype_of<double> {
  static constexpr DType value = DType::f64;
};
template <>
struct dtype_of<std::int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct dtype_of<std::uint8_t> {
  static constexpr DType value = DType::u8;
};
template <>
struct dtype_of<bf16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct dtype_of<f16> {
  static constexpr DType value = DType::f16;
};
template <class T>
inline constexpr DType dtype_v = dtype_of<T>::value;

}  // namespace glia
