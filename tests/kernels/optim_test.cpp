// The fused optimiser kernels on every backend against the cpu reference in double: sgd_step
// (plain, momentum, Nesterov, each with and without weight decay) and adam_step (Adam's coupled
// and AdamW's decoupled weight decay), each over several consecutive steps so the state carried
// between steps (momentum buffer, moments, bias corrections) is checked, on odd lengths; and the
// launchers' argument errors.
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

using kernels::index_t;

template <class B>
void sgd_on(float* p, const float* g, float* buf, index_t n, double lr, double momentum, double wd,
            bool nesterov, bool first) {
  if constexpr (is_cpu<B>) kernels::cpu::sgd_step(p, g, buf, n, lr, momentum, wd, nesterov, first);
  if constexpr (is_sim<B>) {
    kernels::sim::sgd_step(p, g, buf, n, lr, momentum, wd, nesterov, first, nullptr);
  }
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::sgd_step(p, g, buf, n, lr, momentum, wd, nesterov, first, nullptr);
  }
#endif
}

template <class B>
void adam_on(float* p, const float* g, float* m, float* v, index_t n, double lr, double beta1,
             double beta2, double eps, double wd, bool decoupled, std::int64_t step) {
  if constexpr (is_cpu<B>) {
    kernels::cpu::adam_step(p, g, m, v, n, lr, beta1, beta2, eps, wd, decoupled, step);
  }
  if constexpr (is_sim<B>) {
    kernels::sim::adam_step(p, g, m, v, n, lr, beta1, beta2, eps, wd, decoupled, step, nullptr);
  }
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<B, Cuda>) {
    kernels::cuda::adam_step(p, g, m, v, n, lr, beta1, beta2, eps, wd, decoupled, step, nullptr);
  }
#endif
}

// Odd lengths: one element, one past a block, many blocks.
constexpr index_t kLengths[] = {1, 257, 5003};
constexpr int kSteps = 4;

struct SgdCase {
  const char* name;
  double lr, momentum, weight_decay;
  bool nesterov;
};

const SgdCase kSgdCases[] = {
    {"plain", 0.1, 0.0, 0.0, false},
    {"plain_weight_decay", 0.05, 0.0, 0.01, false},
    {"momentum", 0.1, 0.9, 0.0, false},
    {"momentum_weight_decay", 0.05, 0.8, 0.02, false},
    {"nesterov_weight_decay", 0.05, 0.9, 0.01, true},
};

template <class B>
class Optim : public BackendTest<B> {};
TYPED_TEST_SUITE(Optim, Backends, BackendNames);

TYPED_TEST(Optim, SgdStepMatchesDoubleReference) {
  std::uint32_t seed = 1;
  for (const SgdCase& c : kSgdCases) {
    for (const index_t n : kLengths) {
      SCOPED_TRACE(std::string(c.name) + ", n " + std::to_string(n));
      const auto size = static_cast<std::size_t>(n);
      const std::vector<float> p0 = random_values(size, -2.0, 2.0, ++seed);
      std::vector<std::vector<float>> grads;
      for (int t = 0; t < kSteps; ++t) grads.push_back(random_values(size, -1.0, 1.0, ++seed));

      std::vector<double> p = to_double(p0), buf(size, 0.0);
      for (int t = 0; t < kSteps; ++t) {
        kernels::cpu::sgd_step(p.data(), to_double(grads[t]).data(), buf.data(), n, c.lr,
                               c.momentum, c.weight_decay, c.nesterov, t == 0);
      }
      const auto got = run_in_every_lane_order<TypeParam>([&] {
        // The buffer is written before it is read on the first step, so NaN there must vanish.
        typename TypeParam::template Buffer<float> dp(p0), dbuf(nan_poisoned(size));
        for (int t = 0; t < kSteps; ++t) {
          typename TypeParam::template Buffer<float> dg(grads[t]);
          sgd_on<TypeParam>(dp.data(), dg.data(), c.momentum != 0.0 ? dbuf.data() : nullptr, n,
                            c.lr, c.momentum, c.weight_decay, c.nesterov, t == 0);
        }
        return std::make_tuple(dp.to_host(), dbuf.to_host());
      });
      EXPECT_TRUE(all_close(std::get<0>(got), p));
      if (c.momentum != 0.0) {
        EXPECT_TRUE(all_close(std::get<1>(got), buf));
      }
    }
  }
}

struct AdamCase {
  const char* name;
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
};

const AdamCase kAdamCases[] = {
    {"adam", 1e-2, 0.9, 0.999, 1e-8, 0.0, false},
    {"adam_weight_decay", 1e-2, 0.8, 0.99, 1e-6, 0.05, false},
    {"adamw", 1e-2, 0.9, 0.999, 1e-8, 0.1, true},
    {"adamw_zero_betas", 5e-3, 0.0, 0.5, 1e-3, 0.01, true},
};

TYPED_TEST(Optim, AdamStepMatchesDoubleReference) {
  std::uint32_t seed = 500;
  for (const AdamCase& c : kAdamCases) {
    for (const index_t n : kLengths) {
      SCOPED_TRACE(std::string(c.name) + ", n " + std::to_string(n));
      const auto size = static_cast<std::size_t>(n);
      const std::vector<float> p0 = random_values(size, -2.0, 2.0, ++seed);
      std::vector<std::vector<float>> grads;
      for (int t = 0; t < kSteps; ++t) grads.push_back(random_values(size, -1.0, 1.0, ++seed));

      std::vector<double> p = to_double(p0), m(size, 0.0), v(size, 0.0);
      for (int t = 0; t < kSteps; ++t) {
        kernels::cpu::adam_step(p.data(), to_double(grads[t]).data(), m.data(), v.data(), n, c.lr,
                                c.beta1, c.beta2, c.eps, c.weight_decay, c.decoupled, t + 1);
      }
      const auto got = run_in_every_lane_order<TypeParam>([&] {
        typename TypeParam::template Buffer<float> dp(p0), dm(std::vector<float>(size, 0.0f)),
            dv(std::vector<float>(size, 0.0f));
        for (int t = 0; t < kSteps; ++t) {
          typename TypeParam::template Buffer<float> dg(grads[t]);
          adam_on<TypeParam>(dp.data(), dg.data(), dm.data(), dv.data(), n, c.lr, c.beta1, c.beta2,
                             c.eps, c.weight_decay, c.decoupled, t + 1);
        }
        return std::make_tuple(dp.to_host(), dm.to_host(), dv.to_host());
      });
      EXPECT_TRUE(all_close(std::get<0>(got), p));
      EXPECT_TRUE(all_close(std::get<1>(got), m));
      EXPECT_TRUE(all_close(std::get<2>(got), v));
    }
  }
}

// No parameter element: no launch, and parameters and state stay as they were.
TYPED_TEST(Optim, EmptyLaunchesNothing) {
  auto p = sentinel_buffer<TypeParam>(7.0f);
  auto g = sentinel_buffer<TypeParam>(1.0f);
  auto buf = sentinel_buffer<TypeParam>(7.0f);
  auto m = sentinel_buffer<TypeParam>(7.0f);
  auto v = sentinel_buffer<TypeParam>(7.0f);
  const std::uint64_t before = launches_on<TypeParam>();
  sgd_on<TypeParam>(p.data(), g.data(), buf.data(), 0, 0.1, 0.9, 0.01, true, false);
  adam_on<TypeParam>(p.data(), g.data(), m.data(), v.data(), 0, 0.1, 0.9, 0.999, 1e-8, 0.01, true,
                     1);
  EXPECT_EQ(launches_on<TypeParam>(), before);
  EXPECT_TRUE(untouched(p, 7.0f));
  EXPECT_TRUE(untouched(buf, 7.0f));
  EXPECT_TRUE(untouched(m, 7.0f));
  EXPECT_TRUE(untouched(v, 7.0f));
}

TEST(OptimKernels, RejectsBadArguments) {
  std::vector<float> p(3, 0.0f), g(3, 0.0f), m(3, 0.0f), v(3, 0.0f);
  EXPECT_THROW(kernels::cpu::sgd_step(p.data(), g.data(), static_cast<float*>(nullptr), 3, 0.1, 0.9,
                                      0.0, false, true),
               std::invalid_argument);
  EXPECT_THROW(kernels::cpu::adam_step(p.data(), g.data(), m.data(), v.data(), 3, 0.1, 0.9, 0.999,
                                       1e-8, 0.0, false, 0),
               std::invalid_argument);
  EXPECT_THROW(kernels::sim::adam_step(p.data(), g.data(), m.data(), v.data(), -1, 0.1, 0.9, 0.999,
                                       1e-8, 0.0, false, 1, nullptr),
               std::invalid_argument);
}

}  // namespace
}  // namespace glia::testing
