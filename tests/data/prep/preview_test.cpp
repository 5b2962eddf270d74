// Contact sheets: the grid from the tile count, the outlines drawn exactly on the boundary of a
// known region and mask (checked pixel by pixel against a direct 4-neighbour test), the grey
// window of the prepared panel, the originals of an image file and a volume slice, and the files
// write_previews writes (size from N, seeded picks, the tile list).
#include "data/prep/preview.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "data/prep/preprocess.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/image_ops.h"
#include "io/nifti.h"
#include "io/slice.h"

namespace glia::data {
namespace {

namespace fs = std::filesystem;

constexpr int P = kPreviewPanel;

// A disc of radius r at (cy, cx), 0/1.
std::vector<std::uint8_t> disc(int h, int w, double cy, double cx, double r) {
  std::vector<std::uint8_t> m(static_cast<std::size_t>(h) * w);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) m[y * w + x] = std::hypot(y - cy, x - cx) <= r ? 1 : 0;
  }
  return m;
}

// On the boundary: inside, with a 4-neighbour outside the mask or the image.
bool on_boundary(const std::vector<std::uint8_t>& m, int h, int w, int y, int x) {
  auto in = [&](int yy, int xx) {
    return yy >= 0 && yy < h && xx >= 0 && xx < w && m[yy * w + xx];
  };
  return in(y, x) && !(in(y - 1, x) && in(y + 1, x) && in(y, x - 1) && in(y, x + 1));
}

Rgb pixel(const std::vector<std::uint8_t>& rgb, int width, int y, int x) {
  const std::size_t o = 3 * (static_cast<std::size_t>(y) * width + x);
  return {rgb[o], rgb[o + 1], rgb[o + 2]};
}

TEST(PreviewTest, GridFollowsTheTileCount) {
  for (int n : {1, 2, 4, 5, 8, 9, 13}) {
    SheetGeometry g = sheet_geometry(n);
    const int cols = std::min(n, 4), rows = (n + cols - 1) / cols;
    EXPECT_EQ(g.cols, cols) << n;
    EXPECT_EQ(g.rows, rows) << n;
    EXPECT_EQ(g.width, 8 + cols * (2 * P + 2 + 8)) << n;
    EXPECT_EQ(g.height, 8 + rows * (P + 8)) << n;
    for (int k = 0; k < n; ++k) {
      EXPECT_EQ(g.tile_top(k), 8 + (k / cols) * (P + 8));
      EXPECT_EQ(g.tile_left(k), 8 + (k % cols) * (2 * P + 2 + 8));
      EXPECT_LE(g.tile_left(k) + kPreviewTileWidth, g.width - 8);
      EXPECT_LE(g.tile_top(k) + P, g.height - 8);
    }
  }
  EXPECT_THROW(sheet_geometry(0), std::invalid_argument);
}

TEST(PreviewTest, OutlinesLieOnTheRegionAndMaskBoundaries) {
  // An odd-sized original whose region is a disc; at panel size it becomes the nearest-neighbour
  // resize, whose boundary is what must be green.
  const int h = 101, w = 77;
  OriginalView orig;
  orig.height = h;
  orig.width = w;
  orig.region = disc(h, w, 50, 38, 30);
  for (std::size_t p = 0; p < orig.region.size(); ++p)
    orig.grey.push_back(orig.region[p] ? 200 : 0);
  const std::vector<std::uint8_t> region_p = io::resize_nearest(orig.region, h, w, P, P);

  // A prepared slice: a ramp of z inside a disc, exact zeros outside; a mask touching the edge.
  std::vector<float> prepared(static_cast<std::size_t>(P) * P, 0.0f);
  const auto brain = disc(P, P, 128, 128, 100);
  for (int p = 0; p < P * P; ++p) {
    if (brain[p]) prepared[p] = -4.0f + 8.0f * static_cast<float>(p % P) / P;
  }
  std::vector<std::uint8_t> mask = disc(P, P, 0, 200, 40);
  const auto tile = render_tile(orig, prepared, mask);
  ASSERT_EQ(tile.size(), std::size_t(3) * P * kPreviewTileWidth);

  int green = 0, red = 0;
  for (int y = 0; y < P; ++y) {
    for (int x = 0; x < P; ++x) {
      const Rgb l = pixel(tile, kPreviewTileWidth, y, x);
      if (on_boundary(region_p, P, P, y, x)) {
        EXPECT_EQ(l, kPreviewKeptColour) << y << "," << x;
        ++green;
      } else {
        EXPECT_TRUE(l[0] == l[1] && l[1] == l[2]) << "left not grey at " << y << "," << x;
      }
      const Rgb r = pixel(tile, kPreviewTileWidth, y, P + kPreviewPairGap + x);
      if (on_boundary(mask, P, P, y, x)) {
        EXPECT_EQ(r, kPreviewMaskColour) << y << "," << x;
        ++red;
        continue;
      }
      ASSERT_TRUE(r[0] == r[1] && r[1] == r[2]) << "right not grey at " << y << "," << x;
      const float z = prepared[y * P + x];
      const double t = std::clamp((z + 3.0) / 6.0, 0.0, 1.0);
      EXPECT_EQ(r[0], z == 0.0f ? 0 : std::lround(255.0 * t)) << y << "," << x;
    }
    for (int x = P; x < P + kPreviewPairGap; ++x) {
      EXPECT_EQ(pixel(tile, kPreviewTileWidth, y, x), kPreviewBackground);
    }
  }
  EXPECT_GT(green, 100);
  EXPECT_GT(red, 50);  // the mask's edge along the top row is outlined too

  // Without a mask nothing is red; a region filling the panel is outlined along its edge.
  orig.region.assign(orig.region.size(), 1);
  const auto plain = render_tile(orig, prepared, std::nullopt);
  for (int y = 0; y < P; ++y) {
    for (int x = 0; x < P; ++x) {
      const bool edge = y == 0 || x == 0 || y == P - 1 || x == P - 1;
      EXPECT_EQ(pixel(plain, kPreviewTileWidth, y, x) == kPreviewKeptColour, edge) << y << "," << x;
      const Rgb r = pixel(plain, kPreviewTileWidth, y, P + kPreviewPairGap + x);
      EXPECT_TRUE(r[0] == r[1] && r[1] == r[2]);
    }
  }
}

class PreviewFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("glia_preview_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PreviewFilesTest, OriginalsOfAnImageAndAVolumeSlice) {
  // A dark, noisy-free image with a bright blob: the region is head_region's.
  const int h = 90, w = 70;
  std::vector<std::uint8_t> grey(h * w, 10);
  const auto blob = disc(h, w, 40, 30, 12);
  for (std::size_t p = 0; p < grey.size(); ++p) {
    if (blob[p]) grey[p] = 180;
  }
  io::write_png_gray(dir_ / "a.png", grey, h, w);
  OriginalView v = load_original({dir_ / "a.png", -1});
  ASSERT_EQ(v.height, h);
  ASSERT_EQ(v.width, w);
  const std::vector<float> as_float(grey.begin(), grey.end());
  EXPECT_EQ(v.region, head_region(as_float, h, w));
  EXPECT_EQ(v.region, blob);

  // A volume: slice 1 of three 6x5 slices, scaled by its maximum, region = non-zero.
  io::Volume vol;
  vol.nx = 5, vol.ny = 6, vol.nz = 3;
  vol.data.assign(90, 0.0f);
  for (int p = 0; p < 30; ++p) vol.data[30 + p] = p % 3 == 0 ? 0.0f : 2.0f * p;
  io::write_nifti(dir_ / "v.nii.gz", vol);
  v = load_original({dir_ / "v.nii.gz", 1});
  ASSERT_EQ(v.height, 6);
  ASSERT_EQ(v.width, 5);
  for (int p = 0; p < 30; ++p) {
    EXPECT_EQ(v.region[p], p % 3 == 0 ? 0 : 1) << p;
    EXPECT_FLOAT_EQ(v.grey[p], vol.data[30 + p] * 255.0f / 58.0f) << p;
  }
  EXPECT_THROW(load_original({dir_ / "v.nii.gz", 3}), std::runtime_error);
  EXPECT_THROW(load_original({dir_ / "missing.png", -1}), std::runtime_error);
}

TEST_F(PreviewFilesTest, SheetsPerSourceAndSplitSizedFromN) {
  // Seven Kaggle-like train slices and two val slices, each with its own original.
  std::vector<PreviewItem> items;
  for (int i = 0; i < 9; ++i) {
    const int h = 40 + i, w = 50;
    std::vector<std::uint8_t> grey(h * w, 5);
    const auto blob = disc(h, w, h / 2.0, 25, 10 + i);
    for (std::size_t p = 0; p < grey.size(); ++p) grey[p] = blob[p] ? 150 : 5;
    const fs::path original = dir_ / ("img" + std::to_string(i) + ".png");
    io::write_png_gray(original, grey, h, w);
    io::Slice s;
    s.image = prepare_image_file(original);
    s.source = "kaggle";
    s.patient = "img" + std::to_string(i);
    const std::string split = i < 7 ? "train" : "val";
    const std::string rel = split + "/kaggle/img" + std::to_string(i) + "_0.npz";
    fs::create_directories(dir_ / "out" / split / "kaggle");
    io::write_slice(dir_ / "out" / rel, s);
    items.push_back({"kaggle", split, rel, {original, -1}});
  }
  const auto written = write_previews(dir_ / "out", items, 5, 42);
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(written[0], dir_ / "out" / "preview" / "kaggle_train.png");
  EXPECT_EQ(written[1], dir_ / "out" / "preview" / "kaggle_val.png");
  io::GrayImage train = io::read_gray(written[0]);
  EXPECT_EQ(train.height, sheet_geometry(5).height);  // 2 rows
  EXPECT_EQ(train.width, sheet_geometry(5).width);    // 4 columns
  io::GrayImage val = io::read_gray(written[1]);
  EXPECT_EQ(val.height, sheet_geometry(2).height);  // fewer slices than N: all of them
  EXPECT_EQ(val.width, sheet_geometry(2).width);

  // The tile list names 5 distinct train slices, in manifest order; the same seed picks them
  // again, byte for byte.
  const std::string list = io::read_file(dir_ / "out" / "preview" / "kaggle_train.txt");
  std::istringstream in(list);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "tile\tslice\toriginal\tz");
  std::vector<std::string> paths;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string tile, path;
    fields >> tile >> path;
    EXPECT_EQ(tile, std::to_string(paths.size()));
    paths.push_back(path);
  }
  ASSERT_EQ(paths.size(), 5u);
  EXPECT_TRUE(std::is_sorted(paths.begin(), paths.end()));
  EXPECT_EQ(std::adjacent_find(paths.begin(), paths.end()), paths.end());
  const std::string png = io::read_file(written[0]);
  write_previews(dir_ / "again", {}, 5, 42);
  EXPECT_FALSE(fs::exists(dir_ / "again"));  // nothing to show, nothing written
  write_previews(dir_ / "out", items, 5, 42);
  EXPECT_EQ(io::read_file(written[0]), png);
  EXPECT_EQ(io::read_file(dir_ / "out" / "preview" / "kaggle_train.txt"), list);
  // Another seed picks another set (7 choose 5 = 21 sets; these seeds give a different one).
  bool differs = false;
  for (std::uint64_t seed = 43; seed < 48 && !differs; ++seed) {
    write_previews(dir_ / "out", items, 5, seed);
    differs = io::read_file(dir_ / "out" / "preview" / "kaggle_train.txt") != list;
  }
  EXPECT_TRUE(differs);
  // n = 0: no sheet.
  fs::remove_all(dir_ / "out" / "preview");
  EXPECT_TRUE(write_previews(dir_ / "out", items, 0, 42).empty());
  EXPECT_FALSE(fs::exists(dir_ / "out" / "preview"));
}

}  // namespace
}  // namespace glia::data
