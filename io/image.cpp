// Image decoding/encoding through stb and processing through OpenCV; see image.h.
#include "io/image.h"

#include <stb_image.h>
#include <stb_image_write.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "io/atomic_file.h"

namespace glia::io {
namespace {

void check_dims(int height, int width, const std::string& what) {
  if (height <= 0 || width <= 0) {
    throw std::invalid_argument(what + ": image size " + std::to_string(height) + "x" +
                                std::to_string(width) + " must be positive");
  }
}

void check_size(std::size_t got, int height, int width, int channels, const std::string& what) {
  check_dims(height, width, what);
  const std::size_t want = static_cast<std::size_t>(height) * static_cast<std::size_t>(width) *
                           static_cast<std::size_t>(channels);
  if (got != want) {
    throw std::invalid_argument(what + ": " + std::to_string(got) + " values given for a " +
                                std::to_string(height) + "x" + std::to_string(width) + "x" +
                                std::to_string(channels) + " image (" + std::to_string(want) +
                                " expected)");
  }
}

bool is_jpeg(std::string_view b) {
  return b.size() >= 2 && static_cast<unsigned char>(b[0]) == 0xFF &&
         static_cast<unsigned char>(b[1]) == 0xD8;
}

// Walks the JPEG marker segments and the entropy-coded scans and reports whether the end-of-image
// marker is reached inside the data; a truncated file runs out first.
bool jpeg_is_complete(std::string_view b) {
  const auto at = [&](std::size_t i) { return static_cast<unsigned char>(b[i]); };
  const std::size_t n = b.size();
  std::size_t i = 2;
  while (i < n) {
    if (at(i) != 0xFF) return false;
    while (i < n && at(i) == 0xFF) ++i;  // fill bytes before a marker
    if (i >= n) return false;
    const unsigned marker = at(i++);
    if (marker == 0xD9) return true;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length field
    if (i + 2 > n) return false;
    const std::size_t len = (std::size_t{at(i)} << 8) | at(i + 1);
    if (len < 2 || i + len > n) return false;
    i += len;
    if (marker != 0xDA) continue;
    // Scan data: 0xFF00 is a stuffed byte and 0xFFD0..D7 a restart marker; any other 0xFFxx ends
    // the scan.
    while (true) {
      if (i + 1 >= n) return false;
      if (at(i) != 0xFF) {
        ++i;
        continue;
      }
      const unsigned next = at(i + 1);
      if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
        i += 2;
      } else if (next == 0xFF) {
        ++i;
      } else {
        break;
      }
    }
  }
  return false;
}

bool is_png(std::string_view b) {
  return b.starts_with("\x89PNG\r\n\x1a\n");
}

// Walks the PNG chunks, checking each CRC, up to a complete IEND chunk. stb_image ignores CRCs
// and stops at the IEND type, so it accepts a file cut inside the last chunk.
bool png_is_complete(std::string_view b) {
  const auto be32 = [&](std::size_t i) {
    return std::uint32_t{static_cast<unsigned char>(b[i])} << 24 |
           std::uint32_t{static_cast<unsigned char>(b[i + 1])} << 16 |
           std::uint32_t{static_cast<unsigned char>(b[i + 2])} << 8 |
           std::uint32_t{static_cast<unsigned char>(b[i + 3])};
  };
  std::size_t i = 8;
  while (i + 12 <= b.size()) {
    const std::size_t len = be32(i);
    if (len > b.size() - i - 12) return false;
    const auto* typed = reinterpret_cast<const Bytef*>(b.data() + i + 4);
    if (crc32(crc32(0L, Z_NULL, 0), typed, static_cast<uInt>(len + 4)) != be32(i + 8 + len)) {
      return false;
    }
    if (b.substr(i + 4, 4) == "IEND") return true;
    i += len + 12;
  }
  return false;
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<std::size_t>(size));
}

void write_png(const std::filesystem::path& path, std::span<const std::uint8_t> pixels, int height,
               int width, int channels) {
  check_size(pixels.size(), height, width, channels, "write " + path.string());
  std::string bytes;
  if (stbi_write_png_to_func(append_bytes, &bytes, width, height, channels, pixels.data(),
                             width * channels) == 0) {
    throw std::runtime_error("cannot encode PNG " + path.string());
  }
  write_file_atomic(path, bytes);
}

cv::Mat wrap(std::span<const float> v, int height, int width) {
  return cv::Mat(height, width, CV_32F, const_cast<float*>(v.data()));
}

cv::Mat wrap(std::span<const std::uint8_t> v, int height, int width) {
  return cv::Mat(height, width, CV_8U, const_cast<std::uint8_t*>(v.data()));
}

template <class T>
std::vector<T> to_vector(const cv::Mat& m) {
  const cv::Mat c = m.isContinuous() ? m : m.clone();
  const T* p = c.ptr<T>();
  return std::vector<T>(p, p + c.total() * static_cast<std::size_t>(c.channels()));
}

// Any non-zero byte -> 1, so a 0/255 mask behaves like a 0/1 one.
cv::Mat binary(std::span<const std::uint8_t> mask, int height, int width) {
  cv::Mat out;
  cv::compare(wrap(mask, height, width), 0, out, cv::CMP_NE);
  return out / 255;
}

std::vector<std::uint8_t> morphology(std::span<const std::uint8_t> mask, int height, int width,
                                     int radius, int op, const char* what) {
  check_size(mask.size(), height, width, 1, what);
  if (radius < 0) {
    throw std::invalid_argument(std::string(what) + ": radius " + std::to_string(radius) +
                                " must be >= 0");
  }
  const cv::Mat in = binary(mask, height, width);
  if (radius == 0) return to_vector<std::uint8_t>(in);
  const cv::Mat kernel =
      cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * radius + 1, 2 * radius + 1));
  cv::Mat out;
  cv::morphologyEx(in, out, op, kernel);
  return to_vector<std::uint8_t>(out);
}

}  // namespace

GrayImage read_gray(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  const std::string name = path.string();
  if (bytes.empty())
    throw std::runtime_error("cannot decode image " + name + ": the file is empty");
  if (is_jpeg(bytes) && !jpeg_is_complete(bytes)) {
    throw std::runtime_error("cannot decode image " + name +
                             ": truncated or corrupt JPEG (no end-of-image marker)");
  }
  if (is_png(bytes) && !png_is_complete(bytes)) {
    throw std::runtime_error("cannot decode image " + name +
                             ": truncated or corrupt PNG (bad chunk CRC or no IEND chunk)");
  }
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw std::runtime_error("cannot decode image " + name + ": file too large");
  }
  int width = 0, height = 0, channels = 0;
  stbi_uc* data =
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                            static_cast<int>(bytes.size()), &width, &height, &channels, 0);
  if (data == nullptr) {
    const char* reason = stbi_failure_reason();
    throw std::runtime_error("cannot decode image " + name + ": " +
                             (reason != nullptr ? reason : "unknown error"));
  }
  GrayImage img;
  img.height = height;
  img.width = width;
  const std::size_t n = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
  img.pixels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const stbi_uc* p = data + i * static_cast<std::size_t>(channels);
    img.pixels[i] =
        channels >= 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : static_cast<float>(p[0]);
  }
  stbi_image_free(data);
  return img;
}

void write_png_gray(const std::filesystem::path& path, std::span<const std::uint8_t> pixels,
                    int height, int width) {
  write_png(path, pixels, height, width, 1);
}

void write_png_rgb(const std::filesystem::path& path, std::span<const std::uint8_t> pixels,
                   int height, int width) {
  write_png(path, pixels, height, width, 3);
}

void write_jpeg_gray(const std::filesystem::path& path, std::span<const std::uint8_t> pixels,
                     int height, int width, int quality) {
  check_size(pixels.size(), height, width, 1, "write " + path.string());
  if (quality < 1 || quality > 100) {
    throw std::invalid_argument("write " + path.string() + ": JPEG quality " +
                                std::to_string(quality) + " outside 1..100");
  }
  std::string bytes;
  if (stbi_write_jpg_to_func(append_bytes, &bytes, width, height, 1, pixels.data(), quality) == 0) {
    throw std::runtime_error("cannot encode JPEG " + path.string());
  }
  write_file_atomic(path, bytes);
}

std::vector<float> resize_bilinear(std::span<const float> src, int height, int width,
                                   int out_height, int out_width) {
  check_size(src.size(), height, width, 1, "resize_bilinear");
  check_dims(out_height, out_width, "resize_bilinear output");
  cv::Mat out;
  cv::resize(wrap(src, height, width), out, cv::Size(out_width, out_height), 0, 0,
             cv::INTER_LINEAR);
  return to_vector<float>(out);
}

std::vector<std::uint8_t> resize_nearest(std::span<const std::uint8_t> src, int height, int width,
                                         int out_height, int out_width) {
  check_size(src.size(), height, width, 1, "resize_nearest");
  check_dims(out_height, out_width, "resize_nearest output");
  cv::Mat out;
  cv::resize(wrap(src, height, width), out, cv::Size(out_width, out_height), 0, 0,
             cv::INTER_NEAREST);
  return to_vector<std::uint8_t>(out);
}

std::vector<std::uint8_t> erode(std::span<const std::uint8_t> mask, int height, int width,
                                int radius) {
  return morphology(mask, height, width, radius, cv::MORPH_ERODE, "erode");
}

std::vector<std::uint8_t> dilate(std::span<const std::uint8_t> mask, int height, int width,
                                 int radius) {
  return morphology(mask, height, width, radius, cv::MORPH_DILATE, "dilate");
}

std::vector<std::uint8_t> largest_component(std::span<const std::uint8_t> mask, int height,
                                            int width) {
  check_size(mask.size(), height, width, 1, "largest_component");
  cv::Mat labels, stats, centroids;
  const int count = cv::connectedComponentsWithStats(binary(mask, height, width), labels, stats,
                                                     centroids, 8, CV_32S);
  // Labels are numbered in row-major order of each component's first pixel; 0 is background.
  int best = 0, best_area = 0;
  for (int label = 1; label < count; ++label) {
    const int area = stats.at<int>(label, cv::CC_STAT_AREA);
    if (area > best_area) {
      best = label;
      best_area = area;
    }
  }
  std::vector<std::uint8_t> out(mask.size(), 0);
  if (best == 0) return out;
  const int* l = labels.ptr<int>();
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = l[i] == best ? 1 : 0;
  return out;
}

std::vector<std::uint8_t> colormap_jet(std::span<const float> values, int height, int width) {
  check_size(values.size(), height, width, 1, "colormap_jet");
  cv::Mat levels(height, width, CV_8U);
  std::uint8_t* q = levels.ptr<std::uint8_t>();
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float v = std::isnan(values[i]) ? 0.0f : std::clamp(values[i], 0.0f, 1.0f);
    q[i] = static_cast<std::uint8_t>(255.0f * v);  // truncates, as np.uint8(255 * v)
  }
  cv::Mat bgr, rgb;
  cv::applyColorMap(levels, bgr, cv::COLORMAP_JET);
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return to_vector<std::uint8_t>(rgb);
}

std::vector<std::uint8_t> fill_holes(std::span<const std::uint8_t> mask, int height, int width) {
  if (height <= 0 || width <= 0 ||
      mask.size() != static_cast<std::size_t>(height) * static_cast<std::size_t>(width)) {
    throw std::invalid_argument("fill_holes: " + std::to_string(mask.size()) +
                                " pixels given for a " + std::to_string(height) + "x" +
                                std::to_string(width) + " mask");
  }
  std::vector<std::uint8_t> outside(mask.size(), 0);
  std::vector<std::size_t> stack;
  auto visit = [&](int i, int j) {
    const std::size_t p = static_cast<std::size_t>(i) * width + j;
    if (!mask[p] && !outside[p]) {
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
  std::vector<std::uint8_t> filled(mask.size());
  for (std::size_t p = 0; p < mask.size(); ++p) filled[p] = outside[p] ? 0 : 1;
  return filled;
}

float otsu_threshold(std::span<const float> grey) {
  std::array<double, 256> histogram{};
  for (float v : grey) {
    const float c = std::isnan(v) ? 0.0f : std::clamp(v, 0.0f, 255.0f);
    histogram[static_cast<std::size_t>(c)] += 1.0;
  }
  const double total = static_cast<double>(grey.size());
  double sum_all = 0.0;
  for (int t = 0; t < 256; ++t) sum_all += t * histogram[t];
  double weight_low = 0.0, sum_low = 0.0, best = -1.0;
  int best_t = 0;
  for (int t = 0; t < 256; ++t) {
    weight_low += histogram[t];
    sum_low += t * histogram[t];
    const double weight_high = total - weight_low;
    if (weight_low == 0.0 || weight_high == 0.0) continue;
    const double mean_low = sum_low / weight_low;
    const double mean_high = (sum_all - sum_low) / weight_high;
    const double between =
        weight_low * weight_high * (mean_low - mean_high) * (mean_low - mean_high);
    if (between > best) {
      best = between;
      best_t = t;
    }
  }
  return static_cast<float>(best_t);
}

}  // namespace glia::io
