// Runs a model over a loader in evaluation mode (batch norms on running statistics, dropout off,
// no autograd tape) and scores every sample: the tumour probability (softmax of the cls logits,
// class 1) and, for samples with a mask, the overlap counts, Dice, IoU and pixel accuracy of the
// thresholded segmentation (and, when asked, boundary F-score and Hausdorff 95).
// The model's train/eval mode is restored afterwards. Tested in tests/nets/trainer_test.cpp and
// tests/nets/evaluation_test.cpp.
#pragma once

#include <vector>

#include "engine/device.h"
#include "io/loader.h"
#include "nets/metrics.h"
#include "nets/unet.h"

namespace glia::nets {

struct EvalOptions {
  Device device = Device::cpu();
  double seg_threshold = 0.5;  // on sigmoid(seg logits)
  bool do_seg = true;
  bool do_cls = true;
  bool boundary_metrics = false;    // boundary F-score and Hausdorff 95 per masked sample
  double boundary_tolerance = 2.0;  // pixels, for the boundary F-score
};

// One SampleResult per sample of the loader's current epoch, in loader order.
std::vector<SampleResult> evaluate(MultiTaskUNet& model, io::Loader& loader,
                                   const EvalOptions& options);

}  // namespace glia::nets
