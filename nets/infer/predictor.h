// Inference with a trained multi-task U-Net: batches of preprocessed images through the model in
// eval mode under no-grad, then per image the tumour probability p (tumour_probability of the cls
// logits, nets/model/unet.h), the predicted class argmax(cls logits), and the segmentation mask
// sigmoid(seg logits) > threshold (0/255) with its pixel count and percentage. Conditional
// segmentation: below cls_threshold the mask is not produced (mask_available false). Options add
// per image a Grad-CAM of the bottleneck for the predicted class (nets/explain/gradcam.h) and
// MC-dropout statistics: N passes with the dropout layers in train mode and everything else (batch
// norm above all) in eval, giving the mean and population standard deviation of p and the per-pixel
// population variance of sigmoid(seg); the MC masks come from the predictor's own generator, so
// inference never moves another user's random stream. latency_ms is a chunk's wall time around the
// model work (forward, MC passes, Grad-CAM) divided by its size. A recommendation string follows
// the bands of recommendation() below. glia-infer's file handling around the predictor is
// nets/infer/inference.h.
// Tested in tests/nets/infer/predictor_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/random.h"
#include "engine/tensor.h"
#include "nets/explain/gradcam.h"
#include "nets/model/unet.h"

namespace glia::nets {

// The bands of recommendation(); the defaults are the ones README.md documents.
struct RecommendationBands {
  double uncertain_std = 0.15;  // an MC standard deviation above it is uncertain
  double likely = 0.7;          // a probability at or above it: tumour likely
  double unlikely = 0.3;        // a probability below it: no tumour detected
};

struct PredictOptions {
  int batch = 8;                // images per forward pass
  double threshold = 0.5;       // on sigmoid(seg logits)
  double cls_threshold = 0.3;   // no mask when the tumour probability is below it
  int mc_dropout = 0;           // MC-dropout passes; 0 = none
  bool gradcam = false;         // a Grad-CAM (bottleneck, predicted class) per image
  RecommendationBands bands{};  // of each prediction's recommendation
  std::uint64_t mc_seed = 0;    // of the predictor's own MC-dropout generator
  // Off: classification only. The decoder does not run (MC passes still run the whole model),
  // no mask is produced (mask_available false) and seg_logits stays undefined.
  bool segment = true;
};

// Throws std::invalid_argument naming the option that is out of range.
void check_predict_options(const PredictOptions& options);

// Decision support, not a diagnosis. With p the tumour probability (the MC mean when given) and
// s its MC standard deviation, the first that holds (default bands):
//   s > uncertain_std (0.15)   "uncertain: radiologist review"
//   p >= likely (0.7)          "tumour likely: review the highlighted region"
//   p < unlikely (0.3)         "no tumour detected: routine follow-up"
//   otherwise                  "uncertain: radiologist review"
std::string recommendation(double probability, std::optional<double> probability_std = {},
                           const RecommendationBands& bands = {});

struct Prediction {
  double tumour_probability = 0.0;  // tumour_probability() of the class logits
  int predicted_class = 0;          // argmax of the class logits (the first on ties)
  std::int64_t tumour_pixels = 0;   // pixels with sigmoid(seg) > threshold
  double tumour_percent = 0.0;      // 100 * tumour_pixels / (height * width)
  int height = 0, width = 0;
  std::vector<std::uint8_t> mask;  // height * width, 0 or 255; empty without mask_available
  bool mask_available = true;      // tumour_probability >= cls_threshold; else no mask, 0 pixels
  std::optional<double> probability_mean, probability_std;  // with MC dropout
  double latency_ms = 0.0;     // the chunk's model wall time / its size
  std::string recommendation;  // recommendation(p or the MC mean, the MC std, options.bands)
};

struct PredictionBatch {
  Tensor seg_logits;    // [n, out_channels, h, w] on the cpu
  Tensor cls_logits;    // [n, num_classes] on the cpu
  Tensor gradcam;       // [n, 1, h, w] in [0, 1] on the cpu; undefined without options.gradcam
  Tensor seg_variance;  // [n, 1, h, w] on the cpu; undefined without MC dropout
  std::vector<Prediction> predictions;
};

// predict() is thread-safe and not const: a call switches the model's modes and gradient flags
// for a while (Grad-CAM, MC dropout) and advances the predictor's MC-dropout generator, so calls
// are serialised by a mutex inside. Concurrent calls therefore give what the same calls made one
// after another give (in the order they took the lock). The model must not be used elsewhere
// while a call runs; the predictor is neither copied nor moved (it holds the mutex).
class Predictor {
 public:
  // Moves the model to `device` and puts it in eval mode. The model needs one output channel and
  // at least two classes.
  Predictor(std::shared_ptr<MultiTaskUNet> model, Device device, PredictOptions options = {});
  // The architecture and weights from a checkpoint (nets/model/checkpoint.h).
  static Predictor from_checkpoint(const std::filesystem::path& checkpoint, Device device,
                                   PredictOptions options = {});

  // images: f32 [n, in_channels, h, w] on any device; run in chunks of options.batch. The model
  // is left in eval mode with its parameters, running statistics and dropout generator unchanged.
  PredictionBatch predict(const Tensor& images);
  // The same with options of this call (checked by check_predict_options; mc_seed is ignored:
  // the predictor's generator draws). A server gives each request its own thresholds this way;
  // an image's prediction does not depend on the other images of the call (batch norm in eval),
  // except for MC dropout, whose masks follow the generator's stream.
  PredictionBatch predict(const Tensor& images, const PredictOptions& options);

  const MultiTaskUNet& model() const { return *model_; }
  Device device() const { return device_; }
  const PredictOptions& options() const { return options_; }
  // The generator of the MC-dropout masks (seeded options.mc_seed).
  const std::shared_ptr<Generator>& mc_generator() const { return mc_generator_; }

 private:
  std::shared_ptr<MultiTaskUNet> model_;
  Device device_;
  PredictOptions options_;
  std::shared_ptr<Generator> mc_generator_;
  std::mutex mutex_;
};

// MC dropout on a batch: `passes` no-grad forwards with every nn::Dropout in train mode and the
// rest (batch norm above all) in eval; per sample the mean and population standard deviation of
// the tumour probability, per pixel ([n * h * w], sample-major) the population variance of
// sigmoid(seg). The masks come from `generator`, installed on the model's dropout for the call
// (the model's own when null). The model's modes and dropout generator are restored; parameters
// and running statistics are not touched.
struct McDropoutStats {
  std::vector<double> mean, std;
  std::vector<float> seg_variance;
};
McDropoutStats mc_dropout(MultiTaskUNet& model, const Tensor& images, int passes,
                          std::shared_ptr<Generator> generator = nullptr);
// Puts every nn::Dropout at or below `module` in train mode, leaving the other modules as they are.
void set_dropout_train(nn::Module& module);

}  // namespace glia::nets
