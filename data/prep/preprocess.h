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

// The level above which a pixel of a grey image of a scan (0..255) is not background. The
// background is modelled from the image's border band (4% of the short side, at least 2 pixels):
// its mode m (3-bin smoothed, searched no higher than 10 levels above the band's median so a
// one-level frame or text cannot win) and its noise sigma (half width at half maximum of the
// smoothed peak on the bright side / 1.1774, at least 1). The threshold is m + max(8, 3 sigma),
// just above the background's noise and never between tissue classes: Otsu's threshold there
// kept only the brightest structure (bright CSF or a lesion on T2/FLAIR, a bright skull ring).
// When a tenth of the border still lies above it within 64 levels of m (a noisy scan background
// next to exact-black padding) that mode is background too (up to three passes). Finally the
// threshold is at least m + 0.2 (median of the pixels above it - m), above JPEG ringing.
float head_threshold(std::span<const float> grey, int height, int width);

// The head in a grey image of a scan (0..255), with s the short side: pixels above
// head_threshold; components thinner than about 1.2% of s everywhere dropped whole (burnt-in
// text, rulers, film frames: nothing survives an erosion of radius 0.6% of s), and thin parts
// further than 2% of s from the thick parts of a kept component; closed with radius 2% of s in
// a zero-padded plane (dark bone and CSF between scalp and brain, gaps in a ring); holes filled
// (ventricles, dark lesions, the brain inside a scalp ring); the largest 8-connected component.
// An image export of a scan (the Kaggle set, photographs of films) has a dark but not black
// background with compression noise, which the non-zero rule would count as brain; BraTS
// volumes are skull-stripped with an exact-zero background and do not go through this.
// Tested against phantoms with a known head in tests/data/prep/head_region_test.cpp.
std::vector<std::uint8_t> head_region(std::span<const float> grey, int height, int width);

// How an image file becomes a slice. crop_to_head: after the background is zeroed, cut the
// head's bounding box widened by `margin` times its longer side on every side, centred in a
// zero-padded square, so the head fills the slice whatever the export's framing and aspect;
// off by default: on the phantoms the BraTS/Kaggle histogram overlap (stats.json) moved by less
// than 0.004 either way with it (0.5433 -> 0.5439 for the default synth set, 0.5682 -> 0.5648
// for 10 subjects and 120 images, seed 7), and BraTS slices, which keep their framing, are not
// cropped.
struct ImagePrepOptions {
  bool crop_to_head = false;
  double margin = 0.05;
};

// read_gray, background (outside head_region) set to 0, optionally the crop above, then
// prepare_slice: how a raw image file becomes a model input, in preprocessing and in inference
// alike. An image whose head region is empty (a constant image) is used as it is.
// head_fraction is the share of the image's pixels inside its head region (glia-prep records it).
struct PreparedImage {
  std::vector<float> slice;
  double head_fraction = 0.0;
};
PreparedImage prepare_image(const std::filesystem::path& path,
                            const ImagePrepOptions& options = {});
// prepare_image(path, options).slice.
std::vector<float> prepare_image_file(const std::filesystem::path& path,
                                      const ImagePrepOptions& options = {});

}  // namespace glia::data
