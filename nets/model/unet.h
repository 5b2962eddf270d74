// The multi-task U-Net (DESIGN.md section 5): one encoder shared by a segmentation decoder and a
// classification head. With channels c_i = B * 2^i at level i (B base filters, depth D):
//   DoubleConv(cin, cout)  conv1 3x3 pad 1 no bias -> bn1 -> ReLU -> conv2 (same) -> bn2 -> ReLU
//   UNetEncoder            blocks.0 = DoubleConv(in, c_0); for i = 1..D: 2x2 max pool then
//                          blocks.i = DoubleConv(c_{i-1}, c_i); returns every level's features,
//                          the bottleneck (c_D channels at H / 2^D) last
//   UNetDecoder            for j = 0..D-1, i = D - j: ups.j = ConvTranspose2d(c_i, c_{i-1}, 2,
//                          stride 2), concat [skip_{i-1}, up], blocks.j = DoubleConv(c_i, c_{i-1});
//                          head = 1x1 conv c_0 -> out_channels: the segmentation logits
//   ClassificationHead     global average pool -> fc1 (c_D -> hidden) -> ReLU -> dropout -> fc2
//   MultiTaskUNet          encoder, decoder, cls_head
// The tumour probability of a sample is p = softmax(cls logits)[kTumourClass], class 0 being "no
// tumour"; every user computes it with tumour_probability() below.
// Parameter and buffer names are PyTorch's for the same structure ("encoder.blocks.0.conv1.weight",
// "decoder.ups.0.bias", "cls_head.fc2.weight"), so a state dict moves between the two unchanged.
// Components freeze and unfreeze as a whole; a frozen component's batch norms can be held in
// eval mode while the rest trains. Tested in tests/nets/model/unet_test.cpp and golden_test.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/nn/activation.h"
#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/random.h"

namespace glia::nets {

// The class index of "tumour" in the classification logits.
inline constexpr int kTumourClass = 1;

// softmax(logits)[kTumourClass] of one sample's class logits (at least two), in double with the
// largest logit subtracted first so no exponential overflows.
double tumour_probability(std::span<const float> class_logits);

// Limits of UNetConfig::validate: channels at any level, input/output channels and classes, and
// the classification head's hidden width.
inline constexpr index_t kMaxChannels = 4096;
inline constexpr int kMaxIoChannels = 256;
inline constexpr int kMaxClsHidden = 65536;

struct UNetConfig {
  int in_channels = 1;
  int base_filters = 32;
  int depth = 3;
  int out_channels = 1;
  int cls_hidden = 256;
  int num_classes = 2;
  double cls_dropout = 0.3;

  // c_i = base_filters * 2^i.
  index_t channels(int level) const;
  // Throws std::invalid_argument naming the first field out of range.
  void validate() const;
  // The fields as strings under their names ("base_filters" -> "32"), for checkpoint metadata.
  std::map<std::string, std::string> to_metadata() const;
  // The inverse; a missing key keeps its default, a malformed value throws naming the key.
  static UNetConfig from_metadata(const std::map<std::string, std::string>& metadata);
  bool operator==(const UNetConfig&) const = default;
};

class DoubleConv : public nn::Module {
 public:
  DoubleConv(index_t in_channels, index_t out_channels, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_;
};

class UNetEncoder : public nn::Module {
 public:
  UNetEncoder(const UNetConfig& config, Generator* generator = nullptr);
  // The features of levels 0..D; x is [n, in_channels, h, w] with h, w divisible by 2^D.
  std::vector<Tensor> features(const Tensor& x);
  // The bottleneck from the features of `level` (0..D) alone: the pool and block of every level
  // above it (the features themselves at level D). Lets a caller differentiate with respect to
  // one level's features without recording the levels below it.
  Tensor bottleneck_from(const Tensor& features, int level);

 private:
  std::vector<std::shared_ptr<DoubleConv>> blocks_;
};

class UNetDecoder : public nn::Module {
 public:
  UNetDecoder(const UNetConfig& config, Generator* generator = nullptr);
  // The segmentation logits [n, out_channels, h, w] from the encoder's features (levels 0..D).
  Tensor decode(const std::vector<Tensor>& features);

 private:
  std::vector<std::shared_ptr<nn::ConvTranspose2d>> ups_;
  std::vector<std::shared_ptr<DoubleConv>> blocks_;
  std::shared_ptr<nn::Conv2d> head_;
};

class ClassificationHead : public nn::Module {
 public:
  ClassificationHead(const UNetConfig& config, Generator* generator = nullptr);
  // The bottleneck [n, c_D, h, w] -> class logits [n, num_classes].
  Tensor forward(const Tensor& bottleneck) override;
  nn::Dropout& dropout() { return *dropout_; }
  const nn::Dropout& dropout() const { return *dropout_; }

 private:
  std::shared_ptr<nn::GlobalAvgPool> pool_;
  std::shared_ptr<nn::Linear> fc1_, fc2_;
  std::shared_ptr<nn::ReLU> relu_;
  std::shared_ptr<nn::Dropout> dropout_;
};

enum class Component { encoder, decoder, cls_head };
inline constexpr std::array<Component, 3> kComponents = {Component::encoder, Component::decoder,
                                                         Component::cls_head};
// "encoder", "decoder", "cls_head": the module names.
const char* component_name(Component c);

struct MultiTaskOutput {
  Tensor seg_logits;             // [n, out_channels, h, w]; undefined without do_seg
  Tensor cls_logits;             // [n, num_classes]; undefined without do_cls
  std::vector<Tensor> features;  // encoder features, levels 0..D (bottleneck last)
};

struct ParameterCounts {
  std::int64_t encoder = 0, decoder = 0, cls_head = 0, total = 0;
};

class MultiTaskUNet : public nn::Module {
 public:
  // Initialises every layer in registration order from `generator` (the default one when null),
  // so one seed gives one model on every device; the generator is used during construction only.
  // The dropout of the head draws its masks from a generator of its own (seed 0) until
  // set_dropout_generator installs another.
  explicit MultiTaskUNet(const UNetConfig& config = {}, Generator* generator = nullptr);

  // Throws std::invalid_argument naming the shape when x is not [n, in_channels, h, w] with h
  // and w divisible by 2^depth. The single-input forward of the base stays (throwing): the
  // flags are always given.
  using nn::Module::forward;
  MultiTaskOutput forward(const Tensor& x, bool do_seg, bool do_cls);

  const UNetConfig& config() const { return config_; }
  UNetEncoder& encoder() { return *encoder_; }
  UNetDecoder& decoder() { return *decoder_; }
  ClassificationHead& cls_head() { return *cls_head_; }
  nn::Module& component(Component c);

  // Frozen parameters get no gradient. With frozen_bn_eval (the default) a frozen component's
  // batch norms stay in eval mode (running statistics used and not updated) even in train().
  void freeze(Component c);
  void unfreeze(Component c);
  bool is_frozen(Component c) const;
  void set_frozen_bn_eval(bool on);
  void train(bool on = true) override;

  ParameterCounts parameter_counts() const;

  // The generator of the dropout masks, shared with the caller: whoever draws (the trainer, a
  // predictor's MC dropout) installs its own, and it outlives the model if the caller keeps it.
  // Throws std::invalid_argument on null.
  void set_dropout_generator(std::shared_ptr<Generator> generator);
  const std::shared_ptr<Generator>& dropout_generator() const;

 private:
  UNetConfig config_;
  std::shared_ptr<UNetEncoder> encoder_;
  std::shared_ptr<UNetDecoder> decoder_;
  std::shared_ptr<ClassificationHead> cls_head_;
  std::array<bool, 3> frozen_{false, false, false};
  bool frozen_bn_eval_ = true;
};

}  // namespace glia::nets
