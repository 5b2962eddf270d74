// Philox4x32-10 counter-based RNG (Salmon et al., SC'11), shared verbatim by the cpu reference
// and the cuda/sim kernels so a (seed, offset) pair gives the same numbers on every device.
// Element i of a fill takes word i % 4 of the block at counter (offset + i / 4), key = seed.
// Tested in tests/kernels/random_test.cpp (cpu vs sim, known-answer vectors of the paper).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GLIA_HD __host__ __device__ __forceinline__
#else
#define GLIA_HD inline
#endif

namespace glia::kernels::philox {

struct Block {
  std::uint32_t v[4];
};

GLIA_HD std::uint32_t mulhi32(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(a) * b) >> 32);
}

// The raw generator: 10 rounds over a 128-bit counter with a 64-bit key.
GLIA_HD Block philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                            std::uint32_t c3, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint32_t hi0 = mulhi32(kM0, c0), lo0 = kM0 * c0;
    const std::uint32_t hi1 = mulhi32(kM1, c2), lo1 = kM1 * c2;
    const std::uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return Block{{c0, c1, c2, c3}};
}

// The block that serves elements [4 * j, 4 * j + 4) of a fill at (seed, offset).
GLIA_HD Block block_at(std::uint64_t seed, std::uint64_t offset, std::uint64_t j) {
  const std::uint64_t counter = offset + j;
  return philox4x32_10(static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
                       0u, 0u, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
}

// Uniform in [0, 1) from the top 24 bits: exactly representable in float.
GLIA_HD float to_unit_float(std::uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }

}  // namespace glia::kernels::philox
