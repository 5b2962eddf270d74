// Seeded randomness whose results are the same on every standard library: std::mt19937_64 is
// specified bit for bit by the standard, the std:: distributions and std::shuffle are not, so the
// preprocessing (splits, negative sampling) and the phantom generator draw through these helpers.
// uniform01 takes the top 53 bits; uniform_below rejects the biased tail; normal is Box-Muller.
// Tested in tests/data/prep/split_test.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace glia::data {

// Uniform in [0, 1).
inline double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Uniform in [lo, hi).
inline double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform01(rng);
}

// Uniform integer in [0, n), n > 0, without modulo bias.
inline std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) {
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // largest multiple of n
  std::uint64_t x = rng();
  while (x >= limit) x = rng();
  return x % n;
}

// Standard normal.
inline double normal(std::mt19937_64& rng) {
  double u1 = 1.0 - uniform01(rng);  // (0, 1], so the log is finite
  double u2 = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// Fisher-Yates.
template <typename T>
void shuffle_in_place(std::vector<T>& items, std::mt19937_64& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    std::swap(items[i - 1], items[uniform_below(rng, i)]);
  }
}

// FNV-1a, 64 bit: a per-name seed offset, so a patient's draws do not depend on the others.
inline std::uint64_t stable_hash(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace glia::data
