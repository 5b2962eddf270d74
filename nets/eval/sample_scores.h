// Runs a model over a loader in evaluation mode (batch norms on running statistics, dropout off,
// no autograd tape) and scores every sample: the tumour probability (nets/model/unet.h's
// tumour_probability of the cls logits) and, for samples with a mask, the overlap counts, Dice,
// IoU and pixel accuracy of the thresholded segmentation (and, when asked, boundary F-score and
// Hausdorff 95).
// The model's train/eval mode is restored afterwards. Tested in tests/nets/train/trainer_test.cpp
// and tests/nets/eval/report_test.cpp; gather_results in tests/dist/ddp_test.cpp.
#pragma once

#include <vector>

#include "data/input/loader.h"
#include "engine/device.h"
#include "engine/dist/communicator.h"
#include "nets/eval/metrics.h"
#include "nets/model/unet.h"

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
std::vector<SampleResult> score_samples(MultiTaskUNet& model, data::Loader& loader,
                                        const EvalOptions& options);

// A data-parallel evaluation: every rank scored its shard of `dataset` (the same dataset on
// every rank); returns, on every rank, all ranks' results ordered by dataset index, so that
// summarize() computes exact counts, Dice means and ROC-AUC over the whole split (not averages of
// the ranks' averages) and equals a single process's result. Source names are restored from the
// dataset. Tested in tests/dist/ddp_test.cpp and, through validation, tests/dist/train_e2e.sh.
std::vector<SampleResult> gather_results(const std::vector<SampleResult>& mine,
                                         dist::Communicator& comm, const data::Dataset& dataset);

}  // namespace glia::nets
