// Inference with a trained multi-task U-Net: batches of preprocessed images through the model in
// eval mode under no-grad, then per image the tumour probability p = softmax(cls logits)[1], the
// predicted class argmax(cls logits), and the segmentation mask sigmoid(seg logits) > threshold
// (0/255) with its pixel count and percentage. Conditional segmentation: below cls_threshold the
// mask is not produced (mask_available false). Options add per image a Grad-CAM of the
// bottleneck for the predicted class (nets/gradcam.h) and MC-dropout statistics: N passes with
// the dropout layers in train mode and everything else (batch norm above all) in eval, giving the
// mean and population standard deviation of p and the per-pixel population variance of
// sigmoid(seg). latency_ms is a chunk's wall time around the model work (forward, MC passes,
// Grad-CAM) divided by its size. A recommendation string follows the bands of recommendation()
// below. run_inference is glia-infer's whole job: it reads
// the inputs (image files preprocessed by io::prepare_image_file, .npz slices as stored), writes
// DIR/<name>.json and DIR/<name>_mask.png per input and, on request, the raw logits as
// safetensors (seg_logits [N, 1, H, W], cls_logits [N, C], gradcam and seg_variance [N, 1, H, W]
// when computed, input order), the Grad-CAM overlay DIR/<name>_gradcam.png and the panel
// DIR/<name>_panel.png (input | Grad-CAM overlay | mask in red). Tested in
// tests/nets/predictor_test.cpp and tests/apps/infer_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"
#include "nets/gradcam.h"
#include "nets/unet.h"

namespace glia::nets {

struct PredictOptions {
  int batch = 8;               // images per forward pass
  double threshold = 0.5;      // on sigmoid(seg logits)
  double cls_threshold = 0.3;  // no mask when the tumour probability is below it
  int mc_dropout = 0;          // MC-dropout passes; 0 = none
  bool gradcam = false;        // a Grad-CAM (bottleneck, predicted class) per image
};

// Decision support, not a diagnosis. With p the tumour probability (the MC mean when given) and
// s its MC standard deviation:
//   s > 0.15                "uncertain: radiologist review"
//   p >= 0.7                "tumour likely: review the highlighted region"
//   p < 0.3                 "no tumour detected: routine follow-up"
//   otherwise               "uncertain: radiologist review"
std::string recommendation(double probability, std::optional<double> probability_std = {});

struct Prediction {
  double tumour_probability = 0.0;  // softmax of the class logits, class 1
  int predicted_class = 0;          // argmax of the class logits (the first on ties)
  std::int64_t tumour_pixels = 0;   // pixels with sigmoid(seg) > threshold
  double tumour_percent = 0.0;      // 100 * tumour_pixels / (height * width)
  int height = 0, width = 0;
  std::vector<std::uint8_t> mask;  // height * width, 0 or 255; empty without mask_available
  bool mask_available = true;      // tumour_probability >= cls_threshold; else no mask, 0 pixels
  std::optional<double> probability_mean, probability_std;  // with MC dropout
  double latency_ms = 0.0;     // the chunk's model wall time / its size
  std::string recommendation;  // recommendation(p or the MC mean, the MC std)
};

struct PredictionBatch {
  Tensor seg_logits;    // [n, out_channels, h, w] on the cpu
  Tensor cls_logits;    // [n, num_classes] on the cpu
  Tensor gradcam;       // [n, 1, h, w] in [0, 1] on the cpu; undefined without options.gradcam
  Tensor seg_variance;  // [n, 1, h, w] on the cpu; undefined without MC dropout
  std::vector<Prediction> predictions;
};

class Predictor {
 public:
  // Moves the model to `device` and puts it in eval mode. The model needs one output channel and
  // at least two classes.
  Predictor(std::shared_ptr<MultiTaskUNet> model, Device device, PredictOptions options = {});
  // The architecture and weights from a checkpoint (nets/checkpoint.h).
  static Predictor from_checkpoint(const std::filesystem::path& checkpoint, Device device,
                                   PredictOptions options = {});

  // images: f32 [n, in_channels, h, w] on any device; run in chunks of options.batch. The model
  // is left in eval mode with its parameters and running statistics unchanged.
  PredictionBatch predict(const Tensor& images) const;

  const MultiTaskUNet& model() const { return *model_; }
  Device device() const { return device_; }
  const PredictOptions& options() const { return options_; }

 private:
  std::shared_ptr<MultiTaskUNet> model_;
  Device device_;
  PredictOptions options_;
};

// MC dropout on a batch: `passes` no-grad forwards with every nn::Dropout in train mode and the
// rest (batch norm above all) in eval; per sample the mean and population standard deviation of
// softmax(cls)[1], per pixel ([n * h * w], sample-major) the population variance of sigmoid(seg).
// The model's modes are restored; parameters and running statistics are not touched.
struct McDropoutStats {
  std::vector<double> mean, std;
  std::vector<float> seg_variance;
};
McDropoutStats mc_dropout(MultiTaskUNet& model, const Tensor& images, int passes);
// Puts every nn::Dropout at or below `module` in train mode, leaving the other modules as they are.
void set_dropout_train(nn::Module& module);

// The inputs a path stands for: a file itself; a folder its image files (.png .jpg .jpeg .bmp)
// and .npz slices, sorted by name, other entries ignored. A folder without any is an error
// naming it.
std::vector<std::filesystem::path> expand_inputs(const std::vector<std::filesystem::path>& paths);

// One model input as [1, h, w] floats: a ".npz" slice (io::read_slice) is used as stored, any
// other file is an image preprocessed by io::prepare_image_file. Errors name the file.
struct InputImage {
  std::vector<float> pixels;
  int height = 0, width = 0;
};
InputImage load_input(const std::filesystem::path& path);

// The output name of an input: its file name without the extension ("a/b/x.png" -> "x").
std::string output_name(const std::filesystem::path& input);

struct InferOptions {
  std::filesystem::path checkpoint;
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path out_dir;
  Device device = Device::cpu();
  PredictOptions predict;
  std::optional<std::filesystem::path> save_raw;
  // The overlay and panel PNGs blend the Grad-CAM with this weight.
  double gradcam_alpha = 0.4;
};

// Expands folders (expand_inputs), loads the model and every input (all before any output is
// written, so a bad input fails early), predicts, and writes the files described above, one line
// per input to `log`. Two inputs with one output name, or inputs of different sizes with save_raw,
// are errors.
void run_inference(const InferOptions& options, std::ostream& log);

}  // namespace glia::nets
