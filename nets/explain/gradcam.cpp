// Grad-CAM, Grad-CAM++, the localisation scores and the overlay; see gradcam.h. The forward to
// the chosen level runs without recording; its features become a fresh leaf, and only the levels
// above it and the classification head are recorded, with every parameter kept off the tape, so
// the one backward computes dY/dA and nothing else.
#include "nets/explain/gradcam.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "io/image_ops.h"
#include "nets/model/module_modes.h"

namespace glia::nets {
namespace {

// Min-max to [0, 1] in place; a constant map (all zero after the ReLU, or flat) becomes 0.
void normalise(std::span<float> values) {
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  const float low = *lo, range = *hi - *lo;
  for (float& v : values) v = range > 0.0f ? (v - low) / range : 0.0f;
}

// The level and class checked against the model; -1 level resolved to the bottleneck.
int checked_level(const MultiTaskUNet& model, const GradCamOptions& options) {
  const UNetConfig& c = model.config();
  const int level = options.level == -1 ? c.depth : options.level;
  if (level < 0 || level > c.depth) {
    throw std::invalid_argument("grad_cam: level " + std::to_string(options.level) +
                                " outside 0.." + std::to_string(c.depth) +
                                " (or -1 for the bottleneck)");
  }
  if (options.target_class < -1 || options.target_class >= c.num_classes) {
    throw std::invalid_argument("grad_cam: target class " + std::to_string(options.target_class) +
                                " outside 0.." + std::to_string(c.num_classes - 1) +
                                " (or -1 for the predicted class)");
  }
  return level;
}

}  // namespace

GradCamResult grad_cam(MultiTaskUNet& model, const Tensor& images, const GradCamOptions& options) {
  const UNetConfig& c = model.config();
  const int level = checked_level(model, options);
  if (images.dim() != 4 || images.dtype() != DType::f32 || images.size(0) == 0) {
    throw std::invalid_argument("grad_cam: images must be f32 [n, " +
                                std::to_string(c.in_channels) + ", h, w] with n > 0, got " +
                                images.describe());
  }
  Tensor features;
  {
    TrainModeGuard modes(model);
    model.eval();
    NoGradGuard no_grad;
    const Device device = model.parameters().front().device();
    features =
        model.forward(images.to(device), false, false).features[static_cast<std::size_t>(level)];
  }
  return grad_cam_from_features(model, features, images.size(2), images.size(3), options);
}

GradCamResult grad_cam_from_features(MultiTaskUNet& model, const Tensor& level_features,
                                     std::int64_t height, std::int64_t width,
                                     const GradCamOptions& options) {
  const UNetConfig& c = model.config();
  const int level = checked_level(model, options);
  const index_t expected = c.channels(level);
  if (level_features.dim() != 4 || level_features.size(1) != expected ||
      level_features.size(0) == 0 || height <= 0 || width <= 0) {
    throw std::invalid_argument("grad_cam: level " + std::to_string(level) + " features " +
                                level_features.describe() + " must be [n, " +
                                std::to_string(expected) + ", h, w] with n > 0, for " +
                                std::to_string(height) + "x" + std::to_string(width) + " images");
  }
  TrainModeGuard modes(model);
  ParametersNoGradGuard frozen(model);
  model.eval();
  const Device device = model.parameters().front().device();
  // A new leaf: its gradient starts empty, so nothing from an earlier backward can leak in.
  Tensor features = level_features.to(device).detach();
  features.set_requires_grad(true);
  Tensor logits;
  {
    EnableGradGuard grad_on;
    logits = model.cls_head().forward(model.encoder().bottleneck_from(features, level));
  }

  const index_t n = features.size(0), k_count = features.size(1);
  const index_t h = features.size(2), w = features.size(3);
  const index_t big_h = height, big_w = width;
  const std::vector<float> scores = logits.to(Device::cpu()).to_vector<float>();
  GradCamResult result;
  std::vector<float> seed(static_cast<std::size_t>(n * c.num_classes), 0.0f);
  for (index_t i = 0; i < n; ++i) {
    const float* row = scores.data() + i * c.num_classes;
    const int predicted = static_cast<int>(std::max_element(row, row + c.num_classes) - row);
    const int target = options.target_class == -1 ? predicted : options.target_class;
    result.target_classes.push_back(target);
    result.probabilities.push_back(
        static_cast<float>(tumour_probability({row, static_cast<std::size_t>(c.num_classes)})));
    seed[static_cast<std::size_t>(i * c.num_classes + target)] = 1.0f;
  }
  // The gradient of the sum of the target logits: in eval mode each sample's logit depends on
  // its own features only, so each sample receives exactly its own dY/dA.
  logits.backward(from_vector(seed, logits.shape(), device));

  const std::vector<float> a = features.detach().to(Device::cpu()).to_vector<float>();
  const std::vector<float> g = features.grad().to(Device::cpu()).to_vector<float>();
  const index_t plane = h * w;
  std::vector<float> raw(static_cast<std::size_t>(n * plane), 0.0f);
  std::vector<float> cams(static_cast<std::size_t>(n * big_h * big_w));
  std::vector<double> sum(static_cast<std::size_t>(plane));
  for (index_t i = 0; i < n; ++i) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (index_t k = 0; k < k_count; ++k) {
      const float* ak = a.data() + (i * k_count + k) * plane;
      const float* gk = g.data() + (i * k_count + k) * plane;
      double weight = 0.0;
      if (options.plus_plus) {
        double activation_sum = 0.0;
        for (index_t j = 0; j < plane; ++j) activation_sum += ak[j];
        for (index_t j = 0; j < plane; ++j) {
          const double g1 = gk[j], g2 = g1 * g1, g3 = g2 * g1;
          const double denominator = 2.0 * g2 + activation_sum * g3;
          const double alpha = denominator != 0.0 ? g2 / denominator : 0.0;
          weight += alpha * std::max(g1, 0.0);
        }
      } else {
        for (index_t j = 0; j < plane; ++j) weight += gk[j];
        weight /= static_cast<double>(plane);
      }
      for (index_t j = 0; j < plane; ++j) sum[static_cast<std::size_t>(j)] += weight * ak[j];
    }
    float* r = raw.data() + i * plane;
    for (index_t j = 0; j < plane; ++j) {
      r[j] = static_cast<float>(std::max(sum[static_cast<std::size_t>(j)], 0.0));
    }
    std::vector<float> up =
        io::resize_bilinear(std::span<const float>(r, plane), static_cast<int>(h),
                            static_cast<int>(w), static_cast<int>(big_h), static_cast<int>(big_w));
    normalise(up);
    std::copy(up.begin(), up.end(), cams.begin() + i * big_h * big_w);
  }
  result.cams = from_vector(cams, {n, 1, big_h, big_w});
  result.raw = from_vector(raw, {n, 1, h, w});
  return result;
}

Localisation localisation(std::span<const float> cam, std::span<const std::uint8_t> mask,
                          int height, int width, int dilation) {
  const std::size_t pixels = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
  if (height <= 0 || width <= 0 || cam.size() != pixels || mask.size() != pixels) {
    throw std::invalid_argument("localisation: cam of " + std::to_string(cam.size()) +
                                " and mask of " + std::to_string(mask.size()) + " pixels for a " +
                                std::to_string(height) + "x" + std::to_string(width) + " image");
  }
  if (dilation < 0) {
    throw std::invalid_argument("localisation: dilation " + std::to_string(dilation) +
                                " must be at least 0");
  }
  const std::vector<std::uint8_t> region = io::dilate(mask, height, width, dilation);
  double total = 0.0, inside = 0.0;
  for (std::size_t j = 0; j < pixels; ++j) {
    total += cam[j];
    if (region[j]) inside += cam[j];
  }
  Localisation result;
  if (!(total > 0.0)) return result;
  result.energy_inside = inside / total;
  const std::size_t peak =
      static_cast<std::size_t>(std::max_element(cam.begin(), cam.end()) - cam.begin());
  result.peak_inside = region[peak] != 0;
  return result;
}

std::vector<std::uint8_t> overlay_cam(std::span<const float> image, std::span<const float> cam,
                                      int height, int width, double alpha) {
  const std::size_t pixels = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
  if (height <= 0 || width <= 0 || image.size() != pixels || cam.size() != pixels) {
    throw std::invalid_argument("overlay_cam: image of " + std::to_string(image.size()) +
                                " and cam of " + std::to_string(cam.size()) + " pixels for a " +
                                std::to_string(height) + "x" + std::to_string(width) + " image");
  }
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    throw std::invalid_argument("overlay_cam: alpha " + std::to_string(alpha) +
                                " must lie in [0, 1]");
  }
  const auto [lo, hi] = std::minmax_element(image.begin(), image.end());
  const double low = *lo, range = double{*hi} - double{*lo};
  const std::vector<std::uint8_t> jet = io::colormap_jet(cam, height, width);
  std::vector<std::uint8_t> out(pixels * 3);
  for (std::size_t j = 0; j < pixels; ++j) {
    const double grey = range > 0.0 ? 255.0 * (image[j] - low) / range : 0.0;
    for (std::size_t ch = 0; ch < 3; ++ch) {
      const double v = (1.0 - alpha) * grey + alpha * jet[3 * j + ch];
      out[3 * j + ch] = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
    }
  }
  return out;
}

}  // namespace glia::nets
