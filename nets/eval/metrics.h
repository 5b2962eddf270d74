// Evaluation metrics on host data (masks and scores already copied off the device).
// Segmentation, per slice: Dice = 2|P∩T| / (|P|+|T|), IoU = |P∩T| / |P∪T|, where an empty target
// with an empty prediction scores 1 (nothing to find, nothing found) for both; per volume, the same
// over the counts summed across its slices (OverlapCounts), with the same rule; pixel accuracy;
// boundary F-score (boundary pixels of P within `tolerance` pixels of T's boundary, and back);
// Hausdorff 95 (the larger of the two directed 95th-percentile boundary distances, in pixels; 0
// when both masks are empty, NaN when exactly one is). Classification: confusion counts and the
// rates built on them, ROC-AUC (Mann-Whitney, ties count half), PR-AUC (average precision, as
// scikit-learn), expected calibration error over 15 equal-width confidence bins. A rate whose
// denominator is zero is NaN, and summaries skip NaN entries rather than count them as 0 or 1.
// Tested in tests/nets/eval/metrics_test.cpp.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace glia::nets {

struct MaskScores {
  double dice = 0;
  double iou = 0;
};
// |P∩T|, |P| and |T| of one slice, or summed over the slices of a volume: a patient's Dice is
// 2 sum|P∩T| / (sum|P| + sum|T|), not the mean of its slices' Dice (which empty slices inflate).
struct OverlapCounts {
  std::int64_t intersection = 0, predicted = 0, target = 0;
  OverlapCounts& operator+=(const OverlapCounts& other);
  // Dice and IoU of the counts; both 1 when predicted and target are both empty.
  MaskScores scores() const;
};
// Masks are 0/1 (any non-zero counts as 1) of equal size.
OverlapCounts overlap_counts(std::span<const std::uint8_t> pred,
                             std::span<const std::uint8_t> target);
MaskScores mask_scores(std::span<const std::uint8_t> pred, std::span<const std::uint8_t> target);
double pixel_accuracy(std::span<const std::uint8_t> pred, std::span<const std::uint8_t> target);
double boundary_f_score(std::span<const std::uint8_t> pred, std::span<const std::uint8_t> target,
                        int height, int width, double tolerance = 2.0);
double hausdorff95(std::span<const std::uint8_t> pred, std::span<const std::uint8_t> target,
                   int height, int width);

struct BinaryCounts {
  std::int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  std::int64_t total() const { return tp + fp + tn + fn; }
  double accuracy() const;
  double precision() const;
  double recall() const;  // sensitivity
  double specificity() const;
  double f1() const;
};
// Labels and predictions are 0/1; class 1 (tumour) is the positive class.
BinaryCounts confusion(std::span<const int> predicted, std::span<const int> labels);

// Area under the ROC curve of `scores` (higher = more positive). NaN when one class is absent.
double roc_auc(std::span<const double> scores, std::span<const int> labels);
// Average precision: sum over thresholds of (recall step) * precision. NaN without positives.
double pr_auc(std::span<const double> scores, std::span<const int> labels);
// Binary calibration: confidence = max(p, 1 - p) of the positive-class probability p, correct =
// (p >= 0.5) == label; ECE = sum over bins of |accuracy - mean confidence| * bin share.
double expected_calibration_error(std::span<const double> probabilities,
                                  std::span<const int> labels, int bins = 15);

// Mean and (population) standard deviation over the finite values; count of those values.
struct MeanStd {
  double mean = 0;
  double std = 0;
  std::int64_t count = 0;
};
MeanStd mean_std(std::span<const double> values);

// One evaluated sample, as validation and evaluation collect them.
struct SampleResult {
  std::string source;      // "brats" | "kaggle"
  int label = 0;           // the true class
  double probability = 0;  // predicted tumour probability
  bool has_mask = false;   // segmentation scores are meaningful only then
  MaskScores seg;          // at the decision threshold
  // Filled by nets::score_samples (nets/eval/sample_scores.h) for samples with a mask; the boundary
  // metrics only when asked for (they cost a nearest-boundary search per slice), NaN otherwise.
  std::size_t index = 0;  // the dataset index
  OverlapCounts overlap{};
  double pixel_accuracy = std::numeric_limits<double>::quiet_NaN();
  double boundary_f = std::numeric_limits<double>::quiet_NaN();
  double hausdorff95 = std::numeric_limits<double>::quiet_NaN();
};

struct Summary {
  std::int64_t count = 0;
  std::int64_t masked = 0;  // samples with a mask
  MeanStd dice, iou;        // over masked samples
  BinaryCounts counts;      // at the classification threshold
  double accuracy = 0, sensitivity = 0, specificity = 0, roc_auc = 0;
  // w * Dice + (1 - w) * accuracy; with no masked sample the Dice term is dropped (accuracy alone),
  // and with no sample at all it is NaN.
  double combined = 0;
};
// "overall" and one entry per source, at the given threshold and combined-metric weight w.
std::map<std::string, Summary> summarize(std::span<const SampleResult> results,
                                         double threshold = 0.5, double dice_weight = 0.5);

}  // namespace glia::nets
