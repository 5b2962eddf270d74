// Geometric and intensity transforms and Compose (data/input/transforms.h); the skull mask is in
// data/input/skull_mask.cpp. Tested in tests/data/input/transforms_test.cpp.
#include "data/input/transforms.h"

#include <sstream>
#include <stdexcept>
#include <utility>

namespace glia::data {
namespace {

// Moves every image and mask pixel by one index map: out (out_h x out_w) at (i, j) takes the
// input pixel src(i, j), so image and mask cannot drift apart.
template <class Src>
void remap(Sample& s, int out_h, int out_w, Src src) {
  const std::size_t n = s.image.size();
  std::vector<float> image(n);
  std::optional<std::vector<std::uint8_t>> mask;
  if (s.mask) mask.emplace(n);
  for (int i = 0; i < out_h; ++i) {
    for (int j = 0; j < out_w; ++j) {
      const std::size_t to = static_cast<std::size_t>(i) * out_w + j;
      const std::size_t from = src(i, j);
      image[to] = s.image[from];
      if (mask) (*mask)[to] = (*s.mask)[from];
    }
  }
  s.image = std::move(image);
  s.mask = std::move(mask);
  s.height = out_h;
  s.width = out_w;
}

void check_size(const Sample& s, const char* what) {
  if (s.image.size() != static_cast<std::size_t>(s.height) * s.width) {
    throw std::invalid_argument(std::string(what) + ": image has " +
                                std::to_string(s.image.size()) + " values, not " +
                                std::to_string(s.height) + "x" + std::to_string(s.width));
  }
}

void check_nonnegative(double v, const char* what) {
  if (!(v >= 0.0)) throw std::invalid_argument(std::string(what) + " must be >= 0");
}

}  // namespace

void HorizontalFlip::apply(Sample& s, SampleRng&) const {
  check_size(s, "hflip");
  const std::size_t w = s.width;
  remap(s, s.height, s.width, [w](int i, int j) { return i * w + (w - 1 - j); });
}

void VerticalFlip::apply(Sample& s, SampleRng&) const {
  check_size(s, "vflip");
  const std::size_t h = s.height, w = s.width;
  remap(s, s.height, s.width, [h, w](int i, int j) { return (h - 1 - i) * w + j; });
}

Rot90::Rot90(std::optional<int> k) : k_(k) {
  if (k_ && (*k_ < 0 || *k_ > 3)) {
    throw std::invalid_argument("rot90: k must be in 0..3, got " + std::to_string(*k_));
  }
}

void Rot90::apply(Sample& s, SampleRng& rng) const {
  check_size(s, "rot90");
  const int k = k_ ? *k_ : 1 + static_cast<int>(rng.uniform_int(3));
  const std::size_t h = s.height, w = s.width;
  switch (k) {
    case 1:  // out is w x h: out[i][j] = in[j][w - 1 - i]
      remap(s, s.width, s.height, [w](int i, int j) { return j * w + (w - 1 - i); });
      break;
    case 2:  // out[i][j] = in[h - 1 - i][w - 1 - j]
      remap(s, s.height, s.width, [h, w](int i, int j) { return (h - 1 - i) * w + (w - 1 - j); });
      break;
    case 3:  // out is w x h: out[i][j] = in[h - 1 - j][i]
      remap(s, s.width, s.height, [h, w](int i, int j) { return (h - 1 - j) * w + i; });
      break;
    default:
      break;
  }
}

IntensityShift::IntensityShift(double max_offset) : max_offset_(max_offset) {
  check_nonnegative(max_offset, "intensity shift max_offset");
}

void IntensityShift::apply(Sample& s, SampleRng& rng) const {
  const float u = static_cast<float>(rng.uniform(-max_offset_, max_offset_));
  for (float& v : s.image) v += u;
}

IntensityScale::IntensityScale(double max_delta) : max_delta_(max_delta) {
  check_nonnegative(max_delta, "intensity scale max_delta");
}

void IntensityScale::apply(Sample& s, SampleRng& rng) const {
  const float f = static_cast<float>(rng.uniform(1.0 - max_delta_, 1.0 + max_delta_));
  for (float& v : s.image) v *= f;
}

GaussianNoise::GaussianNoise(double stddev) : stddev_(stddev) {
  check_nonnegative(stddev, "gaussian noise stddev");
}

void GaussianNoise::apply(Sample& s, SampleRng& rng) const {
  for (float& v : s.image) v += static_cast<float>(stddev_ * rng.normal());
}

Compose& Compose::add(std::shared_ptr<const Transform> transform, double probability) {
  if (!transform) throw std::invalid_argument("compose: null transform");
  if (!(probability >= 0.0 && probability <= 1.0)) {
    throw std::invalid_argument("compose: probability of " + transform->name() +
                                " must be in [0, 1], got " + std::to_string(probability));
  }
  steps_.push_back({std::move(transform), probability});
  return *this;
}

void Compose::apply(Sample& sample, std::uint64_t seed, std::uint64_t epoch,
                    std::uint64_t index) const {
  SampleRng rng(seed, epoch, index, RngStream::transform);
  for (const Step& step : steps_) {
    const bool fire = rng.uniform() < step.probability;
    // Each transform gets its own sub-stream, so how many numbers one draws (noise draws one
    // per pixel) cannot change what the next one draws.
    SampleRng sub(rng.next_u64(), epoch, index, RngStream::transform);
    if (fire) step.transform->apply(sample, sub);
  }
}

bool Compose::deterministic() const {
  for (const Step& step : steps_) {
    const bool coin = step.probability > 0.0 && step.probability < 1.0;
    if (coin || (step.probability > 0.0 && step.transform->random())) return false;
  }
  return true;
}

std::string Compose::describe() const {
  if (steps_.empty()) return "identity";
  std::ostringstream out;
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    if (i) out << ", ";
    out << steps_[i].transform->name() << "@" << steps_[i].probability;
  }
  return out.str();
}

Compose train_transforms(const AugmentConfig& c) {
  Compose t;
  if (!c.skull_sources.empty()) {
    t.add(std::make_shared<SkullMask>(c.skull_sources, c.skull_percentile, c.skull_radius));
  }
  t.add(std::make_shared<HorizontalFlip>(), c.p_hflip);
  t.add(std::make_shared<VerticalFlip>(), c.p_vflip);
  t.add(std::make_shared<Rot90>(), c.p_rot90);
  t.add(std::make_shared<IntensityShift>(c.max_shift), c.p_shift);
  t.add(std::make_shared<IntensityScale>(c.max_scale), c.p_scale);
  t.add(std::make_shared<GaussianNoise>(c.noise_std), c.p_noise);
  return t;
}

Compose val_transforms(const AugmentConfig& c) {
  Compose t;
  if (!c.skull_sources.empty()) {
    t.add(std::make_shared<SkullMask>(c.skull_sources, c.skull_percentile, c.skull_radius));
  }
  return t;
}

}  // namespace glia::data
