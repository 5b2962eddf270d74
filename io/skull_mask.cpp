// The skull boundary mask (io/transforms.h): threshold at a low percentile, keep the largest
// connected component, fill its holes, erode, zero the image elsewhere. Connectivity (8) and the
// erosion's elliptical structuring element are those of io/image.h.
// Tested in tests/io/transforms_test.cpp.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "io/image.h"
#include "io/transforms.h"

namespace glia::io {
namespace {

// Sets every 0 pixel that cannot reach the border through 4-connected 0 pixels (the complement
// of an 8-connected region is 4-connected) to 1, in place.
void fill_holes(std::vector<std::uint8_t>& region, int height, int width) {
  std::vector<std::uint8_t> outside(region.size(), 0);
  std::vector<std::size_t> stack;
  auto visit = [&](int i, int j) {
    const std::size_t p = static_cast<std::size_t>(i) * width + j;
    if (!region[p] && !outside[p]) {
      outside[p] = 1;
      stack.push_back(p);
    }
  };
  for (int i = 0; i < height; ++i) {
    visit(i, 0);
    visit(i, width - 1);
  }
  for (int j = 0; j < width; ++j) {
    visit(0, j);
    visit(height - 1, j);
  }
  while (!stack.empty()) {
    const std::size_t p = stack.back();
    stack.pop_back();
    const int i = static_cast<int>(p / width), j = static_cast<int>(p % width);
    if (i > 0) visit(i - 1, j);
    if (i + 1 < height) visit(i + 1, j);
    if (j > 0) visit(i, j - 1);
    if (j + 1 < width) visit(i, j + 1);
  }
  for (std::size_t p = 0; p < region.size(); ++p) region[p] = outside[p] ? 0 : 1;
}

}  // namespace

SkullMask::SkullMask(std::vector<std::string> sources, double percentile, int radius)
    : sources_(std::move(sources)), percentile_(percentile), radius_(radius) {
  if (!(percentile_ >= 0.0 && percentile_ <= 100.0)) {
    throw std::invalid_argument("skull mask: percentile must be in [0, 100], got " +
                                std::to_string(percentile_));
  }
  if (radius_ < 0) {
    throw std::invalid_argument("skull mask: radius must be >= 0, got " + std::to_string(radius_));
  }
}

std::vector<std::uint8_t> SkullMask::region(const std::vector<float>& image, int height,
                                            int width) const {
  const std::size_t n = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
  if (image.size() != n || n == 0) {
    throw std::invalid_argument("skull mask: image has " + std::to_string(image.size()) +
                                " values, not " + std::to_string(height) + "x" +
                                std::to_string(width));
  }
  // Nearest rank: the value at position round(p/100 * (n - 1)) of the sorted image.
  std::vector<float> sorted = image;
  const auto rank = static_cast<std::size_t>(std::llround(percentile_ / 100.0 * (n - 1)));
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(rank),
                   sorted.end());
  const float threshold = sorted[rank];
  std::vector<std::uint8_t> above(n);
  for (std::size_t p = 0; p < n; ++p) above[p] = image[p] > threshold ? 1 : 0;
  std::vector<std::uint8_t> largest = largest_component(above, height, width);
  // Dark structures inside the head (ventricles, necrosis) fall below the threshold but are
  // brain: only what is connected to the border counts as outside.
  fill_holes(largest, height, width);
  return erode(largest, height, width, radius_);
}

void SkullMask::apply(Sample& sample, SampleRng&) const {
  if (std::find(sources_.begin(), sources_.end(), sample.source) == sources_.end()) return;
  const std::vector<std::uint8_t> keep = region(sample.image, sample.height, sample.width);
  if (std::none_of(keep.begin(), keep.end(), [](std::uint8_t v) { return v != 0; })) return;
  for (std::size_t p = 0; p < keep.size(); ++p) {
    if (!keep[p]) sample.image[p] = 0.0f;
  }
}

}  // namespace glia::io
