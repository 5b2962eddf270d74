// Elementwise kernels on every backend against the cpu reference in double: every UnaryOp forward
// and backward on inputs inside its domain, the four binary ops with broadcasting of either or
// both inputs in every dim position, and expand. The vector paths (same-shape or single-value
// operands, unary ops) run on aligned pointers and on pointers one float past alignment, over
// lengths that leave a tail of 1 to 3 after the float4s.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::BinaryOp;
using kernels::BroadcastShape;
using kernels::index_t;
using kernels::UnaryOp;
using kernels::UnaryParams;

template <class B>
void unary_on(UnaryOp op, const float* x, float* y, index_t n, UnaryParams p) {
  if constexpr (is_cpu<B>) kernels::cpu::unary(op, x, y, n, p);
  if constexpr (is_sim<B>) kernels::sim::unary(op, x, y, n, p, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::unary(op, x, y, n, p, nullptr);
#endif
}

template <class B>
void unary_backward_on(UnaryOp op, const float* x, const float* y, const float* gy, float* gx,
                       index_t n, UnaryParams p) {
  if constexpr (is_cpu<B>) kernels::cpu::unary_backward(op, x, y, gy, gx, n, p);
  if constexpr (is_sim<B>) kernels::sim::unary_backward(op, x, y, gy, gx, n, p, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::unary_backward(op, x, y, gy, gx, n, p, nullptr);
  }
#endif
}

template <class B>
void binary_on(BinaryOp op, const float* a, const float* b, float* out, const BroadcastShape& s) {
  if constexpr (is_cpu<B>) kernels::cpu::binary(op, a, b, out, s);
  if constexpr (is_sim<B>) kernels::sim::binary(op, a, b, out, s, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::binary(op, a, b, out, s, nullptr);
#endif
}

template <class B>
void expand_on(const float* x, float* y, const BroadcastShape& s) {
  if constexpr (is_cpu<B>) kernels::cpu::expand(x, y, s);
  if constexpr (is_sim<B>) kernels::sim::expand(x, y, s, nullptr);
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) kernels::cuda::expand(x, y, s, nullptr);
#endif
}

// An op, its parameters and an input range inside its domain (away from poles and kinks).
struct UnaryCase {
  UnaryOp op;
  const char* name;
  UnaryParams params;
  double lo, hi;
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> all = {
      {UnaryOp::copy, "copy", {}, -2.0, 2.0},
      {UnaryOp::neg, "neg", {}, -2.0, 2.0},
      {UnaryOp::exp, "exp", {}, -4.0, 4.0},
      {UnaryOp::log, "log", {}, 0.1, 5.0},
      {UnaryOp::sqrt, "sqrt", {}, 0.1, 5.0},
      {UnaryOp::abs, "abs", {}, -2.0, 2.0},
      {UnaryOp::relu, "relu", {}, -2.0, 2.0},
      {UnaryOp::sigmoid, "sigmoid", {}, -6.0, 6.0},
      {UnaryOp::tanh, "tanh", {}, -3.0, 3.0},
      {UnaryOp::add_scalar, "add_scalar", {0.75, 0.0}, -2.0, 2.0},
      {UnaryOp::mul_scalar, "mul_scalar", {-1.25, 0.0}, -2.0, 2.0},
      {UnaryOp::rsub_scalar, "rsub_scalar", {0.5, 0.0}, -2.0, 2.0},
      {UnaryOp::rdiv_scalar, "rdiv_scalar", {1.5, 0.0}, 0.5, 3.0},
      {UnaryOp::pow_scalar, "pow_scalar", {2.5, 0.0}, 0.1, 3.0},
      {UnaryOp::clamp, "clamp", {-0.5, 0.75}, -2.0, 2.0},
  };
  return all;
}

// Odd lengths, one past a block and one spanning many blocks.
constexpr index_t kLengths[] = {1, 257, 5003};

template <class B>
class Elementwise : public BackendTest<B> {};
TYPED_TEST_SUITE(Elementwise, Backends, BackendNames);

TYPED_TEST(Elementwise, UnaryForward) {
  std::uint32_t seed = 1;
  for (const UnaryCase& c : unary_cases()) {
    for (const index_t n : kLengths) {
      SCOPED_TRACE(std::string(c.name) + ", n " + std::to_string(n));
      const std::vector<float> x = random_values(static_cast<std::size_t>(n), c.lo, c.hi, ++seed);
      std::vector<double> expected(x.size());
      kernels::cpu::unary(c.op, to_double(x).data(), expected.data(), n, c.params);
      const std::vector<float> got = run_in_every_lane_order<TypeParam>([&] {
        typename TypeParam::template Buffer<float> dx(x), dy(nan_poisoned(x.size()));
        unary_on<TypeParam>(c.op, dx.data(), dy.data(), n, c.params);
        return dy.to_host();
      });
      EXPECT_TRUE(all_close(got, expected));
    }
  }
}

TYPED_TEST(Elementwise, UnaryBackward) {
  std::uint32_t seed = 100;
  for (const UnaryCase& c : unary_cases()) {
    for (const index_t n : kLengths) {
      SCOPED_TRACE(std::string(c.name) + ", n " + std::to_string(n));
      const auto size = static_cast<std::size_t>(n);
      const std::vector<float> x = random_values(size, c.lo, c.hi, ++seed);
      const std::vector<float> gy = random_values(size, -1.0, 1.0, ++seed);
      std::vector<float> y(size);
      kernels::cpu::unary(c.op, x.data(), y.data(), n, c.params);
      std::vector<double> expected(size);
      kernels::cpu::unary_backward(c.op, to_double(x).data(), to_double(y).data(),
                                   to_double(gy).data(), expected.data(), n, c.params);
      const std::vector<float> got = run_in_every_lane_order<TypeParam>([&] {
        typename TypeParam::template Buffer<float> dx(x), dy(y), dgy(gy), dgx(nan_poisoned(size));
        unary_backward_on<TypeParam>(c.op, dx.data(), dy.data(), dgy.data(), dgx.data(), n,
                                     c.params);
        return dgx.to_host();
      });
      EXPECT_TRUE(all_close(got, expected));
    }
  }
}

// Broadcasting of a and b (same rank; size-1 dims broadcast) to their common shape.
BroadcastShape broadcast(const std::vector<index_t>& a, const std::vector<index_t>& b) {
  BroadcastShape s;
  s.ndim = static_cast<int>(a.size());
  s.numel = 1;
  index_t a_stride = 1, b_stride = 1;
  for (int d = s.ndim - 1; d >= 0; --d) {
    s.shape[d] = a[d] > b[d] ? a[d] : b[d];
    s.a_stride[d] = a[d] == 1 ? 0 : a_stride;
    s.b_stride[d] = b[d] == 1 ? 0 : b_stride;
    a_stride *= a[d];
    b_stride *= b[d];
    s.numel *= s.shape[d];
  }
  return s;
}

index_t numel(const std::vector<index_t>& shape) {
  index_t n = 1;
  for (const index_t d : shape) n *= d;
  return n;
}

std::string describe(const std::vector<index_t>& shape) {
  std::string text = "[";
  for (std::size_t d = 0; d < shape.size(); ++d) text += (d ? ", " : "") + std::to_string(shape[d]);
  return text + "]";
}

struct BroadcastCase {
  std::vector<index_t> a, b;
};

// b broadcast along each single dim, along all, a broadcast, both, ranks 1 to 5.
const std::vector<BroadcastCase>& broadcast_cases() {
  static const std::vector<BroadcastCase> all = {
      {{37}, {37}},
      {{37}, {1}},
      {{2, 3, 4, 5}, {2, 3, 4, 5}},
      {{2, 3, 4, 5}, {1, 3, 4, 5}},
      {{2, 3, 4, 5}, {2, 1, 4, 5}},
      {{2, 3, 4, 5}, {2, 3, 1, 5}},
      {{2, 3, 4, 5}, {2, 3, 4, 1}},
      {{2, 3, 4, 5}, {1, 1, 1, 1}},
      {{1, 3, 1, 5}, {2, 3, 4, 5}},
      {{2, 1, 4, 1}, {1, 3, 1, 5}},
      {{3, 1, 2, 7, 5}, {1, 4, 2, 1, 5}},
      {{4, 65, 33}, {4, 1, 33}},
  };
  return all;
}

TYPED_TEST(Elementwise, BinaryBroadcasts) {
  const std::pair<BinaryOp, const char*> ops[] = {{BinaryOp::add, "add"},
                                                  {BinaryOp::sub, "sub"},
                                                  {BinaryOp::mul, "mul"},
                                                  {BinaryOp::div, "div"}};
  std::uint32_t seed = 200;
  for (const auto& [op, name] : ops) {
    for (const BroadcastCase& c : broadcast_cases()) {
      SCOPED_TRACE(std::string(name) + " of " + describe(c.a) + " and " + describe(c.b));
      const BroadcastShape s = broadcast(c.a, c.b);
      const std::vector<float> a =
          random_values(static_cast<std::size_t>(numel(c.a)), -2.0, 2.0, ++seed);
      // Divisors kept away from zero.
      const std::vector<float> b =
          random_values(static_cast<std::size_t>(numel(c.b)), 0.5, 2.0, ++seed);
      const auto out_size = static_cast<std::size_t>(s.numel);
      std::vector<double> expected(out_size);
      kernels::cpu::binary(op, to_double(a).data(), to_double(b).data(), expected.data(), s);
      const std::vector<float> got = run_in_every_lane_order<TypeParam>([&] {
        typename TypeParam::template Buffer<float> da(a), db(b), dout(nan_poisoned(out_size));
        binary_on<TypeParam>(op, da.data(), db.data(), dout.data(), s);
        return dout.to_host();
      });
      EXPECT_TRUE(all_close(got, expected));
    }
  }
}

// The flat paths on aligned and unaligned pointers: a, b and out each `offset` floats into their
// buffers, so every combination of float4 and scalar access runs; lengths 4k + 1 to 4k + 3.
TYPED_TEST(Elementwise, FlatPathsAlignedAndUnaligned) {
  using B = TypeParam;
  const std::vector<BroadcastCase> cases = {
      {{5003}, {5003}}, {{5003}, {1}}, {{1, 1}, {1, 4098}}, {{2, 3, 4, 9}, {2, 3, 4, 9}}};
  const std::size_t offsets[][3] = {{0, 0, 0}, {1, 1, 1}, {0, 1, 0}, {0, 0, 3}};
  std::uint32_t seed = 600;
  for (const BroadcastCase& c : cases) {
    const std::vector<index_t>& a_shape = c.a;
    const BroadcastShape s = broadcast(a_shape, c.b);
    const std::vector<float> a =
        random_values(static_cast<std::size_t>(numel(a_shape)), -2, 2, ++seed);
    const std::vector<float> b =
        random_values(static_cast<std::size_t>(numel(c.b)), 0.5, 2, ++seed);
    const auto n = static_cast<std::size_t>(s.numel);
    std::vector<double> expected(n);
    kernels::cpu::binary(BinaryOp::div, to_double(a).data(), to_double(b).data(), expected.data(),
                         s);
    for (const auto& off : offsets) {
      SCOPED_TRACE(describe(a_shape) + " / " + describe(c.b) + ", offsets " +
                   std::to_string(off[0]) + std::to_string(off[1]) + std::to_string(off[2]));
      auto padded = [](const std::vector<float>& v, std::size_t k) {
        std::vector<float> p(k, 0.0f);
        p.insert(p.end(), v.begin(), v.end());
        return p;
      };
      const std::vector<float> got = run_in_every_lane_order<B>([&] {
        typename B::template Buffer<float> da(padded(a, off[0])), db(padded(b, off[1])),
            dout(nan_poisoned(n + off[2]));
        binary_on<B>(BinaryOp::div, da.data() + off[0], db.data() + off[1], dout.data() + off[2],
                     s);
        std::vector<float> out = dout.to_host();
        out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(off[2]));
        return out;
      });
      EXPECT_TRUE(all_close(got, expected));
    }
  }
  // Unary forward and backward one float past alignment (the scalar path), with a tail.
  const index_t n = 1027;
  const auto size = static_cast<std::size_t>(n);
  const std::vector<float> x = random_values(size + 1, -2.0, 2.0, ++seed);
  const std::vector<float> gy = random_values(size + 1, -1.0, 1.0, ++seed);
  std::vector<double> y(size), gx(size);
  const std::vector<double> xd = to_double(x), gyd = to_double(gy);
  kernels::cpu::unary(UnaryOp::tanh, xd.data() + 1, y.data(), n, UnaryParams{});
  kernels::cpu::unary_backward(UnaryOp::tanh, xd.data() + 1, y.data(), gyd.data() + 1, gx.data(), n,
                               UnaryParams{});
  const std::vector<float> yf(y.begin(), y.end());
  std::vector<float> y_in(1, 0.0f);
  y_in.insert(y_in.end(), yf.begin(), yf.end());
  const auto [got_y, got_gx] = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(x), dgy(gy), dyin(y_in), dy(nan_poisoned(size + 1)),
        dgx(nan_poisoned(size + 1));
    unary_on<B>(UnaryOp::tanh, dx.data() + 1, dy.data() + 1, n, UnaryParams{});
    unary_backward_on<B>(UnaryOp::tanh, dx.data() + 1, dyin.data() + 1, dgy.data() + 1,
                         dgx.data() + 1, n, UnaryParams{});
    std::vector<float> oy = dy.to_host(), og = dgx.to_host();
    oy.erase(oy.begin());
    og.erase(og.begin());
    return std::tuple{oy, og};
  });
  EXPECT_TRUE(all_close(got_y, y));
  EXPECT_TRUE(all_close(got_gx, gx));
}

TYPED_TEST(Elementwise, ExpandBroadcasts) {
  std::uint32_t seed = 300;
  for (const BroadcastCase& c : broadcast_cases()) {
    SCOPED_TRACE(describe(c.a) + " expanded to its broadcast with " + describe(c.b));
    // Expand a to the common shape (b only fixes that shape).
    const BroadcastShape s = broadcast(c.a, c.b);
    const std::vector<float> x =
        random_values(static_cast<std::size_t>(numel(c.a)), -2.0, 2.0, ++seed);
    const auto out_size = static_cast<std::size_t>(s.numel);
    std::vector<double> expected(out_size);
    kernels::cpu::expand(to_double(x).data(), expected.data(), s);
    const std::vector<float> got = run_in_every_lane_order<TypeParam>([&] {
      typename TypeParam::template Buffer<float> dx(x), dy(nan_poisoned(out_size));
      expand_on<TypeParam>(dx.data(), dy.data(), s);
      return dy.to_host();
    });
    EXPECT_TRUE(all_equal(converted<double>(got), expected));
  }
}

// No element to write: no launch, and the outputs stay as they were.
TYPED_TEST(Elementwise, EmptyLaunchesNothing) {
  auto x = sentinel_buffer<TypeParam>(1.0f);
  auto y = sentinel_buffer<TypeParam>(7.0f);
  auto gx = sentinel_buffer<TypeParam>(7.0f);
  auto out = sentinel_buffer<TypeParam>(7.0f);
  auto expanded = sentinel_buffer<TypeParam>(7.0f);
  const std::uint64_t before = launches_on<TypeParam>();
  unary_on<TypeParam>(UnaryOp::exp, x.data(), y.data(), 0, {});
  unary_backward_on<TypeParam>(UnaryOp::exp, x.data(), x.data(), x.data(), gx.data(), 0, {});
  BroadcastShape s;
  s.ndim = 2;
  s.shape[0] = 0;
  s.shape[1] = 3;
  s.numel = 0;
  binary_on<TypeParam>(BinaryOp::add, x.data(), x.data(), out.data(), s);
  expand_on<TypeParam>(x.data(), expanded.data(), s);
  EXPECT_EQ(launches_on<TypeParam>(), before);
  EXPECT_TRUE(untouched(y, 7.0f));
  EXPECT_TRUE(untouched(gx, 7.0f));
  EXPECT_TRUE(untouched(out, 7.0f));
  EXPECT_TRUE(untouched(expanded, 7.0f));
}

}  // namespace
}  // namespace glia::testing
