// Names and sizes of the element types; see dtype.h. Tested in tests/engine/device_test.cpp.
#include "engine/dtype.h"

namespace glia {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::i32:
      return "i32";
    case DType::u8:
      return "u8";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
  }
  return "?";
}

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::i32:
      return 4;
    case DType::u8:
      return 1;
    case DType::bf16:
    case DType::f16:
      return 2;
  }
  return 0;
}

}  // namespace glia
