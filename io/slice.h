// One preprocessed slice as a numpy-compatible .npz (np.savez_compressed layout), the unit the
// data preparation writes and the loader reads. Keys:
//   image   float32 (1, H, W)  normalised by data/prep/preprocess.h (the data layer)
//   mask    uint8   (H, W)     0/1, only when present (BraTS); absent for Kaggle
//   label   int64   ()         1 = tumour
//   source  unicode ()         "brats" | "kaggle"
//   patient unicode ()         patient id, for patient-level splits
//   slice   int64   ()         slice index within the volume (0 for 2-D images)
// Other keys are ignored when reading. Tested in tests/io/slice_test.cpp (also against files
// written by numpy in tests/io/data/).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace glia::io {

// The side of every prepared slice: images and masks are resized to kSliceSize x kSliceSize.
inline constexpr int kSliceSize = 256;

struct Slice {
  int height = kSliceSize;
  int width = kSliceSize;
  std::vector<float> image;                       // 1 x height x width
  std::optional<std::vector<std::uint8_t>> mask;  // height x width, 0/1; absent for Kaggle
  int label = 0;                                  // 1 = tumour
  std::string source;                             // "brats" | "kaggle"
  std::string patient;
  int slice = 0;
};

// Compressed and atomic. Sizes that do not match height x width, or mask values other than 0/1,
// are std::invalid_argument naming the file.
void write_slice(const std::filesystem::path& path, const Slice& s);
// Checks keys, dtypes and shapes (label and slice: any 0-d integer); an error names the file
// and the key.
Slice read_slice(const std::filesystem::path& path);

}  // namespace glia::io
