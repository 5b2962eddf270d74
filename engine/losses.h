// Losses and the small layer ops (dropout, channel concat/split, linear), in the style of
// engine/ops.h: inputs on one device with one dtype (f32 everywhere, f64 on cpu), errors name the
// shapes, and the backward is recorded when an input requires grad. Gradients flow to the logits
// (and x, weight, bias of linear); targets, masks and weights are constants.
//
// Every loss first computes one value l_n per sample n (the first dim), then reduces:
//   none  s_n l_n                      (l_n without a sample weight)
//   sum   sum_n s_n l_n
//   mean  sum_n s_n l_n / sum_n s_n d_n
// where s_n = max(sample_weight[n], 0) (1 without one), so a sample with weight <= 0 takes no part,
// and d_n is the sample's share of the denominator: w[target_n] for a class-weighted
// cross-entropy (PyTorch's weighted mean), 1 otherwise. A zero denominator gives 0, not NaN
// (it is clamped to 1e-30 while every term of the numerator is 0). Class targets outside [0, C)
// throw on cpu; on sim and cuda they give a NaN loss (checking them would stall on a device sync).
// The segmentation loss of samples without a mask: a sample weight of 0 for them.
// Kernels: kernels/cpu/{loss,dropout,concat}.cpp and kernels/cuda/{loss,dropout,concat}.cu.
// Tested in tests/engine/loss_test.cpp.
#pragma once

#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"

namespace glia {

enum class Reduction { mean, sum, none };

// Binary cross-entropy on logits [N, ...] against targets of the same shape, in [0, 1]:
// l_n = mean over the sample's elements of max(x, 0) - x t + log1p(e^-|x|), with the positive
// term weighted by pos_weight as in PyTorch: -(pos_weight t log s(x) + (1 - t) log(1 - s(x))).
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::mean,
                                        const Tensor& sample_weight = {}, double pos_weight = 1.0);

// Soft Dice on sigmoid(logits) [N, ...] per sample:
// l_n = 1 - (2 sum p t + smooth) / (sum p + sum t + smooth). An empty target with an empty
// prediction is a perfect match (0 / 0 with smooth == 0 counts as Dice 1).
Tensor dice_loss(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::mean,
                 const Tensor& sample_weight = {}, double smooth = 1.0);

struct DiceBceOptions {
  double dice_weight = 0.5;
  double bce_weight = 0.5;
  double smooth = 1.0;      // of the Dice term
  double pos_weight = 1.0;  // of the BCE term
};
// l_n = dice_weight * Dice_n + bce_weight * BCE_n.
Tensor dice_bce_loss(const Tensor& logits, const Tensor& target,
                     Reduction reduction = Reduction::mean, const Tensor& sample_weight = {},
                     const DiceBceOptions& options = {});

// Cross-entropy of logits [N, C] against i32 class targets [N], as PyTorch's cross_entropy with
// label_smoothing and an optional per-class weight [C]:
// l_n = -(1 - e) w_t log p_t - (e / C) sum_c w_c log p_c.
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     Reduction reduction = Reduction::mean, const Tensor& sample_weight = {},
                     const Tensor& class_weight = {}, double label_smoothing = 0.0);

// Focal loss of logits [N, C] against i32 class targets [N] on the softmax probability of the
// target class: l_n = -alpha_t (1 - p_t)^gamma log p_t, alpha an optional per-class weight [C]
// (1 without). Its mean divides by the sample count (alpha does not enter the denominator).
Tensor focal_loss(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::mean,
                  const Tensor& sample_weight = {}, double gamma = 2.0, const Tensor& alpha = {});

// Training-mode dropout with p in [0, 1]: element i is kept when the Philox uniform of the
// generator's draw is >= p (the same mask on every device for the same seed and offset), and
// kept values are scaled by 1 / (1 - p). Returns x itself in eval mode or for p == 0; p == 1 gives
// zeros. Uses default_generator() when `generator` is null.
Tensor dropout(const Tensor& x, double p, bool training, Generator* generator = nullptr);

// Concatenation along dim 1 (channels of NCHW, features of [N, F]); every other dim must match.
Tensor concat(const std::vector<Tensor>& xs);
// The inverse: pieces of x along dim 1 with the given sizes, which must sum to x.size(1).
std::vector<Tensor> split(const Tensor& x, const std::vector<index_t>& sizes);

// y = x W^T + b with x [N, in], weight [out, in] and bias [out] (optional), as torch's linear.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace glia
