// Dataset statistics: moments and extremes against direct computation, the histogram bins and
// their clamping, the overlap of identical / disjoint / half-shifted histograms, the JSON, and the
// kept-share summary (median and MAD against a sort, outliers by the robust bound and the floor).
#include "data/prep/stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace glia::data {
namespace {

TEST(PrepStatsTest, MomentsMatchADirectComputation) {
  std::vector<float> a = {0.0f, 1.5f, -2.0f, 0.0f, 3.25f}, b = {4.0f, -1.0f, 0.0f};
  DatasetStats stats;
  stats.add("brats", "train", 1, true, a);
  stats.add("brats", "train", 0, true, b);
  const GroupStats& g = stats.groups().at({"brats", "train"});
  EXPECT_EQ(g.slices, 2);
  EXPECT_EQ(g.positives, 1);
  EXPECT_EQ(g.with_mask, 2);
  std::vector<double> all, nz;
  for (auto* v : {&a, &b}) {
    for (float x : *v) {
      all.push_back(x);
      if (x != 0) nz.push_back(x);
    }
  }
  auto check = [](const PixelStats& p, const std::vector<double>& xs) {
    double m = 0, s = 0;
    for (double x : xs) m += x;
    m /= xs.size();
    for (double x : xs) s += (x - m) * (x - m);
    s = std::sqrt(s / xs.size());
    EXPECT_EQ(p.count, static_cast<std::int64_t>(xs.size()));
    EXPECT_NEAR(p.mean(), m, 1e-12);
    EXPECT_NEAR(p.stddev(), s, 1e-12);
    EXPECT_EQ(p.min, *std::min_element(xs.begin(), xs.end()));
    EXPECT_EQ(p.max, *std::max_element(xs.begin(), xs.end()));
  };
  check(g.all, all);
  check(g.nonzero, nz);
  std::int64_t in_hist = 0;
  for (auto c : g.histogram) in_hist += c;
  EXPECT_EQ(in_hist, static_cast<std::int64_t>(nz.size()));
  EXPECT_EQ(g.histogram[stats_bin(1.5)], 1);
}

TEST(PrepStatsTest, BinsClampAndCoverTheRange) {
  EXPECT_EQ(stats_bin(-100.0), 0);
  EXPECT_EQ(stats_bin(kStatsLo), 0);
  EXPECT_EQ(stats_bin(kStatsHi), kStatsBins - 1);
  EXPECT_EQ(stats_bin(1e9), kStatsBins - 1);
  EXPECT_EQ(stats_bin(std::nan("")), 0);
  double width = (kStatsHi - kStatsLo) / kStatsBins;
  for (int b = 0; b < kStatsBins; ++b) EXPECT_EQ(stats_bin(kStatsLo + (b + 0.5) * width), b);
}

TEST(PrepStatsTest, OverlapOfIdenticalDisjointAndShiftedHistograms) {
  std::vector<std::int64_t> a = {0, 2, 2, 0}, b = {0, 20, 20, 0}, c = {1, 0, 0, 1},
                            d = {0, 0, 4, 4}, empty = {0, 0, 0, 0};
  EXPECT_DOUBLE_EQ(histogram_overlap(a, b), 1.0);  // scale does not matter
  EXPECT_DOUBLE_EQ(histogram_overlap(a, c), 0.0);
  EXPECT_DOUBLE_EQ(histogram_overlap(a, d), 0.5);
  EXPECT_DOUBLE_EQ(histogram_overlap(a, empty), 0.0);

  // Two sources: same distribution -> overlap near 1; one scaled by 3 (a normalisation
  // mismatch) -> clearly lower.
  std::mt19937_64 rng(1);
  std::normal_distribution<float> z(0.0f, 1.0f);
  std::vector<float> x(20000), y(20000), y3(20000);
  for (auto& v : x) v = z(rng);
  for (auto& v : y) v = z(rng);
  for (std::size_t i = 0; i < y.size(); ++i) y3[i] = 3.0f * y[i];
  DatasetStats same, mismatch;
  same.add("brats", "train", 0, true, x);
  same.add("kaggle", "train", 0, false, y);
  mismatch.add("brats", "train", 0, true, x);
  mismatch.add("kaggle", "train", 0, false, y3);
  EXPECT_GT(same.overlaps().at("brats|kaggle"), 0.95);
  EXPECT_LT(mismatch.overlaps().at("brats|kaggle"), 0.7);
}

TEST(PrepStatsTest, JsonAndTableHoldEveryGroup) {
  std::vector<float> a = {1.0f, -1.0f, 0.0f};
  DatasetStats stats;
  stats.add("brats", "train", 1, true, a);
  stats.add("brats", "val", 0, true, a);
  stats.add("kaggle", "test", 1, false, a);
  auto j = stats.to_json();
  EXPECT_EQ(j["groups"].size(), 3u);
  EXPECT_EQ(j["sources"]["brats"]["slices"], 2);
  EXPECT_EQ(j["sources"]["kaggle"]["with_mask"], 0);
  EXPECT_EQ(j["groups"][0]["histogram_nonzero"].size(), static_cast<std::size_t>(kStatsBins));
  EXPECT_DOUBLE_EQ(j["histogram_overlap"]["brats|kaggle"].get<double>(), 1.0);
  std::string t = stats.table();
  EXPECT_NE(t.find("kaggle   test"), std::string::npos) << t;
  EXPECT_NE(t.find("histogram overlap brats|kaggle"), std::string::npos) << t;
}

// Median by sorting, independent of summarize_kept's nth_element.
double sorted_median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

TEST(PrepStatsTest, KeptSummaryMatchesASortAndFlagsOutliers) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0.45, 0.65);
  for (int n : {1, 2, 7, 10}) {
    std::vector<double> f;
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
      f.push_back(u(rng));
      names.push_back("img" + std::to_string(i) + ".jpg");
    }
    KeptSummary k = summarize_kept(f, names, true);
    const double median = sorted_median(f);
    std::vector<double> dev;
    for (double v : f) dev.push_back(std::abs(v - median));
    EXPECT_EQ(k.count, n);
    EXPECT_DOUBLE_EQ(k.median, median) << n;
    EXPECT_DOUBLE_EQ(k.mad, sorted_median(dev)) << n;
    EXPECT_DOUBLE_EQ(k.min, *std::min_element(f.begin(), f.end()));
    EXPECT_DOUBLE_EQ(k.max, *std::max_element(f.begin(), f.end()));
    // Spread 0.2 wide: every share lies within median -+ 3 * max(1.4826 MAD, 0.05).
    EXPECT_TRUE(k.outliers.empty()) << n;
  }

  // A tiny head, a whole-image "head" and one under the floor only.
  std::vector<double> f = {0.50, 0.52, 0.55, 0.48, 0.51, 0.53, 0.02, 0.99, 0.49};
  std::vector<std::string> names = {"a.jpg", "b.jpg",    "c.jpg",     "d.jpg", "e.jpg",
                                    "f.jpg", "tiny.jpg", "frame.jpg", "i.jpg"};
  KeptSummary k = summarize_kept(f, names, true);
  const double median = sorted_median(f);
  std::vector<double> dev;
  for (double v : f) dev.push_back(std::abs(v - median));
  const double spread = 3.0 * std::max(1.4826 * sorted_median(dev), 0.05);
  EXPECT_DOUBLE_EQ(k.low, std::max(0.15, median - spread));
  EXPECT_DOUBLE_EQ(k.high, median + spread);
  ASSERT_EQ(k.outliers.size(), 2u);
  EXPECT_EQ(k.outliers[0].name, "tiny.jpg");
  EXPECT_DOUBLE_EQ(k.outliers[0].fraction, 0.02);
  EXPECT_EQ(k.outliers[1].name, "frame.jpg");

  // Widely spread shares: the floor still catches a share below 0.15.
  KeptSummary wide = summarize_kept(std::vector<double>{0.1, 0.3, 0.5, 0.7, 0.9},
                                    std::vector<std::string>{"v", "w", "x", "y", "z"}, true);
  ASSERT_EQ(wide.outliers.size(), 1u);
  EXPECT_EQ(wide.outliers[0].name, "v");

  // Unchecked (BraTS slices): summarised, never flagged.
  KeptSummary unchecked = summarize_kept(f, names, false);
  EXPECT_FALSE(unchecked.checked);
  EXPECT_TRUE(unchecked.outliers.empty());
  EXPECT_DOUBLE_EQ(unchecked.median, k.median);

  EXPECT_THROW(summarize_kept(f, std::vector<std::string>{"a"}, true), std::invalid_argument);
  KeptSummary empty = summarize_kept({}, {}, true);
  EXPECT_EQ(empty.count, 0);
}

TEST(PrepStatsTest, KeptSharesReachJsonAndTable) {
  DatasetStats stats;
  for (int i = 0; i < 6; ++i) stats.add_kept("kaggle", "k" + std::to_string(i), 0.5, true);
  stats.add_kept("kaggle", "small.jpg", 0.01, true);
  stats.add_kept("brats", "B1", 0.01, false);
  stats.add_kept("brats", "B1", 0.4, false);
  std::vector<float> a = {1.0f, -1.0f};
  stats.add("brats", "train", 1, true, a);
  stats.add("kaggle", "train", 1, false, a);
  auto j = stats.to_json();
  const auto& kk = j["sources"]["kaggle"]["kept_fraction"];
  EXPECT_EQ(kk["count"], 7);
  EXPECT_DOUBLE_EQ(kk["median"].get<double>(), 0.5);
  ASSERT_EQ(kk["outliers"].size(), 1u);
  EXPECT_EQ(kk["outliers"][0]["name"], "small.jpg");
  const auto& kb = j["sources"]["brats"]["kept_fraction"];
  EXPECT_FALSE(kb["checked"].get<bool>());
  EXPECT_FALSE(kb.contains("outliers"));
  EXPECT_DOUBLE_EQ(kb["min"].get<double>(), 0.01);
  std::string t = stats.table();
  EXPECT_NE(t.find("kept fraction kaggle: min 0.010 median 0.500 max 0.500, 1 outlier"),
            std::string::npos)
      << t;
}

}  // namespace
}  // namespace glia::data
