// Writing the synthetic dataset in the raw formats (NIfTI through io/nifti.h, JPEG/PNG through
// io/image.h); the geometry is in phantom.cpp, the layout in phantom.h.
#include <random>
#include <stdexcept>

#include "data/prep/phantom.h"
#include "data/prep/portable_random.h"
#include "io/image.h"
#include "io/nifti.h"

namespace glia::data {
namespace {

namespace fs = std::filesystem;

// Distinct streams per dataset part and index, from one user seed.
std::uint64_t item_seed(std::uint64_t seed, std::uint64_t part, std::uint64_t index) {
  std::mt19937_64 mix(seed ^ (0x9E3779B97F4A7C15ull * (part * 1000003ull + index + 1)));
  return mix();
}

// Kaggle-like names, cycling through the styles of the real set: spaces, .JPG, .jpeg, .png.
std::string kaggle_name(bool yes, int i) {
  const std::string n = std::to_string(i);
  if (yes) {
    switch (i % 4) {
      case 1:
        return "Y" + n + ".jpg";
      case 2:
        return "Y " + n + ".JPG";
      case 3:
        return "Y" + n + ".jpeg";
      default:
        return "y" + n + " scan.png";
    }
  }
  switch (i % 4) {
    case 1:
      return "No" + n + ".jpg";
    case 2:
      return n + " no.jpeg";
    case 3:
      return "no " + n + ".JPG";
    default:
      return "N" + n + ".png";
  }
}

void write_image(const fs::path& path, const PhantomImage& im) {
  std::string ext = path.extension().string();
  if (ext == ".png") {
    io::write_png_gray(path, im.pixels, im.height, im.width);
  } else {
    io::write_jpeg_gray(path, im.pixels, im.height, im.width, 90);
  }
}

}  // namespace

void write_synthetic_dataset(const SynthOptions& opts) {
  if (opts.out.empty()) throw std::invalid_argument("glia-prep synth: --out DIR is required");
  if (opts.brats_subjects < 0 || opts.kaggle_images < 0) {
    throw std::invalid_argument(
        "glia-prep synth: --brats-subjects and --kaggle-images must be >= 0");
  }
  if (opts.size < 16 || opts.size > 1024) {
    throw std::invalid_argument("glia-prep synth: --size must be in [16, 1024], got " +
                                std::to_string(opts.size));
  }
  const int depth = opts.depth > 0 ? opts.depth : opts.size * 3 / 8;
  if (depth < 4 || depth > 1024) {
    throw std::invalid_argument("glia-prep synth: --depth must be in [4, 1024], got " +
                                std::to_string(depth));
  }
  const int kaggle_base = opts.kaggle_size > 0 ? opts.kaggle_size : 3 * opts.size;
  if (kaggle_base < 16 || kaggle_base > 4096) {
    throw std::invalid_argument("glia-prep synth: --kaggle-size must be in [16, 4096], got " +
                                std::to_string(kaggle_base));
  }

  for (int s = 0; s < opts.brats_subjects; ++s) {
    const std::string id = phantom_subject_id(s);
    const fs::path dir = opts.out / "brats" / id;
    fs::create_directories(dir);
    PhantomVolume p = make_brats_phantom(opts.size, depth, phantom_subject_has_tumor(s),
                                         item_seed(opts.seed, 1, s));
    io::Volume v;
    v.nx = p.nx;
    v.ny = p.ny;
    v.nz = p.nz;
    v.data = std::move(p.flair);
    io::write_nifti(dir / (id + "_flair.nii.gz"), v, io::NiftiDType::i16);
    v.data.assign(p.seg.begin(), p.seg.end());
    const bool odd_name = s == opts.brats_subjects - 1;
    io::write_nifti(dir / (id + (odd_name ? "_Seg.nii" : "_seg.nii.gz")), v, io::NiftiDType::u8);
  }

  const int yes = (opts.kaggle_images * 3 + 2) / 5;
  for (int i = 0; i < opts.kaggle_images; ++i) {
    const bool tumor = i < yes;
    const int number = tumor ? i + 1 : i - yes + 1;
    const fs::path dir = opts.out / "kaggle" / (tumor ? "yes" : "no");
    fs::create_directories(dir);
    write_image(dir / kaggle_name(tumor, number),
                make_kaggle_phantom(kaggle_base, tumor, item_seed(opts.seed, 2, i)));
  }
}

}  // namespace glia::data
