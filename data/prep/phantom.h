// The synthetic phantom generator: seeded stand-ins for the two raw datasets, written in their
// real formats so that glia-prep, the loader and the tests run without the real data.
//  - BraTS-like subjects: `BraTS20_Training_NNN/BraTS20_Training_NNN_flair.nii.gz` (int16, like
//    the release) and `..._seg.nii.gz` (uint8, labels 0/1/2/4), volumes x fastest. Geometry in
//    normalised head coordinates r = |((x-cx)/ax, (y-cy)/ay, (z-cz)/az)|: background 0 outside
//    r = 1 (so the first and last axial slices hold no head), a bright skull shell 0.88 <= r < 1,
//    dark CSF 0.82 <= r < 0.88, textured brain (smooth sinusoids + voxel noise) inside, two dark
//    ventricles. Most subjects carry a tumour: a core (necrosis 1 inside enhancing 4) that is an
//    ellipsoid with angular noise on its radius, inside oedema 2 out to 1.6-2.2x the core radii,
//    all clipped to the brain; size, shape, position and contrast are drawn per subject. Every
//    fourth subject (index 1, 5, 9, ...) has none; the last subject's seg is named `..._Seg.nii`
//    (uncompressed, other case) as one subject of the real release differs, so readers must find
//    the seg by pattern.
//  - Kaggle-like images: `yes/` and `no/` 8-bit grayscale JPEGs (some .png, some names with
//    spaces, some .JPG/.jpeg) of other sizes, aspect ratios, contrast and background than the
//    BraTS-like slices; a "yes" image has a bright irregular blob in the brain.
//  - Exported-scan images (make_scan_phantom, for tests of the head region; glia-prep synth does
//    not write them): one family per way real exports defeat a threshold between tissue classes,
//    T1/T2/FLAIR-like contrasts, 150-700 pixels, each with its true head mask.
// Randomness: one std::mt19937_64 per subject / image, seeded from (seed, index) and drawn through
// data/prep/portable_random.h, so a subject does not change when the count of others does.
// Tested in tests/data/prep/phantom_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace glia::data {

struct PhantomVolume {
  int nx = 0, ny = 0, nz = 0;
  std::vector<float> flair;       // x fastest; 0 outside the head, integers in [0, 1400]
  std::vector<std::uint8_t> seg;  // 0, 1, 2, 4
  bool has_tumor = false;
};

struct PhantomImage {
  int height = 0, width = 0;
  std::vector<std::uint8_t> pixels;  // row-major
};

// One BraTS-like subject of size n x n x depth (n >= 16, depth >= 4).
PhantomVolume make_brats_phantom(int n, int depth, bool tumor, std::uint64_t seed);

// One Kaggle-like image; its size and aspect are drawn from `seed` around `base` pixels.
PhantomImage make_kaggle_phantom(int base, bool tumor, std::uint64_t seed);

// The ways real exported scans (JPEG/PNG, 8-bit) differ from a clean bright head on black, one
// phantom family each. Every family has a scalp, dark bone, CSF, grey and white matter with
// sulci, two ventricles, a noisy background with a gentle gradient and a gamma curve.
enum class ScanCase {
  t1,                   // dark CSF and ventricles, bright scalp fat
  t2_bright_csf,        // CSF and ventricles brighter than brain
  flair_bright_lesion,  // a large lesion far brighter than brain, dark CSF
  dark_lesion,          // T1 with a dark lesion reaching close to the cortex
  bright_skull,         // a skull/fat ring brighter than brain, broken in places
  text_and_ruler,       // burnt-in text and a ruler with ticks, bright
  frame,                // a bright film frame (1-3 pixels) at or near the image edge
  black_padding,        // exact-black bands on two sides around a noisy, non-black background
  off_centre,           // the head shifted until the image edge may cut it
  sagittal,             // a profile: nose and a neck that runs out of the image
  coronal,              // a neck that runs out of the bottom of the image
};
inline constexpr int kScanCases = 11;
const char* scan_case_name(ScanCase c);

struct ScanPhantom {
  int height = 0, width = 0;
  std::vector<std::uint8_t> grey;  // row-major 0..255
  std::vector<std::uint8_t> rgb;   // HxWx3 for a colour-tinted export, else empty
  std::vector<std::uint8_t> head;  // the true head (0/1): everything inside the outline
  int jpeg_quality = 0;            // 30..95: to be stored as JPEG at that quality; 0: PNG
};

// One exported-scan image of the given family; size, contrast levels, gamma, JPEG quality
// (two thirds of them) and a colour tint (a quarter of the PNGs) are drawn from `seed`.
ScanPhantom make_scan_phantom(ScanCase c, std::uint64_t seed);

struct SynthOptions {
  std::filesystem::path out;
  int brats_subjects = 6;
  int kaggle_images = 20;  // 60% yes, 40% no (rounded)
  int size = 64;           // BraTS-like in-plane size
  int depth = 0;           // slices per volume; 0 = size * 3 / 8 (24 for 64)
  int kaggle_size = 0;     // base size of the Kaggle-like images; 0 = 3 * size
  std::uint64_t seed = 1;
};

// Which subjects have a tumour, and the file name of each subject's seg, as written.
bool phantom_subject_has_tumor(int index);
std::string phantom_subject_id(int index);  // BraTS20_Training_001 for index 0

// Writes the dataset under opts.out/brats/ and opts.out/kaggle/{yes,no}/ (every file atomic).
// Throws std::invalid_argument for out-of-range options, naming the option.
void write_synthetic_dataset(const SynthOptions& opts);

}  // namespace glia::data
