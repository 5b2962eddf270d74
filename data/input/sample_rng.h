// The seeded random stream of the data pipeline. Every random choice of an epoch (the sampler's
// order, a sample's augmentation) comes from a SampleRng keyed by (seed, epoch, index, stream), so
// a result depends only on those numbers, never on which worker thread ran it or in what order.
// Keys are mixed by SplitMix64's finaliser (Steele et al., OOPSLA'14); the stream itself is
// SplitMix64 (state += golden gamma, output = finaliser(state)). Distributions are written here
// rather than taken from <random>, whose uniform/normal/shuffle algorithms differ between standard
// libraries. Tested in tests/data/input/transforms_test.cpp and tests/data/input/sampler_test.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

namespace glia::data {

// Streams that must not overlap for the same (seed, epoch, index).
enum class RngStream : std::uint64_t { transform = 1, sampler = 2, synthetic = 3 };

class SampleRng {
 public:
  SampleRng(std::uint64_t seed, std::uint64_t epoch, std::uint64_t index,
            RngStream stream = RngStream::transform)
      : state_(mix(mix(mix(mix(seed) ^ epoch) ^ index) ^ static_cast<std::uint64_t>(stream))) {}

  std::uint64_t next_u64() { return mix(state_ += kGamma); }
  // Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform in [0, n) without modulo bias (Lemire's multiply-and-reject); n > 0.
  std::uint64_t uniform_int(std::uint64_t n) {
    for (;;) {
      const unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * n;
      const std::uint64_t low = static_cast<std::uint64_t>(m);
      if (low >= n || low >= (-n) % n) return static_cast<std::uint64_t>(m >> 64);
    }
  }
  // Standard normal by Box-Muller; the second value of each pair is kept for the next call.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * std::numbers::pi * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * std::numbers::pi * u2);
  }

  static std::uint64_t mix(std::uint64_t z) {
    z += kGamma;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  static constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ull;
  std::uint64_t state_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace glia::data
