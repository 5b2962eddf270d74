// The per-lane fragment layouts of mma.sync and ldmatrix in the SIMT emulator: see
// kernels/simt/tensor_core.h for the layouts and the arithmetic. Tested in
// tests/simt/simt_mma_test.cpp.
#include "kernels/simt/tensor_core.h"

#include <bit>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/half.h"

namespace glia::simt::detail {
namespace {

using kernels::TensorFormat;

// One 16-bit element of a register: j = 0 is the low half.
std::uint16_t half_of(std::uint32_t word, int j) {
  return static_cast<std::uint16_t>(word >> (16 * j));
}

double decode16(std::uint16_t bits, TensorFormat f) {
  return f == TensorFormat::bf16 ? bf16_bits_to_float(bits) : f16_bits_to_float(bits);
}

// The hardware reads a TF32 operand from a 32-bit register and ignores its low 13 bits.
double decode_tf32(std::uint32_t word) {
  return std::bit_cast<float>(word & 0xffffe000u);
}

template <int K, TensorFormat F>
void mma(const MatrixWords* in, MatrixWords* out) {
  constexpr bool tf32 = F == TensorFormat::tf32;
  static_assert(K == 16 || K == 8, "m16n8k8 or m16n8k16");
  static_assert(!(tf32 && K == 16), "no dense m16n8k16 for tf32");
  constexpr int a_regs = tf32 ? 4 : K / 4;  // tf32: one element per register
  constexpr int b_regs = tf32 ? 2 : K / 8;
  double a[16][K], b[K][8], c[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane % 4;
    const std::uint32_t* w = in[lane];
    if constexpr (tf32) {
      for (int i = 0; i < 4; ++i) a[g + 8 * (i & 1)][t + 4 * (i >> 1)] = decode_tf32(w[i]);
      for (int i = 0; i < 2; ++i) b[t + 4 * i][g] = decode_tf32(w[4 + i]);
    } else {
      for (int i = 0; i < 2 * a_regs; ++i) {
        const int row = g + 8 * ((i >> 1) & 1), col = 2 * t + (i & 1) + 8 * (i >> 2);
        a[row][col] = decode16(half_of(w[i / 2], i & 1), F);
      }
      for (int i = 0; i < 2 * b_regs; ++i) {
        b[2 * t + (i & 1) + 8 * (i >> 1)][g] = decode16(half_of(w[a_regs + i / 2], i & 1), F);
      }
    }
    for (int i = 0; i < 4; ++i) {
      c[g + 8 * (i >> 1)][2 * t + (i & 1)] = std::bit_cast<float>(w[a_regs + b_regs + i]);
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane % 4;
    for (int i = 0; i < 4; ++i) {
      const int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
      double sum = c[row][col];
      for (int k = 0; k < K; ++k) sum += a[row][k] * b[k][col];
      const auto d = static_cast<float>(sum);
      out[lane][i] = std::bit_cast<std::uint32_t>(d);
    }
  }
}

template <int Num, bool Trans>
void ldmatrix(const MatrixWords* in, MatrixWords* out) {
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane % 4;
    for (int m = 0; m < Num; ++m) {
      if constexpr (Trans) {
        // Elements (2 t, g) and (2 t + 1, g): column g of rows 2 t and 2 t + 1.
        const std::uint32_t lo = half_of(in[8 * m + 2 * t][g / 2], g & 1);
        const std::uint32_t hi = half_of(in[8 * m + 2 * t + 1][g / 2], g & 1);
        out[lane][m] = lo | hi << 16;
      } else {
        out[lane][m] = in[8 * m + g][t];  // elements (g, 2 t) and (g, 2 t + 1)
      }
    }
  }
}

constexpr WarpMatrixOp kMmaTf32K8{"mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", 10, 4,
                                  &mma<8, TensorFormat::tf32>};
constexpr WarpMatrixOp kMmaBf16K8{"mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32", 7, 4,
                                  &mma<8, TensorFormat::bf16>};
constexpr WarpMatrixOp kMmaF16K8{"mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32", 7, 4,
                                 &mma<8, TensorFormat::f16>};
constexpr WarpMatrixOp kMmaBf16K16{"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", 10, 4,
                                   &mma<16, TensorFormat::bf16>};
constexpr WarpMatrixOp kMmaF16K16{"mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", 10, 4,
                                  &mma<16, TensorFormat::f16>};

constexpr WarpMatrixOp kLdmatrix[2][3] = {
    {{"ldmatrix.sync.aligned.m8n8.x1.shared.b16", 4, 1, &ldmatrix<1, false>},
     {"ldmatrix.sync.aligned.m8n8.x2.shared.b16", 4, 2, &ldmatrix<2, false>},
     {"ldmatrix.sync.aligned.m8n8.x4.shared.b16", 4, 4, &ldmatrix<4, false>}},
    {{"ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16", 4, 1, &ldmatrix<1, true>},
     {"ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16", 4, 2, &ldmatrix<2, true>},
     {"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16", 4, 4, &ldmatrix<4, true>}}};

}  // namespace

const WarpMatrixOp& mma_op(int k, TensorFormat format) {
  if (k == 8 && format == TensorFormat::tf32) return kMmaTf32K8;
  if (k == 8 && format == TensorFormat::bf16) return kMmaBf16K8;
  if (k == 8 && format == TensorFormat::f16) return kMmaF16K8;
  if (k == 16 && format == TensorFormat::bf16) return kMmaBf16K16;
  if (k == 16 && format == TensorFormat::f16) return kMmaF16K16;
  throw SimtError(std::string("SIMT error: no mma.sync shape m16n8k") + std::to_string(k) +
                  " for " + kernels::format_name(format));
}

const WarpMatrixOp& ldmatrix_op(int num, bool trans) {
  if (num != 1 && num != 2 && num != 4) {
    throw SimtError("SIMT error: ldmatrix loads 1, 2 or 4 matrices, not " + std::to_string(num));
  }
  return kLdmatrix[trans ? 1 : 0][num == 1 ? 0 : num == 2 ? 1 : 2];
}

}  // namespace glia::simt::detail
