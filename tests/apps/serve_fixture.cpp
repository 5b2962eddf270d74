// The fitted fixture model and its two phantom scans; see serve_fixture.h.
#include "tests/apps/serve_fixture.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "data/prep/phantom.h"
#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "io/image.h"
#include "nets/infer/inference.h"
#include "nets/model/checkpoint.h"

namespace glia::testing {
namespace {

// The head's hidden activations relu(fc1(mean over the bottleneck)) of one prepared image.
std::vector<double> hidden(nets::MultiTaskUNet& model, const nets::InputImage& image) {
  NoGradGuard no_grad;
  const Tensor x = from_vector(image.pixels, {1, 1, image.height, image.width});
  const std::vector<float> b = model.encoder().features(x).back().to_vector<float>();
  const auto state = model.state_dict();
  const std::vector<float> w = state.at("cls_head.fc1.weight").to_vector<float>();
  const std::vector<float> bias = state.at("cls_head.fc1.bias").to_vector<float>();
  const std::size_t hidden_size = bias.size(), channels = w.size() / hidden_size;
  const std::size_t plane = b.size() / channels;
  std::vector<double> g(channels), h(hidden_size);
  for (std::size_t c = 0; c < channels; ++c) {
    for (std::size_t j = 0; j < plane; ++j) g[c] += b[c * plane + j];
    g[c] /= static_cast<double>(plane);
  }
  for (std::size_t k = 0; k < hidden_size; ++k) {
    double v = bias[k];
    for (std::size_t c = 0; c < channels; ++c) v += w[k * channels + c] * g[c];
    h[k] = std::max(0.0, v);
  }
  return h;
}

void write_phantom(const std::filesystem::path& path, bool tumour, std::uint64_t seed) {
  const data::PhantomImage img = data::make_kaggle_phantom(256, tumour, seed);
  io::write_png_gray(path, img.pixels, img.height, img.width);
}

}  // namespace

ServeFixture write_serve_fixture(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  ServeFixture f{dir / "model.safetensors", dir / "tumour.png", dir / "no_tumour.png"};
  write_phantom(f.tumour, true, 11);
  write_phantom(f.no_tumour, false, 12);
  const nets::InputImage t = nets::load_input(f.tumour), n = nets::load_input(f.no_tumour);

  auto model = nets::init_model({.base_filters = 4, .depth = 2, .cls_hidden = 16}, 7);
  model->eval();
  const std::vector<double> ht = hidden(*model, t), hn = hidden(*model, n);
  // fc2: class 0 all zero; class 1 = w . (h - midpoint) with w along ht - hn, scaled so the
  // logit difference is +3 at ht and -3 at hn.
  double norm2 = 0.0;
  for (std::size_t k = 0; k < ht.size(); ++k) norm2 += (ht[k] - hn[k]) * (ht[k] - hn[k]);
  if (norm2 < 1e-12) throw std::runtime_error("serve fixture: the two phantoms look alike");
  const std::size_t hs = ht.size();
  std::vector<float> w2(2 * hs, 0.0f), b2(2, 0.0f);
  double offset = 0.0;
  for (std::size_t k = 0; k < hs; ++k) {
    const double wk = 6.0 * (ht[k] - hn[k]) / norm2;
    w2[hs + k] = static_cast<float>(wk);
    offset -= wk * 0.5 * (ht[k] + hn[k]);
  }
  b2[1] = static_cast<float>(offset);
  auto state = model->state_dict();
  nn::assign_values(state.at("cls_head.fc2.weight"), from_vector(w2, {2, static_cast<index_t>(hs)}),
                    "cls_head.fc2.weight");
  nn::assign_values(state.at("cls_head.fc2.bias"), from_vector(b2, {2}), "cls_head.fc2.bias");

  // The segmentation head's bias moved so the tumour scan's 97th-percentile logit sits at 0.
  std::vector<float> seg;
  {
    NoGradGuard no_grad;
    seg = model->forward(from_vector(t.pixels, {1, 1, t.height, t.width}), true, false)
              .seg_logits.to_vector<float>();
  }
  std::nth_element(seg.begin(), seg.begin() + static_cast<std::ptrdiff_t>(seg.size() * 97 / 100),
                   seg.end());
  const float shift = seg[seg.size() * 97 / 100];
  Tensor& head_bias = state.at("decoder.head.bias");
  const float old_bias = head_bias.to_vector<float>()[0];
  nn::assign_values(head_bias, from_vector<float>({old_bias - shift}, {1}), "decoder.head.bias");
  nets::save_checkpoint(f.checkpoint, *model,
                        {{"stage", "fixture"},
                         {"note", "two layers fitted to the test phantoms; not a trained model"}});
  return f;
}

}  // namespace glia::testing
