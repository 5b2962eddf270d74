// Generators and the random fills; see random.h. Tested in tests/engine/random_test.cpp.
#include "engine/random.h"

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"

namespace glia {

void Generator::manual_seed(std::uint64_t seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  seed_ = seed;
  offset_ = 0;
}

std::uint64_t Generator::seed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seed_;
}

std::uint64_t Generator::offset() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return offset_;
}

void Generator::set_offset(std::uint64_t offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  offset_ = offset;
}

Generator::Draw Generator::reserve(std::uint64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Draw draw{seed_, offset_};
  offset_ += (n + 3) / 4;
  return draw;
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}

void manual_seed(std::uint64_t seed) {
  default_generator().manual_seed(seed);
}

namespace {

Generator::Draw reserve_for(const Tensor& x, Generator* generator) {
  Generator& g = generator ? *generator : default_generator();
  return g.reserve(static_cast<std::uint64_t>(x.numel()));
}

}  // namespace

void uniform_(Tensor& x, double lo, double hi, Generator* generator) {
  ops::check_floating("uniform_", x);
  // Named copies rather than a structured binding, which clang 14 cannot capture in a lambda.
  const Generator::Draw draw = reserve_for(x, generator);
  const std::uint64_t seed = draw.seed, offset = draw.offset;
  const index_t n = x.numel();
  if (n == 0) return;
  ops::dispatch_float("uniform_", x.device(), x.dtype(), [&]<class T>(auto backend) {
    ops::kernel::uniform(backend, x.data<T>(), n, seed, offset, static_cast<float>(lo),
                         static_cast<float>(hi));
  });
  x.bump_version();
}

void normal_(Tensor& x, double mean, double stddev, Generator* generator) {
  ops::check_floating("normal_", x);
  // Named copies rather than a structured binding, which clang 14 cannot capture in a lambda.
  const Generator::Draw draw = reserve_for(x, generator);
  const std::uint64_t seed = draw.seed, offset = draw.offset;
  const index_t n = x.numel();
  if (n == 0) return;
  ops::dispatch_float("normal_", x.device(), x.dtype(), [&]<class T>(auto backend) {
    ops::kernel::normal(backend, x.data<T>(), n, seed, offset, static_cast<float>(mean),
                        static_cast<float>(stddev));
  });
  x.bump_version();
}

Tensor rand(const Shape& shape, TensorOptions options, Generator* generator) {
  Tensor t(shape, options.dtype, options.device);
  uniform_(t, 0.0, 1.0, generator);
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor randn(const Shape& shape, TensorOptions options, Generator* generator) {
  Tensor t(shape, options.dtype, options.device);
  normal_(t, 0.0, 1.0, generator);
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

}  // namespace glia
