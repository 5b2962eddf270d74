// Paired image/mask transforms for training and validation. Geometric transforms (flips, k*90
// degree rotations) draw their parameters once per sample and move image and mask pixels by the
// same index map, so the mask stays aligned and binary. Intensity transforms (shift, scale,
// Gaussian noise) touch the image only and never clamp: the data are z-scores. SkullMask keeps
// the brain region of sources that are not skull-stripped (Kaggle): pixels above a low percentile
// of the image, reduced to their largest connected component with its holes filled, eroded by a
// radius; every other image pixel is set to 0. A Compose applies its transforms in order, each with
// a probability, drawing from the per-sample stream SampleRng(seed, epoch, index), so a result does
// not depend on the worker thread that produced it. Rotation convention (numpy's np.rot90(a, k)): k
// = 1 maps out[i][j] = in[j][W - 1 - i] and swaps height and width. Tested in
// tests/data/input/transforms_test.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/input/dataset.h"
#include "data/input/sample_rng.h"

namespace glia::data {

class Transform {
 public:
  virtual ~Transform() = default;
  // Changes `sample` in place; random parameters are drawn from `rng`, once per call.
  virtual void apply(Sample& sample, SampleRng& rng) const = 0;
  virtual std::string name() const = 0;
  // False when apply() draws nothing and its result depends on the sample alone.
  virtual bool random() const { return true; }
};

// --- geometric: image and mask alike -----------------------------------------------------------
class HorizontalFlip : public Transform {  // mirrors columns: out[i][j] = in[i][W - 1 - j]
 public:
  void apply(Sample& sample, SampleRng& rng) const override;
  std::string name() const override { return "hflip"; }
  bool random() const override { return false; }
};

class VerticalFlip : public Transform {  // mirrors rows: out[i][j] = in[H - 1 - i][j]
 public:
  void apply(Sample& sample, SampleRng& rng) const override;
  std::string name() const override { return "vflip"; }
  bool random() const override { return false; }
};

// Rotation by k * 90 degrees counter-clockwise; k fixed, or drawn uniformly from {1, 2, 3}.
class Rot90 : public Transform {
 public:
  explicit Rot90(std::optional<int> k = std::nullopt);
  void apply(Sample& sample, SampleRng& rng) const override;
  std::string name() const override { return "rot90"; }
  bool random() const override { return !k_.has_value(); }

 private:
  std::optional<int> k_;
};

// --- intensity: image only, no clamping ---------------------------------------------------------
class IntensityShift : public Transform {  // image += u, u ~ U(-max_offset, max_offset)
 public:
  explicit IntensityShift(double max_offset);
  void apply(Sample& sample, SampleRng& rng) const override;
  std::string name() const override { return "shift"; }

 private:
  double max_offset_;
};

class IntensityScale : public Transform {  // image *= s, s ~ U(1 - max_delta, 1 + max_delta)
 public:
  explicit IntensityScale(double max_delta);
  void apply(Sample& sample, SampleRng& rng) const override;
  std::string name() const override { return "scale"; }

 private:
  double max_delta_;
};

class GaussianNoise : public Transform {  // image += n per pixel, n ~ N(0, stddev^2)
 public:
  explicit GaussianNoise(double stddev);
  void apply(Sample& sample, SampleRng& rng) const override;
  std::string name() const override { return "noise"; }

 private:
  double stddev_;
};

// --- skull boundary mask ------------------------------------------------------------------------
// Keeps pixels strictly above the `percentile` (0..100, nearest rank) of the image, then their
// largest connected component with its holes filled (dark structures inside the head are brain),
// eroded by `radius`; sets the image to 0 elsewhere. Only samples whose source is listed are
// changed; the segmentation mask is never changed. An image whose region comes out empty (a
// constant image) is left as it is.
// The default percentile suits a head filling about half of the frame: the background of a
// resized, z-scored JPEG is noisy, and a threshold low in that noise leaves background pixels
// above it that connect to the head and enclose the rest (the mask then keeps nearly everything);
// with hole filling a threshold inside the brain's range does no harm.
class SkullMask : public Transform {
 public:
  SkullMask(std::vector<std::string> sources, double percentile = 40.0, int radius = 3);
  void apply(Sample& sample, SampleRng& rng) const override;
  std::string name() const override { return "skull_mask"; }
  bool random() const override { return false; }
  // The 0/1 brain region of an image (what apply keeps).
  std::vector<std::uint8_t> region(const std::vector<float>& image, int height, int width) const;

 private:
  std::vector<std::string> sources_;
  double percentile_;
  int radius_;
};

class Compose {
 public:
  // Appends `transform`, applied with `probability` (0..1) per sample.
  Compose& add(std::shared_ptr<const Transform> transform, double probability = 1.0);
  // Applies the transforms in order with the stream SampleRng(seed, epoch, index). Every
  // transform's coin is drawn whether or not it fires, so the streams of later transforms do not
  // shift with earlier outcomes.
  void apply(Sample& sample, std::uint64_t seed, std::uint64_t epoch, std::uint64_t index) const;
  // True when the result depends on the sample alone (no random transform, probabilities 0 or 1).
  bool deterministic() const;
  std::size_t size() const { return steps_.size(); }
  // "hflip@0.5, rot90@0.5, ...": for logs.
  std::string describe() const;

 private:
  struct Step {
    std::shared_ptr<const Transform> transform;
    double probability;
  };
  std::vector<Step> steps_;
};

struct AugmentConfig {
  double p_hflip = 0.5;
  double p_vflip = 0.5;
  double p_rot90 = 0.5;
  double p_shift = 0.5, max_shift = 0.1;   // in standard deviations of the z-scored image
  double p_scale = 0.5, max_scale = 0.1;   // relative
  double p_noise = 0.3, noise_std = 0.05;  // in standard deviations
  std::vector<std::string> skull_sources;  // e.g. {"kaggle"}; empty: no skull mask
  double skull_percentile = 40.0;
  int skull_radius = 3;
};

// Skull mask (if any sources), flips, rotation, then the intensity transforms.
Compose train_transforms(const AugmentConfig& config);
// Deterministic: the skull mask only (identity when no sources are given).
Compose val_transforms(const AugmentConfig& config);

}  // namespace glia::data
