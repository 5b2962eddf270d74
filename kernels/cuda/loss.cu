// Per-sample losses on the device, the same formulas as kernels/cpu/loss.cpp (shared through
// kernels/loss_math.h); every sum runs in an order fixed by the shape (no atomics).
//   bce_with_logits   a block (256 threads) per sample n: each thread sums bce(x, t) over a
//                     strided share of the sample's elements e, then warp shuffles + shared memory
//                     combine the partials; thread 0 writes the mean loss[n].
//   dice              a block per sample: the same fused reduction of the three sums
//                     I = sum p t, P = sum p, T = sum t (p = sigmoid(x)), then loss[n] = 1 - Dice.
//   *_backward (BCE, Dice)  grid-stride, a thread per element (n, e) of gx.
//   cross_entropy, focal    a warp per row n (8 rows per 256-thread block): max-subtracted
//                     log-sum-exp of the row by warp shuffles, then the row's loss; the backward
//                     warps recompute p_c = exp(x_c - lse) from the saved lse and write gx[n, c].
// Tested in tests/kernels/loss_test.cpp against the cpu reference.
#include "kernels/cuda/portable.cuh"

#include <climits>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/loss_math.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

constexpr int kWarpSize = 32;
constexpr unsigned kFullWarp = 0xffffffffu;
constexpr int kSampleThreads = 256;
constexpr int kRowsPerBlock = kThreadsPerBlock / kWarpSize;

__device__ inline float warp_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_down_sync(kFullWarp, v, offset);
  }
  return v;
}

// Reduced to every lane (butterfly), so the whole warp can use the row's statistics.
__device__ inline float warp_all_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(kFullWarp, v, offset);
  }
  return v;
}

__device__ inline float warp_all_max(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(kFullWarp, v, offset));
  }
  return v;
}

// The block-wide sums of up to three values, valid in thread 0. blockDim.x is a multiple of 32.
template <int K>
__device__ inline void block_sums(float (&v)[K]) {
  __shared__ float warp_sums[K][kWarpSize];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  for (int k = 0; k < K; ++k) v[k] = warp_sum(v[k]);
  if (lane == 0) {
    for (int k = 0; k < K; ++k) warp_sums[k][warp] = v[k];
  }
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / kWarpSize;
    for (int k = 0; k < K; ++k) v[k] = warp_sum(lane < warps ? warp_sums[k][lane] : 0.0f);
  }
}

// Block n: loss[n] = mean_e bce(x[n, e], t[n, e]).
__global__ void bce_kernel(const float* x, const float* t, float* loss, index_t elements,
                           float pos_weight) {
  const index_t n = blockIdx.x;
  const float* xn = x + n * elements;
  const float* tn = t + n * elements;
  float sum[1] = {0.0f};
  for (index_t e = threadIdx.x; e < elements; e += blockDim.x) {
    sum[0] += loss::bce_with_logits(xn[e], tn[e], pos_weight);
  }
  block_sums(sum);
  if (threadIdx.x == 0) loss[n] = elements > 0 ? sum[0] / static_cast<float>(elements) : 0.0f;
}

// Thread i = n * elements + e writes gx[n, e].
__global__ void bce_backward_kernel(const float* x, const float* t, const float* gloss, float* gx,
                                    index_t samples, index_t elements, float pos_weight) {
  const float inv_elements = 1.0f / static_cast<float>(elements);
  for (index_t i = global_thread_index(); i < samples * elements; i += grid_thread_count()) {
    const index_t n = i / elements;
    gx[i] = gloss[n] * inv_elements * loss::bce_with_logits_grad(x[i], t[i], pos_weight);
  }
}

// Block n: sums[n] = {I, P, T} and loss[n] = 1 - Dice.
__global__ void dice_kernel(const float* x, const float* t, float* sums, float* loss,
                            index_t elements, float smooth) {
  const index_t n = blockIdx.x;
  const float* xn = x + n * elements;
  const float* tn = t + n * elements;
  float s[3] = {0.0f, 0.0f, 0.0f};  // I, P, T
  for (index_t e = threadIdx.x; e < elements; e += blockDim.x) {
    const float p = loss::sigmoid(xn[e]);
    s[0] += p * tn[e];
    s[1] += p;
    s[2] += tn[e];
  }
  block_sums(s);
  if (threadIdx.x == 0) {
    for (int k = 0; k < 3; ++k) sums[3 * n + k] = s[k];
    loss[n] = loss::dice_loss(s[0], s[1], s[2], smooth);
  }
}

// Thread i = n * elements + e writes gx[n, e] = gloss[n] * dloss/dp * p (1 - p).
__global__ void dice_backward_kernel(const float* x, const float* t, const float* sums,
                                     const float* gloss, float* gx, index_t samples,
                                     index_t elements, float smooth) {
  for (index_t i = global_thread_index(); i < samples * elements; i += grid_thread_count()) {
    const index_t n = i / elements;
    const float* sn = sums + 3 * n;
    const float p = loss::sigmoid(x[i]);
    gx[i] = gloss[n] * loss::dice_grad_p(t[i], sn[0], sn[1], sn[2], smooth) * p * (1.0f - p);
  }
}

// log sum_c exp(x[c]) of a row, max-subtracted, in every lane of the calling warp.
__device__ inline float row_log_sum_exp(const float* xn, index_t classes, int lane) {
  float m = -INFINITY;
  for (index_t c = lane; c < classes; c += kWarpSize) m = fmaxf(m, xn[c]);
  m = warp_all_max(m);
  float sum = 0.0f;
  for (index_t c = lane; c < classes; c += kWarpSize) sum += expf(xn[c] - m);
  return m + logf(warp_all_sum(sum));
}

__device__ inline bool valid_target(std::int32_t t, index_t classes) {
  return t >= 0 && t < classes;
}

// Warp n (of the block's kRowsPerBlock): the cross-entropy of row n.
__global__ void cross_entropy_kernel(const float* x, const std::int32_t* target,
                                     const float* class_weight, float* loss, float* lse,
                                     float* target_weight, index_t rows, index_t classes,
                                     float smoothing) {
  const int lane = threadIdx.x % kWarpSize;
  const index_t n = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (n >= rows) return;  // whole warps leave together
  const float* xn = x + n * classes;
  const float row_lse = row_log_sum_exp(xn, classes, lane);
  float weighted_logp = 0.0f;
  for (index_t c = lane; c < classes; c += kWarpSize) {
    weighted_logp += (class_weight ? class_weight[c] : 1.0f) * (xn[c] - row_lse);
  }
  weighted_logp = warp_sum(weighted_logp);
  if (lane == 0) {
    const std::int32_t t = target[n];
    if (valid_target(t, classes)) {
      const float w_t = class_weight ? class_weight[t] : 1.0f;
      loss[n] = loss::cross_entropy_loss(xn[t] - row_lse, w_t, weighted_logp, smoothing, classes);
      target_weight[n] = w_t;
    } else {
      loss[n] = NAN;
      target_weight[n] = NAN;
    }
    lse[n] = row_lse;
  }
}

// Warp n writes gx[n, :].
__global__ void cross_entropy_backward_kernel(const float* x, const std::int32_t* target,
                                              const float* class_weight, const float* lse,
                                              const float* gloss, float* gx, index_t rows,
                                              index_t classes, float smoothing) {
  const int lane = threadIdx.x % kWarpSize;
  const index_t n = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (n >= rows) return;
  float weight_sum = static_cast<float>(classes);
  if (class_weight) {
    weight_sum = 0.0f;
    for (index_t c = lane; c < classes; c += kWarpSize) weight_sum += class_weight[c];
    weight_sum = warp_all_sum(weight_sum);
  }
  const std::int32_t t = target[n];
  const bool valid = valid_target(t, classes);
  const float w_t = !valid ? NAN : class_weight ? class_weight[t] : 1.0f;
  const float* xn = x + n * classes;
  for (index_t c = lane; c < classes; c += kWarpSize) {
    const float p = expf(xn[c] - lse[n]);
    const float w_c = class_weight ? class_weight[c] : 1.0f;
    gx[n * classes + c] =
        gloss[n] * loss::cross_entropy_grad(p, c == t, w_c, w_t, weight_sum, smoothing, classes);
  }
}

// Warp n: the focal loss of row n.
__global__ void focal_kernel(const float* x, const std::int32_t* target, const float* alpha,
                             float* loss, float* lse, index_t rows, index_t classes, float gamma) {
  const int lane = threadIdx.x % kWarpSize;
  const index_t n = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (n >= rows) return;
  const float* xn = x + n * classes;
  const float row_lse = row_log_sum_exp(xn, classes, lane);
  if (lane == 0) {
    const std::int32_t t = target[n];
    loss[n] = valid_target(t, classes)
                  ? loss::focal_loss(xn[t] - row_lse, alpha ? alpha[t] : 1.0f, gamma)
                  : NAN;
    lse[n] = row_lse;
  }
}

// Warp n writes gx[n, :] = gloss[n] * dl/dlogp_t * ([c == t] - p_c).
__global__ void focal_backward_kernel(const float* x, const std::int32_t* target,
                                      const float* alpha, const float* lse, const float* gloss,
                                      float* gx, index_t rows, index_t classes, float gamma) {
  const int lane = threadIdx.x % kWarpSize;
  const index_t n = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (n >= rows) return;
  const float* xn = x + n * classes;
  const std::int32_t t = target[n];
  const float g =
      valid_target(t, classes)
          ? gloss[n] * loss::focal_grad_logp(xn[t] - lse[n], alpha ? alpha[t] : 1.0f, gamma)
          : NAN;
  for (index_t c = lane; c < classes; c += kWarpSize) {
    gx[n * classes + c] = g * ((c == t ? 1.0f : 0.0f) - expf(xn[c] - lse[n]));
  }
}

std::string shape_string(const SampleShape& s) {
  return "[" + std::to_string(s.samples) + ", " + std::to_string(s.elements) + "]";
}

void check_samples(const char* op, const SampleShape& s) {
  if (s.samples > INT_MAX) {
    throw std::invalid_argument(std::string(op) + ": too many samples for one launch: shape " +
                                shape_string(s));
  }
}

unsigned row_blocks(const char* op, const ClassShape& s) {
  const index_t blocks = (s.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > INT_MAX) {
    throw std::invalid_argument(std::string(op) + ": too many rows for one launch: [" +
                                std::to_string(s.rows) + ", " + std::to_string(s.classes) + "]");
  }
  return static_cast<unsigned>(blocks);
}

}  // namespace

void bce_with_logits(const float* x, const float* t, float* loss, const SampleShape& s,
                     float pos_weight, Stream stream) {
  if (s.samples == 0) return;
  check_samples("bce_with_logits", s);
  GLIA_LAUNCH(bce_kernel, static_cast<unsigned>(s.samples), kSampleThreads, 0, stream, x, t, loss,
              s.elements, pos_weight);
}

void bce_with_logits_backward(const float* x, const float* t, const float* gloss, float* gx,
                              const SampleShape& s, float pos_weight, Stream stream) {
  const index_t n = s.samples * s.elements;
  if (n == 0) return;
  GLIA_LAUNCH(bce_backward_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, x, t, gloss,
              gx, s.samples, s.elements, pos_weight);
}

void dice(const float* x, const float* t, float* sums, float* loss, const SampleShape& s,
          float smooth, Stream stream) {
  if (s.samples == 0) return;
  check_samples("dice", s);
  GLIA_LAUNCH(dice_kernel, static_cast<unsigned>(s.samples), kSampleThreads, 0, stream, x, t, sums,
              loss, s.elements, smooth);
}

void dice_backward(const float* x, const float* t, const float* sums, const float* gloss, float* gx,
                   const SampleShape& s, float smooth, Stream stream) {
  const index_t n = s.samples * s.elements;
  if (n == 0) return;
  GLIA_LAUNCH(dice_backward_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, x, t, sums,
              gloss, gx, s.samples, s.elements, smooth);
}

void cross_entropy(const float* x, const std::int32_t* target, const float* class_weight,
                   float* loss, float* lse, float* target_weight, const ClassShape& s,
                   float smoothing, Stream stream) {
  if (s.rows == 0) return;
  GLIA_LAUNCH(cross_entropy_kernel, row_blocks("cross_entropy", s), kThreadsPerBlock, 0, stream, x,
              target, class_weight, loss, lse, target_weight, s.rows, s.classes, smoothing);
}

void cross_entropy_backward(const float* x, const std::int32_t* target, const float* class_weight,
                            const float* lse, const float* gloss, float* gx, const ClassShape& s,
                            float smoothing, Stream stream) {
  if (s.rows == 0) return;
  GLIA_LAUNCH(cross_entropy_backward_kernel, row_blocks("cross_entropy_backward", s),
              kThreadsPerBlock, 0, stream, x, target, class_weight, lse, gloss, gx, s.rows,
              s.classes, smoothing);
}

void focal(const float* x, const std::int32_t* target, const float* alpha, float* loss, float* lse,
           const ClassShape& s, float gamma, Stream stream) {
  if (s.rows == 0) return;
  GLIA_LAUNCH(focal_kernel, row_blocks("focal", s), kThreadsPerBlock, 0, stream, x, target, alpha,
              loss, lse, s.rows, s.classes, gamma);
}

void focal_backward(const float* x, const std::int32_t* target, const float* alpha,
                    const float* lse, const float* gloss, float* gx, const ClassShape& s,
                    float gamma, Stream stream) {
  if (s.rows == 0) return;
  GLIA_LAUNCH(focal_backward_kernel, row_blocks("focal_backward", s), kThreadsPerBlock, 0, stream,
              x, target, alpha, lse, gloss, gx, s.rows, s.classes, gamma);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
