// The per-stage training loss; see multitask_loss.h.
#include "nets/model/multitask_loss.h"

#include <stdexcept>

#include "engine/losses.h"
#include "engine/ops.h"

namespace glia::nets {

bool stage_needs_seg(int stage) {
  return stage == 1 || stage == 3;
}
bool stage_needs_cls(int stage) {
  return stage == 2 || stage == 3;
}

LossParts multitask_loss(const MultiTaskOutput& out, const Tensor& masks, const Tensor& has_mask,
                         const Tensor& labels, const LossConfig& config, int stage) {
  if (stage < 1 || stage > 3) throw std::invalid_argument("multitask_loss: stage must be 1..3");
  LossParts parts;
  Tensor seg_term, cls_term;
  if (stage_needs_seg(stage)) {
    if (!out.seg_logits.defined()) {
      throw std::invalid_argument("multitask_loss: stage " + std::to_string(stage) +
                                  " needs the segmentation output");
    }
    DiceBceOptions options;
    options.dice_weight = config.dice_weight;
    options.bce_weight = config.bce_weight;
    options.smooth = config.dice_smooth;
    options.pos_weight = config.pos_weight;
    seg_term = dice_bce_loss(out.seg_logits, masks, Reduction::mean, has_mask, options);
    parts.seg = seg_term.item<float>();
    parts.has_seg = true;
  }
  if (stage_needs_cls(stage)) {
    if (!out.cls_logits.defined()) {
      throw std::invalid_argument("multitask_loss: stage " + std::to_string(stage) +
                                  " needs the classification output");
    }
    const index_t classes = out.cls_logits.size(1);
    std::vector<float> weights(static_cast<std::size_t>(classes), 1.0f);
    weights[0] = static_cast<float>(config.weight_no_tumor);
    if (classes > 1) weights[1] = static_cast<float>(config.weight_tumor);
    const Tensor class_weight = from_vector(weights, {classes}, out.cls_logits.device());
    if (config.cls == "focal") {
      cls_term =
          focal_loss(out.cls_logits, labels, Reduction::mean, {}, config.focal_gamma, class_weight);
    } else {
      cls_term = cross_entropy(out.cls_logits, labels, Reduction::mean, {}, class_weight,
                               config.label_smoothing);
    }
    parts.cls = cls_term.item<float>();
    parts.has_cls = true;
  }
  if (stage == 1) {
    parts.total = seg_term;
  } else if (stage == 2) {
    parts.total = cls_term;
  } else {
    parts.total = add(mul(seg_term, config.lambda_seg), mul(cls_term, config.lambda_cls));
  }
  return parts;
}

}  // namespace glia::nets
