// The predictor: batched eval-mode forward and the per-image post-processing; see predictor.h.
#include "nets/infer/predictor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "nets/model/checkpoint.h"
#include "nets/model/module_modes.h"

namespace glia::nets {

Predictor::Predictor(std::shared_ptr<MultiTaskUNet> model, Device device, PredictOptions options)
    : model_(std::move(model)), device_(device), options_(options) {
  if (!model_) throw std::invalid_argument("Predictor: no model");
  if (options_.batch < 1) {
    throw std::invalid_argument("Predictor: batch " + std::to_string(options_.batch) +
                                " must be at least 1");
  }
  if (!(options_.threshold >= 0.0 && options_.threshold <= 1.0)) {
    throw std::invalid_argument("Predictor: threshold " + std::to_string(options_.threshold) +
                                " must lie in [0, 1]");
  }
  if (!(options_.cls_threshold >= 0.0 && options_.cls_threshold <= 1.0)) {
    throw std::invalid_argument("Predictor: cls threshold " +
                                std::to_string(options_.cls_threshold) + " must lie in [0, 1]");
  }
  if (options_.mc_dropout < 0) {
    throw std::invalid_argument("Predictor: mc dropout passes " +
                                std::to_string(options_.mc_dropout) + " must be at least 0");
  }
  if (model_->config().out_channels != 1) {
    throw std::invalid_argument("Predictor: the model has " +
                                std::to_string(model_->config().out_channels) +
                                " segmentation channels; a tumour mask needs 1");
  }
  check_device_usable(device_);
  model_->to(device_);
  model_->eval();
}

Predictor Predictor::from_checkpoint(const std::filesystem::path& checkpoint, Device device,
                                     PredictOptions options) {
  check_device_usable(device);
  return Predictor(load_checkpoint(checkpoint, Device::cpu()).model, device, options);
}

PredictionBatch Predictor::predict(const Tensor& images) const {
  const UNetConfig& c = model_->config();
  if (images.dim() != 4 || images.size(1) != c.in_channels || images.dtype() != DType::f32) {
    throw std::invalid_argument("Predictor: images must be f32 [n, " +
                                std::to_string(c.in_channels) + ", h, w], got " +
                                images.describe());
  }
  const Tensor host = images.to(Device::cpu());
  const index_t n = host.size(0), h = host.size(2), w = host.size(3);
  const index_t per_image = c.in_channels * h * w;
  const std::size_t plane = static_cast<std::size_t>(h * w);
  const int passes = options_.mc_dropout;
  std::vector<float> seg(static_cast<std::size_t>(n) * plane);
  std::vector<float> cls(static_cast<std::size_t>(n * c.num_classes));
  std::vector<float> cams, variance;
  if (options_.gradcam) cams.resize(seg.size());
  if (passes > 0) variance.resize(seg.size());
  std::vector<double> mc_mean(static_cast<std::size_t>(n)), mc_std(static_cast<std::size_t>(n));
  std::vector<double> latency(static_cast<std::size_t>(n));
  for (index_t b0 = 0; b0 < n; b0 += options_.batch) {
    const index_t b1 = std::min<index_t>(n, b0 + options_.batch), m = b1 - b0;
    const Tensor x =
        from_host(host.data<float>() + b0 * per_image, static_cast<std::size_t>(m * per_image),
                  DType::f32, {m, c.in_channels, h, w}, device_, false);
    const auto start = std::chrono::steady_clock::now();
    Tensor bottleneck;
    {
      NoGradGuard no_grad;
      const MultiTaskOutput out = model_->forward(x, true, true);
      const std::vector<float> s = out.seg_logits.to(Device::cpu()).to_vector<float>();
      const std::vector<float> k = out.cls_logits.to(Device::cpu()).to_vector<float>();
      std::copy(s.begin(), s.end(), seg.begin() + b0 * h * w);
      std::copy(k.begin(), k.end(), cls.begin() + b0 * c.num_classes);
      // The bottleneck of this forward serves Grad-CAM too, so the encoder runs once.
      if (options_.gradcam) bottleneck = out.features.back();
    }
    if (passes > 0) {
      const McDropoutStats stats = mc_dropout(*model_, x, passes);
      std::copy(stats.seg_variance.begin(), stats.seg_variance.end(),
                variance.begin() + b0 * h * w);
      for (index_t i = 0; i < m; ++i) {
        mc_mean[static_cast<std::size_t>(b0 + i)] = stats.mean[static_cast<std::size_t>(i)];
        mc_std[static_cast<std::size_t>(b0 + i)] = stats.std[static_cast<std::size_t>(i)];
      }
    }
    if (options_.gradcam) {
      const std::vector<float> v =
          grad_cam_from_features(*model_, bottleneck, h, w).cams.to_vector<float>();
      std::copy(v.begin(), v.end(), cams.begin() + b0 * h * w);
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    for (index_t i = b0; i < b1; ++i) latency[static_cast<std::size_t>(i)] = ms / double(m);
  }

  PredictionBatch result;
  result.predictions.resize(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    Prediction& p = result.predictions[static_cast<std::size_t>(i)];
    const float* logits = cls.data() + i * c.num_classes;
    const float top = *std::max_element(logits, logits + c.num_classes);
    double denominator = 0.0;
    for (int k = 0; k < c.num_classes; ++k) denominator += std::exp(double{logits[k]} - top);
    p.tumour_probability = std::exp(double{logits[1]} - top) / denominator;
    p.predicted_class = static_cast<int>(std::max_element(logits, logits + c.num_classes) - logits);
    p.height = static_cast<int>(h);
    p.width = static_cast<int>(w);
    p.latency_ms = latency[static_cast<std::size_t>(i)];
    if (passes > 0) {
      p.probability_mean = mc_mean[static_cast<std::size_t>(i)];
      p.probability_std = mc_std[static_cast<std::size_t>(i)];
    }
    p.recommendation =
        recommendation(p.probability_mean.value_or(p.tumour_probability), p.probability_std);
    p.mask_available = p.tumour_probability >= options_.cls_threshold;
    if (!p.mask_available) continue;
    p.mask.resize(plane);
    const float* logit = seg.data() + i * h * w;
    for (std::size_t j = 0; j < plane; ++j) {
      const bool tumour = 1.0 / (1.0 + std::exp(-double{logit[j]})) > options_.threshold;
      p.mask[j] = tumour ? 255 : 0;
      p.tumour_pixels += tumour;
    }
    p.tumour_percent = 100.0 * static_cast<double>(p.tumour_pixels) / static_cast<double>(h * w);
  }
  result.seg_logits = from_vector(seg, {n, 1, h, w});
  result.cls_logits = from_vector(cls, {n, index_t{c.num_classes}});
  if (options_.gradcam) result.gradcam = from_vector(cams, {n, 1, h, w});
  if (passes > 0) result.seg_variance = from_vector(variance, {n, 1, h, w});
  return result;
}

McDropoutStats mc_dropout(MultiTaskUNet& model, const Tensor& images, int passes) {
  if (passes < 1) {
    throw std::invalid_argument("mc_dropout: " + std::to_string(passes) +
                                " passes; at least 1 is needed");
  }
  TrainModeGuard modes(model);
  model.eval();
  set_dropout_train(model);
  NoGradGuard no_grad;
  const Device device = model.parameters().front().device();
  const Tensor x = images.to(device);
  const index_t n = x.size(0);
  const std::size_t pixels = static_cast<std::size_t>(n * x.size(2) * x.size(3));
  std::vector<double> p_sum(static_cast<std::size_t>(n)), p_sq(static_cast<std::size_t>(n));
  std::vector<double> s_sum(pixels), s_sq(pixels);
  for (int pass = 0; pass < passes; ++pass) {
    const MultiTaskOutput out = model.forward(x, true, true);
    const std::vector<float> seg = out.seg_logits.to(Device::cpu()).to_vector<float>();
    const std::vector<float> cls = out.cls_logits.to(Device::cpu()).to_vector<float>();
    const int classes = model.config().num_classes;
    for (index_t i = 0; i < n; ++i) {
      const float* row = cls.data() + i * classes;
      const float top = *std::max_element(row, row + classes);
      double denominator = 0.0;
      for (int k = 0; k < classes; ++k) denominator += std::exp(double{row[k]} - top);
      const double p = std::exp(double{row[1]} - top) / denominator;
      p_sum[static_cast<std::size_t>(i)] += p;
      p_sq[static_cast<std::size_t>(i)] += p * p;
    }
    for (std::size_t j = 0; j < pixels; ++j) {
      const double s = 1.0 / (1.0 + std::exp(-double{seg[j]}));
      s_sum[j] += s;
      s_sq[j] += s * s;
    }
  }
  // Population moments; the clamp keeps rounding from giving a tiny negative variance.
  McDropoutStats stats;
  const double count = passes;
  for (index_t i = 0; i < n; ++i) {
    const double mean = p_sum[static_cast<std::size_t>(i)] / count;
    stats.mean.push_back(mean);
    stats.std.push_back(
        std::sqrt(std::max(0.0, p_sq[static_cast<std::size_t>(i)] / count - mean * mean)));
  }
  stats.seg_variance.resize(pixels);
  for (std::size_t j = 0; j < pixels; ++j) {
    const double mean = s_sum[j] / count;
    stats.seg_variance[j] = static_cast<float>(std::max(0.0, s_sq[j] / count - mean * mean));
  }
  return stats;
}

void set_dropout_train(nn::Module& module) {
  if (auto* dropout = dynamic_cast<nn::Dropout*>(&module)) dropout->train(true);
  for (auto& [name, child] : module.named_children()) set_dropout_train(*child);
}

std::string recommendation(double probability, std::optional<double> probability_std) {
  if (probability_std && *probability_std > 0.15) return "uncertain: radiologist review";
  if (probability >= 0.7) return "tumour likely: review the highlighted region";
  if (probability < 0.3) return "no tumour detected: routine follow-up";
  return "uncertain: radiologist review";
}

}  // namespace glia::nets
