// The process-wide choices that the cuDNN / cuBLAS fallbacks make the same way for every call:
//   math           fp32 (default): FP32 FMA arithmetic only (cuDNN CUDNN_FMA_MATH, cuBLAS
//                  CUBLAS_DEFAULT_MATH, which never lowers FP32 to TF32), so results match the
//                  native float kernels; tf32: tensor cores with TF32 inputs and FP32 accumulation
//                  allowed (CUDNN_TENSOR_OP_MATH, CUBLAS_TF32_TENSOR_OP_MATH). The default follows
//                  PyTorch's matmul default (torch.backends.cuda.matmul.allow_tf32 = False), not
//                  its convolution default (cudnn.allow_tf32 = True): one rule for both families.
//   deterministic  true (default): only convolution algorithms that cuDNN reports
//                  CUDNN_DETERMINISTIC (backward filter algorithms 0 and 3 and backward data
//                  algorithm 0 accumulate with atomics) and CUDNN_POOLING_MAX_DETERMINISTIC.
//   find           false (default): cuDNN's heuristics (cudnnGet*Algorithm_v7) pick a convolution
//                  algorithm; true: cudnnFind* times the candidates (as cudnn.benchmark). Either
//                  way once per shape: the choice and the descriptors are cached (conv.cpp).
// Tested in tests/kernels/conv_test.cpp (the Cuda cases; compile-only without a GPU).
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <string>

namespace glia::kernels::cudnn {

enum class Math { fp32, tf32 };

struct Settings {
  Math math = Math::fp32;
  bool deterministic = true;
  bool find = false;

  bool operator==(const Settings&) const = default;
};

// The settings now in force; set_settings replaces them for the calls that follow (thread-safe;
// plans cached under other settings stay cached under those).
Settings settings();
void set_settings(const Settings& s);

// "fp32" / "tf32"; parse_math throws std::invalid_argument naming the value otherwise.
const char* math_name(Math m);
Math parse_math(const std::string& name);

// The cuBLAS math mode for m (set on the handle before each GEMM).
cublasMath_t cublas_math(Math m);

}  // namespace glia::kernels::cudnn
