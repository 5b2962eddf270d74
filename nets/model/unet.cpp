// The multi-task U-Net's modules; see unet.h.
#include "nets/model/unet.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "engine/losses.h"
#include "engine/nn/sequential.h"
#include "engine/ops.h"

namespace glia::nets {
namespace {

// Every BatchNorm2d at or below `m`.
void collect_batchnorms(nn::Module& m, std::vector<nn::BatchNorm2d*>& out) {
  if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&m)) out.push_back(bn);
  for (auto& [name, child] : m.named_children()) collect_batchnorms(*child, out);
}

int parse_int(const std::map<std::string, std::string>& md, const char* key, int fallback) {
  auto it = md.find(key);
  if (it == md.end()) return fallback;
  int value = 0;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) {
    throw std::invalid_argument(std::string("model metadata '") + key + "' = '" + s +
                                "' is not an integer");
  }
  return value;
}

double parse_double(const std::map<std::string, std::string>& md, const char* key,
                    double fallback) {
  auto it = md.find(key);
  if (it == md.end()) return fallback;
  const std::string& s = it->second;
  std::size_t used = 0;
  double value = 0.0;
  try {
    value = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || s.empty()) {
    throw std::invalid_argument(std::string("model metadata '") + key + "' = '" + s +
                                "' is not a number");
  }
  return value;
}

}  // namespace

double tumour_probability(std::span<const float> class_logits) {
  if (class_logits.size() <= static_cast<std::size_t>(kTumourClass)) {
    throw std::invalid_argument("tumour_probability: " + std::to_string(class_logits.size()) +
                                " class logits; the tumour class is index " +
                                std::to_string(kTumourClass));
  }
  const float top = *std::max_element(class_logits.begin(), class_logits.end());
  double denominator = 0.0;
  for (const float logit : class_logits) denominator += std::exp(double{logit} - top);
  return std::exp(double{class_logits[kTumourClass]} - top) / denominator;
}

index_t UNetConfig::channels(int level) const {
  return static_cast<index_t>(base_filters) << level;
}

void UNetConfig::validate() const {
  auto require = [](bool ok, const char* field, double value, const char* range) {
    if (!ok) {
      std::ostringstream msg;
      msg << "U-Net config: " << field << " = " << value << " must be " << range;
      throw std::invalid_argument(msg.str());
    }
  };
  // Upper bounds keep a checkpoint's metadata from asking for a model that cannot fit in memory
  // (the bottleneck's 3x3 convolution at kMaxChannels is 600 MB of weights).
  require(in_channels >= 1 && in_channels <= kMaxIoChannels, "in_channels", in_channels,
          "in [1, 256]");
  require(base_filters >= 1 && base_filters <= kMaxChannels, "base_filters", base_filters,
          "in [1, 4096]");
  require(depth >= 1 && depth <= 8, "depth", depth, "in [1, 8]");
  require(channels(depth) <= kMaxChannels, "base_filters * 2^depth",
          static_cast<double>(channels(depth)), "at most 4096");
  require(out_channels >= 1 && out_channels <= kMaxIoChannels, "out_channels", out_channels,
          "in [1, 256]");
  require(cls_hidden >= 1 && cls_hidden <= kMaxClsHidden, "cls_hidden", cls_hidden,
          "in [1, 65536]");
  require(num_classes >= 2 && num_classes <= kMaxIoChannels, "num_classes", num_classes,
          "in [2, 256]");
  require(cls_dropout >= 0.0 && cls_dropout < 1.0, "cls_dropout", cls_dropout, "in [0, 1)");
}

std::map<std::string, std::string> UNetConfig::to_metadata() const {
  // The shortest text that reads back as the same double ("0.3", not "0.29999999999999999").
  char dropout[32];
  const auto written = std::to_chars(dropout, dropout + sizeof dropout, cls_dropout);
  return {{"in_channels", std::to_string(in_channels)},
          {"base_filters", std::to_string(base_filters)},
          {"depth", std::to_string(depth)},
          {"out_channels", std::to_string(out_channels)},
          {"cls_hidden", std::to_string(cls_hidden)},
          {"num_classes", std::to_string(num_classes)},
          {"cls_dropout", std::string(dropout, written.ptr)}};
}

UNetConfig UNetConfig::from_metadata(const std::map<std::string, std::string>& md) {
  UNetConfig c;
  c.in_channels = parse_int(md, "in_channels", c.in_channels);
  c.base_filters = parse_int(md, "base_filters", c.base_filters);
  c.depth = parse_int(md, "depth", c.depth);
  c.out_channels = parse_int(md, "out_channels", c.out_channels);
  c.cls_hidden = parse_int(md, "cls_hidden", c.cls_hidden);
  c.num_classes = parse_int(md, "num_classes", c.num_classes);
  c.cls_dropout = parse_double(md, "cls_dropout", c.cls_dropout);
  c.validate();
  return c;
}

DoubleConv::DoubleConv(index_t in_channels, index_t out_channels, Generator* generator) {
  const nn::Conv2dOptions conv{.padding = 1, .bias = false, .generator = generator};
  conv1_ =
      register_module("conv1", std::make_shared<nn::Conv2d>(in_channels, out_channels, 3, conv));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(out_channels));
  conv2_ =
      register_module("conv2", std::make_shared<nn::Conv2d>(out_channels, out_channels, 3, conv));
  bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(out_channels));
}

Tensor DoubleConv::forward(const Tensor& x) {
  return bn2_->forward_relu(conv2_->forward(bn1_->forward_relu(conv1_->forward(x))));
}

UNetEncoder::UNetEncoder(const UNetConfig& config, Generator* generator) {
  config.validate();
  // A Sequential only as the container that names its children 0, 1, ...; its chained forward
  // is never used.
  auto blocks = register_module("blocks", std::make_shared<nn::Sequential>());
  for (int i = 0; i <= config.depth; ++i) {
    const index_t cin = i == 0 ? config.in_channels : config.channels(i - 1);
    blocks_.push_back(std::make_shared<DoubleConv>(cin, config.channels(i), generator));
    blocks->push_back(blocks_.back());
  }
}

std::vector<Tensor> UNetEncoder::features(const Tensor& x) {
  std::vector<Tensor> out;
  out.reserve(blocks_.size());
  out.push_back(blocks_[0]->forward(x));
  for (std::size_t i = 1; i < blocks_.size(); ++i) {
    out.push_back(blocks_[i]->forward(max_pool2d(out.back(), 2)));
  }
  return out;
}

Tensor UNetEncoder::bottleneck_from(const Tensor& features, int level) {
  if (level < 0 || static_cast<std::size_t>(level) >= blocks_.size()) {
    throw std::invalid_argument("UNetEncoder: level " + std::to_string(level) + " outside 0.." +
                                std::to_string(blocks_.size() - 1));
  }
  Tensor y = features;
  for (std::size_t i = static_cast<std::size_t>(level) + 1; i < blocks_.size(); ++i) {
    y = blocks_[i]->forward(max_pool2d(y, 2));
  }
  return y;
}

UNetDecoder::UNetDecoder(const UNetConfig& config, Generator* generator) {
  config.validate();
  auto ups = register_module("ups", std::make_shared<nn::Sequential>());
  auto blocks = register_module("blocks", std::make_shared<nn::Sequential>());
  // Layers are created in PyTorch's registration order within each list; the two lists are
  // filled level by level, ups.j before blocks.j.
  for (int j = 0; j < config.depth; ++j) {
    const int i = config.depth - j;
    ups_.push_back(std::make_shared<nn::ConvTranspose2d>(
        config.channels(i), config.channels(i - 1), 2,
        nn::Conv2dOptions{.stride = 2, .generator = generator}));
    ups->push_back(ups_.back());
    blocks_.push_back(
        std::make_shared<DoubleConv>(config.channels(i), config.channels(i - 1), generator));
    blocks->push_back(blocks_.back());
  }
  head_ = register_module("head",
                          std::make_shared<nn::Conv2d>(config.channels(0), config.out_channels, 1,
                                                       nn::Conv2dOptions{.generator = generator}));
}

Tensor UNetDecoder::decode(const std::vector<Tensor>& features) {
  if (features.size() != ups_.size() + 1) {
    throw std::invalid_argument("UNetDecoder: expected " + std::to_string(ups_.size() + 1) +
                                " feature levels, got " + std::to_string(features.size()));
  }
  Tensor y = features.back();
  for (std::size_t j = 0; j < ups_.size(); ++j) {
    const std::size_t skip = features.size() - 2 - j;  // level i - 1
    y = blocks_[j]->forward(concat({features[skip], ups_[j]->forward(y)}));
  }
  return head_->forward(y);
}

ClassificationHead::ClassificationHead(const UNetConfig& config, Generator* generator) {
  config.validate();
  pool_ = register_module("pool", std::make_shared<nn::GlobalAvgPool>());
  fc1_ = register_module("fc1", std::make_shared<nn::Linear>(config.channels(config.depth),
                                                             config.cls_hidden, true, generator));
  relu_ = register_module("relu", std::make_shared<nn::ReLU>());
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(config.cls_dropout));
  fc2_ = register_module(
      "fc2", std::make_shared<nn::Linear>(config.cls_hidden, config.num_classes, true, generator));
}

Tensor ClassificationHead::forward(const Tensor& bottleneck) {
  const Tensor pooled = reshape(pool_->forward(bottleneck), {bottleneck.size(0), -1});
  return fc2_->forward(dropout_->forward(relu_->forward(fc1_->forward(pooled))));
}

const char* component_name(Component c) {
  switch (c) {
    case Component::encoder:
      return "encoder";
    case Component::decoder:
      return "decoder";
    case Component::cls_head:
      return "cls_head";
  }
  return "?";
}

MultiTaskUNet::MultiTaskUNet(const UNetConfig& config, Generator* generator) : config_(config) {
  config_.validate();
  encoder_ = register_module("encoder", std::make_shared<UNetEncoder>(config_, generator));
  decoder_ = register_module("decoder", std::make_shared<UNetDecoder>(config_, generator));
  cls_head_ = register_module("cls_head", std::make_shared<ClassificationHead>(config_, generator));
}

MultiTaskOutput MultiTaskUNet::forward(const Tensor& x, bool do_seg, bool do_cls) {
  const index_t multiple = index_t{1} << config_.depth;
  if (x.dim() != 4 || x.size(1) != config_.in_channels || x.size(2) % multiple != 0 ||
      x.size(3) % multiple != 0 || x.size(2) == 0 || x.size(3) == 0) {
    throw std::invalid_argument("MultiTaskUNet: input " + shape_to_string(x.shape()) +
                                " must be [n, " + std::to_string(config_.in_channels) +
                                ", h, w] with h and w positive multiples of 2^" +
                                std::to_string(config_.depth) + " = " + std::to_string(multiple));
  }
  MultiTaskOutput out;
  out.features = encoder_->features(x);
  if (do_seg) out.seg_logits = decoder_->decode(out.features);
  if (do_cls) out.cls_logits = cls_head_->forward(out.features.back());
  return out;
}

nn::Module& MultiTaskUNet::component(Component c) {
  switch (c) {
    case Component::encoder:
      return *encoder_;
    case Component::decoder:
      return *decoder_;
    case Component::cls_head:
      return *cls_head_;
  }
  throw std::invalid_argument("MultiTaskUNet: unknown component");
}

void MultiTaskUNet::freeze(Component c) {
  component(c).set_requires_grad(false);
  frozen_[static_cast<std::size_t>(c)] = true;
  train(is_training());
}

void MultiTaskUNet::unfreeze(Component c) {
  component(c).set_requires_grad(true);
  frozen_[static_cast<std::size_t>(c)] = false;
  train(is_training());
}

bool MultiTaskUNet::is_frozen(Component c) const {
  return frozen_[static_cast<std::size_t>(c)];
}

void MultiTaskUNet::set_frozen_bn_eval(bool on) {
  frozen_bn_eval_ = on;
  train(is_training());
}

void MultiTaskUNet::train(bool on) {
  nn::Module::train(on);
  if (!on || !frozen_bn_eval_) return;
  for (Component c : kComponents) {
    if (!is_frozen(c)) continue;
    std::vector<nn::BatchNorm2d*> bns;
    collect_batchnorms(component(c), bns);
    for (nn::BatchNorm2d* bn : bns) bn->eval();
  }
}

void MultiTaskUNet::set_dropout_generator(std::shared_ptr<Generator> generator) {
  cls_head_->dropout().set_generator(std::move(generator));
}

const std::shared_ptr<Generator>& MultiTaskUNet::dropout_generator() const {
  return std::as_const(*cls_head_).dropout().generator();
}

ParameterCounts MultiTaskUNet::parameter_counts() const {
  ParameterCounts counts;
  counts.encoder = encoder_->parameter_count();
  counts.decoder = decoder_->parameter_count();
  counts.cls_head = cls_head_->parameter_count();
  counts.total = parameter_count();
  return counts;
}

}  // namespace glia::nets
