// Image processing through OpenCV; see image_ops.h.
#include "io/image_ops.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>

#include "io/image.h"

namespace glia::io {
namespace {

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
  check_image_size(mask.size(), height, width, 1, what);
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

std::vector<float> resize_bilinear(std::span<const float> src, int height, int width,
                                   int out_height, int out_width) {
  check_image_size(src.size(), height, width, 1, "resize_bilinear");
  check_image_dims(out_height, out_width, "resize_bilinear output");
  cv::Mat out;
  cv::resize(wrap(src, height, width), out, cv::Size(out_width, out_height), 0, 0,
             cv::INTER_LINEAR);
  return to_vector<float>(out);
}

std::vector<std::uint8_t> resize_nearest(std::span<const std::uint8_t> src, int height, int width,
                                         int out_height, int out_width) {
  check_image_size(src.size(), height, width, 1, "resize_nearest");
  check_image_dims(out_height, out_width, "resize_nearest output");
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

std::vector<std::uint8_t> open_mask(std::span<const std::uint8_t> mask, int height, int width,
                                    int radius) {
  return morphology(mask, height, width, radius, cv::MORPH_OPEN, "open_mask");
}

std::vector<std::uint8_t> close_mask(std::span<const std::uint8_t> mask, int height, int width,
                                     int radius) {
  check_image_size(mask.size(), height, width, 1, "close_mask");
  if (radius <= 0) return morphology(mask, height, width, radius, cv::MORPH_CLOSE, "close_mask");
  // Closed in a plane padded with zeros, so nothing joins a structure to the image border.
  cv::Mat padded, closed;
  cv::copyMakeBorder(binary(mask, height, width), padded, radius, radius, radius, radius,
                     cv::BORDER_CONSTANT, cv::Scalar(0));
  const cv::Mat kernel =
      cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * radius + 1, 2 * radius + 1));
  cv::morphologyEx(padded, closed, cv::MORPH_CLOSE, kernel, cv::Point(-1, -1), 1,
                   cv::BORDER_CONSTANT, cv::Scalar(0));
  return to_vector<std::uint8_t>(closed(cv::Rect(radius, radius, width, height)));
}

std::vector<std::uint8_t> largest_component(std::span<const std::uint8_t> mask, int height,
                                            int width) {
  check_image_size(mask.size(), height, width, 1, "largest_component");
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

std::vector<std::uint8_t> components_touching(std::span<const std::uint8_t> mask,
                                              std::span<const std::uint8_t> marker, int height,
                                              int width) {
  check_image_size(mask.size(), height, width, 1, "components_touching");
  check_image_size(marker.size(), height, width, 1, "components_touching marker");
  cv::Mat labels;
  const int count = cv::connectedComponents(binary(mask, height, width), labels, 8, CV_32S);
  const int* l = labels.ptr<int>();
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(count), 0);
  for (std::size_t i = 0; i < mask.size(); ++i) {
    if (marker[i] && l[i] > 0) keep[static_cast<std::size_t>(l[i])] = 1;
  }
  std::vector<std::uint8_t> out(mask.size(), 0);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = keep[static_cast<std::size_t>(l[i])];
  return out;
}

std::vector<std::uint8_t> colormap_jet(std::span<const float> values, int height, int width) {
  check_image_size(values.size(), height, width, 1, "colormap_jet");
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
