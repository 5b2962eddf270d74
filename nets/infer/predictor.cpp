// The predictor: batched eval-mode forward and the per-image post-processing; see predictor.h.
#include "nets/infer/predictor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "nets/model/checkpoint.h"
#include "nets/model/module_modes.h"

namespace glia::nets {

namespace {

double sigmoid(float logit) {
  return 1.0 / (1.0 + std::exp(-double{logit}));
}

// Installs a generator on the model's dropout for its scope and puts the previous one back, so
// MC dropout never draws from the stream of whoever else holds the model.
class DropoutGeneratorGuard {
 public:
  DropoutGeneratorGuard(MultiTaskUNet& model, std::shared_ptr<Generator> generator)
      : model_(model), previous_(model.dropout_generator()) {
    model_.set_dropout_generator(std::move(generator));
  }
  ~DropoutGeneratorGuard() { model_.set_dropout_generator(previous_); }
  DropoutGeneratorGuard(const DropoutGeneratorGuard&) = delete;
  DropoutGeneratorGuard& operator=(const DropoutGeneratorGuard&) = delete;

 private:
  MultiTaskUNet& model_;
  std::shared_ptr<Generator> previous_;
};

// The model's outputs for every image, gathered on the host chunk by chunk, and the per-image
// post-processing of them.
struct HostOutputs {
  HostOutputs(index_t images, index_t height, index_t width, int num_classes,
              const PredictOptions& options)
      : n(images),
        h(height),
        w(width),
        classes(num_classes),
        plane(static_cast<std::size_t>(height * width)),
        seg(options.segment ? static_cast<std::size_t>(images) * plane : 0),
        cls(static_cast<std::size_t>(images * num_classes)),
        mc_mean(static_cast<std::size_t>(images)),
        mc_std(static_cast<std::size_t>(images)),
        latency_ms(static_cast<std::size_t>(images)) {
    const std::size_t pixels = static_cast<std::size_t>(images) * plane;
    if (options.gradcam) cams.resize(pixels);
    if (options.mc_dropout > 0) variance.resize(pixels);
  }

  // Image i's probability, class, recommendation and (above cls_threshold) mask.
  Prediction prediction(index_t i, const PredictOptions& options) const {
    const auto at = static_cast<std::size_t>(i);
    Prediction p;
    const float* logits = cls.data() + i * classes;
    p.tumour_probability = tumour_probability({logits, static_cast<std::size_t>(classes)});
    p.predicted_class = static_cast<int>(std::max_element(logits, logits + classes) - logits);
    p.height = static_cast<int>(h);
    p.width = static_cast<int>(w);
    p.latency_ms = latency_ms[at];
    if (options.mc_dropout > 0) {
      p.probability_mean = mc_mean[at];
      p.probability_std = mc_std[at];
    }
    p.recommendation = recommendation(p.probability_mean.value_or(p.tumour_probability),
                                      p.probability_std, options.bands);
    p.mask_available = options.segment && p.tumour_probability >= options.cls_threshold;
    if (!p.mask_available) return p;
    p.mask.resize(plane);
    const float* logit = seg.data() + at * plane;
    for (std::size_t j = 0; j < plane; ++j) {
      const bool tumour = sigmoid(logit[j]) > options.threshold;
      p.mask[j] = tumour ? 255 : 0;
      p.tumour_pixels += tumour;
    }
    p.tumour_percent = 100.0 * static_cast<double>(p.tumour_pixels) / static_cast<double>(h * w);
    return p;
  }

  void move_tensors_into(PredictionBatch& result) {
    if (!seg.empty()) result.seg_logits = from_vector(seg, {n, 1, h, w});
    result.cls_logits = from_vector(cls, {n, index_t{classes}});
    if (!cams.empty()) result.gradcam = from_vector(cams, {n, 1, h, w});
    if (!variance.empty()) result.seg_variance = from_vector(variance, {n, 1, h, w});
  }

  index_t n, h, w;
  int classes;
  std::size_t plane;
  std::vector<float> seg, cls, cams, variance;
  std::vector<double> mc_mean, mc_std, latency_ms;
};

// The model work for images [first, first + options.batch) of `host`: the eval forward, the MC
// passes and the Grad-CAMs on `device`, copied into `out` with the chunk's latency.
void run_chunk(MultiTaskUNet& model, const std::shared_ptr<Generator>& mc_generator,
               const PredictOptions& options, Device device, const Tensor& host, index_t first,
               HostOutputs& out) {
  const index_t m = std::min<index_t>(out.n, first + options.batch) - first;
  const index_t per_image = host.size(1) * out.h * out.w;
  const auto offset = static_cast<std::size_t>(first) * out.plane;
  const Tensor x =
      from_host(host.data<float>() + first * per_image, static_cast<std::size_t>(m * per_image),
                DType::f32, {m, host.size(1), out.h, out.w}, device, false);
  const auto start = std::chrono::steady_clock::now();
  Tensor bottleneck;
  {
    NoGradGuard no_grad;
    const MultiTaskOutput forward = model.forward(x, options.segment, true);
    if (options.segment) {
      const std::vector<float> s = forward.seg_logits.to(Device::cpu()).to_vector<float>();
      std::copy(s.begin(), s.end(), out.seg.begin() + static_cast<std::ptrdiff_t>(offset));
    }
    const std::vector<float> k = forward.cls_logits.to(Device::cpu()).to_vector<float>();
    std::copy(k.begin(), k.end(), out.cls.begin() + first * out.classes);
    // The bottleneck of this forward serves Grad-CAM too, so the encoder runs once.
    if (options.gradcam) bottleneck = forward.features.back();
  }
  if (options.mc_dropout > 0) {
    const McDropoutStats stats = mc_dropout(model, x, options.mc_dropout, mc_generator);
    std::copy(stats.seg_variance.begin(), stats.seg_variance.end(),
              out.variance.begin() + static_cast<std::ptrdiff_t>(offset));
    std::copy(stats.mean.begin(), stats.mean.end(), out.mc_mean.begin() + first);
    std::copy(stats.std.begin(), stats.std.end(), out.mc_std.begin() + first);
  }
  if (options.gradcam) {
    const std::vector<float> v =
        grad_cam_from_features(model, bottleneck, out.h, out.w).cams.to_vector<float>();
    std::copy(v.begin(), v.end(), out.cams.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::fill_n(out.latency_ms.begin() + first, m, ms / static_cast<double>(m));
}

}  // namespace

void check_predict_options(const PredictOptions& options) {
  if (options.batch < 1) {
    throw std::invalid_argument("Predictor: batch " + std::to_string(options.batch) +
                                " must be at least 1");
  }
  if (!(options.threshold >= 0.0 && options.threshold <= 1.0)) {
    throw std::invalid_argument("Predictor: threshold " + std::to_string(options.threshold) +
                                " must lie in [0, 1]");
  }
  if (!(options.cls_threshold >= 0.0 && options.cls_threshold <= 1.0)) {
    throw std::invalid_argument("Predictor: cls threshold " +
                                std::to_string(options.cls_threshold) + " must lie in [0, 1]");
  }
  if (options.mc_dropout < 0) {
    throw std::invalid_argument("Predictor: mc dropout passes " +
                                std::to_string(options.mc_dropout) + " must be at least 0");
  }
  const RecommendationBands& bands = options.bands;
  if (!(0.0 <= bands.unlikely && bands.unlikely <= bands.likely && bands.likely <= 1.0 &&
        bands.uncertain_std >= 0.0)) {
    throw std::invalid_argument("Predictor: recommendation bands need 0 <= unlikely (" +
                                std::to_string(bands.unlikely) + ") <= likely (" +
                                std::to_string(bands.likely) + ") <= 1 and uncertain_std (" +
                                std::to_string(bands.uncertain_std) + ") >= 0");
  }
}

Predictor::Predictor(std::shared_ptr<MultiTaskUNet> model, Device device, PredictOptions options)
    : model_(std::move(model)),
      device_(device),
      options_(options),
      mc_generator_(std::make_shared<Generator>(options.mc_seed)) {
  if (!model_) throw std::invalid_argument("Predictor: no model");
  check_predict_options(options_);
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

PredictionBatch Predictor::predict(const Tensor& images) {
  return predict(images, options_);
}

PredictionBatch Predictor::predict(const Tensor& images, const PredictOptions& options) {
  check_predict_options(options);
  const UNetConfig& c = model_->config();
  if (images.dim() != 4 || images.size(1) != c.in_channels || images.dtype() != DType::f32) {
    throw std::invalid_argument("Predictor: images must be f32 [n, " +
                                std::to_string(c.in_channels) + ", h, w], got " +
                                images.describe());
  }
  const std::lock_guard<std::mutex> lock(mutex_);
  const Tensor host = images.to(Device::cpu());
  HostOutputs out(host.size(0), host.size(2), host.size(3), c.num_classes, options);
  for (index_t first = 0; first < out.n; first += options.batch) {
    run_chunk(*model_, mc_generator_, options, device_, host, first, out);
  }
  PredictionBatch result;
  for (index_t i = 0; i < out.n; ++i) result.predictions.push_back(out.prediction(i, options));
  out.move_tensors_into(result);
  return result;
}

McDropoutStats mc_dropout(MultiTaskUNet& model, const Tensor& images, int passes,
                          std::shared_ptr<Generator> generator) {
  if (passes < 1) {
    throw std::invalid_argument("mc_dropout: " + std::to_string(passes) +
                                " passes; at least 1 is needed");
  }
  TrainModeGuard modes(model);
  DropoutGeneratorGuard masks(model, generator ? std::move(generator) : model.dropout_generator());
  model.eval();
  set_dropout_train(model);
  NoGradGuard no_grad;
  const Device device = model.parameters().front().device();
  const Tensor x = images.to(device);
  const index_t n = x.size(0);
  const auto classes = static_cast<std::size_t>(model.config().num_classes);
  const std::size_t pixels = static_cast<std::size_t>(n * x.size(2) * x.size(3));
  std::vector<double> p_sum(static_cast<std::size_t>(n)), p_sq(static_cast<std::size_t>(n));
  std::vector<double> s_sum(pixels), s_sq(pixels);
  for (int pass = 0; pass < passes; ++pass) {
    const MultiTaskOutput out = model.forward(x, true, true);
    const std::vector<float> seg = out.seg_logits.to(Device::cpu()).to_vector<float>();
    const std::vector<float> cls = out.cls_logits.to(Device::cpu()).to_vector<float>();
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      const double p = tumour_probability({cls.data() + i * classes, classes});
      p_sum[i] += p;
      p_sq[i] += p * p;
    }
    for (std::size_t j = 0; j < pixels; ++j) {
      const double s = sigmoid(seg[j]);
      s_sum[j] += s;
      s_sq[j] += s * s;
    }
  }
  // Population moments; the clamp keeps rounding from giving a tiny negative variance.
  McDropoutStats stats;
  const double count = passes;
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
    const double mean = p_sum[i] / count;
    stats.mean.push_back(mean);
    stats.std.push_back(std::sqrt(std::max(0.0, p_sq[i] / count - mean * mean)));
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

std::string recommendation(double probability, std::optional<double> probability_std,
                           const RecommendationBands& bands) {
  if (probability_std && *probability_std > bands.uncertain_std) {
    return "uncertain: radiologist review";
  }
  if (probability >= bands.likely) return "tumour likely: review the highlighted region";
  if (probability < bands.unlikely) return "no tumour detected: routine follow-up";
  return "uncertain: radiologist review";
}

}  // namespace glia::nets
