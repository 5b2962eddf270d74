// Reference batch norm over NCHW, per channel c (kernels/types.h BatchNormShape): statistics in
// double with two passes (mean, then the mean squared deviation: no cancellation), the biased
// variance for normalising and the unbiased one for the running average, as PyTorch. Backward
// through the batch statistics, with xhat = (x - mean) * invstd and M = n * h * w:
//   gbias = sum gy, gweight = sum gy * xhat,
//   gx = weight * invstd * (gy - gbias / M - xhat * gweight / M)     (training)
//   gx = weight * invstd * gy                                        (evaluation)
// The relu variants fuse y = max(bn(x), 0): the backward first masks gy where y is not positive
// (as kernels/elementwise_math.h's relu backward), then runs the same formulas.
// Tested in tests/kernels/batchnorm_test.cpp.
#include <cmath>

#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {
namespace {

// Calls f(value pointer offset) for every element of channel c, in n, h, w order.
template <class F>
void for_channel(const BatchNormShape& s, index_t c, F&& f) {
  const index_t plane = s.plane();
  for (index_t n = 0; n < s.n; ++n) {
    const index_t base = (n * s.c + c) * plane;
    for (index_t hw = 0; hw < plane; ++hw) f(base + hw);
  }
}

}  // namespace

template <class T>
void batch_norm_stats(const T* x, T* mean, T* invstd, T* running_mean, T* running_var,
                      const BatchNormShape& s) {
  const double count = static_cast<double>(s.count());
#pragma omp parallel for schedule(static) if (s.numel() > (index_t{1} << 15))
  for (index_t c = 0; c < s.c; ++c) {
    double sum = 0.0;
    for_channel(s, c, [&](index_t i) { sum += static_cast<double>(x[i]); });
    const double mu = sum / count;
    double squares = 0.0;
    for_channel(s, c, [&](index_t i) {
      const double d = static_cast<double>(x[i]) - mu;
      squares += d * d;
    });
    const double var = squares / count;
    mean[c] = static_cast<T>(mu);
    invstd[c] = static_cast<T>(1.0 / std::sqrt(var + s.eps));
    if (running_mean != nullptr) {
      const double unbiased = count > 1 ? squares / (count - 1) : var;
      const double m = s.momentum;
      running_mean[c] = static_cast<T>((1.0 - m) * static_cast<double>(running_mean[c]) + m * mu);
      running_var[c] =
          static_cast<T>((1.0 - m) * static_cast<double>(running_var[c]) + m * unbiased);
    }
  }
}

template <class T>
void batch_norm_invstd(const T* var, T* invstd, const BatchNormShape& s) {
  for (index_t c = 0; c < s.c; ++c) {
    invstd[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var[c]) + s.eps));
  }
}

namespace {

// gy, or with the fused ReLU 0 where its output y is not positive. A compile-time choice, so
// neither variant's loop carries a branch on it.
template <bool kRelu, class T>
T masked(const T* gy, [[maybe_unused]] const T* y, index_t i) {
  if constexpr (kRelu) {
    return y[i] > T(0) ? gy[i] : T(0);
  } else {
    return gy[i];
  }
}

template <bool kRelu, class T>
void apply(const T* x, const T* mean, const T* invstd, const T* weight, const T* bias, T* y,
           const BatchNormShape& s) {
  // One (n, c) plane per iteration, its channel's constants hoisted, so the inner loop vectorises.
  const index_t plane = s.plane();
#pragma omp parallel for schedule(static) if (s.numel() > (index_t{1} << 15))
  for (index_t nc = 0; nc < s.n * s.c; ++nc) {
    const index_t c = nc % s.c;
    const T scale = invstd[c] * (weight != nullptr ? weight[c] : T(1));
    const T m = mean[c], b = bias != nullptr ? bias[c] : T(0);
    const T* xp = x + nc * plane;
    T* yp = y + nc * plane;
    for (index_t i = 0; i < plane; ++i) {
      const T v = (xp[i] - m) * scale + b;
      if constexpr (kRelu) {
        yp[i] = v < T(0) ? T(0) : v;  // NaN propagates
      } else {
        yp[i] = v;
      }
    }
  }
}

template <bool kRelu, class T>
void backward_reduce(const T* x, const T* gy, const T* y, const T* mean, const T* invstd, T* sum_dy,
                     T* sum_dy_xhat, const BatchNormShape& s) {
#pragma omp parallel for schedule(static) if (s.numel() > (index_t{1} << 15))
  for (index_t c = 0; c < s.c; ++c) {
    double dy = 0.0, dy_xmu = 0.0;
    const double mu = static_cast<double>(mean[c]);
    for_channel(s, c, [&](index_t i) {
      const double g = static_cast<double>(masked<kRelu>(gy, y, i));
      dy += g;
      dy_xmu += g * (static_cast<double>(x[i]) - mu);
    });
    sum_dy[c] = static_cast<T>(dy);
    sum_dy_xhat[c] = static_cast<T>(dy_xmu * static_cast<double>(invstd[c]));
  }
}

template <bool kRelu, class T>
void backward_input(const T* x, const T* gy, const T* y, const T* mean, const T* invstd,
                    const T* weight, const T* sum_dy, const T* sum_dy_xhat, T* gx,
                    const BatchNormShape& s, bool training) {
  const T inv_count = T(1) / static_cast<T>(s.count());
  const index_t plane = s.plane();
#pragma omp parallel for schedule(static) if (s.numel() > (index_t{1} << 15))
  for (index_t nc = 0; nc < s.n * s.c; ++nc) {
    const index_t c = nc % s.c;
    const T scale = invstd[c] * (weight != nullptr ? weight[c] : T(1));
    const T* xp = x + nc * plane;
    const index_t base = nc * plane;
    T* gxp = gx + base;
    if (training) {
      const T m = mean[c], is = invstd[c];
      const T dy = sum_dy[c] * inv_count, dyx = sum_dy_xhat[c] * inv_count;
      for (index_t i = 0; i < plane; ++i) {
        const T xhat = (xp[i] - m) * is;
        gxp[i] = scale * (masked<kRelu>(gy, y, base + i) - dy - xhat * dyx);
      }
    } else {
      for (index_t i = 0; i < plane; ++i) gxp[i] = scale * masked<kRelu>(gy, y, base + i);
    }
  }
}

}  // namespace

template <class T>
void batch_norm_apply(const T* x, const T* mean, const T* invstd, const T* weight, const T* bias,
                      T* y, const BatchNormShape& s) {
  apply<false>(x, mean, invstd, weight, bias, y, s);
}

template <class T>
void batch_norm_relu_apply(const T* x, const T* mean, const T* invstd, const T* weight,
                           const T* bias, T* y, const BatchNormShape& s) {
  apply<true>(x, mean, invstd, weight, bias, y, s);
}

template <class T>
void batch_norm_backward_reduce(const T* x, const T* gy, const T* mean, const T* invstd, T* sum_dy,
                                T* sum_dy_xhat, const BatchNormShape& s) {
  backward_reduce<false>(x, gy, static_cast<const T*>(nullptr), mean, invstd, sum_dy, sum_dy_xhat,
                         s);
}

template <class T>
void batch_norm_relu_backward_reduce(const T* x, const T* gy, const T* y, const T* mean,
                                     const T* invstd, T* sum_dy, T* sum_dy_xhat,
                                     const BatchNormShape& s) {
  backward_reduce<true>(x, gy, y, mean, invstd, sum_dy, sum_dy_xhat, s);
}

template <class T>
void batch_norm_backward_input(const T* x, const T* gy, const T* mean, const T* invstd,
                               const T* weight, const T* sum_dy, const T* sum_dy_xhat, T* gx,
                               const BatchNormShape& s, bool training) {
  backward_input<false>(x, gy, static_cast<const T*>(nullptr), mean, invstd, weight, sum_dy,
                        sum_dy_xhat, gx, s, training);
}

template <class T>
void batch_norm_relu_backward_input(const T* x, const T* gy, const T* y, const T* mean,
                                    const T* invstd, const T* weight, const T* sum_dy,
                                    const T* sum_dy_xhat, T* gx, const BatchNormShape& s,
                                    bool training) {
  backward_input<true>(x, gy, y, mean, invstd, weight, sum_dy, sum_dy_xhat, gx, s, training);
}

template <class T>
void channel_sum(const T* g, T* sum, const BatchNormShape& s) {
#pragma omp parallel for schedule(static) if (s.numel() > (index_t{1} << 15))
  for (index_t c = 0; c < s.c; ++c) {
    double total = 0.0;
    for_channel(s, c, [&](index_t i) { total += static_cast<double>(g[i]); });
    sum[c] = static_cast<T>(total);
  }
}

#define GLIA_INSTANTIATE(T)                                                                        \
  template void batch_norm_stats<T>(const T*, T*, T*, T*, T*, const BatchNormShape&);              \
  template void batch_norm_invstd<T>(const T*, T*, const BatchNormShape&);                         \
  template void batch_norm_apply<T>(const T*, const T*, const T*, const T*, const T*, T*,          \
                                    const BatchNormShape&);                                        \
  template void batch_norm_backward_reduce<T>(const T*, const T*, const T*, const T*, T*, T*,      \
                                              const BatchNormShape&);                              \
  template void batch_norm_backward_input<T>(const T*, const T*, const T*, const T*, const T*,     \
                                             const T*, const T*, T*, const BatchNormShape&, bool); \
  template void channel_sum<T>(const T*, T*, const BatchNormShape&);                               \
  template void batch_norm_relu_apply<T>(const T*, const T*, const T*, const T*, const T*, T*,     \
                                         const BatchNormShape&);                                   \
  template void batch_norm_relu_backward_reduce<T>(const T*, const T*, const T*, const T*,         \
                                                   const T*, T*, T*, const BatchNormShape&);       \
  template void batch_norm_relu_backward_input<T>(const T*, const T*, const T*, const T*,          \
                                                  const T*, const T*, const T*, const T*, T*,      \
                                                  const BatchNormShape&, bool);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
