// Matrix products through the gemm kernels (row-major, batched; kernels/types.h GemmShape):
// C[b] = A[b] B[b] with A [m, k], B [k, n]. Backward without explicit transposes, through the
// kernels' transpose flags: dA = dC B^T, dB = A^T dC. cpu runs the BLAS-backed reference, sim
// our kernel under the emulator, cuda our kernel or cuBLAS by the gemm policy (engine/policy.h).
// Under a tf32/bf16/fp16 precision (engine/precision.h) both operands of each of the three
// products are rounded to that format first; the precision of the forward also serves its backward.
// On sim and cuda the native path then runs the tensor-core GEMM (kernels/cuda/gemm_tc.cu) in that
// format, which computes the same products of the rounded operands with FP32 accumulation.
// Tested in tests/engine/ops_test.cpp, policy_test.cpp and precision_test.cpp.
#include <stdexcept>
#include <string>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"
#include "engine/ops/policy_runner.h"

#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/gemm.h"
#endif

namespace glia {
namespace {

// C = op(A) op(B) for 2D operands or 3D ones with one batch size; records nothing.
Tensor gemm(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b,
            std::optional<KernelPolicy> policy, Precision prec) {
  const bool batched = a.dim() == 3;
  const index_t ra = a.size(-2), ca = a.size(-1), rb = b.size(-2), cb = b.size(-1);
  kernels::GemmShape s;
  s.m = trans_a ? ca : ra;
  s.k = trans_a ? ra : ca;
  s.n = trans_b ? rb : cb;
  s.trans_a = trans_a;
  s.trans_b = trans_b;
  s.lda = ca;
  s.ldb = cb;
  s.ldc = s.n;
  s.batch = batched ? a.size(0) : 1;
  s.stride_a = ra * ca;
  s.stride_b = rb * cb;
  s.stride_c = s.m * s.n;
  const Shape out_shape = batched ? Shape{s.batch, s.m, s.n} : Shape{s.m, s.n};
  Tensor c(out_shape, a.dtype(), a.device());
  if (c.numel() == 0) return c;
  if (s.k == 0) {
    fill_(c, 0.0);
    return c;
  }
  ops::dispatch_float("matmul", a.device(), a.dtype(), [&]<class T>(auto backend) {
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = c.data<T>();
    // Both write the same C (beta is 0), so auto_select may time them in place.
    const AutotuneKey key{s.m, s.n, s.k, s.trans_a, s.trans_b, s.lda, s.ldb, s.ldc, s.batch};
    ops::run_with_policy(
        OpFamily::gemm, policy, key, backend,
        [&] {
          if constexpr (ops::kernel::has_tensor_cores<decltype(backend)>) {
            if (const auto format = tensor_core_format(prec)) {
              ops::kernel::gemm_tc(backend, s, *format, ap, bp, cp);
              return;
            }
          }
          ops::kernel::gemm(backend, s, ap, bp, cp);
        },
        GLIA_CUDNN(
            [&](auto ctx) { kernels::cudnn::gemm(ctx.cublas(), s, ap, bp, cp, ctx.stream); }));
  });
  return c;
}

[[noreturn]] void bad_shapes(const Tensor& a, const Tensor& b, const std::string& why) {
  throw std::invalid_argument("matmul of " + a.describe() + " and " + b.describe() + ": " + why);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, std::optional<KernelPolicy> policy) {
  ops::check_compatible("matmul", a, b);
  ops::check_floating("matmul", a);
  const bool shared_right = a.dim() == 3 && b.dim() == 2;
  if (!((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3) || shared_right)) {
    bad_shapes(a, b, "supported are [m, k] x [k, n], [b, m, k] x [b, k, n] and [b, m, k] x [k, n]");
  }
  if (a.size(-1) != b.size(-2)) {
    bad_shapes(a, b,
               "inner dims differ (" + std::to_string(a.size(-1)) + " vs " +
                   std::to_string(b.size(-2)) + ")");
  }
  if (a.dim() == 3 && b.dim() == 3 && a.size(0) != b.size(0)) {
    bad_shapes(a, b,
               "batch sizes differ (" + std::to_string(a.size(0)) + " vs " +
                   std::to_string(b.size(0)) + ")");
  }
  if (shared_right) {
    // A shared right operand (a linear layer over a batch): one [batch * m, k] x [k, n] product.
    const index_t batch = a.size(0), m = a.size(1);
    return matmul(a.reshape({batch * m, a.size(2)}), b, policy).reshape({batch, m, b.size(1)});
  }
  const Precision prec = precision();
  const Tensor ar = round_to_precision(a, prec), br = round_to_precision(b, prec);
  Tensor c = gemm(ar, br, false, false, policy, prec);
  if (needs_grad({a, b})) {
    // Saved as rounded (the originals' versions are still checked), so backward rounds gc only.
    record("matmul", c, {a, b},
           {b.requires_grad() ? a : Tensor(), a.requires_grad() ? b : Tensor()},
           [as = ar.detach(), bs = br.detach(), ga = a.requires_grad(), gb = b.requires_grad(),
            policy, prec](const Tensor& gc) {
             const Tensor g = round_to_precision(gc, prec);
             return std::vector<Tensor>{ga ? gemm(g, bs, false, true, policy, prec) : Tensor(),
                                        gb ? gemm(as, g, true, false, policy, prec) : Tensor()};
           });
  }
  return c;
}

}  // namespace glia
