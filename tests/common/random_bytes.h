// Seeded random bytes for tests of image and file formats (std::mt19937 is specified bit for bit,
// so every standard library gives the same bytes for a seed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace glia::testing {

inline std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<std::uint8_t> v(n);
  for (auto& x : v) x = static_cast<std::uint8_t>(d(rng));
  return v;
}

}  // namespace glia::testing
