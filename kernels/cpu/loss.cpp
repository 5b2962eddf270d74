// Reference losses per sample, the oracle of kernels/cuda/loss.cu. Per-sample sums (BCE, Dice) and
// per-row class sums (log-sum-exp, weighted log-probabilities) accumulate in double; the formulas
// themselves are kernels/loss_math.h, shared with the device kernels. Shapes: logits and targets
// [samples, elements] (SampleShape) or [rows, classes] with int32 targets (ClassShape).
// Tested in tests/kernels/loss_test.cpp and tests/engine/loss_test.cpp.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/cpu/kernels.h"
#include "kernels/loss_math.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

std::int32_t checked_target(const std::int32_t* target, index_t n, const ClassShape& s) {
  const std::int32_t t = target[n];
  if (t < 0 || t >= s.classes) {
    throw std::invalid_argument("cross-entropy/focal: target " + std::to_string(t) + " of row " +
                                std::to_string(n) + " is outside [0, " + std::to_string(s.classes) +
                                ") for logits [" + std::to_string(s.rows) + ", " +
                                std::to_string(s.classes) + "]");
  }
  return t;
}

// log sum_c exp(x[c]), max-subtracted.
template <class T>
double log_sum_exp(const T* x, index_t classes) {
  double m = -std::numeric_limits<double>::infinity();
  for (index_t c = 0; c < classes; ++c) m = std::fmax(m, static_cast<double>(x[c]));
  double sum = 0.0;
  for (index_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(x[c]) - m);
  return m + std::log(sum);
}

}  // namespace

template <class T>
void bce_with_logits(const T* x, const T* t, T* loss, const SampleShape& s, T pos_weight) {
#pragma omp parallel for schedule(static) if (s.samples * s.elements > kParallelThreshold)
  for (index_t n = 0; n < s.samples; ++n) {
    double sum = 0.0;
    for (index_t e = 0; e < s.elements; ++e) {
      const index_t i = n * s.elements + e;
      sum += static_cast<double>(loss::bce_with_logits(x[i], t[i], pos_weight));
    }
    loss[n] = s.elements > 0 ? static_cast<T>(sum / static_cast<double>(s.elements)) : T(0);
  }
}

template <class T>
void bce_with_logits_backward(const T* x, const T* t, const T* gloss, T* gx, const SampleShape& s,
                              T pos_weight) {
  const T inv_elements = T(1) / static_cast<T>(s.elements > 0 ? s.elements : 1);
#pragma omp parallel for schedule(static) if (s.samples * s.elements > kParallelThreshold)
  for (index_t n = 0; n < s.samples; ++n) {
    const T g = gloss[n] * inv_elements;
    for (index_t e = 0; e < s.elements; ++e) {
      const index_t i = n * s.elements + e;
      gx[i] = g * loss::bce_with_logits_grad(x[i], t[i], pos_weight);
    }
  }
}

template <class T>
void dice(const T* x, const T* t, T* sums, T* loss, const SampleShape& s, T smooth) {
#pragma omp parallel for schedule(static) if (s.samples * s.elements > kParallelThreshold)
  for (index_t n = 0; n < s.samples; ++n) {
    double intersection = 0.0, sum_p = 0.0, sum_t = 0.0;
    for (index_t e = 0; e < s.elements; ++e) {
      const index_t i = n * s.elements + e;
      const double p = static_cast<double>(loss::sigmoid(x[i]));
      intersection += p * static_cast<double>(t[i]);
      sum_p += p;
      sum_t += static_cast<double>(t[i]);
    }
    sums[3 * n] = static_cast<T>(intersection);
    sums[3 * n + 1] = static_cast<T>(sum_p);
    sums[3 * n + 2] = static_cast<T>(sum_t);
    loss[n] =
        static_cast<T>(loss::dice_loss(intersection, sum_p, sum_t, static_cast<double>(smooth)));
  }
}

template <class T>
void dice_backward(const T* x, const T* t, const T* sums, const T* gloss, T* gx,
                   const SampleShape& s, T smooth) {
#pragma omp parallel for schedule(static) if (s.samples * s.elements > kParallelThreshold)
  for (index_t n = 0; n < s.samples; ++n) {
    const T* sn = sums + 3 * n;
    for (index_t e = 0; e < s.elements; ++e) {
      const index_t i = n * s.elements + e;
      const T p = loss::sigmoid(x[i]);
      gx[i] = gloss[n] * loss::dice_grad_p(t[i], sn[0], sn[1], sn[2], smooth) * p * (T(1) - p);
    }
  }
}

template <class T>
void dice_bce(const T* x, const T* t, T* sums, T* loss, const SampleShape& s, T dice_weight,
              T bce_weight, T smooth, T pos_weight) {
#pragma omp parallel for schedule(static) if (s.samples * s.elements > kParallelThreshold)
  for (index_t n = 0; n < s.samples; ++n) {
    double intersection = 0.0, sum_p = 0.0, sum_t = 0.0, bce = 0.0;
    for (index_t e = 0; e < s.elements; ++e) {
      const index_t i = n * s.elements + e;
      const double p = static_cast<double>(loss::sigmoid(x[i]));
      intersection += p * static_cast<double>(t[i]);
      sum_p += p;
      sum_t += static_cast<double>(t[i]);
      bce += static_cast<double>(loss::bce_with_logits(x[i], t[i], pos_weight));
    }
    sums[3 * n] = static_cast<T>(intersection);
    sums[3 * n + 1] = static_cast<T>(sum_p);
    sums[3 * n + 2] = static_cast<T>(sum_t);
    const double bce_mean = s.elements > 0 ? bce / static_cast<double>(s.elements) : 0.0;
    loss[n] = static_cast<T>(
        static_cast<double>(dice_weight) *
            loss::dice_loss(intersection, sum_p, sum_t, static_cast<double>(smooth)) +
        static_cast<double>(bce_weight) * bce_mean);
  }
}

template <class T>
void dice_bce_backward(const T* x, const T* t, const T* sums, const T* gloss, T* gx,
                       const SampleShape& s, T dice_weight, T bce_weight, T smooth, T pos_weight) {
  const T inv_elements = T(1) / static_cast<T>(s.elements > 0 ? s.elements : 1);
#pragma omp parallel for schedule(static) if (s.samples * s.elements > kParallelThreshold)
  for (index_t n = 0; n < s.samples; ++n) {
    const T* sn = sums + 3 * n;
    for (index_t e = 0; e < s.elements; ++e) {
      const index_t i = n * s.elements + e;
      gx[i] = gloss[n] * loss::dice_bce_grad(x[i], t[i], sn[0], sn[1], sn[2], inv_elements,
                                             dice_weight, bce_weight, smooth, pos_weight);
    }
  }
}

template <class T>
void cross_entropy(const T* x, const std::int32_t* target, const T* class_weight, T* loss, T* lse,
                   T* target_weight, const ClassShape& s, T smoothing) {
  for (index_t n = 0; n < s.rows; ++n) checked_target(target, n, s);
#pragma omp parallel for schedule(static) if (s.rows * s.classes > kParallelThreshold)
  for (index_t n = 0; n < s.rows; ++n) {
    const T* xn = x + n * s.classes;
    const double row_lse = log_sum_exp(xn, s.classes);
    double weighted_logp_sum = 0.0;
    for (index_t c = 0; c < s.classes; ++c) {
      const double w = class_weight ? static_cast<double>(class_weight[c]) : 1.0;
      weighted_logp_sum += w * (static_cast<double>(xn[c]) - row_lse);
    }
    const std::int32_t t = target[n];
    const double w_t = class_weight ? static_cast<double>(class_weight[t]) : 1.0;
    loss[n] = static_cast<T>(loss::cross_entropy_loss(static_cast<double>(xn[t]) - row_lse, w_t,
                                                      weighted_logp_sum,
                                                      static_cast<double>(smoothing), s.classes));
    lse[n] = static_cast<T>(row_lse);
    target_weight[n] = static_cast<T>(w_t);
  }
}

template <class T>
void cross_entropy_backward(const T* x, const std::int32_t* target, const T* class_weight,
                            const T* lse, const T* gloss, T* gx, const ClassShape& s, T smoothing) {
  for (index_t n = 0; n < s.rows; ++n) checked_target(target, n, s);
  double weight_sum = static_cast<double>(s.classes);
  if (class_weight) {
    weight_sum = 0.0;
    for (index_t c = 0; c < s.classes; ++c) weight_sum += static_cast<double>(class_weight[c]);
  }
#pragma omp parallel for schedule(static) if (s.rows * s.classes > kParallelThreshold)
  for (index_t n = 0; n < s.rows; ++n) {
    const std::int32_t t = target[n];
    const T w_t = class_weight ? class_weight[t] : T(1);
    for (index_t c = 0; c < s.classes; ++c) {
      const index_t i = n * s.classes + c;
      const T p = std::exp(x[i] - lse[n]);
      const T w_c = class_weight ? class_weight[c] : T(1);
      gx[i] = gloss[n] * loss::cross_entropy_grad(p, c == t, w_c, w_t, static_cast<T>(weight_sum),
                                                  smoothing, s.classes);
    }
  }
}

template <class T>
void focal(const T* x, const std::int32_t* target, const T* alpha, T* loss, T* lse,
           const ClassShape& s, T gamma) {
  for (index_t n = 0; n < s.rows; ++n) checked_target(target, n, s);
#pragma omp parallel for schedule(static) if (s.rows * s.classes > kParallelThreshold)
  for (index_t n = 0; n < s.rows; ++n) {
    const T* xn = x + n * s.classes;
    const double row_lse = log_sum_exp(xn, s.classes);
    const std::int32_t t = target[n];
    const double a_t = alpha ? static_cast<double>(alpha[t]) : 1.0;
    loss[n] = static_cast<T>(
        loss::focal_loss(static_cast<double>(xn[t]) - row_lse, a_t, static_cast<double>(gamma)));
    lse[n] = static_cast<T>(row_lse);
  }
}

template <class T>
void focal_backward(const T* x, const std::int32_t* target, const T* alpha, const T* lse,
                    const T* gloss, T* gx, const ClassShape& s, T gamma) {
  for (index_t n = 0; n < s.rows; ++n) checked_target(target, n, s);
#pragma omp parallel for schedule(static) if (s.rows * s.classes > kParallelThreshold)
  for (index_t n = 0; n < s.rows; ++n) {
    const std::int32_t t = target[n];
    const T* xn = x + n * s.classes;
    const T a_t = alpha ? alpha[t] : T(1);
    const T g = gloss[n] * loss::focal_grad_logp(xn[t] - lse[n], a_t, gamma);
    for (index_t c = 0; c < s.classes; ++c) {
      const T p = std::exp(xn[c] - lse[n]);
      gx[n * s.classes + c] = g * ((c == t ? T(1) : T(0)) - p);
    }
  }
}

#define GLIA_INSTANTIATE(T)                                                                        \
  template void bce_with_logits<T>(const T*, const T*, T*, const SampleShape&, T);                 \
  template void bce_with_logits_backward<T>(const T*, const T*, const T*, T*, const SampleShape&,  \
                                            T);                                                    \
  template void dice<T>(const T*, const T*, T*, T*, const SampleShape&, T);                        \
  template void dice_backward<T>(const T*, const T*, const T*, const T*, T*, const SampleShape&,   \
                                 T);                                                               \
  template void dice_bce<T>(const T*, const T*, T*, T*, const SampleShape&, T, T, T, T);           \
  template void dice_bce_backward<T>(const T*, const T*, const T*, const T*, T*,                   \
                                     const SampleShape&, T, T, T, T);                              \
  template void cross_entropy<T>(const T*, const std::int32_t*, const T*, T*, T*, T*,              \
                                 const ClassShape&, T);                                            \
  template void cross_entropy_backward<T>(const T*, const std::int32_t*, const T*, const T*,       \
                                          const T*, T*, const ClassShape&, T);                     \
  template void focal<T>(const T*, const std::int32_t*, const T*, T*, T*, const ClassShape&, T);   \
  template void focal_backward<T>(const T*, const std::int32_t*, const T*, const T*, const T*, T*, \
                                  const ClassShape&, T);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
