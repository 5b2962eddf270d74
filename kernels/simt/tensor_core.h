// The SIMT emulator's tensor-core instructions, as the PTX ISA defines them per lane (section
// "Warp Level Matrix Multiply-Accumulate Instructions": "Matrix Fragments for mma.m16n8k8",
// "Matrix Fragments for mma.m16n8k16 with floating point type", and "ldmatrix"): the ops that
// kernels/cuda/mma.cuh hands to warp_matrix (kernels/simt/simt.h) in the sim build. With
// groupID = lane >> 2 and threadID_in_group = lane % 4 (g and t below):
//   mma.m16n8k8 .tf32   A 4 regs: (g + 8 (i & 1), t + 4 (i >> 1)); B 2 regs: (t + 4 i, g)
//   mma.m16n8k8 .f16/.bf16  A 2 regs of 2 (low half first), element i:
//                       (g + 8 (i >> 1), 2 t + (i & 1)); B 1 reg, element i: (2 t + i, g)
//   mma.m16n8k16 .f16/.bf16 A 4 regs, element i: (g + 8 ((i >> 1) & 1), 2 t + (i & 1) + 8 (i >>
//   2));
//                       B 2 regs, element i: (2 t + (i & 1) + 8 (i >> 1), g)
//   C and D (f32), element i: (g + 8 (i >> 1), 2 t + (i & 1))
//   ldmatrix .m8n8 .x1/.x2/.x4 .b16: lanes 8 m .. 8 m + 7 give the row addresses of matrix m;
//                       register m of lane l holds elements (l >> 2, 2 (l % 4) + j) of matrix m,
//                       or with .trans elements (2 (l % 4) + j, l >> 2); j = 0 in the low half.
// D = A * B + C is computed from the operands' exact values (a TF32 operand's low 13 bits are
// ignored, as the hardware does: so a kernel must round with cvt.rna first), C and the products
// summed in double and rounded to float once: an order-free model of the FP32 accumulation.
// Tested in tests/simt/simt_mma_test.cpp.
#pragma once

#include "kernels/simt/simt.h"
#include "kernels/types.h"

namespace glia::simt::detail {

// mma.sync.aligned.m16n8k<k>.row.col.f32.<format>.<format>.f32 for k = 8 (tf32, bf16, f16) and
// k = 16 (bf16, f16). Words in: A's registers, then B's, then C's 4 floats; out: D's 4 floats.
const WarpMatrixOp& mma_op(int k, kernels::TensorFormat format);

// ldmatrix.sync.aligned.m8n8.x<num>[.trans].shared.b16 for num = 1, 2, 4. Words in: the 4 words
// of the row that the lane addresses (lanes below 8 num); out: the lane's num registers.
const WarpMatrixOp& ldmatrix_op(int num, bool trans);

}  // namespace glia::simt::detail
