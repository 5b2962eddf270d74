// Declarations of the kernels/cuda launch wrappers for both compilations of the same source: the
// GPU one (glia::kernels::cuda, only when built with CUDA) and the emulated one
// (glia::kernels::sim). The list itself is launchers.inc. Tested in tests/kernels/*.
#pragma once

#include <cstdint>

#include "kernels/conv_shape.h"
#include "kernels/types.h"

namespace glia::kernels::sim {
#include "kernels/cuda/launchers.inc"
}  // namespace glia::kernels::sim

#if defined(GLIA_HAVE_CUDA)
namespace glia::kernels::cuda {
#include "kernels/cuda/launchers.inc"
}  // namespace glia::kernels::cuda
#endif
