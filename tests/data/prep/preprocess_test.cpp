// The shared normalisation: mean 0 and population std 1 over the non-zero pixels against a
// double-precision reference, zeros kept, the degenerate cases, and prepare_slice /
// prepare_image_file as the composition of resize, read and normalise, with the crop to the head;
// axial slices of a volume as ny rows of nx voxels, untransposed.
#include "data/prep/preprocess.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "io/image.h"
#include "io/image_ops.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tolerance.h"

namespace glia::data {
namespace {

using glia::testing::all_close;
using glia::testing::all_equal;
using PreprocessTest = glia::testing::TempDirTest;

// Random intensities 1..1000 with about a third of the pixels zero (background).
std::vector<float> brain_like(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(1.0f, 1000.0f);
  std::bernoulli_distribution background(0.35);
  std::vector<float> v(n);
  for (auto& x : v) x = background(rng) ? 0.0f : value(rng);
  return v;
}

TEST_F(PreprocessTest, NonZeroPixelsGetMeanZeroStdOneAndZerosStay) {
  const auto raw = brain_like(37 * 41, 5);
  auto out = raw;
  normalize_nonzero(out);
  double sum = 0, n = 0;
  for (float v : raw) {
    if (v != 0) sum += v, ++n;
  }
  const double mean = sum / n;
  double sq = 0;
  for (float v : raw) {
    if (v != 0) sq += (v - mean) * (v - mean);
  }
  const double std = std::sqrt(sq / n);  // population std, as torch.std(unbiased=False)
  std::vector<double> ref(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) ref[i] = raw[i] == 0 ? 0.0 : (raw[i] - mean) / std;
  EXPECT_TRUE(all_close(out, ref));
  double m = 0, s = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == 0) {
      EXPECT_EQ(out[i], 0.0f);
    } else {
      m += out[i];
      s += double(out[i]) * out[i];
    }
  }
  EXPECT_NEAR(m / n, 0.0, 1e-6);
  EXPECT_NEAR(std::sqrt(s / n), 1.0, 1e-6);
}

TEST_F(PreprocessTest, DegenerateInputsBecomeZero) {
  std::vector<float> zeros(50, 0.0f);
  normalize_nonzero(zeros);
  EXPECT_TRUE(all_equal(zeros, std::vector<float>(50, 0.0f)));
  std::vector<float> flat = {0, 4, 4, 0, 4};  // std 0 over the non-zero pixels
  normalize_nonzero(flat);
  EXPECT_TRUE(all_equal(flat, std::vector<float>(5, 0.0f)));
  std::vector<float> one = {0, 0, -2.5f};
  normalize_nonzero(one);
  EXPECT_TRUE(all_equal(one, std::vector<float>(3, 0.0f)));
  std::vector<float> empty;
  normalize_nonzero(empty);
}

TEST_F(PreprocessTest, PrepareSliceResizesThenNormalises) {
  const int h = 64, w = 48;
  const auto raw = brain_like(h * w, 6);
  auto ref = io::resize_bilinear(raw, h, w, io::kSliceSize, io::kSliceSize);
  normalize_nonzero(ref);
  const auto out = prepare_slice(raw, h, w);
  ASSERT_EQ(out.size(), std::size_t(io::kSliceSize) * io::kSliceSize);
  EXPECT_TRUE(all_equal(out, ref));
  EXPECT_TRUE(all_equal(prepare_slice(std::vector<float>(5 * 3, 9.0f), 5, 3),
                        std::vector<float>(io::kSliceSize * io::kSliceSize, 0.0f)));
  EXPECT_THROW(prepare_slice(raw, h, w + 1), std::invalid_argument);
}

// A photographed scan: a dark, noisy, non-black background around a bright head that holds a
// dark ventricle.
std::vector<std::uint8_t> scan_like(int h, int w, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 4.0);
  std::vector<std::uint8_t> px(static_cast<std::size_t>(h) * w);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double r = std::hypot(y - h / 2.0, x - w / 2.0);
      const double v = r < 3 ? 15.0 : r < h / 3.0 ? 120.0 : 18.0;
      px[y * w + x] = static_cast<std::uint8_t>(std::clamp(v + noise(rng), 0.0, 255.0));
    }
  }
  return px;
}

TEST_F(PreprocessTest, AxialSlicesAreRowsOfXAsStored) {
  io::Volume v;
  v.nx = 7;  // odd and unequal sizes, so a transpose cannot pass
  v.ny = 5;
  v.nz = 3;
  v.data = brain_like(7 * 5 * 3, 4);
  std::fill_n(v.data.begin() + 7 * 5 * 2, 7 * 5, 0.0f);  // the last slice holds no brain
  for (std::int64_t z = 0; z < v.nz; ++z) {
    const std::span<const float> slice = axial_slice(v, z);
    ASSERT_EQ(slice.size(), 35u);
    for (int y = 0; y < 5; ++y) {
      for (int x = 0; x < 7; ++x)
        EXPECT_EQ(slice[static_cast<std::size_t>(y * 7 + x)], v.at(x, y, z));
    }
    EXPECT_EQ(slice_has_brain(slice), z < 2);
    EXPECT_TRUE(all_equal(prepare_axial_slice(v, z), prepare_slice(slice, 5, 7)));
  }
  EXPECT_THROW(axial_slice(v, 3), std::out_of_range);
}

TEST_F(PreprocessTest, HeadRegionIsTheHeadWithItsHoles) {
  const int h = 40, w = 40;
  const std::vector<std::uint8_t> px = scan_like(h, w, 3);
  const std::vector<float> grey(px.begin(), px.end());
  const std::vector<std::uint8_t> head = head_region(grey, h, w);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double r = std::hypot(y - h / 2.0, x - w / 2.0);
      // Away from the head's edge the region is exact; the dark ventricle is inside.
      if (r < h / 3.0 - 1.5) {
        EXPECT_EQ(head[y * w + x], 1) << y << "," << x;
      }
      if (r > h / 3.0 + 1.5) {
        EXPECT_EQ(head[y * w + x], 0) << y << "," << x;
      }
    }
  }
  EXPECT_THROW(head_region(grey, h, w + 1), std::invalid_argument);
}

TEST_F(PreprocessTest, PrepareImageFileZeroesTheBackgroundThenPrepares) {
  const int h = 30, w = 40;
  const std::vector<std::uint8_t> px = scan_like(h, w, 5);
  io::write_png_gray(dir_ / "x.png", px, h, w);
  std::vector<float> expected(px.begin(), px.end());
  const std::vector<std::uint8_t> head = head_region(expected, h, w);
  for (std::size_t p = 0; p < expected.size(); ++p) {
    if (!head[p]) expected[p] = 0.0f;
  }
  const std::vector<float> got = prepare_image_file(dir_ / "x.png");
  EXPECT_TRUE(all_equal(got, prepare_slice(expected, h, w)));
  // The corners (background) come out exactly 0; the head is z-scored.
  EXPECT_EQ(got[0], 0.0f);
  EXPECT_EQ(got[io::kSliceSize * io::kSliceSize - 1], 0.0f);
  // A constant image has no head: it is used as it is.
  io::write_png_gray(dir_ / "flat.png", std::vector<std::uint8_t>(h * w, 9), h, w);
  EXPECT_TRUE(all_equal(prepare_image_file(dir_ / "flat.png"),
                        prepare_slice(std::vector<float>(h * w, 9.0f), h, w)));
  EXPECT_TRUE(
      glia::testing::throws_naming([&] { prepare_image_file(dir_ / "nope.jpg"); }, "nope.jpg"));
}

TEST_F(PreprocessTest, CropToHeadCentresTheHeadBoxInAPaddedSquare) {
  // A 30x50 scan whose head (a 12x8 bright block) sits off-centre: the head box widened by 25%
  // of its longer side (3 pixels) on each side is an 18x18 square around it.
  const int h = 30, w = 50;
  std::vector<std::uint8_t> px(h * w, 4);
  for (int y = 5; y < 17; ++y) {
    for (int x = 30; x < 38; ++x) px[y * w + x] = static_cast<std::uint8_t>(100 + x + y);
  }
  io::write_png_gray(dir_ / "x.png", px, h, w);
  std::vector<float> square(18 * 18, 0.0f);
  for (int y = 5; y < 17; ++y) {
    for (int x = 30; x < 38; ++x) square[(y - 2) * 18 + (x - 25)] = px[y * w + x];
  }
  EXPECT_TRUE(all_equal(prepare_image_file(dir_ / "x.png", {.crop_to_head = true, .margin = 0.25}),
                        prepare_slice(square, 18, 18)));
}

TEST(OtsuThreshold, SeparatesTwoLevels) {
  std::vector<float> v(100, 20.0f);
  v.resize(160, 200.0f);
  const float t = io::otsu_threshold(v);
  EXPECT_GE(t, 20.0f);
  EXPECT_LT(t, 200.0f);
  EXPECT_EQ(io::otsu_threshold(std::vector<float>(10, 7.0f)), 0.0f);
}

}  // namespace
}  // namespace glia::data
