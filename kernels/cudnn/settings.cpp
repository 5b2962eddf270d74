// The cuDNN / cuBLAS settings of kernels/cudnn/settings.h, held behind a mutex. Tested in
// tests/kernels/conv_test.cpp (compile-only without a GPU).
#include "kernels/cudnn/settings.h"

#include <mutex>
#include <stdexcept>

namespace glia::kernels::cudnn {
namespace {

std::mutex& settings_mutex() {
  static std::mutex m;
  return m;
}

Settings& current() {
  static Settings s;
  return s;
}

}  // namespace

Settings settings() {
  const std::lock_guard<std::mutex> lock(settings_mutex());
  return current();
}

void set_settings(const Settings& s) {
  const std::lock_guard<std::mutex> lock(settings_mutex());
  current() = s;
}

const char* math_name(Math m) {
  return m == Math::tf32 ? "tf32" : "fp32";
}

Math parse_math(const std::string& name) {
  if (name == "fp32") return Math::fp32;
  if (name == "tf32") return Math::tf32;
  throw std::invalid_argument("math: expected fp32 or tf32, got '" + name + "'");
}

cublasMath_t cublas_math(Math m) {
  return m == Math::tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
}

}  // namespace glia::kernels::cudnn
