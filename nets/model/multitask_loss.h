// The training loss of each stage, on one batch:
//   stage 1  L = L_seg
//   stage 2  L = L_cls
//   stage 3  L = lambda_seg * L_seg + lambda_cls * L_cls
// L_seg = dice_weight * Dice + bce_weight * BCE on the seg logits, averaged over the samples that
// have a mask only (has_mask is the per-sample weight, so a sample without a mask contributes
// nothing, and a batch with none gives L_seg = 0, not NaN). L_cls = cross-entropy (label
// smoothing, class weights) or focal loss over all samples.
// Tested in tests/nets/model/multitask_loss_test.cpp.
#pragma once

#include "engine/tensor.h"
#include "nets/model/unet.h"
#include "nets/train/train_config.h"

namespace glia::nets {

struct LossParts {
  Tensor total;    // the scalar to differentiate
  double seg = 0;  // the unweighted terms, for logs (0 when the stage has none)
  double cls = 0;
  bool has_seg = false;
  bool has_cls = false;
};

// Which outputs a stage needs in training.
bool stage_needs_seg(int stage);
bool stage_needs_cls(int stage);

// masks [n, 1, h, w] f32, has_mask [n] f32, labels [n] i32, all on the outputs' device.
LossParts multitask_loss(const MultiTaskOutput& out, const Tensor& masks, const Tensor& has_mask,
                         const Tensor& labels, const LossConfig& config, int stage);

}  // namespace glia::nets
