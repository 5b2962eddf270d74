// Philox4x32-10 counter-based RNG (Salmon et al., SC'11), shared verbatim by the cpu reference
// and the cuda/sim kernels so a (seed, offset) pair gives the same numbers on every device.
// Element i of a fill takes word i % 4 of the block at counter (offset + i / 4), key = seed.
// Tested in tests/kernels/random_test.cpp (cpu vs sim, known-answer vectors of the paper).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/types.h"

namespace glia::kernels::philox {

struct Block {
  std::uint32_t v[4];
};

GLIA_HD std::uint32_t mulhi32(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(a) * b) >> 32);
}

// The raw generator: 10 rounds over a 128-bit counter with a 64-bit key.
GLIA_HD Block philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3,
                            std::uint32_t k0, std::uint32_t k1) {
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
  return philox4x32_10(static_cast<std::uint32_t>(counter),
                       static_cast<std::uint32_t>(counter >> 32), 0u, 0u,
                       static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// Uniform in [0, 1) from the top 24 bits: exactly representable in float.
GLIA_HD float to_unit_float(std::uint32_t x) {
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}

// Uniform in (0, 1] from the top 24 bits, for the Box-Muller radius (log must stay finite).
GLIA_HD float to_unit_float_open0(std::uint32_t x) {
  return (static_cast<float>(x >> 8) + 1.0f) * (1.0f / 16777216.0f);
}

// The per-element math of the fills, used by kernels/cpu and kernels/cuda alike so that cpu and
// sim (both compiled by the host compiler) agree bit for bit.

// Word x of a uniform fill on [lo, hi).
GLIA_HD float uniform_value(std::uint32_t x, float lo, float hi) {
  return lo + (hi - lo) * to_unit_float(x);
}

struct NormalPair {
  float z0, z1;
};

// Box-Muller: two independent standard normals from two words.
GLIA_HD NormalPair box_muller(std::uint32_t x0, std::uint32_t x1) {
  constexpr float kTwoPi = 6.28318530717958647692f;
  const float u1 = to_unit_float_open0(x0);
  const float u2 = to_unit_float(x1);
  const float r = sqrtf(-2.0f * logf(u1));
  const float theta = kTwoPi * u2;
  return NormalPair{r * cosf(theta), r * sinf(theta)};
}

// Words 0..3 of a normal fill's block: Box-Muller on the pairs (0, 1) and (2, 3).
GLIA_HD void normal4(const Block& b, float mean, float stddev, float out[4]) {
  const NormalPair p = box_muller(b.v[0], b.v[1]);
  const NormalPair q = box_muller(b.v[2], b.v[3]);
  out[0] = mean + stddev * p.z0;
  out[1] = mean + stddev * p.z1;
  out[2] = mean + stddev * q.z0;
  out[3] = mean + stddev * q.z1;
}

}  // namespace glia::kernels::philox
