// Dataset statistics: moments and extremes against direct computation, the histogram bins and
// their clamping, the overlap of identical / disjoint / half-shifted histograms, and the JSON.
#include "data/prep/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

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

}  // namespace
}  // namespace glia::data
