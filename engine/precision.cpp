// The precision setting; see precision.h. Tested in tests/engine/precision_test.cpp.
#include "engine/precision.h"

#include <atomic>
#include <stdexcept>
#include <string>

#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/settings.h"
#endif

namespace glia {
namespace {

std::atomic<Precision> g_precision{Precision::fp32};

}  // namespace

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::fp32:
      return "fp32";
    case Precision::tf32:
      return "tf32";
    case Precision::bf16:
      return "bf16";
    case Precision::fp16:
      return "fp16";
  }
  return "?";
}

Precision parse_precision(std::string_view text) {
  for (const Precision p : {Precision::fp32, Precision::tf32, Precision::bf16, Precision::fp16}) {
    if (text == precision_name(p)) return p;
  }
  throw std::invalid_argument("unknown precision '" + std::string(text) +
                              "': expected fp32, tf32, bf16 or fp16");
}

std::optional<kernels::TensorFormat> tensor_core_format(Precision p) {
  switch (p) {
    case Precision::fp32:
      return std::nullopt;
    case Precision::tf32:
      return kernels::TensorFormat::tf32;
    case Precision::bf16:
      return kernels::TensorFormat::bf16;
    case Precision::fp16:
      return kernels::TensorFormat::f16;
  }
  return std::nullopt;
}

Precision precision() {
  return g_precision.load();
}

void set_precision(Precision p) {
  g_precision.store(p);
#if defined(GLIA_HAVE_CUDA)
  // The operands cuDNN and cuBLAS receive are already rounded; tensor-op math lets them use tensor
  // cores on them (bf16 and f16 values convert to TF32 exactly).
  kernels::cudnn::Settings s = kernels::cudnn::settings();
  s.math = p == Precision::fp32 ? kernels::cudnn::Math::fp32 : kernels::cudnn::Math::tf32;
  kernels::cudnn::set_settings(s);
#endif
}

}  // namespace glia
