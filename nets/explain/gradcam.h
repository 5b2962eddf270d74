// Grad-CAM and Grad-CAM++ for the multi-task U-Net's classification head, the localisation scores
// that compare a CAM with a tumour mask, and the CAM overlay for display.
// With A_k the k-th channel of the chosen encoder level's features and y the pre-softmax logit of
// the target class (never the segmentation output or a loss), g = dy/dA_k:
//   Grad-CAM     w_k = mean_ij g_ij
//   Grad-CAM++   alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3)  (0 where the denominator
//                is 0), w_k = sum_ij alpha_ij ReLU(g_ij): the closed form of Chattopadhyay et al.
//                (2018), which holds for the exponential of the logit, exp(y), taken as the score
//   raw CAM      ReLU(sum_k w_k A_k) at the level's resolution
//   CAM          the raw CAM bilinearly upsampled to the input (io::resize_bilinear) and min-max
//                normalised per sample to [0, 1]; an all-zero map stays 0.
// One batched forward in eval mode and one backward of the sum of the samples' target logits
// (samples do not interact in eval mode, so each gets its own gradient). The level's features
// enter the backward as a fresh leaf, so their gradient starts at zero, and the parameters are
// kept off the tape, so their gradients are neither used nor changed. Tested in
// tests/nets/explain/gradcam_test.cpp.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/tensor.h"
#include "nets/model/unet.h"

namespace glia::nets {

struct GradCamOptions {
  int level = -1;          // encoder level 0..D; -1 = the bottleneck (level D)
  int target_class = -1;   // -1 = each sample's predicted class
  bool plus_plus = false;  // Grad-CAM++ weights instead of the spatial mean of the gradients
};

struct GradCamResult {
  Tensor cams;                       // [n, 1, H, W] f32 on cpu, upsampled to the input, in [0, 1]
  Tensor raw;                        // [n, 1, h_l, w_l] f32 on cpu: ReLU(sum_k w_k A_k)
  std::vector<int> target_classes;   // per sample
  std::vector<float> probabilities;  // per sample: tumour_probability() of the cls logits
};

// images: f32 [n, in_channels, H, W] on any device (moved to the model's device). The model's
// train/eval mode, parameters, their gradients and batch-norm running statistics are as before
// the call. Throws std::invalid_argument naming the level, class or shape when out of range.
GradCamResult grad_cam(MultiTaskUNet& model, const Tensor& images,
                       const GradCamOptions& options = {});

// The same from features the caller already holds: `features` is level `options.level`'s output
// of an eval-mode forward (any graph it carries is ignored) of images of height x width. Saves
// the forward to that level when the caller has run it anyway (the predictor does).
GradCamResult grad_cam_from_features(MultiTaskUNet& model, const Tensor& features,
                                     std::int64_t height, std::int64_t width,
                                     const GradCamOptions& options = {});

// Localisation on a sample with a mask (any non-zero pixel is tumour): the share of CAM energy
// (sum of cam) inside the mask dilated by `dilation` pixels (io::dilate, elliptical), and whether
// the CAM's peak (the first maximum in row-major order) lies inside it: the pointing game. A CAM
// with zero energy scores 0 and no hit.
struct Localisation {
  double energy_inside = 0;
  bool peak_inside = false;
};
Localisation localisation(std::span<const float> cam, std::span<const std::uint8_t> mask,
                          int height, int width, int dilation = 5);

// An HxWx3 RGB overlay: the grey image (z-scores min-max scaled to 0..255; a constant image is
// black) blended as (1 - alpha) grey + alpha colormap_jet(cam), rounded to nearest.
std::vector<std::uint8_t> overlay_cam(std::span<const float> image, std::span<const float> cam,
                                      int height, int width, double alpha = 0.4);

}  // namespace glia::nets
