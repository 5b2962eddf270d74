// Metrics on hand-computable cases: perfect, empty, disjoint and half-overlapping masks; boundary
// distances of shifted squares; confusion rates; ROC-AUC of known rankings (and against the
// pairwise definition on random data); average precision; ECE of calibrated and overconfident sets;
// per-source summaries.
#include "nets/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace glia::nets {
namespace {

using Mask = std::vector<std::uint8_t>;

// A height x width mask with the rectangle [y0, y1) x [x0, x1) set.
Mask rect(int height, int width, int y0, int y1, int x0, int x1) {
  Mask m(height * width, 0);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) m[y * width + x] = 1;
  }
  return m;
}

TEST(MaskScores, PerfectEmptyDisjointAndHalfOverlap) {
  const Mask a = rect(8, 8, 0, 4, 0, 4), empty(64, 0);
  EXPECT_DOUBLE_EQ(mask_scores(a, a).dice, 1.0);
  EXPECT_DOUBLE_EQ(mask_scores(a, a).iou, 1.0);
  EXPECT_DOUBLE_EQ(mask_scores(empty, empty).dice, 1.0);  // the documented empty rule
  EXPECT_DOUBLE_EQ(mask_scores(empty, empty).iou, 1.0);
  EXPECT_DOUBLE_EQ(mask_scores(empty, a).dice, 0.0);
  EXPECT_DOUBLE_EQ(mask_scores(a, empty).iou, 0.0);
  EXPECT_DOUBLE_EQ(mask_scores(a, rect(8, 8, 4, 8, 4, 8)).dice, 0.0);
  // 16-pixel squares sharing 8 pixels: Dice 2*8/32, IoU 8/24.
  const Mask b = rect(8, 8, 2, 6, 0, 4);
  EXPECT_DOUBLE_EQ(mask_scores(a, b).dice, 0.5);
  EXPECT_DOUBLE_EQ(mask_scores(a, b).iou, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(pixel_accuracy(a, b), (64.0 - 16.0) / 64.0);
  EXPECT_THROW(mask_scores(a, Mask(10, 0)), std::invalid_argument);
}

TEST(OverlapCounts, VolumeScoresSumOverSlices) {
  const Mask a = rect(8, 8, 0, 4, 0, 4), half = rect(8, 8, 2, 6, 0, 4), empty(64, 0);
  const OverlapCounts c = overlap_counts(a, half);
  EXPECT_EQ(c.intersection, 8);
  EXPECT_EQ(c.predicted, 16);
  EXPECT_EQ(c.target, 16);
  // Perfect, empty and disjoint volumes of two slices.
  OverlapCounts perfect = overlap_counts(a, a);
  perfect += overlap_counts(empty, empty);
  EXPECT_DOUBLE_EQ(perfect.scores().dice, 1.0);
  OverlapCounts nothing = overlap_counts(empty, empty);
  nothing += overlap_counts(empty, empty);
  EXPECT_DOUBLE_EQ(nothing.scores().dice, 1.0);  // the empty rule, per volume
  EXPECT_DOUBLE_EQ(nothing.scores().iou, 1.0);
  OverlapCounts disjoint = overlap_counts(a, empty);
  disjoint += overlap_counts(empty, a);
  EXPECT_DOUBLE_EQ(disjoint.scores().dice, 0.0);
  // Half overlap on one slice, perfect on a second of equal size: 2*(8+16) / (32+32) = 0.75,
  // IoU 24 / 40; an empty third slice changes neither (its slice Dice of 1 would lift a mean).
  OverlapCounts volume = overlap_counts(a, half);
  volume += overlap_counts(a, a);
  EXPECT_DOUBLE_EQ(volume.scores().dice, 0.75);
  EXPECT_DOUBLE_EQ(volume.scores().iou, 24.0 / 40.0);
  volume += overlap_counts(empty, empty);
  EXPECT_DOUBLE_EQ(volume.scores().dice, 0.75);
  EXPECT_THROW(overlap_counts(a, Mask(10, 0)), std::invalid_argument);
}

TEST(BoundaryMetrics, ShiftedSquares) {
  const Mask a = rect(16, 16, 4, 10, 4, 10);
  EXPECT_DOUBLE_EQ(hausdorff95(a, a, 16, 16), 0.0);
  EXPECT_DOUBLE_EQ(boundary_f_score(a, a, 16, 16, 0.0), 1.0);
  // Shifted by 3 columns: every boundary distance is at most 3 and the largest ones are 3.
  const Mask b = rect(16, 16, 4, 10, 7, 13);
  EXPECT_NEAR(hausdorff95(a, b, 16, 16), 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(boundary_f_score(a, b, 16, 16, 3.0), 1.0);
  EXPECT_LT(boundary_f_score(a, b, 16, 16, 1.0), 1.0);
  const Mask empty(256, 0);
  EXPECT_DOUBLE_EQ(hausdorff95(empty, empty, 16, 16), 0.0);
  EXPECT_TRUE(std::isnan(hausdorff95(a, empty, 16, 16)));
  EXPECT_DOUBLE_EQ(boundary_f_score(empty, empty, 16, 16), 1.0);
  EXPECT_DOUBLE_EQ(boundary_f_score(a, empty, 16, 16), 0.0);
  EXPECT_THROW(hausdorff95(a, b, 8, 8), std::invalid_argument);
}

TEST(Confusion, RatesFromCounts) {
  const std::vector<int> predicted{1, 1, 0, 0, 1, 0}, labels{1, 0, 0, 1, 1, 0};
  const BinaryCounts c = confusion(predicted, labels);
  EXPECT_EQ(c.tp, 2);
  EXPECT_EQ(c.fp, 1);
  EXPECT_EQ(c.tn, 2);
  EXPECT_EQ(c.fn, 1);
  EXPECT_DOUBLE_EQ(c.accuracy(), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(c.precision(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(c.recall(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(c.specificity(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(c.f1(), 2.0 / 3.0);
  EXPECT_TRUE(std::isnan(confusion(std::vector<int>{0}, std::vector<int>{0}).recall()));
}

TEST(RocAuc, KnownRankings) {
  const std::vector<int> labels{0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<double>{0.1, 0.2, 0.8, 0.9}, labels), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<double>{0.9, 0.8, 0.2, 0.1}, labels), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<double>{0.5, 0.5, 0.5, 0.5}, labels), 0.5);
  // One of the four positive-negative pairs misordered.
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<double>{0.1, 0.6, 0.5, 0.9}, labels), 0.75);
  EXPECT_TRUE(std::isnan(roc_auc(std::vector<double>{0.1, 0.2}, std::vector<int>{1, 1})));
}

TEST(RocAuc, MatchesThePairwiseDefinitionOnRandomScores) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> coarse(0, 9);  // coarse scores so that ties occur
  std::vector<double> scores(200);
  std::vector<int> labels(200);
  for (std::size_t i = 0; i < scores.size(); ++i) {
    labels[i] = static_cast<int>(rng() % 2);
    scores[i] = coarse(rng) / 10.0 + 0.05 * labels[i];
  }
  double wins = 0, pairs = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    for (std::size_t j = 0; j < scores.size(); ++j) {
      if (labels[i] == 1 && labels[j] == 0) {
        wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
        pairs += 1;
      }
    }
  }
  EXPECT_NEAR(roc_auc(scores, labels), wins / pairs, 1e-12);
}

TEST(PrAuc, AveragePrecision) {
  const std::vector<int> labels{1, 0, 1, 0};
  // Ranked: pos (P=1, R=.5), neg, pos (P=2/3, R=1), neg -> AP = .5*1 + .5*2/3.
  EXPECT_DOUBLE_EQ(pr_auc(std::vector<double>{0.9, 0.8, 0.7, 0.1}, labels), 0.5 + 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(pr_auc(std::vector<double>{0.9, 0.1, 0.8, 0.2}, labels), 1.0);
  EXPECT_TRUE(std::isnan(pr_auc(std::vector<double>{0.3}, std::vector<int>{0})));
}

TEST(Calibration, PerfectAndOverconfident) {
  // Confidence 0.8 in one bin with 80% correct: calibrated, ECE 0.
  std::vector<double> p(10, 0.8);
  std::vector<int> labels{1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  EXPECT_NEAR(expected_calibration_error(p, labels), 0.0, 1e-12);
  // Same confidence, 50% correct: ECE 0.3.
  labels = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
  EXPECT_NEAR(expected_calibration_error(p, labels), 0.3, 1e-12);
  // Two bins: p=0.2 (confidence 0.8, predicts 0) all correct -> |1-0.8| = 0.2 on half the set;
  // p=0.95 all correct -> 0.05 on the other half.
  p = {0.2, 0.2, 0.95, 0.95};
  labels = {0, 0, 1, 1};
  EXPECT_NEAR(expected_calibration_error(p, labels), 0.5 * 0.2 + 0.5 * 0.05, 1e-12);
}

TEST(Summaries, OverallAndPerSource) {
  std::vector<SampleResult> r = {
      {"brats", 1, 0.9, true, {0.8, 0.7}},
      {"brats", 0, 0.2, true, {1.0, 1.0}},
      {"kaggle", 1, 0.4, false, {}},
      {"kaggle", 0, 0.1, false, {}},
  };
  const auto s = summarize(r, 0.5, 0.5);
  ASSERT_EQ(s.size(), 3u);
  const Summary& all = s.at("overall");
  EXPECT_EQ(all.count, 4);
  EXPECT_EQ(all.masked, 2);
  EXPECT_DOUBLE_EQ(all.dice.mean, 0.9);
  EXPECT_DOUBLE_EQ(all.dice.std, 0.1);
  EXPECT_DOUBLE_EQ(all.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(all.sensitivity, 0.5);
  EXPECT_DOUBLE_EQ(all.specificity, 1.0);
  EXPECT_DOUBLE_EQ(all.roc_auc, 1.0);
  EXPECT_DOUBLE_EQ(all.combined, 0.5 * 0.9 + 0.5 * 0.75);
  const Summary& kaggle = s.at("kaggle");
  EXPECT_EQ(kaggle.masked, 0);
  EXPECT_EQ(kaggle.dice.count, 0);
  EXPECT_DOUBLE_EQ(kaggle.combined, kaggle.accuracy);  // no Dice term without masks
  EXPECT_DOUBLE_EQ(s.at("brats").accuracy, 1.0);
  const auto none = summarize({}, 0.5, 0.5);
  ASSERT_EQ(none.count("overall"), 1u);
  EXPECT_TRUE(std::isnan(none.at("overall").combined));
  const std::vector<double> with_nan{1.0, NAN, 3.0};
  EXPECT_EQ(mean_std(with_nan).count, 2);
  EXPECT_DOUBLE_EQ(mean_std(with_nan).mean, 2.0);
}

}  // namespace
}  // namespace glia::nets
