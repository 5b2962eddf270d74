// The predictor: batched eval-mode forward and the per-image post-processing; see predictor.h.
#include "nets/predictor.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "nets/checkpoint.h"

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
  NoGradGuard no_grad;
  const Tensor host = images.to(Device::cpu());
  const index_t n = host.size(0), h = host.size(2), w = host.size(3);
  const index_t per_image = c.in_channels * h * w;
  std::vector<float> seg(static_cast<std::size_t>(n * h * w));
  std::vector<float> cls(static_cast<std::size_t>(n * c.num_classes));
  for (index_t b0 = 0; b0 < n; b0 += options_.batch) {
    const index_t b1 = std::min<index_t>(n, b0 + options_.batch);
    const Tensor x = from_host(host.data<float>() + b0 * per_image,
                               static_cast<std::size_t>((b1 - b0) * per_image), DType::f32,
                               {b1 - b0, c.in_channels, h, w}, device_, false);
    const MultiTaskOutput out = model_->forward(x, true, true);
    const std::vector<float> s = out.seg_logits.to(Device::cpu()).to_vector<float>();
    const std::vector<float> k = out.cls_logits.to(Device::cpu()).to_vector<float>();
    std::copy(s.begin(), s.end(), seg.begin() + b0 * h * w);
    std::copy(k.begin(), k.end(), cls.begin() + b0 * c.num_classes);
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
    p.mask.resize(static_cast<std::size_t>(h * w));
    const float* plane = seg.data() + i * h * w;
    for (index_t j = 0; j < h * w; ++j) {
      const bool tumour = 1.0 / (1.0 + std::exp(-double{plane[j]})) > options_.threshold;
      p.mask[static_cast<std::size_t>(j)] = tumour ? 255 : 0;
      p.tumour_pixels += tumour;
    }
    p.tumour_percent = 100.0 * static_cast<double>(p.tumour_pixels) / static_cast<double>(h * w);
  }
  result.seg_logits = from_vector(seg, {n, 1, h, w});
  result.cls_logits = from_vector(cls, {n, index_t{c.num_classes}});
  return result;
}

std::string output_name(const std::filesystem::path& input) {
  return input.stem().string();
}

}  // namespace glia::nets
