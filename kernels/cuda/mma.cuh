// Warp-level tensor-core instructions, one source for both compilers (DESIGN.md section 3):
//   mma_sync<K, F>(d, a, b, c)      mma.sync.aligned.m16n8k<K>.row.col.f32.<F>.<F>.f32:
//                                   D (16 x 8) = A (16 x K, row) * B (K x 8, col) + C, FP32
//                                   accumulation; K = 8 for tf32, bf16, f16; K = 16 for bf16, f16
//   ldmatrix_sync<Num, Trans>(r, p) ldmatrix.sync.aligned.m8n8.x<Num>[.trans].shared.b16: Num
//                                   8 x 8 matrices of 16-bit elements from shared memory; lanes
//                                   8 m .. 8 m + 7 pass the 16-byte aligned rows of matrix m
//   to_tf32(x), pack_16x2<F>(lo, hi) an operand register from floats: TF32 rounded as cvt.rna
//                                   does (round_to_tf32), or two bf16/f16 rounded to nearest even,
//                                   the lower-index element in the low half
// Each lane holds the fragment elements that the PTX ISA assigns to it (the layouts are listed in
// kernels/simt/tensor_core.h); MmaRegs<K, F> gives the register counts. Every lane of the warp
// must execute the same instruction (there is no mask). Under nvcc for sm_80+ these are inline
// PTX; below sm_80 they trap. In the emulator they meet at a warp rendezvous that checks that all
// 32 lanes arrive at the same call and computes the documented layouts, so a kernel that assumes
// a wrong layout gives wrong results on sim as on a GPU. Tested in tests/simt/simt_mma_test.cpp
// and through kernels/cuda/gemm_tc.cu.
#pragma once

#include "kernels/cuda/portable.cuh"

#include <cstdint>
#include <cstring>

#include "kernels/half.h"
#include "kernels/types.h"

#if !defined(__CUDACC__)
#include "kernels/simt/tensor_core.h"
#endif

namespace glia::kernels::GLIA_KERNEL_NS {

// Registers per lane of the A and B fragments of mma.m16n8k<K> in format F.
template <int K, TensorFormat F>
struct MmaRegs {
  static_assert(K == 8 || (K == 16 && F != TensorFormat::tf32),
                "mma.sync shapes: m16n8k8 for tf32, bf16, f16; m16n8k16 for bf16, f16");
  static constexpr int a = F == TensorFormat::tf32 ? 4 : K / 4;
  static constexpr int b = F == TensorFormat::tf32 ? 2 : K / 8;
};

// A TF32 operand register: x rounded to TF32 (to nearest, ties away), as cvt.rna.tf32.f32 does.
__device__ __forceinline__ std::uint32_t to_tf32(float x) {
  const float r = round_to_tf32(x);
  std::uint32_t u;
  std::memcpy(&u, &r, sizeof u);
  return u;
}

// A .bf16x2 / .f16x2 register: element lo (the lower index) in the low half.
template <TensorFormat F>
__device__ __forceinline__ std::uint32_t pack_16x2(float lo, float hi) {
  static_assert(F == TensorFormat::bf16 || F == TensorFormat::f16, "16-bit formats only");
  if constexpr (F == TensorFormat::bf16) {
    return std::uint32_t{float_to_bf16_bits(lo)} | std::uint32_t{float_to_bf16_bits(hi)} << 16;
  } else {
    return std::uint32_t{float_to_f16_bits(lo)} | std::uint32_t{float_to_f16_bits(hi)} << 16;
  }
}

#if defined(__CUDACC__)

template <int K, TensorFormat F>
__device__ __forceinline__ void mma_sync(float (&d)[4], const std::uint32_t (&a)[MmaRegs<K, F>::a],
                                         const std::uint32_t (&b)[MmaRegs<K, F>::b],
                                         const float (&c)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (K == 8 && F == TensorFormat::tf32) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
          "f"(c[2]), "f"(c[3]));
  } else if constexpr (K == 8 && F == TensorFormat::bf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
        "{%7,%8,%9,%10};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(b[0]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
  } else if constexpr (K == 8 && F == TensorFormat::f16) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, "
        "{%7,%8,%9,%10};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(b[0]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
  } else if constexpr (F == TensorFormat::bf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
          "f"(c[2]), "f"(c[3]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
          "f"(c[2]), "f"(c[3]));
  }
#else
  (void)d, (void)a, (void)b, (void)c;
  __trap();  // tensor-core kernels are built for sm_80 and later only
#endif
}

template <int Num, bool Trans = false>
__device__ __forceinline__ void ldmatrix_sync(std::uint32_t (&r)[Num], const void* row) {
  static_assert(Num == 1 || Num == 2 || Num == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const auto shared = static_cast<unsigned>(__cvta_generic_to_shared(row));
  if constexpr (Num == 1 && !Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"(shared));
  } else if constexpr (Num == 1) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"(shared));
  } else if constexpr (Num == 2 && !Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(shared));
  } else if constexpr (Num == 2) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(shared));
  } else if constexpr (!Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared));
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared));
  }
#else
  (void)r, (void)row;
  __trap();
#endif
}

#else  // the emulator

template <int K, TensorFormat F>
inline void mma_sync(float (&d)[4], const std::uint32_t (&a)[MmaRegs<K, F>::a],
                     const std::uint32_t (&b)[MmaRegs<K, F>::b], const float (&c)[4],
                     std::source_location where = std::source_location::current()) {
  constexpr int na = MmaRegs<K, F>::a, nb = MmaRegs<K, F>::b;
  static const ::glia::simt::detail::WarpMatrixOp& op = ::glia::simt::detail::mma_op(K, F);
  std::uint32_t in[na + nb + 4], out[4];
  std::memcpy(in, a, sizeof a);
  std::memcpy(in + na, b, sizeof b);
  std::memcpy(in + na + nb, c, sizeof c);
  ::glia::simt::detail::warp_matrix(op, in, out, where);
  std::memcpy(d, out, sizeof d);
}

template <int Num, bool Trans = false>
inline void ldmatrix_sync(std::uint32_t (&r)[Num], const void* row,
                          std::source_location where = std::source_location::current()) {
  static_assert(Num == 1 || Num == 2 || Num == 4, "ldmatrix loads 1, 2 or 4 matrices");
  static const ::glia::simt::detail::WarpMatrixOp& op =
      ::glia::simt::detail::ldmatrix_op(Num, Trans);
  const uint3& t = threadIdx;
  const dim3& bd = blockDim;
  const unsigned lane = ((t.z * bd.y + t.y) * bd.x + t.x) % warpSize;
  std::uint32_t words[4] = {};
  if (lane < 8u * Num) {
    // This lane's row is read here, by the lane (so TSan sees the read), before the rendezvous:
    // every read then precedes every lane's departure, as on a GPU.
    ::glia::simt::detail::check_alignment(row, 16, op.name, where);
    ::glia::simt::detail::check_shared(row, 16, op.name, where);
    std::memcpy(words, row, sizeof words);
  }
  ::glia::simt::detail::warp_matrix(op, words, r, where);
}

#endif

}  // namespace glia::kernels::GLIA_KERNEL_NS
