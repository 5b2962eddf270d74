// Image processing: resizing against hand-computed bilinear weights and the nearest-neighbour
// index rule, morphology (opening and closing among it) and components on hand-built masks, JET
// endpoints.
#include "io/image_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "tests/common/random_bytes.h"
#include "tests/common/tolerance.h"

namespace glia::io {
namespace {

using glia::testing::all_close;
using glia::testing::all_equal;
using glia::testing::random_bytes;

TEST(ImageOpsTest, BilinearMatchesHandComputedWeights) {
  // 2x2 -> 4x4 with half-pixel centres: source coordinate (d + 0.5) / 2 - 0.5 is -0.25, 0.25,
  // 0.75, 1.25, clamped at the edges, so the weight of the second row/column is 0, .25, .75, 1.
  const std::vector<float> src = {0, 10, 20, 30};
  const double t[4] = {0, 0.25, 0.75, 1};
  std::vector<double> ref(16);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) ref[y * 4 + x] = 20 * t[y] + 10 * t[x];
  }
  EXPECT_TRUE(all_close(resize_bilinear(src, 2, 2, 4, 4), ref));
  // 2x downscale samples halfway between pixel pairs: the mean of each 2x2 block.
  std::vector<float> big(16);
  for (int i = 0; i < 16; ++i) big[i] = static_cast<float>(i * i);
  std::vector<double> half(4);
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 2; ++x) {
      const int a = 2 * y * 4 + 2 * x;
      half[y * 2 + x] = (big[a] + big[a + 1] + big[a + 4] + big[a + 5]) / 4.0;
    }
  }
  EXPECT_TRUE(all_close(resize_bilinear(big, 4, 4, 2, 2), half));
}

TEST(ImageOpsTest, BilinearKeepsAConstantImage) {
  const std::vector<float> src(7 * 5, 3.5f);
  EXPECT_TRUE(all_close(resize_bilinear(src, 7, 5, 256, 256), std::vector<float>(256 * 256, 3.5f)));
  EXPECT_THROW(resize_bilinear(src, 5, 5, 8, 8), std::invalid_argument);
}

TEST(ImageOpsTest, NearestPicksTheFlooredSourceIndexAndStaysBinary) {
  const int h = 37, w = 23, oh = 256, ow = 256;
  auto mask = random_bytes(h * w, 3);
  for (auto& m : mask) m &= 1;
  const auto out = resize_nearest(mask, h, w, oh, ow);
  std::vector<std::uint8_t> ref(oh * ow);
  for (int y = 0; y < oh; ++y) {
    for (int x = 0; x < ow; ++x) ref[y * ow + x] = mask[(y * h / oh) * w + (x * w / ow)];
  }
  EXPECT_TRUE(all_equal(out, ref));
}

// A 7x7 mask with the given cells set.
std::vector<std::uint8_t> mask7(std::initializer_list<std::pair<int, int>> cells) {
  std::vector<std::uint8_t> m(49, 0);
  for (auto [y, x] : cells) m[y * 7 + x] = 1;
  return m;
}

TEST(ImageOpsTest, MorphologyUsesTheEllipticalElement) {
  // OpenCV's 3x3 ellipse is a cross; its 5x5 ellipse is the square minus the four corner pairs.
  const auto dot = mask7({{3, 3}});
  const auto cross = mask7({{2, 3}, {3, 2}, {3, 3}, {3, 4}, {4, 3}});
  EXPECT_TRUE(all_equal(dilate(dot, 7, 7, 1), cross));
  std::vector<std::uint8_t> disc(49, 0);
  for (int y = 1; y <= 5; ++y) {
    for (int x = 1; x <= 5; ++x) {
      const bool corner = (y == 1 || y == 5) && x != 3;
      disc[y * 7 + x] = corner ? 0 : 1;
    }
  }
  EXPECT_TRUE(all_equal(dilate(dot, 7, 7, 2), disc));
  // Eroding a 3x3 square with the cross leaves its centre; eroding the disc with the cross keeps
  // the pixels whose four neighbours are all inside: the cross again.
  const auto square =
      mask7({{2, 2}, {2, 3}, {2, 4}, {3, 2}, {3, 3}, {3, 4}, {4, 2}, {4, 3}, {4, 4}});
  EXPECT_TRUE(all_equal(erode(square, 7, 7, 1), dot));
  EXPECT_TRUE(all_equal(erode(disc, 7, 7, 1), cross));
  // The border is not an edge: a full mask survives erosion, an empty one stays empty.
  EXPECT_TRUE(all_equal(erode(std::vector<std::uint8_t>(49, 1), 7, 7, 2),
                        std::vector<std::uint8_t>(49, 1)));
  EXPECT_TRUE(all_equal(dilate(std::vector<std::uint8_t>(49, 0), 7, 7, 2),
                        std::vector<std::uint8_t>(49, 0)));
  // 255 counts as 1 and radius 0 is the identity on 0/1.
  auto wide = square;
  for (auto& v : wide) v *= 255;
  EXPECT_TRUE(all_equal(erode(wide, 7, 7, 0), square));
  EXPECT_THROW(erode(square, 7, 7, -1), std::invalid_argument);
}

TEST(ImageOpsTest, OpeningRemovesThinLinesAndClosingBridgesGaps) {
  // A disc of radius 2 is its own structuring element, so opening keeps it, while the 1-pixel
  // line that runs from it to the border is thinner than the element and goes.
  const auto disc = dilate(mask7({{3, 3}}), 7, 7, 2);
  auto with_line = disc;
  with_line[3 * 7 + 6] = 1;
  EXPECT_TRUE(all_equal(open_mask(with_line, 7, 7, 2), disc));
  // Two 3x2 blocks one column apart: the cross (radius 1) bridges the gap on the middle row only,
  // as the gap's end pixels have an empty neighbour above or below after dilation.
  const auto blocks = mask7({{2, 1},
                             {2, 2},
                             {3, 1},
                             {3, 2},
                             {4, 1},
                             {4, 2},
                             {2, 4},
                             {2, 5},
                             {3, 4},
                             {3, 5},
                             {4, 4},
                             {4, 5}});
  auto bar = blocks;
  bar[3 * 7 + 3] = 1;
  // Outside counts as 0: the gaps between the blocks and the border stay open.
  EXPECT_TRUE(all_equal(close_mask(blocks, 7, 7, 1), bar));
  EXPECT_TRUE(all_equal(open_mask(blocks, 7, 7, 0), blocks));
  EXPECT_THROW(close_mask(blocks, 7, 6, 1), std::invalid_argument);
}

TEST(ImageOpsTest, ComponentsTouchingKeepsMarkedComponentsWhole) {
  // Three components (the diagonal is one under 8-connectivity); the marker hits two of them,
  // once on a single pixel and once off the mask.
  const auto mask = mask7({{0, 0}, {1, 1}, {2, 2}, {0, 5}, {0, 6}, {5, 0}, {5, 1}, {6, 0}});
  const auto marker = mask7({{2, 2}, {6, 0}, {4, 4}});
  EXPECT_TRUE(all_equal(components_touching(mask, marker, 7, 7),
                        mask7({{0, 0}, {1, 1}, {2, 2}, {5, 0}, {5, 1}, {6, 0}})));
  EXPECT_TRUE(all_equal(components_touching(mask, std::vector<std::uint8_t>(49, 0), 7, 7),
                        std::vector<std::uint8_t>(49, 0)));
  EXPECT_THROW(components_touching(mask, std::vector<std::uint8_t>(48, 0), 7, 7),
               std::invalid_argument);
}

TEST(ImageOpsTest, LargestComponentUsesEightConnectivity) {
  // A diagonal of 5 pixels (one component only under 8-connectivity) beats a 2x2 block of 4.
  const auto mask = mask7({{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 0}, {5, 1}, {6, 0}, {6, 1}});
  EXPECT_TRUE(
      all_equal(largest_component(mask, 7, 7), mask7({{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}})));
  const std::vector<std::uint8_t> empty(49, 0);
  EXPECT_TRUE(all_equal(largest_component(empty, 7, 7), empty));
}

TEST(ImageOpsTest, JetRunsFromDarkBlueThroughGreenToDarkRed) {
  // MATLAB/OpenCV jet: 0 -> (0, 0, 0.5), 0.5 -> green at full, 1 -> (0.5, 0, 0); values outside
  // [0,1] clamp and NaN counts as 0.
  const std::vector<float> v = {0.0f, 0.5f, 1.0f, -3.0f, 7.0f, std::nanf("")};
  const auto rgb = colormap_jet(v, 2, 3);
  ASSERT_EQ(rgb.size(), 18u);
  EXPECT_EQ(rgb[0], 0);
  EXPECT_EQ(rgb[1], 0);
  EXPECT_NEAR(rgb[2], 128, 1);
  EXPECT_EQ(rgb[4], 255);
  EXPECT_NEAR(rgb[6], 128, 1);
  EXPECT_EQ(rgb[7], 0);
  EXPECT_EQ(rgb[8], 0);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(rgb[9 + c], rgb[c]);
    EXPECT_EQ(rgb[12 + c], rgb[6 + c]);
    EXPECT_EQ(rgb[15 + c], rgb[c]);
  }
}

}  // namespace
}  // namespace glia::io
