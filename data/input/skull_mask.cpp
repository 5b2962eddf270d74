// The skull boundary mask (data/input/transforms.h): threshold at a low percentile, keep the
// largest connected component, fill its holes, erode, zero the image elsewhere. Connectivity (8)
// and the erosion's elliptical structuring element are those of io/image.h. Tested in
// tests/data/input/transforms_test.cpp.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "data/input/transforms.h"
#include "io/image_ops.h"

namespace glia::data {

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
  std::vector<std::uint8_t> largest = io::largest_component(above, height, width);
  // Dark structures inside the head (ventricles, necrosis) fall below the threshold but are
  // brain: only what is connected to the border counts as outside.
  largest = io::fill_holes(largest, height, width);
  return io::erode(largest, height, width, radius_);
}

void SkullMask::apply(Sample& sample, SampleRng&) const {
  if (std::find(sources_.begin(), sources_.end(), sample.source) == sources_.end()) return;
  const std::vector<std::uint8_t> keep = region(sample.image, sample.height, sample.width);
  if (std::none_of(keep.begin(), keep.end(), [](std::uint8_t v) { return v != 0; })) return;
  for (std::size_t p = 0; p < keep.size(); ++p) {
    if (!keep[p]) sample.image[p] = 0.0f;
  }
}

}  // namespace glia::data
