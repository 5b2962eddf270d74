// The phantom generator in memory: head geometry (empty first/last slices, background 0, skull
// brighter than brain, ventricles darker), tumour labels only inside the brain and only 0/1/2/4,
// oedema brighter than brain on FLAIR, subjects without tumour, variation between seeds and
// reproduction with one seed; Kaggle-like images of varying size and aspect; exported-scan
// phantoms reproducible with a plausible head (their head regions: head_region_test.cpp).
#include "data/prep/phantom.h"

#include <gtest/gtest.h>

#include <set>

namespace glia::data {
namespace {

double mean_where(const PhantomVolume& v, auto pred) {
  double sum = 0;
  std::int64_t n = 0;
  for (std::size_t i = 0; i < v.flair.size(); ++i) {
    if (pred(i)) sum += v.flair[i], ++n;
  }
  return n ? sum / n : 0.0;
}

TEST(PhantomTest, HeadGeometryAndContrast) {
  for (auto [n, depth] : {std::pair{32, 12}, std::pair{64, 24}, std::pair{40, 7}}) {
    PhantomVolume v = make_brats_phantom(n, depth, true, 11);
    ASSERT_EQ(v.flair.size(), static_cast<std::size_t>(n) * n * depth);
    const std::size_t plane = static_cast<std::size_t>(n) * n;
    auto slice_empty = [&](int z) {
      for (std::size_t i = 0; i < plane; ++i) {
        if (v.flair[z * plane + i] != 0) return false;
      }
      return true;
    };
    EXPECT_TRUE(slice_empty(0)) << n;
    EXPECT_TRUE(slice_empty(depth - 1)) << n;
    EXPECT_FALSE(slice_empty(depth / 2)) << n;
    // The corners of every slice are background.
    for (int z = 0; z < depth; ++z) EXPECT_EQ(v.flair[z * plane], 0.0f);
    // Along the middle row of the middle slice: background, then the skull (the brightest
    // non-tumour voxels), then brain.
    const int z = depth / 2, y = n / 2;
    float skull = 0;
    int first = -1;
    for (int x = 0; x < n; ++x) {
      float f = v.flair[(z * n + y) * n + x];
      if (f != 0 && first < 0) first = x;
      if (x < n / 4) skull = std::max(skull, f);
    }
    ASSERT_GT(first, 0);
    // Brain level: the median of the non-tumour voxels in the central half of the plane (away
    // from the skull).
    std::vector<float> central;
    for (int zz = 0; zz < depth; ++zz) {
      for (int yy = n / 4; yy < 3 * n / 4; ++yy) {
        for (int xx = n / 4; xx < 3 * n / 4; ++xx) {
          std::size_t i = (static_cast<std::size_t>(zz) * n + yy) * n + xx;
          if (v.flair[i] != 0 && v.seg[i] == 0) central.push_back(v.flair[i]);
        }
      }
    }
    ASSERT_FALSE(central.empty());
    std::nth_element(central.begin(), central.begin() + central.size() / 2, central.end());
    const double brain = central[central.size() / 2];
    EXPECT_GT(skull, 1.5 * brain);
    std::set<std::uint8_t> labels(v.seg.begin(), v.seg.end());
    for (auto l : labels) EXPECT_TRUE(l == 0 || l == 1 || l == 2 || l == 4) << int(l);
    EXPECT_TRUE(labels.count(2)) << n;
    EXPECT_TRUE(labels.count(4) || labels.count(1)) << n;
    for (std::size_t i = 0; i < v.seg.size(); ++i) {
      if (v.seg[i]) {
        ASSERT_NE(v.flair[i], 0.0f) << "tumour outside the head at " << i;
      }
    }
    double oedema = mean_where(v, [&](std::size_t i) { return v.seg[i] == 2; });
    EXPECT_GT(oedema, 1.2 * brain);
  }
}

TEST(PhantomTest, SubjectsWithoutTumourAndSeeds) {
  PhantomVolume none = make_brats_phantom(32, 12, false, 5);
  EXPECT_FALSE(none.has_tumor);
  for (auto l : none.seg) ASSERT_EQ(l, 0);
  // Same seed, same volume; other seeds move the tumour.
  PhantomVolume a = make_brats_phantom(32, 12, true, 5), b = make_brats_phantom(32, 12, true, 5);
  EXPECT_EQ(a.flair, b.flair);
  EXPECT_EQ(a.seg, b.seg);
  std::set<std::int64_t> sizes;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    PhantomVolume v = make_brats_phantom(32, 12, true, seed);
    std::int64_t tumour = 0;
    for (auto l : v.seg) tumour += l != 0;
    EXPECT_GT(tumour, 0);
    sizes.insert(tumour);
  }
  EXPECT_GE(sizes.size(), 5u);
  // Most subjects, not all, have a tumour.
  int with = 0;
  for (int i = 0; i < 8; ++i) with += phantom_subject_has_tumor(i);
  EXPECT_GT(with, 4);
  EXPECT_LT(with, 8);
  EXPECT_EQ(phantom_subject_id(0), "BraTS20_Training_001");
  EXPECT_THROW(make_brats_phantom(8, 12, true, 1), std::invalid_argument);
}

TEST(PhantomTest, KaggleImagesVaryInSizeAndShowTheTumour) {
  std::set<std::pair<int, int>> shapes;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    PhantomImage yes = make_kaggle_phantom(96, true, seed);
    ASSERT_EQ(yes.pixels.size(), static_cast<std::size_t>(yes.height) * yes.width);
    EXPECT_GE(yes.height, 76);
    EXPECT_LE(yes.height, 120);
    shapes.insert({yes.height, yes.width});
    PhantomImage again = make_kaggle_phantom(96, true, seed);
    EXPECT_EQ(again.pixels, yes.pixels);
  }
  EXPECT_GE(shapes.size(), 6u);
  // A "yes" image differs from the "no" image of the same seed only in one bright blob: the
  // changed pixels are brighter and lie within a disc well inside the frame.
  PhantomImage no = make_kaggle_phantom(96, false, 3), yes = make_kaggle_phantom(96, true, 3);
  ASSERT_EQ(no.pixels.size(), yes.pixels.size());
  std::int64_t changed = 0, brighter = 0;
  int x0 = yes.width, x1 = 0, y0 = yes.height, y1 = 0;
  for (int y = 0; y < yes.height; ++y) {
    for (int x = 0; x < yes.width; ++x) {
      std::size_t i = static_cast<std::size_t>(y) * yes.width + x;
      if (no.pixels[i] == yes.pixels[i]) continue;
      ++changed;
      brighter += yes.pixels[i] > no.pixels[i];
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  EXPECT_GT(changed, 20);
  EXPECT_GT(brighter, changed * 9 / 10);
  EXPECT_LT(x1 - x0, yes.width / 2);
  EXPECT_LT(y1 - y0, yes.height / 2);
  EXPECT_GT(x0, 0);
  EXPECT_GT(y0, 0);
}

// The exported-scan phantoms: reproducible per seed, 150..700 pixels high, a true head that
// fills a plausible part of the frame and is brighter than the background on average.
TEST(PhantomTest, ScanPhantomsAreReproducibleWithAPlausibleHead) {
  for (int c = 0; c < kScanCases; ++c) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      const ScanPhantom a = make_scan_phantom(static_cast<ScanCase>(c), seed);
      const ScanPhantom b = make_scan_phantom(static_cast<ScanCase>(c), seed);
      SCOPED_TRACE(scan_case_name(static_cast<ScanCase>(c)));
      EXPECT_EQ(a.grey, b.grey);
      EXPECT_EQ(a.head, b.head);
      EXPECT_GE(a.height, 150);
      EXPECT_LE(a.height, 700);
      EXPECT_GE(a.width, 150);
      ASSERT_EQ(a.grey.size(), static_cast<std::size_t>(a.height) * a.width);
      ASSERT_EQ(a.head.size(), a.grey.size());
      EXPECT_TRUE(a.rgb.empty() || a.rgb.size() == 3 * a.grey.size());
      EXPECT_TRUE(a.jpeg_quality == 0 || (a.jpeg_quality >= 30 && a.jpeg_quality <= 95));
      double head = 0, in_sum = 0, out_sum = 0;
      for (std::size_t p = 0; p < a.head.size(); ++p) {
        head += a.head[p];
        (a.head[p] ? in_sum : out_sum) += a.grey[p];
      }
      const double fraction = head / static_cast<double>(a.head.size());
      EXPECT_GT(fraction, 0.12);
      EXPECT_LT(fraction, 0.7);
      // The head is brighter than the background on average.
      EXPECT_GT(in_sum / head, out_sum / (a.head.size() - head) + 20);
    }
  }
  const ScanPhantom one = make_scan_phantom(ScanCase::t1, 1),
                    two = make_scan_phantom(ScanCase::t1, 2);
  EXPECT_NE(one.grey, two.grey);
}

}  // namespace
}  // namespace glia::data
