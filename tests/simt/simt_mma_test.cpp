// Tests of the tensor-core wrappers (kernels/cuda/mma.cuh) on the SIMT emulator: for each mma
// shape and format a one-warp kernel loads A (16 x K), B (K x 8) and C into fragments by the PTX
// ISA's documented layouts, runs mma_sync and stores D; D is compared with a plain matrix product
// on the host from the same rounded operands, under every lane order. Kernels that load a
// fragment wrongly (A's registers in another order, B read transposed) must give a result that
// differs, so the layout check cannot pass vacuously. ldmatrix (x1, x2, x4, with and without
// .trans) is compared with direct shared-memory reads, and ldmatrix feeding mma_sync with the
// product. Misuse (a lane that exits, a warp of 16 threads, two formats at one rendezvous, half a
// warp at a __syncwarp, misaligned or global ldmatrix rows) is a SimtError naming the kernel, the
// instruction and the call site.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "kernels/cuda/portable.cuh"

#include "kernels/cuda/mma.cuh"
#include "kernels/half.h"

namespace glia::simt::testing {
namespace {

using kernels::TensorFormat;
using kernels::sim::ldmatrix_sync;
using kernels::sim::mma_sync;
using kernels::sim::MmaRegs;
using kernels::sim::pack_16x2;
using kernels::sim::to_tf32;

const Config kOrders[] = {Config{LaneOrder::forward, 0, 0}, Config{LaneOrder::reverse, 0, 0},
                          Config{LaneOrder::random, 3, 0}};

template <class F>
std::string error_of(F launch) {
  try {
    launch();
  } catch (const SimtError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no SimtError was thrown";
  return {};
}

bool contains(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern));
}

const std::string kSite = "[^ ]*simt_mma_test\\.cpp:[0-9]+";

// How a test kernel fills its fragments: as documented, or with one planted mistake.
enum class Load {
  documented,
  a_regs_swapped,  // A's registers 1 and 2 exchanged (rows and columns halves confused)
  b_transposed,    // B read as if stored column-major (element (k, n) from b[n * K + k])
};

// The element of A that register element i of lane (g, t) holds, per the PTX ISA.
template <int K, TensorFormat F>
void a_position(int i, int g, int t, int& row, int& col) {
  if constexpr (F == TensorFormat::tf32) {
    row = g + 8 * (i & 1);
    col = t + 4 * (i >> 1);
  } else {
    row = g + 8 * ((i >> 1) & 1);
    col = 2 * t + (i & 1) + 8 * (i >> 2);
  }
}

template <int K, TensorFormat F>
void b_position(int i, int g, int t, int& row, int& col) {
  row = F == TensorFormat::tf32 ? t + 4 * i : 2 * t + (i & 1) + 8 * (i >> 1);
  col = g;
}

template <TensorFormat F>
__device__ std::uint32_t reg_from(const float* x, int lo, int hi) {
  if constexpr (F == TensorFormat::tf32) {
    return to_tf32(x[lo]);
  } else {
    return pack_16x2<F>(x[lo], x[hi]);
  }
}

// One warp: a 16 x K row-major, b K x 8 row-major, c and d 16 x 8 row-major.
template <int K, TensorFormat F>
__global__ void mma_kernel(const float* a, const float* b, const float* c, float* d, Load load) {
  constexpr int na = MmaRegs<K, F>::a, nb = MmaRegs<K, F>::b;
  constexpr int per = F == TensorFormat::tf32 ? 1 : 2;  // elements per register
  const int lane = static_cast<int>(threadIdx.x), g = lane >> 2, t = lane % 4;
  std::uint32_t ra[na], rb[nb];
  for (int r = 0; r < na; ++r) {
    int index[2] = {0, 0};
    for (int j = 0; j < per; ++j) {
      int row = 0, col = 0;
      a_position<K, F>(per * r + j, g, t, row, col);
      index[j] = row * K + col;
    }
    ra[r] = reg_from<F>(a, index[0], per == 2 ? index[1] : index[0]);
  }
  if (load == Load::a_regs_swapped) {
    const std::uint32_t keep = ra[1];
    ra[1] = ra[2 % na];
    ra[2 % na] = keep;
  }
  for (int r = 0; r < nb; ++r) {
    int index[2] = {0, 0};
    for (int j = 0; j < per; ++j) {
      int row = 0, col = 0;
      b_position<K, F>(per * r + j, g, t, row, col);
      index[j] = load == Load::b_transposed ? col * K + row : row * 8 + col;
    }
    rb[r] = reg_from<F>(b, index[0], per == 2 ? index[1] : index[0]);
  }
  float rc[4], rd[4];
  for (int i = 0; i < 4; ++i) rc[i] = c[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
  mma_sync<K, F>(rd, ra, rb, rc);
  for (int i = 0; i < 4; ++i) d[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = rd[i];
}

float round_to(TensorFormat f, float x) {
  switch (f) {
    case TensorFormat::tf32:
      return round_to_tf32(x);
    case TensorFormat::bf16:
      return static_cast<float>(bf16(x));
    case TensorFormat::f16:
      return static_cast<float>(f16(x));
  }
  return x;
}

std::vector<float> random_matrix(std::size_t n, TensorFormat f, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> x(n);
  for (float& v : x) v = round_to(f, dist(rng));
  return x;
}

struct Product {
  std::vector<float> a, b, c;
};

// The largest |got - want| over D relative to its bound: FP32 accumulation of K exact products
// and C in any order errs by at most (K + 1) u sum(|a b|) + |c|), u = 2^-24, to first order (the
// operands are exact in their format and their products exact in FP32); > 1 fails.
template <int K>
double worst_error(const Product& p, const std::vector<float>& d) {
  double worst = 0.0;
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 8; ++n) {
      double want = p.c[m * 8 + n], magnitude = std::fabs(want);
      for (int k = 0; k < K; ++k) {
        want += double{p.a[m * K + k]} * p.b[k * 8 + n];
        magnitude += std::fabs(double{p.a[m * K + k]} * p.b[k * 8 + n]);
      }
      const double bound = (K + 1) * std::ldexp(magnitude, -24) + 1e-30;
      const double got = d[m * 8 + n];
      worst = std::isnan(got) ? INFINITY : std::max(worst, std::fabs(got - want) / bound);
    }
  }
  return worst;
}

template <int K, TensorFormat F>
void check_mma_shape() {
  std::mt19937 rng(K * 10 + static_cast<int>(F));
  const Product p{random_matrix(16 * K, F, rng), random_matrix(K * 8, F, rng),
                  random_matrix(16 * 8, TensorFormat::tf32, rng)};
  for (const Config& config : kOrders) {
    ScopedConfig scoped(config);
    std::vector<float> d(16 * 8, NAN);
    GLIA_LAUNCH((mma_kernel<K, F>), 1, 32, 0, nullptr, p.a.data(), p.b.data(), p.c.data(), d.data(),
                Load::documented);
    EXPECT_LE(worst_error<K>(p, d), 1.0) << "order " << static_cast<int>(config.order);
  }
  // The planted mistakes must be caught: their results are far outside the bound.
  for (const Load wrong : {Load::a_regs_swapped, Load::b_transposed}) {
    std::vector<float> d(16 * 8, NAN);
    GLIA_LAUNCH((mma_kernel<K, F>), 1, 32, 0, nullptr, p.a.data(), p.b.data(), p.c.data(), d.data(),
                wrong);
    EXPECT_GT(worst_error<K>(p, d), 1e3) << "wrong load " << static_cast<int>(wrong);
  }
}

TEST(SimtMmaTest, M16N8K8Tf32MatchesTheHostProduct) {
  check_mma_shape<8, TensorFormat::tf32>();
}
TEST(SimtMmaTest, M16N8K8Bf16MatchesTheHostProduct) {
  check_mma_shape<8, TensorFormat::bf16>();
}
TEST(SimtMmaTest, M16N8K8F16MatchesTheHostProduct) {
  check_mma_shape<8, TensorFormat::f16>();
}
TEST(SimtMmaTest, M16N8K16Bf16MatchesTheHostProduct) {
  check_mma_shape<16, TensorFormat::bf16>();
}
TEST(SimtMmaTest, M16N8K16F16MatchesTheHostProduct) {
  check_mma_shape<16, TensorFormat::f16>();
}

// Every lane passes the raw bits of x (not rounded) as all its A and B registers.
__global__ void tf32_raw_kernel(float x, float* d) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const std::uint32_t a[4] = {bits, bits, bits, bits}, b[2] = {bits, bits};
  const float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float out[4];
  mma_sync<8, TensorFormat::tf32>(out, a, b, c);
  d[threadIdx.x] = out[0];
}

TEST(SimtMmaTest, Tf32IgnoresTheLow13BitsOfAnUnroundedOperand) {
  // 1 + 2^-11 + 2^-20: TF32 keeps 10 fraction bits, so the hardware reads 1 (truncation) where
  // cvt.rna would give 1 + 2^-10.
  const float x = 1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20);
  std::vector<float> d(32, NAN);
  GLIA_LAUNCH(tf32_raw_kernel, 1, 32, 0, nullptr, x, d.data());
  for (float v : d) EXPECT_EQ(v, 8.0f);  // 8 products of 1 * 1
}

// --- ldmatrix ----------------------------------------------------------------------------------
// Shared memory holds 32 rows of 8 16-bit values (4 matrices); lane l passes the address of row
// rows[l] (a permutation, as rows need not be contiguous). Each lane stores what ldmatrix gave
// and what the documented layout reads directly from shared memory.
template <int Num, bool Trans>
__global__ void ldmatrix_kernel(const std::uint16_t* values, const int* rows, std::uint32_t* got,
                                std::uint32_t* direct) {
  GLIA_STATIC_SHARED(std::uint16_t[32][8], tile);
  const int lane = static_cast<int>(threadIdx.x), g = lane >> 2, t = lane % 4;
  for (int i = 0; i < 8; ++i) tile[lane][i] = values[lane * 8 + i];
  __syncwarp();
  std::uint32_t r[Num];
  ldmatrix_sync<Num, Trans>(r, &tile[rows[lane]][0]);
  for (int m = 0; m < Num; ++m) {
    // Matrix m's row q is the one lane 8 m + q addressed.
    const auto element = [&](int q, int col) { return tile[rows[8 * m + q]][col]; };
    const std::uint32_t lo = Trans ? element(2 * t, g) : element(g, 2 * t);
    const std::uint32_t hi = Trans ? element(2 * t + 1, g) : element(g, 2 * t + 1);
    got[lane * 4 + m] = r[m];
    direct[lane * 4 + m] = lo | hi << 16;
  }
}

template <int Num, bool Trans>
void check_ldmatrix() {
  std::mt19937 rng(Num * 2 + Trans);
  std::vector<std::uint16_t> values(32 * 8);
  for (auto& v : values) v = static_cast<std::uint16_t>(rng());
  std::vector<int> rows(32);
  for (int i = 0; i < 32; ++i) rows[i] = (i * 11 + 5) % 32;
  for (const Config& config : kOrders) {
    ScopedConfig scoped(config);
    std::vector<std::uint32_t> got(32 * 4, 0), direct(32 * 4, 1);
    GLIA_LAUNCH((ldmatrix_kernel<Num, Trans>), 1, 32, 0, nullptr, values.data(), rows.data(),
                got.data(), direct.data());
    for (int lane = 0; lane < 32; ++lane) {
      for (int m = 0; m < Num; ++m) {
        ASSERT_EQ(got[lane * 4 + m], direct[lane * 4 + m]) << "lane " << lane << " matrix " << m;
      }
    }
  }
}

TEST(SimtMmaTest, LdmatrixMatchesSharedMemoryReads) {
  check_ldmatrix<1, false>();
  check_ldmatrix<2, false>();
  check_ldmatrix<4, false>();
}
TEST(SimtMmaTest, LdmatrixTransMatchesSharedMemoryReads) {
  check_ldmatrix<1, true>();
  check_ldmatrix<2, true>();
  check_ldmatrix<4, true>();
}

// The usual pairing: A (16 x 16 row-major bf16 in shared memory) by ldmatrix.x4, B (16 x 8
// row-major, i.e. k-major) by ldmatrix.x2.trans, then mma m16n8k16.
__global__ void ldmatrix_mma_kernel(const float* a, const float* b, float* d) {
  GLIA_STATIC_SHARED(std::uint16_t[16][16], sa);
  GLIA_STATIC_SHARED(std::uint16_t[16][8], sb);
  const int lane = static_cast<int>(threadIdx.x), g = lane >> 2, t = lane % 4;
  for (int i = lane; i < 256; i += 32) sa[i / 16][i % 16] = float_to_bf16_bits(a[i]);
  for (int i = lane; i < 128; i += 32) sb[i / 8][i % 8] = float_to_bf16_bits(b[i]);
  __syncwarp();
  // Matrices of A: rows 0-7 cols 0-7, rows 8-15 cols 0-7, rows 0-7 cols 8-15, rows 8-15 cols
  // 8-15 (registers a0..a3); of B: k 0-7 and k 8-15.
  std::uint32_t ra[4], rb[2];
  ldmatrix_sync<4>(ra, &sa[lane % 16][8 * (lane / 16)]);
  ldmatrix_sync<2, true>(rb, &sb[lane % 16][0]);
  const float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float rd[4];
  mma_sync<16, TensorFormat::bf16>(rd, ra, rb, c);
  for (int i = 0; i < 4; ++i) d[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = rd[i];
}

TEST(SimtMmaTest, LdmatrixFeedsMmaWithTheDocumentedFragments) {
  std::mt19937 rng(7);
  const Product p{random_matrix(256, TensorFormat::bf16, rng),
                  random_matrix(128, TensorFormat::bf16, rng), std::vector<float>(128, 0.0f)};
  for (const Config& config : kOrders) {
    ScopedConfig scoped(config);
    std::vector<float> d(128, NAN);
    GLIA_LAUNCH(ldmatrix_mma_kernel, 1, 32, 0, nullptr, p.a.data(), p.b.data(), d.data());
    EXPECT_LE(worst_error<16>(p, d), 1.0);
  }
}

// --- Misuse ------------------------------------------------------------------------------------
__global__ void mma_with_early_exit(float* d, int missing_lane) {
  if (static_cast<int>(threadIdx.x) == missing_lane) return;
  const std::uint32_t a[4] = {}, b[2] = {};
  const float c[4] = {};
  float out[4];
  mma_sync<16, TensorFormat::f16>(out, a, b, c);
  d[threadIdx.x] = out[0];
}

TEST(SimtMmaTest, ALaneThatExitedIsAnError) {
  std::vector<float> d(64);
  const std::string e =
      error_of([&] { GLIA_LAUNCH(mma_with_early_exit, 1, 32, 0, nullptr, d.data(), 31); });
  EXPECT_TRUE(contains(e, "kernel `mma_with_early_exit` launched at " + kSite)) << e;
  EXPECT_TRUE(contains(e,
                       "lanes 0-30 wait at mma\\.sync\\.aligned\\.m16n8k16\\.row\\.col\\.f32"
                       "\\.f16\\.f16\\.f32 \\(" +
                           kSite + "\\).*lane 31 \\(thread \\(31,0,0\\)\\) has exited"))
      << e;
}

TEST(SimtMmaTest, AWarpOfFewerThan32ThreadsIsAnError) {
  std::vector<float> d(64);
  const std::string e =
      error_of([&] { GLIA_LAUNCH(mma_with_early_exit, 1, 16, 0, nullptr, d.data(), -1); });
  EXPECT_TRUE(contains(e, "calls mma\\.sync[^ ]* \\(" + kSite +
                              "\\), which needs all 32 lanes of the warp, but the warp has only "
                              "lanes 0-15"))
      << e;
}

// Lanes below 16 use one format, the others another: a mismatched shape at the rendezvous.
__global__ void mma_formats_differ(float* d) {
  const std::uint32_t a[4] = {}, b[2] = {};
  const float c[4] = {};
  float out[4];
  if (threadIdx.x < 16) {
    mma_sync<16, TensorFormat::bf16>(out, a, b, c);
  } else {
    mma_sync<16, TensorFormat::f16>(out, a, b, c);
  }
  d[threadIdx.x] = out[0];
}

TEST(SimtMmaTest, MismatchedShapesAreAnError) {
  std::vector<float> d(32);
  const std::string e =
      error_of([&] { GLIA_LAUNCH(mma_formats_differ, 1, 32, 0, nullptr, d.data()); });
  EXPECT_TRUE(contains(e,
                       "lanes 0-15 wait at mma\\.sync\\.aligned\\.m16n8k16\\.row\\.col\\.f32"
                       "\\.bf16[^ ]* \\(" +
                           kSite + "\\).*arrives at mma\\.sync[^ ]*\\.f16\\.f16\\.f32"))
      << e;
}

// Half the warp at the mma, the other half at a __syncwarp of the whole warp: a partial warp.
__global__ void mma_half_warp(float* d) {
  const std::uint32_t a[4] = {}, b[2] = {};
  const float c[4] = {};
  float out[4] = {};
  if (threadIdx.x < 16) {
    mma_sync<16, TensorFormat::bf16>(out, a, b, c);
  } else {
    __syncwarp();
  }
  d[threadIdx.x] = out[0];
}

TEST(SimtMmaTest, HalfAWarpAtTheInstructionIsAnError) {
  std::vector<float> d(32);
  const std::string e = error_of([&] { GLIA_LAUNCH(mma_half_warp, 1, 32, 0, nullptr, d.data()); });
  EXPECT_TRUE(contains(e, "`mma_half_warp`")) << e;
  EXPECT_TRUE(contains(e, "mma\\.sync[^ ]* \\(" + kSite + "\\) with mask 0xffffffff.*__syncwarp"))
      << e;
}

__global__ void ldmatrix_bad_row(const std::uint16_t* global, int offset, std::uint32_t* out) {
  GLIA_STATIC_SHARED(std::uint16_t[8][16], tile);
  if (threadIdx.x < 8) {
    for (int i = 0; i < 16; ++i) tile[threadIdx.x][i] = 0;
  }
  __syncwarp();
  std::uint32_t r[1];
  const std::uint16_t* row = global != nullptr ? global : &tile[threadIdx.x % 8][offset];
  ldmatrix_sync<1>(r, row);
  out[threadIdx.x] = r[0];
}

TEST(SimtMmaTest, MisalignedOrGlobalLdmatrixRowsAreErrors) {
  std::vector<std::uint32_t> out(32);
  const std::string misaligned =
      error_of([&] { GLIA_LAUNCH(ldmatrix_bad_row, 1, 32, 0, nullptr, nullptr, 1, out.data()); });
  EXPECT_TRUE(contains(misaligned, "ldmatrix\\.sync\\.aligned\\.m8n8\\.x1\\.shared\\.b16 at " +
                                       kSite + " of a pointer that is not aligned to 16 bytes"))
      << misaligned;
  alignas(16) std::uint16_t global[8] = {};
  const std::string outside =
      error_of([&] { GLIA_LAUNCH(ldmatrix_bad_row, 1, 32, 0, nullptr, global, 0, out.data()); });
  EXPECT_TRUE(contains(outside, "`ldmatrix_bad_row`.*ldmatrix[^ ]* at " + kSite +
                                    " reads 16 bytes outside the block's shared memory"))
      << outside;
  // Aligned shared rows work (the same kernel, so the failures above are the rows' fault).
  GLIA_LAUNCH(ldmatrix_bad_row, 1, 32, 0, nullptr, nullptr, 8, out.data());
}

}  // namespace
}  // namespace glia::simt::testing
