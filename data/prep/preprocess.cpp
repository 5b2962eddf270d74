// The shared slice normalisation; see preprocess.h for the math and the degenerate cases.
#include "data/prep/preprocess.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "io/image.h"
#include "io/image_ops.h"

namespace glia::data {

void normalize_nonzero(std::span<float> pixels) {
  double sum = 0.0;
  std::size_t n = 0;
  for (float v : pixels) {
    if (v != 0.0f) {
      sum += v;
      ++n;
    }
  }
  if (n == 0) return;
  const double mean = sum / static_cast<double>(n);
  double squares = 0.0;
  for (float v : pixels) {
    if (v != 0.0f) squares += (v - mean) * (v - mean);
  }
  const double std = std::sqrt(squares / static_cast<double>(n));
  // MONAI replaces a zero std by 1, which leaves x - mean = 0 for every non-zero pixel.
  const double scale = std > 0.0 ? 1.0 / std : 0.0;
  for (float& v : pixels) {
    if (v != 0.0f) v = static_cast<float>((v - mean) * scale);
  }
}

std::vector<float> prepare_slice(std::span<const float> pixels, int height, int width) {
  if (height <= 0 || width <= 0 ||
      pixels.size() != static_cast<std::size_t>(height) * static_cast<std::size_t>(width)) {
    throw std::invalid_argument("prepare_slice: " + std::to_string(pixels.size()) +
                                " pixels given for a " + std::to_string(height) + "x" +
                                std::to_string(width) + " image");
  }
  std::vector<float> out =
      io::resize_bilinear(pixels, height, width, io::kSliceSize, io::kSliceSize);
  normalize_nonzero(out);
  return out;
}

std::span<const float> axial_slice(const io::Volume& volume, std::int64_t z) {
  if (z < 0 || z >= volume.nz) {
    throw std::out_of_range("axial slice " + std::to_string(z) + " outside a volume of " +
                            std::to_string(volume.nz) + " slices");
  }
  const auto plane = static_cast<std::size_t>(volume.nx * volume.ny);
  return {volume.data.data() + static_cast<std::size_t>(z) * plane, plane};
}

bool slice_has_brain(std::span<const float> pixels) {
  return std::any_of(pixels.begin(), pixels.end(), [](float v) { return v != 0.0f; });
}

std::vector<float> prepare_axial_slice(const io::Volume& volume, std::int64_t z) {
  return prepare_slice(axial_slice(volume, z), static_cast<int>(volume.ny),
                       static_cast<int>(volume.nx));
}

std::vector<std::uint8_t> head_region(std::span<const float> grey, int height, int width) {
  if (height <= 0 || width <= 0 ||
      grey.size() != static_cast<std::size_t>(height) * static_cast<std::size_t>(width)) {
    throw std::invalid_argument("head_region: " + std::to_string(grey.size()) +
                                " pixels given for a " + std::to_string(height) + "x" +
                                std::to_string(width) + " image");
  }
  const float t = io::otsu_threshold(grey);
  std::vector<std::uint8_t> above(grey.size());
  for (std::size_t p = 0; p < grey.size(); ++p) {
    above[p] = std::floor(std::clamp(grey[p], 0.0f, 255.0f)) > t ? 1 : 0;
  }
  return io::fill_holes(io::largest_component(above, height, width), height, width);
}

std::vector<float> prepare_image_file(const std::filesystem::path& path) {
  io::GrayImage img = io::read_gray(path);
  const std::vector<std::uint8_t> head = head_region(img.pixels, img.height, img.width);
  if (std::any_of(head.begin(), head.end(), [](std::uint8_t v) { return v != 0; })) {
    for (std::size_t p = 0; p < head.size(); ++p) {
      if (!head[p]) img.pixels[p] = 0.0f;
    }
  }
  return prepare_slice(img.pixels, img.height, img.width);
}

}  // namespace glia::data
