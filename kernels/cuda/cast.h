// Launch wrappers of kernels/cuda/cast.cu for both compilations (glia::kernels::cuda under CUDA,
// glia::kernels::sim always): casts between float and the 16-bit formats of kernels/half.h, and
// rounding of float operands to a lower-precision format in float storage (kernels/rounding.h).
// Every pointer is device memory of the backend; calls are asynchronous on `stream`.
// Tested in tests/kernels/cast_test.cpp against kernels/cpu/cast.cpp.
#pragma once

#include "kernels/half.h"
#include "kernels/rounding.h"
#include "kernels/types.h"

#define GLIA_CAST_LAUNCHERS                                     \
  void cast(const float* x, bf16* y, index_t n, Stream stream); \
  void cast(const float* x, f16* y, index_t n, Stream stream);  \
  void cast(const bf16* x, float* y, index_t n, Stream stream); \
  void cast(const f16* x, float* y, index_t n, Stream stream);  \
  /* y[i] = round_to_format(x[i], format); y may be x. */       \
  void round_to_format(const float* x, float* y, index_t n, TensorFormat format, Stream stream);

namespace glia::kernels::sim {
GLIA_CAST_LAUNCHERS
}  // namespace glia::kernels::sim

#if defined(GLIA_HAVE_CUDA)
namespace glia::kernels::cuda {
GLIA_CAST_LAUNCHERS
}  // namespace glia::kernels::cuda
#endif

#undef GLIA_CAST_LAUNCHERS
