// Per-sample losses on the device, the same formulas as kernels/cpu/loss.cpp (shared through
// kernels/loss_math.h); every sum runs in an order fixed by the shape (no atomics).
//   bce_with_logits, dice, dice_bce  two passes. sample_sums: grid (samples, segments) of
//                     256-thread blocks; block (n, segment) sums the element terms (BCE's loss;
//                     Dice's p t, p and t with p = sigmoid(x); all four for the fused Dice + BCE)
//                     over its segment of sample n, each thread a strided share, combined by warp
//                     shuffles + shared memory. finish: a warp per sample sums the segments and
//                     writes loss[n] (and the sums I, P, T the Dice backward needs). Long samples
//                     (3-D volumes) split into up to 1024 segments of ~8192 elements in a
//                     workspace, so a small batch still fills the GPU; without a workspace, or for
//                     short samples, one segment per sample, summed in place.
//   *_backward (BCE, Dice, Dice + BCE)  grid (blocks along a sample, samples): elements (n, e)
//                     of gx, float4 at a time when aligned, with no division per element.
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

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/vector_access.cuh"
#include "kernels/loss_math.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

using block_reduce::kWarpSize;
using block_reduce::warp_all_max;
using block_reduce::warp_all_sum;
using block_reduce::warp_sum;
constexpr int kSampleThreads = 256;
constexpr int kRowsPerBlock = kThreadsPerBlock / kWarpSize;

// The element terms the per-sample reductions sum: BCE's one, Dice's three (I, P, T).
struct BceTerms {
  static constexpr int kCount = 1;
  float pos_weight;
  __device__ void add(float x, float t, float (&s)[kCount]) const {
    s[0] += loss::bce_with_logits(x, t, pos_weight);
  }
};

struct DiceTerms {
  static constexpr int kCount = 3;
  __device__ void add(float x, float t, float (&s)[kCount]) const {
    const float p = loss::sigmoid(x);
    s[0] += p * t;
    s[1] += p;
    s[2] += t;
  }
};

// Dice's three terms and the BCE term in one pass.
struct DiceBceTerms {
  static constexpr int kCount = 4;
  float pos_weight;
  __device__ void add(float x, float t, float (&s)[kCount]) const {
    const float p = loss::sigmoid(x);
    s[0] += p * t;
    s[1] += p;
    s[2] += t;
    s[3] += loss::bce_with_logits(x, t, pos_weight);
  }
};

// Block (n, segment) sums the terms of elements [segment * segment_length, + segment_length) of
// sample n into partial[(n * gridDim.y + segment) * K + k].
template <class Terms>
__global__ void __launch_bounds__(kSampleThreads)
    sample_sums_kernel(const float* x, const float* t, float* partial, index_t elements,
                       index_t segment_length, Terms terms) {
  constexpr int K = Terms::kCount;
  const index_t n = blockIdx.x, segment = blockIdx.y;
  const index_t e_begin = segment * segment_length;
  const index_t e_end = e_begin + segment_length < elements ? e_begin + segment_length : elements;
  const float* xn = x + n * elements;
  const float* tn = t + n * elements;
  float s[K] = {};
  for (index_t e = e_begin + threadIdx.x; e < e_end; e += blockDim.x) terms.add(xn[e], tn[e], s);
  block_reduce::sums_in_thread0(s);
  if (threadIdx.x == 0) {
    for (int k = 0; k < K; ++k) partial[(n * gridDim.y + segment) * K + k] = s[k];
  }
}
GLIA_LAUNCH_BOUNDS(sample_sums_kernel<BceTerms>, kSampleThreads);
GLIA_LAUNCH_BOUNDS(sample_sums_kernel<DiceTerms>, kSampleThreads);
GLIA_LAUNCH_BOUNDS(sample_sums_kernel<DiceBceTerms>, kSampleThreads);

// Warp n sums the segments of sample n: total[k] = sum_segment partial[n, segment, k], in every
// lane. May run in place (partial == the output) when there is one segment.
template <int K>
__device__ inline void sum_segments(const float* partial, index_t n, index_t segments, int lane,
                                    float (&total)[K]) {
  for (int k = 0; k < K; ++k) total[k] = 0.0f;
  for (index_t segment = lane; segment < segments; segment += kWarpSize) {
    for (int k = 0; k < K; ++k) total[k] += partial[(n * segments + segment) * K + k];
  }
  for (int k = 0; k < K; ++k) total[k] = warp_all_sum(total[k]);
}

// Warp n (of kRowsPerBlock): loss[n] = the mean of sample n's BCE terms.
__global__ void __launch_bounds__(kThreadsPerBlock)
    bce_finish_kernel(const float* partial, float* loss, index_t samples, index_t segments,
                      index_t elements) {
  const int lane = threadIdx.x % kWarpSize;
  const index_t n = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (n >= samples) return;
  float total[1];
  sum_segments(partial, n, segments, lane, total);
  if (lane == 0) loss[n] = elements > 0 ? total[0] / static_cast<float>(elements) : 0.0f;
}
GLIA_LAUNCH_BOUNDS(bce_finish_kernel, kThreadsPerBlock);

// Warp n: sums[n] = {I, P, T} of sample n and loss[n] = 1 - Dice.
__global__ void __launch_bounds__(kThreadsPerBlock)
    dice_finish_kernel(const float* partial, float* sums, float* loss, index_t samples,
                       index_t segments, float smooth) {
  const int lane = threadIdx.x % kWarpSize;
  const index_t n = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (n >= samples) return;
  float total[3];
  sum_segments(partial, n, segments, lane, total);  // its shuffles order the reads before
  if (lane == 0) {
    for (int k = 0; k < 3; ++k) sums[3 * n + k] = total[k];
    loss[n] = loss::dice_loss(total[0], total[1], total[2], smooth);
  }
}
GLIA_LAUNCH_BOUNDS(dice_finish_kernel, kThreadsPerBlock);

// Warp n: sums[n] = {I, P, T} of sample n and loss[n] = dice_weight (1 - Dice) +
// bce_weight BCE_mean.
__global__ void __launch_bounds__(kThreadsPerBlock)
    dice_bce_finish_kernel(const float* partial, float* sums, float* loss, index_t samples,
                           index_t segments, index_t elements, float dice_weight, float bce_weight,
                           float smooth) {
  const int lane = threadIdx.x % kWarpSize;
  const index_t n = static_cast<index_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  if (n >= samples) return;
  float total[4];
  sum_segments(partial, n, segments, lane, total);
  if (lane == 0) {
    for (int k = 0; k < 3; ++k) sums[3 * n + k] = total[k];
    const float bce_mean = elements > 0 ? total[3] / static_cast<float>(elements) : 0.0f;
    loss[n] =
        dice_weight * loss::dice_loss(total[0], total[1], total[2], smooth) + bce_weight * bce_mean;
  }
}
GLIA_LAUNCH_BOUNDS(dice_bce_finish_kernel, kThreadsPerBlock);

// The per-element gradients of the per-sample losses, times gloss[n] by the caller. A gradient's
// of_sample(sn), sn the sample's {I, P, T} (null for BCE), gives the element functor of sample n:
// what depends on the sample alone (the Dice quotients) is computed there once, so the element
// loop holds no division but the sigmoid's.
struct BceGrad {
  float pos_weight, inv_elements;
  __device__ BceGrad of_sample(const float*) const { return *this; }
  __device__ float operator()(float x, float t) const {
    return inv_elements * loss::bce_with_logits_grad(x, t, pos_weight);
  }
};

// d(1 - D)/dp = c0 - c1 t, which is loss::dice_grad_p rearranged: ((2 I + smooth) - 2 t d) / d^2
// with d = P + T + smooth (0 when d is 0).
struct DiceGradP {
  float c0, c1;
  __device__ static DiceGradP of(const float* sn, float smooth) {
    const float d = sn[1] + sn[2] + smooth;
    if (d == 0.0f) return {0.0f, 0.0f};
    const float inv_d = 1.0f / d;
    return {(2.0f * sn[0] + smooth) * inv_d * inv_d, 2.0f * inv_d};
  }
  __device__ float operator()(float t) const { return c0 - c1 * t; }
};

struct DiceGrad {
  float smooth;
  struct Sample {
    DiceGradP dice;
    __device__ float operator()(float x, float t) const {
      const float p = loss::sigmoid(x);
      return dice(t) * p * (1.0f - p);
    }
  };
  __device__ Sample of_sample(const float* sn) const { return {DiceGradP::of(sn, smooth)}; }
};

// loss::dice_bce_grad with the Dice part as above.
struct DiceBceGrad {
  float inv_elements, dice_weight, bce_weight, smooth, pos_weight;
  struct Sample {
    DiceGradP dice;
    float dice_weight, bce_scale, pos_weight;
    __device__ float operator()(float x, float t) const {
      const float p = loss::sigmoid(x);
      return dice_weight * dice(t) * p * (1.0f - p) +
             bce_scale * loss::bce_with_logits_grad(x, t, pos_weight);
    }
  };
  __device__ Sample of_sample(const float* sn) const {
    return {DiceGradP::of(sn, smooth), dice_weight, bce_weight * inv_elements, pos_weight};
  }
};

// gx[n, e] = gloss[n] * grad(x[n, e], t[n, e], sums of n): grid (blocks along a sample, samples),
// V floats per thread per step (float4 when aligned), no division per element.
// The explicit 4 blocks per SM leave ptxas up to 64 registers: with the bound alone it spilled
// around the division's slow path (sm_90).
template <int V, class Grad>
__global__ void __launch_bounds__(kThreadsPerBlock, 4)
    sample_backward_kernel(const float* x, const float* t, const float* sums, const float* gloss,
                           float* gx, index_t samples, index_t elements, Grad grad) {
  const index_t loads = elements / V;
  for (index_t n = blockIdx.y; n < samples; n += gridDim.y) {
    const float g = gloss[n];
    const auto grad_n = grad.of_sample(sums != nullptr ? sums + 3 * n : nullptr);
    const index_t base = n * elements;
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < loads;
         i += static_cast<index_t>(gridDim.x) * blockDim.x) {
      float vx[V], vt[V];
      load<V>(x + base + i * V, vx);
      load<V>(t + base + i * V, vt);
      for (int k = 0; k < V; ++k) vx[k] = g * grad_n(vx[k], vt[k]);
      store<V>(gx + base + i * V, vx);
    }
  }
}
GLIA_LAUNCH_BOUNDS((sample_backward_kernel<1, BceGrad>), kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS((sample_backward_kernel<4, BceGrad>), kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS((sample_backward_kernel<1, DiceGrad>), kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS((sample_backward_kernel<4, DiceGrad>), kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS((sample_backward_kernel<1, DiceBceGrad>), kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS((sample_backward_kernel<4, DiceBceGrad>), kThreadsPerBlock);

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
__global__ void __launch_bounds__(kThreadsPerBlock)
    cross_entropy_kernel(const float* x, const std::int32_t* target, const float* class_weight,
                         float* loss, float* lse, float* target_weight, index_t rows,
                         index_t classes, float smoothing) {
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
GLIA_LAUNCH_BOUNDS(cross_entropy_kernel, kThreadsPerBlock);

// Warp n writes gx[n, :].
__global__ void __launch_bounds__(kThreadsPerBlock)
    cross_entropy_backward_kernel(const float* x, const std::int32_t* target,
                                  const float* class_weight, const float* lse, const float* gloss,
                                  float* gx, index_t rows, index_t classes, float smoothing) {
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
GLIA_LAUNCH_BOUNDS(cross_entropy_backward_kernel, kThreadsPerBlock);

// Warp n: the focal loss of row n.
__global__ void __launch_bounds__(kThreadsPerBlock)
    focal_kernel(const float* x, const std::int32_t* target, const float* alpha, float* loss,
                 float* lse, index_t rows, index_t classes, float gamma) {
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
GLIA_LAUNCH_BOUNDS(focal_kernel, kThreadsPerBlock);

// Warp n writes gx[n, :] = gloss[n] * dl/dlogp_t * ([c == t] - p_c).
__global__ void __launch_bounds__(kThreadsPerBlock)
    focal_backward_kernel(const float* x, const std::int32_t* target, const float* alpha,
                          const float* lse, const float* gloss, float* gx, index_t rows,
                          index_t classes, float gamma) {
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
GLIA_LAUNCH_BOUNDS(focal_backward_kernel, kThreadsPerBlock);

unsigned row_blocks(const char* op, index_t rows) {
  const index_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > INT_MAX) {
    throw std::invalid_argument(std::string(op) +
                                ": too many rows for one launch: " + std::to_string(rows));
  }
  return static_cast<unsigned>(blocks);
}

unsigned row_blocks(const char* op, const ClassShape& s) {
  return row_blocks(op, s.rows);
}

// The per-sample sums split each sample into segments of about kSegmentLength elements, so a
// batch of a few large volumes still fills the GPU; at most kMaxSegments per sample.
constexpr index_t kSegmentLength = 8192;
constexpr index_t kMaxSegments = 1024;

struct SamplePlan {
  index_t segments;
  index_t segment_length;
};

SamplePlan plan_samples(const SampleShape& s) {
  index_t segments = (s.elements + kSegmentLength - 1) / kSegmentLength;
  if (segments > kMaxSegments) segments = kMaxSegments;
  if (segments < 1) segments = 1;
  return {segments, (s.elements + segments - 1) / segments};
}

// The plan, or one segment per sample without a workspace.
SamplePlan plan_with_workspace(const char* op, const SampleShape& s, const float* workspace) {
  if (s.samples > INT_MAX) {
    throw std::invalid_argument(std::string(op) + ": too many samples for one launch: shape " +
                                s.describe());
  }
  const SamplePlan plan = plan_samples(s);
  if (plan.segments > 1 && workspace == nullptr) return {1, s.elements};
  return plan;
}

template <class Terms>
void launch_sample_sums(const float* x, const float* t, float* partial, const SampleShape& s,
                        const SamplePlan& plan, Terms terms, Stream stream) {
  const dim3 grid(static_cast<unsigned>(s.samples), static_cast<unsigned>(plan.segments));
  GLIA_LAUNCH(sample_sums_kernel<Terms>, grid, kSampleThreads, 0, stream, x, t, partial, s.elements,
              plan.segment_length, terms);
}

template <class Grad>
void launch_sample_backward(const float* x, const float* t, const float* sums, const float* gloss,
                            float* gx, const SampleShape& s, Grad grad, Stream stream) {
  if (s.samples * s.elements == 0) return;
  const bool vec = s.elements % 4 == 0 && aligned16(x) && aligned16(t) && aligned16(gx);
  const index_t loads = vec ? s.elements / 4 : s.elements;
  const index_t blocks = (loads + kThreadsPerBlock - 1) / kThreadsPerBlock;
  const index_t x_limit = grid_limit(kMaxGridStrideBlocks), y_limit = grid_limit(65535);
  const dim3 grid(static_cast<unsigned>(blocks < x_limit ? blocks : x_limit),
                  static_cast<unsigned>(s.samples < y_limit ? s.samples : y_limit));
  // Named pointers: a two-argument template-id would split the launch macro's arguments.
  const auto sample_backward_vec4 = &sample_backward_kernel<4, Grad>;
  const auto sample_backward_scalar = &sample_backward_kernel<1, Grad>;
  if (vec) {
    GLIA_LAUNCH(sample_backward_vec4, grid, kThreadsPerBlock, 0, stream, x, t, sums, gloss, gx,
                s.samples, s.elements, grad);
  } else {
    GLIA_LAUNCH(sample_backward_scalar, grid, kThreadsPerBlock, 0, stream, x, t, sums, gloss, gx,
                s.samples, s.elements, grad);
  }
}

}  // namespace

index_t sample_loss_workspace_size(const SampleShape& s) {
  const SamplePlan plan = plan_samples(s);
  return plan.segments > 1 ? s.samples * plan.segments * DiceTerms::kCount : 0;  // 3 >= BCE's 1
}

void bce_with_logits(const float* x, const float* t, float* loss, const SampleShape& s,
                     float pos_weight, float* workspace, Stream stream) {
  if (s.samples == 0) return;
  const SamplePlan plan = plan_with_workspace("bce_with_logits", s, workspace);
  // One segment: the partial sums are the totals, reduced in place in loss.
  float* partial = plan.segments > 1 ? workspace : loss;
  launch_sample_sums(x, t, partial, s, plan, BceTerms{pos_weight}, stream);
  GLIA_LAUNCH(bce_finish_kernel, row_blocks("bce_with_logits", s.samples), kThreadsPerBlock, 0,
              stream, partial, loss, s.samples, plan.segments, s.elements);
}

void bce_with_logits(const float* x, const float* t, float* loss, const SampleShape& s,
                     float pos_weight, Stream stream) {
  bce_with_logits(x, t, loss, s, pos_weight, nullptr, stream);
}

void bce_with_logits_backward(const float* x, const float* t, const float* gloss, float* gx,
                              const SampleShape& s, float pos_weight, Stream stream) {
  const float inv_elements = 1.0f / static_cast<float>(s.elements);
  launch_sample_backward(x, t, nullptr, gloss, gx, s, BceGrad{pos_weight, inv_elements}, stream);
}

void dice(const float* x, const float* t, float* sums, float* loss, const SampleShape& s,
          float smooth, float* workspace, Stream stream) {
  if (s.samples == 0) return;
  const SamplePlan plan = plan_with_workspace("dice", s, workspace);
  float* partial = plan.segments > 1 ? workspace : sums;
  launch_sample_sums(x, t, partial, s, plan, DiceTerms{}, stream);
  GLIA_LAUNCH(dice_finish_kernel, row_blocks("dice", s.samples), kThreadsPerBlock, 0, stream,
              partial, sums, loss, s.samples, plan.segments, smooth);
}

void dice(const float* x, const float* t, float* sums, float* loss, const SampleShape& s,
          float smooth, Stream stream) {
  dice(x, t, sums, loss, s, smooth, nullptr, stream);
}

index_t dice_bce_workspace_size(const SampleShape& s) {
  return s.samples * plan_samples(s).segments * DiceBceTerms::kCount;
}

void dice_bce(const float* x, const float* t, float* sums, float* loss, const SampleShape& s,
              float dice_weight, float bce_weight, float smooth, float pos_weight, float* workspace,
              Stream stream) {
  if (s.samples == 0) return;
  if (workspace == nullptr) {
    throw std::invalid_argument("dice_bce: no workspace given for shape " + s.describe());
  }
  const SamplePlan plan = plan_with_workspace("dice_bce", s, workspace);
  launch_sample_sums(x, t, workspace, s, plan, DiceBceTerms{pos_weight}, stream);
  GLIA_LAUNCH(dice_bce_finish_kernel, row_blocks("dice_bce", s.samples), kThreadsPerBlock, 0,
              stream, workspace, sums, loss, s.samples, plan.segments, s.elements, dice_weight,
              bce_weight, smooth);
}

void dice_bce_backward(const float* x, const float* t, const float* sums, const float* gloss,
                       float* gx, const SampleShape& s, float dice_weight, float bce_weight,
                       float smooth, float pos_weight, Stream stream) {
  const float inv_elements = 1.0f / static_cast<float>(s.elements);
  launch_sample_backward(x, t, sums, gloss, gx, s,
                         DiceBceGrad{inv_elements, dice_weight, bce_weight, smooth, pos_weight},
                         stream);
}

void dice_backward(const float* x, const float* t, const float* sums, const float* gloss, float* gx,
                   const SampleShape& s, float smooth, Stream stream) {
  launch_sample_backward(x, t, sums, gloss, gx, s, DiceGrad{smooth}, stream);
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
