// The head region on exported-scan phantoms with a known head (data/prep/phantom.h ScanCase):
// T1/T2/FLAIR-like contrasts, bright skull rings, text and rulers, frames, black padding,
// off-centre heads, sagittal and coronal outlines, stored as JPEG (quality 30-95), grey PNG or
// tinted RGB PNG and read back through io::read_gray as glia-prep reads them. Every head region
// must overlap the true head with IoU >= 0.95. The former rule (Otsu's threshold, the largest
// component, holes filled) is measured on the same images for comparison and reported, not
// checked. Also: the border-mode threshold on hand-built backgrounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "data/prep/phantom.h"
#include "data/prep/preprocess.h"
#include "io/image.h"
#include "io/image_ops.h"
#include "tests/common/temp_dir.h"

namespace glia::data {
namespace {

using HeadRegionTest = glia::testing::TempDirTest;

double iou(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  std::int64_t both = 0, either = 0;
  for (std::size_t p = 0; p < a.size(); ++p) {
    both += (a[p] && b[p]) ? 1 : 0;
    either += (a[p] || b[p]) ? 1 : 0;
  }
  return either ? static_cast<double>(both) / static_cast<double>(either) : 1.0;
}

// The rule head_region used before the border-mode threshold, for the comparison only.
std::vector<std::uint8_t> otsu_head_region(const std::vector<float>& grey, int h, int w) {
  const float t = io::otsu_threshold(grey);
  std::vector<std::uint8_t> above(grey.size());
  for (std::size_t p = 0; p < grey.size(); ++p) {
    above[p] = std::floor(std::clamp(grey[p], 0.0f, 255.0f)) > t ? 1 : 0;
  }
  return io::fill_holes(io::largest_component(above, h, w), h, w);
}

struct Summary {
  double min = std::numeric_limits<double>::infinity(), sum = 0;
  int n = 0;
  void add(double v) {
    min = std::min(min, v);
    sum += v;
    ++n;
  }
  double mean() const { return n ? sum / n : 0.0; }
};

TEST_F(HeadRegionTest, KeepsTheWholeHeadOnExportedScanPhantoms) {
  constexpr int kPerCase = 20;  // 220 images
  Summary now_all, old_all;
  std::map<std::string, std::pair<Summary, Summary>> per_case;
  for (int i = 0; i < kPerCase * kScanCases; ++i) {
    const auto c = static_cast<ScanCase>(i % kScanCases);
    const ScanPhantom ph = make_scan_phantom(c, 1000 + static_cast<std::uint64_t>(i));
    // A grey PNG is lossless: its pixels are the phantom's, without the file round trip.
    io::GrayImage img{ph.height, ph.width, std::vector<float>(ph.grey.begin(), ph.grey.end())};
    const auto path = dir_ / (std::to_string(i) + (ph.jpeg_quality ? ".jpg" : ".png"));
    if (ph.jpeg_quality) {
      io::write_jpeg_gray(path, ph.grey, ph.height, ph.width, ph.jpeg_quality);
      img = io::read_gray(path);
    } else if (!ph.rgb.empty()) {
      io::write_png_rgb(path, ph.rgb, ph.height, ph.width);
      img = io::read_gray(path);
    }
    ASSERT_EQ(img.height, ph.height);
    ASSERT_EQ(img.width, ph.width);
    const auto reg = head_region(img.pixels, img.height, img.width);
    const double now = iou(reg, ph.head);
    const double old = iou(otsu_head_region(img.pixels, img.height, img.width), ph.head);
    EXPECT_GE(now, 0.95) << "image " << i << " (" << scan_case_name(c) << ", " << ph.height << "x"
                         << ph.width << ", jpeg quality " << ph.jpeg_quality
                         << (ph.rgb.empty() ? "" : ", tinted") << ")";
    now_all.add(now);
    old_all.add(old);
    per_case[scan_case_name(c)].first.add(now);
    per_case[scan_case_name(c)].second.add(old);
  }
  std::cout << std::fixed << std::setprecision(3) << "head region IoU over " << now_all.n
            << " phantoms: min " << now_all.min << " mean " << now_all.mean() << " (Otsu rule: min "
            << old_all.min << " mean " << old_all.mean() << ")\n";
  for (const auto& [name, s] : per_case) {
    std::cout << "  " << std::setw(20) << name << ": min " << s.first.min << " mean "
              << s.first.mean() << " (Otsu rule: min " << s.second.min << " mean "
              << s.second.mean() << ")\n";
  }
  RecordProperty("iou_min", std::to_string(now_all.min));
  RecordProperty("iou_mean", std::to_string(now_all.mean()));
  RecordProperty("otsu_iou_min", std::to_string(old_all.min));
  RecordProperty("otsu_iou_mean", std::to_string(old_all.mean()));
}

// A 40x40 image: background level `b` (exact-black padding for x < pad and x >= 40 - pad) and a
// disc of level `head` and radius r in the middle.
std::vector<float> background_and_head(float b, float head, double r, int pad = 0) {
  std::vector<float> g(40 * 40);
  for (int y = 0; y < 40; ++y) {
    for (int x = 0; x < 40; ++x) {
      const bool inside = std::hypot(y - 19.5, x - 19.5) < r;
      g[y * 40 + x] = inside ? head : (x < pad || x >= 40 - pad) ? 0.0f : b;
    }
  }
  return g;
}

TEST(HeadThreshold, SitsJustAboveTheBackgroundNotBetweenTissues) {
  // A noiseless background keeps a margin of 8 levels; a head far brighter than its background
  // lifts the threshold to a fifth of the way from the background to the head's median.
  EXPECT_FLOAT_EQ(head_threshold(background_and_head(20, 60, 12), 40, 40), 20.0f + 8.0f);
  EXPECT_FLOAT_EQ(head_threshold(background_and_head(20, 200, 12), 40, 40), 20.0f + 0.2f * 180);
  // Noise: levels 17, 20 and 23 in equal parts. The 3-bin smoothing is flat from 16 to 24; its
  // first level with pixels of its own, 17, is the mode, and half maximum is passed at 25, so
  // sigma = (25 - 17) / 1.1774.
  std::vector<float> noisy = background_and_head(20, 60, 12);
  for (int y = 0; y < 40; ++y) {
    for (int x = 0; x < 40; ++x) {
      if (noisy[y * 40 + x] == 20.0f)
        noisy[y * 40 + x] += 3.0f * static_cast<float>((x + y) % 3 - 1);
    }
  }
  EXPECT_NEAR(head_threshold(noisy, 40, 40), 17.0 + 3.0 * 8.0 / 1.1774, 1e-4);
  // Exact-black padding holds most of the border, a noisy scan background of 30 a sixth of it:
  // that second dark mode is background too.
  EXPECT_FLOAT_EQ(head_threshold(background_and_head(30, 60, 6, 14), 40, 40), 30.0f + 8.0f);
  // A bright lesion in the brain does not lift it between tissue classes.
  std::vector<float> lesion = background_and_head(10, 90, 14);
  for (int y = 16; y < 24; ++y) {
    for (int x = 16; x < 24; ++x) lesion[y * 40 + x] = 250.0f;
  }
  EXPECT_LT(head_threshold(lesion, 40, 40), 40.0f);
}

TEST(HeadRegion, DropsTextAndFramesKeepsARingAroundTheBrain) {
  // 120x120: dark background, a bright scalp ring (radii 44..50) separated from the brain
  // (radius < 38) by dark bone; a 1-pixel frame at inset 3 and a 1-pixel text bar next to it.
  const int n = 120;
  std::vector<float> g(n * n, 5.0f);
  std::vector<std::uint8_t> truth(n * n, 0);
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) {
      const double r = std::hypot(y - 59.5, x - 59.5);
      const std::size_t p = static_cast<std::size_t>(y) * n + x;
      if (r < 50) truth[p] = 1;
      g[p] = r < 38 ? 100.0f : r < 44 ? 8.0f : r < 50 ? 220.0f : 5.0f;
      if (x == 3 || y == 3 || x == n - 4 || y == n - 4) g[p] = 255.0f;
      if (y == 6 && x >= 6 && x < 30) g[p] = 255.0f;
    }
  }
  EXPECT_GE(iou(head_region(g, n, n), truth), 0.97);
  EXPECT_THROW(head_region(g, n, n + 1), std::invalid_argument);
}

}  // namespace
}  // namespace glia::data
