// The precision setting (DESIGN.md section 2, beside the kernel policy of engine/policy.h): in
// which format convolutions (conv2d, conv_transpose2d: forward and both backward passes) and GEMMs
// (matmul, hence linear) compute, autocast style. fp32 (default) computes in FP32; tf32, bf16 and
// fp16 round both operands of each product to that format (engine/ops.h round_to_precision,
// kernels/rounding.h) and multiply them with FP32 accumulation into an FP32 result, on every
// device: on cpu and sim that is the reference semantics (emulated, no speed gain), and a tensor
// core given the same operands computes the same products. Tensors stay f32 (f64 tensors, used by
// gradient checks, are never rounded); bias additions, batch norm, softmax, losses and optimisers
// are FP32 whatever the setting, and parameters stay FP32 master weights. With CUDA the setting
// also selects the cuDNN/cuBLAS math (tensor-op math for tf32, bf16 and fp16). Each op reads the
// setting when it runs forward and keeps it for its backward pass. One process-wide setting, like
// the kernel policy: a training run or a server sets it once. Tested in
// tests/engine/precision_test.cpp.
#pragma once

#include <optional>
#include <string_view>

#include "kernels/types.h"

namespace glia {

enum class Precision { fp32, tf32, bf16, fp16 };

const char* precision_name(Precision p);  // "fp32", "tf32", "bf16", "fp16"
// The inverse of precision_name; anything else throws std::invalid_argument naming the value.
Precision parse_precision(std::string_view text);

Precision precision();
void set_precision(Precision p);

// The operand format of a precision's products (kernels/types.h); none for fp32.
std::optional<kernels::TensorFormat> tensor_core_format(Precision p);

// Sets a precision for its scope and restores the previous one on exit.
class ScopedPrecision {
 public:
  explicit ScopedPrecision(Precision p) : previous_(precision()) { set_precision(p); }
  ~ScopedPrecision() { set_precision(previous_); }
  ScopedPrecision(const ScopedPrecision&) = delete;
  ScopedPrecision& operator=(const ScopedPrecision&) = delete;

 private:
  Precision previous_;
};

}  // namespace glia
