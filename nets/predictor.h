// Inference with a trained multi-task U-Net: batches of preprocessed images through the model in
// eval mode under no-grad, then per image the tumour probability p = softmax(cls logits)[1], the
// predicted class argmax(cls logits), and the segmentation mask sigmoid(seg logits) > threshold
// (0/255) with its pixel count and percentage. run_inference is glia-infer's whole job: it reads
// the inputs (image files preprocessed by io::prepare_image_file, .npz slices as stored), writes
// DIR/<name>.json and DIR/<name>_mask.png per input and, on request, the raw logits as
// safetensors (seg_logits [N, 1, H, W], cls_logits [N, C], input order). Tested in
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
#include "nets/unet.h"

namespace glia::nets {

struct PredictOptions {
  int batch = 8;           // images per forward pass
  double threshold = 0.5;  // on sigmoid(seg logits)
};

struct Prediction {
  double tumour_probability = 0.0;  // softmax of the class logits, class 1
  int predicted_class = 0;          // argmax of the class logits (the first on ties)
  std::int64_t tumour_pixels = 0;   // pixels with sigmoid(seg) > threshold
  double tumour_percent = 0.0;      // 100 * tumour_pixels / (height * width)
  int height = 0, width = 0;
  std::vector<std::uint8_t> mask;  // height * width, 0 or 255
};

struct PredictionBatch {
  Tensor seg_logits;  // [n, out_channels, h, w] on the cpu
  Tensor cls_logits;  // [n, num_classes] on the cpu
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

  // images: f32 [n, in_channels, h, w] on any device; run in chunks of options.batch.
  PredictionBatch predict(const Tensor& images) const;

  const MultiTaskUNet& model() const { return *model_; }
  Device device() const { return device_; }
  const PredictOptions& options() const { return options_; }

 private:
  std::shared_ptr<MultiTaskUNet> model_;
  Device device_;
  PredictOptions options_;
};

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
};

// Loads the model and every input (all before any output is written, so a bad input fails
// early), predicts, and writes the files described above, one line per input to `log`. Two
// inputs with one output name, or inputs of different sizes with save_raw, are errors.
void run_inference(const InferOptions& options, std::ostream& log);

}  // namespace glia::nets
