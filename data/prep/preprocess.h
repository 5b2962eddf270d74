// THE one slice normalisation shared by data preparation (BraTS FLAIR slices and Kaggle JPEGs)
// and inference, so training and serving cannot disagree: resize to 256x256 (bilinear), then
// z-score over the non-zero (brain) pixels as MONAI's NormalizeIntensity(nonzero=True):
//   mean = sum(x_i) / n, std = sqrt(sum((x_i - mean)^2) / n) over the n pixels with x_i != 0
//   (population std), each such pixel becomes (x_i - mean) / std, zero pixels stay 0.
// Degenerate inputs: with no non-zero pixel nothing changes (all zero), and when std == 0 (all
// non-zero pixels equal) those pixels become 0, as MONAI does by dividing by 1 instead of 0.
// Sums are accumulated in double. Tested in tests/data/prep/preprocess_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "io/nifti.h"
#include "io/slice.h"

namespace glia::data {

// In place; see the file comment for the math and the degenerate cases.
void normalize_nonzero(std::span<float> pixels);

// Resize (bilinear, cv::INTER_LINEAR) height x width to kSliceSize x kSliceSize, then
// normalize_nonzero: 1 x 256 x 256 row-major. A pixel count other than height*width is
// std::invalid_argument.
std::vector<float> prepare_slice(std::span<const float> pixels, int height, int width);

// Axial slice z of a volume as an image of ny rows by nx columns, untransposed (x fastest, as
// stored): the orientation glia-prep gives BraTS slices, and glia-infer its volume inputs.
// std::out_of_range outside 0..nz-1.
std::span<const float> axial_slice(const io::Volume& volume, std::int64_t z);

// Whether a slice of a skull-stripped volume holds brain: any non-zero voxel (the background is
// exactly 0). glia-prep keeps only those slices, so a model has never seen the others.
bool slice_has_brain(std::span<const float> pixels);

// prepare_slice of axial_slice(volume, z): a BraTS FLAIR slice as a model input, in glia-prep and
// glia-infer alike.
std::vector<float> prepare_axial_slice(const io::Volume& volume, std::int64_t z);

// The head in a grey image of a scan (0..255): pixels in bins above Otsu's threshold, their
// largest 8-connected component, holes filled (ventricles and dark lesions are inside the head).
// An image export of a scan (the Kaggle set, photographs of films) has a dark but not black
// background with compression noise, which the non-zero rule would count as brain; BraTS volumes
// are skull-stripped with an exact-zero background and do not go through this.
std::vector<std::uint8_t> head_region(std::span<const float> grey, int height, int width);

// read_gray, background (outside head_region) set to 0, then prepare_slice: how a raw image file
// becomes a model input, in preprocessing and in inference alike. An image whose head region is
// empty (a constant image) is used as it is.
std::vector<float> prepare_image_file(const std::filesystem::path& path);

}  // namespace glia::data
