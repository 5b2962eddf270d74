// Random fills from the counter-based Philox4x32-10 generator (kernels/philox.h). A Generator is
// a seed plus an offset counted in Philox blocks of 4 numbers; each fill of n elements uses the
// blocks [offset, offset + ceil(n / 4)) and advances the offset past them. The numbers depend only
// on (seed, offset, index), so cpu, sim and cuda fill identically (DESIGN.md section 4).
// Tested in tests/engine/random_test.cpp.
#pragma once

#include <cstdint>
#include <mutex>

#include "engine/tensor.h"

namespace glia {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}

  // Restarts the stream: the given seed, offset 0.
  void manual_seed(std::uint64_t seed);
  std::uint64_t seed() const;
  std::uint64_t offset() const;
  void set_offset(std::uint64_t offset);
  struct Draw {
    std::uint64_t seed;
    std::uint64_t offset;
  };
  // The seed and offset for a fill of n numbers, advancing past the ceil(n / 4) blocks it uses;
  // one lock, so concurrent fills get disjoint blocks.
  Draw reserve(std::uint64_t n);

 private:
  mutable std::mutex mutex_;
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

// The process-wide generator used when a fill names none (seed 0 until manual_seed).
Generator& default_generator();
void manual_seed(std::uint64_t seed);

// In-place fills of an f32 (any device) or f64 (cpu) tensor.
void uniform_(Tensor& x, double lo = 0.0, double hi = 1.0, Generator* generator = nullptr);
void normal_(Tensor& x, double mean = 0.0, double stddev = 1.0, Generator* generator = nullptr);

// New tensors filled by uniform_(0, 1) and normal_(0, 1).
Tensor rand(const Shape& shape, TensorOptions options = {}, Generator* generator = nullptr);
Tensor randn(const Shape& shape, TensorOptions options = {}, Generator* generator = nullptr);

}  // namespace glia
