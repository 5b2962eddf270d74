// glia-infer's whole job around the predictor (nets/infer/predictor.h): it reads the inputs (image
// files preprocessed by data::prepare_image_file, .npz slices as stored, NIfTI volumes slice by
// slice as glia-prep prepares BraTS FLAIR), predicts, and writes DIR/<name>.json and
// DIR/<name>_mask.png per image and, on request, the raw logits as safetensors (seg_logits
// [N, 1, H, W], cls_logits [N, C], gradcam and seg_variance [N, 1, H, W] when computed, one row
// per model input in input order), the Grad-CAM overlay DIR/<name>_gradcam.png and the panel
// DIR/<name>_panel.png (input | Grad-CAM overlay | mask in red). A volume gets
// DIR/<name>_mask.nii.gz in its own geometry and DIR/<name>.json with the slice probabilities
// and the tumour volume. Tested in tests/nets/infer/predictor_test.cpp (inputs, names) and
// tests/apps/infer_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "engine/device.h"
#include "io/nifti.h"
#include "nets/infer/predictor.h"

namespace glia::nets {

// The inputs a path stands for: a file itself; a folder its image files (.png .jpg .jpeg .bmp)
// and .npz slices and NIfTI volumes (.nii .nii.gz), sorted by name, other entries ignored. A folder
// without any is an error naming it.
std::vector<std::filesystem::path> expand_inputs(const std::vector<std::filesystem::path>& paths);

// One model input as [1, h, w] floats: a ".npz" slice (io::read_slice) is used as stored, any
// other file is an image preprocessed by data::prepare_image_file. Errors name the file.
struct InputImage {
  std::vector<float> pixels;
  int height = 0, width = 0;
};
InputImage load_input(const std::filesystem::path& path);

// The pictures glia-infer's panel and glia-serve draw, HxWx3 RGB: the input in grey (z-scores
// min-max scaled, as overlay_cam draws them), and the mask (0 or non-zero, height x width; empty
// for none) blended half-way to red on it.
std::vector<std::uint8_t> grey_rgb(const InputImage& image);
std::vector<std::uint8_t> mask_overlay(const InputImage& image, std::span<const std::uint8_t> mask);

// A NIfTI volume input (.nii, .nii.gz): each axial slice with brain through
// data::prepare_axial_slice, exactly as glia-prep prepares a BraTS FLAIR slice. Slices without
// brain (no non-zero voxel) are not run: glia-prep drops them, so the model has never seen one.
// Errors name the file.
struct InputVolume {
  io::Volume header;                 // size, spacing and geometry; data emptied
  std::vector<std::int64_t> slices;  // z of each image, ascending
  std::vector<InputImage> images;    // 1 x 256 x 256 each
};
InputVolume load_volume(const std::filesystem::path& path);

// The output name of an input: its file name without the extension ("a/b/x.png" -> "x",
// "subject_flair.nii.gz" -> "subject_flair").
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
  // Stop at the first input that cannot be read, before any output is written.
  bool fail_fast = false;
};

struct InputFailure {
  std::filesystem::path input;
  std::string error;  // names the file
};

// What a run did: inputs processed, and those that could not be read, in input order.
struct InferSummary {
  std::size_t processed = 0;
  std::vector<InputFailure> failed;
};

// Expands folders (expand_inputs), loads the model and every input (all before any output is
// written), predicts, and writes the files described above, one line per input to `log`. An input
// that cannot be read does not stop the others: its DIR/<name>.json holds {"input", "error"}, its
// other outputs from earlier runs are removed, and it is listed in the summary; with fail_fast
// it throws instead, before anything is written. Two inputs with one output name, inputs of
// different sizes with save_raw, or a bad checkpoint are errors that stop the run.
InferSummary run_inference(const InferOptions& options, std::ostream& log);

}  // namespace glia::nets
