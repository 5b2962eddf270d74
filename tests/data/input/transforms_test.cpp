// Paired transforms: geometric ones against hand-written flip / rot90 references (numpy's
// np.flip / np.rot90 conventions) on a non-square image, with a mask that marks exactly the
// image's bright pixels and must still do so; intensity transforms leave the mask alone and do not
// clamp; the per-sample stream makes results a function of (seed, epoch, index); validation
// transforms are deterministic; the skull mask removes a bright ring outside a synthetic brain.
#include "data/input/transforms.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

namespace glia::data {
namespace {

constexpr float kBright = 0.8f;  // the mask marks image values above this

// H x W random image in [-3, 3) (z-score-like) and the mask of its pixels above kBright.
Sample bright_sample(int h, int w, unsigned seed, std::string source = "brats") {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  Sample s;
  s.height = h;
  s.width = w;
  s.image.resize(static_cast<std::size_t>(h) * w);
  s.mask.emplace(s.image.size());
  for (std::size_t p = 0; p < s.image.size(); ++p) {
    s.image[p] = dist(rng);
    (*s.mask)[p] = s.image[p] > kBright ? 1 : 0;
  }
  s.source = std::move(source);
  return s;
}

// The references, written element by element from the definitions.
Sample ref_hflip(const Sample& s) {
  Sample o = s;
  for (int i = 0; i < s.height; ++i)
    for (int j = 0; j < s.width; ++j) {
      o.image[i * s.width + j] = s.image[i * s.width + (s.width - 1 - j)];
      (*o.mask)[i * s.width + j] = (*s.mask)[i * s.width + (s.width - 1 - j)];
    }
  return o;
}
Sample ref_vflip(const Sample& s) {
  Sample o = s;
  for (int i = 0; i < s.height; ++i)
    for (int j = 0; j < s.width; ++j) {
      o.image[i * s.width + j] = s.image[(s.height - 1 - i) * s.width + j];
      (*o.mask)[i * s.width + j] = (*s.mask)[(s.height - 1 - i) * s.width + j];
    }
  return o;
}
// One counter-clockwise quarter turn, np.rot90(a): out (W x H) [i][j] = in[j][W - 1 - i].
Sample ref_rot90_once(const Sample& s) {
  Sample o = s;
  o.height = s.width;
  o.width = s.height;
  for (int i = 0; i < o.height; ++i)
    for (int j = 0; j < o.width; ++j) {
      o.image[i * o.width + j] = s.image[j * s.width + (s.width - 1 - i)];
      (*o.mask)[i * o.width + j] = (*s.mask)[j * s.width + (s.width - 1 - i)];
    }
  return o;
}
Sample ref_rot90(Sample s, int k) {
  for (int t = 0; t < k; ++t) s = ref_rot90_once(s);
  return s;
}

bool same(const Sample& a, const Sample& b) {
  return a.height == b.height && a.width == b.width && a.image == b.image && a.mask == b.mask;
}

// The mask is 0/1 and marks exactly the pixels above kBright.
::testing::AssertionResult aligned(const Sample& s) {
  for (std::size_t p = 0; p < s.image.size(); ++p) {
    const std::uint8_t m = (*s.mask)[p];
    if (m > 1) return ::testing::AssertionFailure() << "mask value " << int(m) << " at " << p;
    if (m != (s.image[p] > kBright ? 1 : 0)) {
      return ::testing::AssertionFailure() << "mask and image disagree at pixel " << p;
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(TransformsTest, FlipsMatchTheReferenceAndKeepTheMaskAligned) {
  const Sample s = bright_sample(5, 7, 1);
  SampleRng rng(0, 0, 0);
  Sample h = s, v = s;
  HorizontalFlip().apply(h, rng);
  VerticalFlip().apply(v, rng);
  EXPECT_TRUE(same(h, ref_hflip(s)));
  EXPECT_TRUE(same(v, ref_vflip(s)));
  EXPECT_TRUE(aligned(h));
  EXPECT_TRUE(aligned(v));
  EXPECT_FALSE(same(h, s));  // a 7-wide random image is not symmetric
}

TEST(TransformsTest, FixedRotationsMatchRepeatedQuarterTurns) {
  const Sample s = bright_sample(5, 7, 2);
  for (int k = 0; k < 4; ++k) {
    Sample r = s;
    SampleRng rng(0, 0, 0);
    Rot90(k).apply(r, rng);
    EXPECT_TRUE(same(r, ref_rot90(s, k))) << "k = " << k;
    EXPECT_EQ(r.height, k % 2 ? 7 : 5);
    EXPECT_TRUE(aligned(r)) << "k = " << k;
  }
  EXPECT_THROW(Rot90(4), std::invalid_argument);
}

TEST(TransformsTest, RandomRotationDrawsEachQuarterTurn) {
  const Sample s = bright_sample(4, 6, 3);
  std::set<int> seen;
  for (std::uint64_t index = 0; index < 60; ++index) {
    Sample r = s;
    SampleRng rng(7, 0, index);
    Rot90().apply(r, rng);
    int match = -1;
    for (int k = 1; k < 4; ++k)
      if (same(r, ref_rot90(s, k))) match = k;
    ASSERT_NE(match, -1) << "index " << index << " is no rotation of the input";
    seen.insert(match);
    EXPECT_TRUE(aligned(r));
  }
  EXPECT_EQ(seen.size(), 3u);
}

TEST(TransformsTest, ComposedGeometryKeepsImageAndMaskTogether) {
  Compose geo;
  geo.add(std::make_shared<HorizontalFlip>(), 0.5)
      .add(std::make_shared<VerticalFlip>(), 0.5)
      .add(std::make_shared<Rot90>(), 0.5);
  const Sample s = bright_sample(6, 9, 4);
  std::set<std::vector<float>> outcomes;
  for (std::uint64_t index = 0; index < 64; ++index) {
    Sample t = s;
    geo.apply(t, 11, 2, index);
    EXPECT_TRUE(aligned(t)) << "index " << index;
    outcomes.insert(t.image);
  }
  // The dihedral group of a non-square image has 8 elements; with three coins over 64 samples
  // nearly all appear, and more than one certainly does.
  EXPECT_GT(outcomes.size(), 4u);
}

TEST(TransformsTest, IntensityTransformsChangeTheImageOnlyAndDoNotClamp) {
  Sample s = bright_sample(16, 16, 5);
  for (float& v : s.image) v *= 10.0f;  // values far outside [0, 1] and [-1, 1]
  const Sample before = s;

  Sample shifted = s;
  SampleRng r1(1, 0, 0);
  IntensityShift(5.0).apply(shifted, r1);
  const float offset = shifted.image[0] - before.image[0];
  EXPECT_LE(std::fabs(offset), 5.0f);
  EXPECT_NE(offset, 0.0f);
  for (std::size_t p = 0; p < s.image.size(); ++p)
    EXPECT_NEAR(shifted.image[p], before.image[p] + offset, 1e-4f);

  Sample scaled = s;
  SampleRng r2(2, 0, 0);
  IntensityScale(0.5).apply(scaled, r2);
  const std::size_t probe = 3;
  const float factor = scaled.image[probe] / before.image[probe];
  EXPECT_GE(factor, 0.5f);
  EXPECT_LE(factor, 1.5f);
  for (std::size_t p = 0; p < s.image.size(); ++p)
    EXPECT_NEAR(scaled.image[p], before.image[p] * factor, 1e-4f * std::fabs(before.image[p]));

  Sample noisy = s;
  SampleRng r3(3, 0, 0);
  GaussianNoise(2.0).apply(noisy, r3);
  double sum = 0, sum2 = 0;
  for (std::size_t p = 0; p < s.image.size(); ++p) {
    const double d = noisy.image[p] - before.image[p];
    sum += d;
    sum2 += d * d;
  }
  const double n = static_cast<double>(s.image.size());
  const double mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
  // 256 draws of N(0, 4): the mean's sd is 2/16 = 0.125, the sample sd's about 2/sqrt(512).
  EXPECT_LE(std::fabs(mean), 5 * 0.125);
  EXPECT_NEAR(sd, 2.0, 5 * 2.0 / std::sqrt(2 * n));

  for (const Sample* t : {&shifted, &scaled, &noisy}) EXPECT_EQ(t->mask, before.mask);
  float lo = 0, hi = 0;
  for (float v : noisy.image) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_LT(lo, -20.0f);
  EXPECT_GT(hi, 20.0f);
}

TEST(TransformsTest, SameSeedEpochIndexGivesTheSameResult) {
  AugmentConfig config;
  config.p_noise = 1.0;
  const Compose train = train_transforms(config);
  EXPECT_FALSE(train.deterministic());
  const Sample s = bright_sample(8, 8, 6);
  auto run = [&](std::uint64_t seed, std::uint64_t epoch, std::uint64_t index) {
    Sample t = s;
    train.apply(t, seed, epoch, index);
    return t;
  };
  EXPECT_TRUE(same(run(1, 2, 3), run(1, 2, 3)));
  EXPECT_FALSE(same(run(1, 2, 3), run(1, 2, 4)));
  EXPECT_FALSE(same(run(1, 2, 3), run(1, 3, 3)));
  EXPECT_FALSE(same(run(1, 2, 3), run(2, 2, 3)));
}

TEST(TransformsTest, ProbabilitiesZeroAndOneNeverAndAlwaysFire) {
  const Sample s = bright_sample(5, 5, 8);
  Compose never, always;
  never.add(std::make_shared<HorizontalFlip>(), 0.0);
  always.add(std::make_shared<HorizontalFlip>(), 1.0);
  EXPECT_TRUE(never.deterministic());
  EXPECT_TRUE(always.deterministic());
  for (std::uint64_t index = 0; index < 20; ++index) {
    Sample a = s, b = s;
    never.apply(a, 0, 0, index);
    always.apply(b, 0, 0, index);
    EXPECT_TRUE(same(a, s));
    EXPECT_TRUE(same(b, ref_hflip(s)));
  }
  EXPECT_THROW(never.add(std::make_shared<VerticalFlip>(), 1.5), std::invalid_argument);
}

// A 64x64 "brain": background -1, a textured disk of radius 20 at the centre (values 0.5..1.5)
// holding a ventricle darker than the background (-2), a dark gap, and a bright skull ring
// between radii 25 and 28 (value 3).
Sample skull_phantom(std::string source) {
  Sample s;
  s.height = s.width = 64;
  s.image.assign(64 * 64, -1.0f);
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 64; ++j) {
      const double r = std::hypot(i - 31.5, j - 31.5);
      float& v = s.image[i * 64 + j];
      if (r < 20) v = 1.0f + 0.5f * static_cast<float>(std::sin(i * 0.7) * std::cos(j * 0.3));
      if (std::hypot(i - 28.0, j - 34.0) < 4) v = -2.0f;  // a dark ventricle inside the brain
      if (r >= 25 && r < 28) v = 3.0f;
    }
  s.source = std::move(source);
  return s;
}

TEST(TransformsTest, SkullMaskRemovesTheRingAndKeepsTheBrain) {
  const SkullMask skull({"kaggle"}, 5.0, 2);
  EXPECT_FALSE(skull.random());
  Sample s = skull_phantom("kaggle");
  const Sample before = s;
  SampleRng rng(0, 0, 0);
  skull.apply(s, rng);
  int ring = 0, inside = 0, edge = 0;
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 64; ++j) {
      const double r = std::hypot(i - 31.5, j - 31.5);
      const std::size_t p = static_cast<std::size_t>(i) * 64 + j;
      if (r >= 25 && r < 28) {
        EXPECT_EQ(s.image[p], 0.0f) << "ring pixel " << i << "," << j << " kept";
        ++ring;
      }
      if (r < 16) {  // well inside the erosion radius; the ventricle is a hole the mask fills
        EXPECT_EQ(s.image[p], before.image[p]) << "brain pixel " << i << "," << j << " lost";
        ++inside;
      }
      if (r > 19 && r < 20) {  // brain, but within the erosion radius of its edge
        EXPECT_EQ(s.image[p], 0.0f) << "edge pixel " << i << "," << j << " not eroded";
        ++edge;
      }
      if (r > 30) {
        EXPECT_EQ(s.image[p], 0.0f);
      }
    }
  EXPECT_GT(ring, 100);
  EXPECT_GT(inside, 500);
  EXPECT_GT(edge, 40);

  Sample brats = skull_phantom("brats");
  skull.apply(brats, rng);
  EXPECT_EQ(brats.image, before.image);  // sources not listed are left alone
}

TEST(TransformsTest, ValidationTransformsAreDeterministic) {
  AugmentConfig config;
  EXPECT_EQ(val_transforms(config).size(), 0u);
  config.skull_sources = {"kaggle"};
  const Compose val = val_transforms(config);
  EXPECT_TRUE(val.deterministic());
  const Sample s = skull_phantom("kaggle");
  Sample first = s;
  val.apply(first, 0, 0, 0);
  EXPECT_NE(first.image, s.image);  // the skull mask ran
  for (std::uint64_t k = 1; k < 6; ++k) {
    Sample t = s;
    val.apply(t, k * 17, k, k * 3);
    EXPECT_EQ(t.image, first.image);
  }
}

}  // namespace
}  // namespace glia::data
