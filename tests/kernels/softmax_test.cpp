// Softmax and log-softmax kernels, forward and backward, on every backend against the cpu
// reference in double. Shapes: rows 1, 3, 64 by classes 1, 2, 17, 45, 300 (a warp per row, odd
// lengths that do not fill the warp's strides) and 1000 (a block per row). Logits of +-300, whose
// exp overflows float, must give finite outputs (the max subtraction). Outputs start as NaN; sim
// runs under every lane order and must agree bitwise. The cuDNN fallback is checked against the
// same reference on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/softmax.h"
#endif
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::ClassShape;
using kernels::index_t;

template <class B>
void forward_on(bool log, const float* x, float* y, const ClassShape& s) {
  if (log) {
    GLIA_ON_BACKEND(log_softmax, x, y, s);
  } else {
    GLIA_ON_BACKEND(softmax, x, y, s);
  }
}
template <class B>
void backward_on(bool log, const float* y, const float* gy, float* gx, const ClassShape& s) {
  if (log) {
    GLIA_ON_BACKEND(log_softmax_backward, y, gy, gx, s);
  } else {
    GLIA_ON_BACKEND(softmax_backward, y, gy, gx, s);
  }
}

void reference_forward(bool log, const std::vector<double>& x, std::vector<double>& y,
                       const ClassShape& s) {
  if (log) {
    kernels::cpu::log_softmax(x.data(), y.data(), s);
  } else {
    kernels::cpu::softmax(x.data(), y.data(), s);
  }
}
void reference_backward(bool log, const std::vector<double>& y, const std::vector<double>& gy,
                        std::vector<double>& gx, const ClassShape& s) {
  if (log) {
    kernels::cpu::log_softmax_backward(y.data(), gy.data(), gx.data(), s);
  } else {
    kernels::cpu::softmax_backward(y.data(), gy.data(), gx.data(), s);
  }
}

std::string describe(bool log, const ClassShape& s) {
  return std::string(log ? "log_softmax" : "softmax") + " of [" + std::to_string(s.rows) + ", " +
         std::to_string(s.classes) + "]";
}

std::vector<ClassShape> shapes() {
  std::vector<ClassShape> all;
  for (const index_t rows : {1, 3, 64}) {
    for (const index_t classes : {1, 2, 17, 45, 300, 1000}) all.push_back({rows, classes});
  }
  return all;
}

std::size_t numel(const ClassShape& s) {
  return static_cast<std::size_t>(s.rows * s.classes);
}

// The forward of x and the backward of a random gy from the backend's own y, each against the
// reference in double (the backward's reference starts from the reference y).
template <class B>
void check(bool log, const ClassShape& s, const std::vector<float>& x, std::uint32_t seed) {
  SCOPED_TRACE(describe(log, s));
  const std::vector<float> gy = random_values(numel(s), -1.0, 1.0, seed);
  std::vector<double> y(numel(s)), gx(numel(s));
  reference_forward(log, to_double(x), y, s);
  reference_backward(log, y, to_double(gy), gx, s);
  const auto [got_y, got_gx] = run_in_every_lane_order<B>([&] {
    typename B::template Buffer<float> dx(x), dy(nan_poisoned(numel(s))), dgy(gy),
        dgx(nan_poisoned(numel(s)));
    forward_on<B>(log, dx.data(), dy.data(), s);
    backward_on<B>(log, dy.data(), dgy.data(), dgx.data(), s);
    return std::tuple{dy.to_host(), dgx.to_host()};
  });
  EXPECT_TRUE(all_close(got_y, y));
  EXPECT_TRUE(all_close(got_gx, gx));
}

template <class B>
class Softmax : public BackendTest<B> {};
TYPED_TEST_SUITE(Softmax, Backends, BackendNames);

TYPED_TEST(Softmax, ForwardAndBackward) {
  std::uint32_t seed = 10;
  for (const bool log : {false, true}) {
    for (const ClassShape& s : shapes()) {
      const std::vector<float> x = random_values(numel(s), -3.0, 3.0, ++seed);
      check<TypeParam>(log, s, x, ++seed);
    }
  }
}

// Logits of +-300: expf overflows to inf beyond 88.7 (and underflows to 0 below -103), so only the
// max subtraction keeps the outputs finite; rows whose largest logit repeats check ties. Any NaN
// or inf fails all_close, and the outputs are also checked to be finite on their own.
TYPED_TEST(Softmax, LargeLogitsStayFinite) {
  std::uint32_t seed = 100;
  for (const bool log : {false, true}) {
    for (const ClassShape& s : {ClassShape{3, 45}, ClassShape{3, 1000}}) {
      SCOPED_TRACE(describe(log, s));
      std::vector<float> x = random_values(numel(s), -300.0, 300.0, ++seed);
      x[0] = 300.0f;
      x[1] = 300.0f;
      x[numel(s) - 1] = -300.0f;
      check<TypeParam>(log, s, x, ++seed);
      const std::vector<float> y = run_in_every_lane_order<TypeParam>([&] {
        typename TypeParam::template Buffer<float> dx(x), dy(nan_poisoned(numel(s)));
        forward_on<TypeParam>(log, dx.data(), dy.data(), s);
        return dy.to_host();
      });
      for (std::size_t i = 0; i < y.size(); ++i) {
        ASSERT_TRUE(std::isfinite(y[i])) << "y[" << i << "] = " << y[i] << " for x " << x[i];
      }
    }
  }
}

// Nothing to compute: no launch, and no output element to write.
TYPED_TEST(Softmax, EmptyShapesAreNoOps) {
  for (const ClassShape& s : {ClassShape{0, 17}, ClassShape{4, 0}}) {
    for (const bool log : {false, true}) {
      SCOPED_TRACE(describe(log, s));
      forward_on<TypeParam>(log, nullptr, nullptr, s);
      backward_on<TypeParam>(log, nullptr, nullptr, nullptr, s);
    }
  }
}

#if defined(GLIA_HAVE_CUDA)
// The cuDNN fallback against the cpu reference.
TEST(CudaCudnnSoftmax, MatchesReference) {
  std::string reason;
  if (!cuda_device_present(&reason)) GTEST_SKIP() << reason;
  cudnnHandle_t handle = nullptr;
  ASSERT_EQ(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
  std::uint32_t seed = 500;
  for (const bool log : {false, true}) {
    for (const ClassShape& s : shapes()) {
      SCOPED_TRACE(describe(log, s));
      const std::vector<float> x = random_values(numel(s), -3.0, 3.0, ++seed);
      const std::vector<float> gy = random_values(numel(s), -1.0, 1.0, ++seed);
      std::vector<double> y(numel(s)), gx(numel(s));
      reference_forward(log, to_double(x), y, s);
      reference_backward(log, y, to_double(gy), gx, s);
      CudaBuffer<float> dx(x), dy(nan_poisoned(numel(s))), dgy(gy), dgx(nan_poisoned(numel(s)));
      kernels::cudnn::softmax_forward(handle, log, s, dx.data(), dy.data(), nullptr);
      kernels::cudnn::softmax_backward(handle, log, s, dy.data(), dgy.data(), dgx.data(), nullptr);
      EXPECT_TRUE(all_close(dy.to_host(), y));
      EXPECT_TRUE(all_close(dgx.to_host(), gx));
    }
  }
  ASSERT_EQ(cudnnDestroy(handle), CUDNN_STATUS_SUCCESS);
}
#endif

}  // namespace
}  // namespace glia::testing
