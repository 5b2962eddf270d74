// The shared slice normalisation; see preprocess.h for the math and the degenerate cases.
#include "data/prep/preprocess.h"

#include <algorithm>
#include <array>
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

namespace {

// Grey level bins, floor(v) of v clamped to [0, 255] (NaN counts as 0), as io::otsu_threshold.
int level(float v) {
  return std::isnan(v) ? 0 : static_cast<int>(std::clamp(v, 0.0f, 255.0f));
}

// The background mode of a border histogram among the levels >= lo: the most frequent level
// (3-bin box smoothed, so one JPEG-quantised level does not win alone) at most 10 levels above
// their median, so a bright frame or text made of one level cannot win against a noisy
// background spread over many; and its noise, from the half width at half maximum of the
// smoothed peak on its bright side (the dark side may be clipped at 0), as a Gaussian's sigma.
struct BackgroundMode {
  int level = 0;
  double sigma = 1.0;
};

BackgroundMode background_mode(const std::array<std::int64_t, 256>& hist, int lo) {
  auto smoothed = [&](int l) {
    return hist[l] + (l > lo ? hist[l - 1] : 0) + (l < 255 ? hist[l + 1] : 0);
  };
  std::int64_t n = 0;
  for (int l = lo; l < 256; ++l) n += hist[l];
  int median = lo;
  for (std::int64_t seen = 0; median < 255; ++median) {
    seen += hist[median];
    if (2 * seen >= n) break;
  }
  BackgroundMode m{lo, 1.0};
  std::int64_t peak = -1;
  for (int l = lo; l <= std::min(255, median + 10); ++l) {
    // Of equal smoothed counts the level with more pixels of its own wins (a one-level spike).
    if (smoothed(l) > peak || (smoothed(l) == peak && hist[l] > hist[m.level])) {
      peak = smoothed(l);
      m.level = l;
    }
  }
  int half = m.level;
  while (half < 255 && 2 * smoothed(half) > peak) ++half;
  m.sigma = std::max(1.0, (half - m.level) / 1.1774);
  return m;
}

}  // namespace

float head_threshold(std::span<const float> grey, int height, int width) {
  const int band = std::max(2, static_cast<int>(std::lround(0.04 * std::min(height, width))));
  std::array<std::int64_t, 256> hist{};
  std::int64_t total = 0;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      if (y >= band && y < height - band && x >= band && x < width - band) continue;
      ++hist[level(grey[static_cast<std::size_t>(y) * width + x])];
      ++total;
    }
  }
  // The border's background mode; a second dark mode above its threshold that still holds a
  // tenth of the border (a noisy scan background next to exact-black padding) is background too.
  int lo = 0;
  double threshold = 0.0;
  BackgroundMode m;
  for (int pass = 0; pass < 3; ++pass) {
    m = background_mode(hist, lo);
    threshold = m.level + std::max(8.0, 3.0 * m.sigma);
    const int next = static_cast<int>(threshold) + 1;
    std::int64_t dark_above = 0;
    for (int l = next; l < std::min(256, m.level + 64); ++l) dark_above += hist[l];
    if (next > 255 || 10 * dark_above < total) break;
    lo = next;
  }
  // JPEG ringing next to a bright head rises above the background's own noise: the threshold
  // also stays a fifth of the way from the background to the median of what lies above it.
  std::array<std::int64_t, 256> all{};
  for (float v : grey) ++all[level(v)];
  std::int64_t n_above = 0;
  for (int l = static_cast<int>(threshold) + 1; l < 256; ++l) n_above += all[l];
  std::int64_t seen = 0;
  for (int l = static_cast<int>(threshold) + 1; l < 256 && n_above > 0; ++l) {
    seen += all[l];
    if (2 * seen >= n_above) {
      threshold = std::max(threshold, m.level + 0.2 * (l - m.level));
      break;
    }
  }
  return static_cast<float>(std::min(threshold, 254.0));
}

std::vector<std::uint8_t> head_region(std::span<const float> grey, int height, int width) {
  if (height <= 0 || width <= 0 ||
      grey.size() != static_cast<std::size_t>(height) * static_cast<std::size_t>(width)) {
    throw std::invalid_argument("head_region: " + std::to_string(grey.size()) +
                                " pixels given for a " + std::to_string(height) + "x" +
                                std::to_string(width) + " image");
  }
  const float t = head_threshold(grey, height, width);
  std::vector<std::uint8_t> above(grey.size());
  for (std::size_t p = 0; p < grey.size(); ++p) above[p] = level(grey[p]) > t ? 1 : 0;
  // Sizes follow the image. Components thinner than 2 * 0.6% of the short side everywhere
  // (burnt-in text, rulers, film frames) go whole; a scalp ring is about three times thicker.
  // Then gaps up to about 4% close (dark bone and CSF between scalp and brain, a broken ring).
  const int side = std::min(height, width);
  const int thin_radius = std::max(1, static_cast<int>(std::lround(0.006 * side)));
  const int close_radius = std::max(2, static_cast<int>(std::lround(0.02 * side)));
  std::vector<std::uint8_t> m =
      io::components_touching(above, io::erode(above, height, width, thin_radius), height, width);
  // Thin parts of a kept component far from its thick parts go too: a frame or ruler that
  // touches the head (or a neck that runs out of the image) would otherwise enclose background.
  const std::vector<std::uint8_t> near_thick =
      io::dilate(io::open_mask(m, height, width, thin_radius), height, width, close_radius);
  for (std::size_t p = 0; p < m.size(); ++p) m[p] = m[p] && near_thick[p] ? 1 : 0;
  m = io::close_mask(m, height, width, close_radius);
  // Holes are filled before the largest component is chosen: a scalp ring that dark bone still
  // separates from the brain then encloses it, instead of losing to it.
  return io::largest_component(io::fill_holes(m, height, width), height, width);
}

PreparedImage prepare_image(const std::filesystem::path& path, const ImagePrepOptions& options) {
  io::GrayImage img = io::read_gray(path);
  const std::vector<std::uint8_t> head = head_region(img.pixels, img.height, img.width);
  const double head_fraction =
      static_cast<double>(std::count(head.begin(), head.end(), std::uint8_t{1})) /
      static_cast<double>(head.size());
  if (head_fraction == 0.0) return {prepare_slice(img.pixels, img.height, img.width), 0.0};
  int y0 = img.height, y1 = -1, x0 = img.width, x1 = -1;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const std::size_t p = static_cast<std::size_t>(y) * img.width + x;
      if (!head[p]) {
        img.pixels[p] = 0.0f;
        continue;
      }
      y0 = std::min(y0, y), y1 = std::max(y1, y), x0 = std::min(x0, x), x1 = std::max(x1, x);
    }
  }
  if (!options.crop_to_head) {
    return {prepare_slice(img.pixels, img.height, img.width), head_fraction};
  }
  const int longer = std::max(y1 - y0 + 1, x1 - x0 + 1);
  const int side = longer + 2 * static_cast<int>(std::lround(options.margin * longer));
  // The square's top-left corner in image coordinates: the box centred in it.
  const int top = y0 - (side - (y1 - y0 + 1)) / 2, left = x0 - (side - (x1 - x0 + 1)) / 2;
  std::vector<float> square(static_cast<std::size_t>(side) * side, 0.0f);
  for (int y = std::max(0, top); y < std::min(img.height, top + side); ++y) {
    for (int x = std::max(0, left); x < std::min(img.width, left + side); ++x) {
      square[static_cast<std::size_t>(y - top) * side + (x - left)] =
          img.pixels[static_cast<std::size_t>(y) * img.width + x];
    }
  }
  return {prepare_slice(square, side, side), head_fraction};
}

std::vector<float> prepare_image_file(const std::filesystem::path& path,
                                      const ImagePrepOptions& options) {
  return prepare_image(path, options).slice;
}

}  // namespace glia::data
