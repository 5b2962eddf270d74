// The loader: batches built by 0, 1 and 2 workers are identical and arrive in epoch order even
// when later batches finish first; each batch equals a reference assembled by hand from the
// dataset, the sampler's order and the transforms' per-position streams; samples without a mask
// give a zero mask and has_mask 0; drop_last; a worker's exception reaches the consumer naming
// the item's file; destroying the loader mid-epoch returns promptly.
#include "data/input/loader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>

namespace glia::data {
namespace {

// n samples of 6x6 (square, so rotations keep the batch shape); every third has no mask.
std::vector<Sample> samples(std::size_t n) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<Sample> out;
  for (std::size_t i = 0; i < n; ++i) {
    Sample s;
    s.height = 6;
    s.width = 6;
    s.image.resize(36);
    for (float& v : s.image) v = dist(rng);
    if (i % 3 != 2) {
      s.mask.emplace(36);
      for (std::size_t p = 0; p < 36; ++p) (*s.mask)[p] = s.image[p] > 0.5f;
    }
    s.label = static_cast<int>(i % 2);
    s.source = i % 3 == 2 ? "kaggle" : "brats";
    out.push_back(std::move(s));
  }
  return out;
}

// Wraps a dataset: load(i) sleeps longer for earlier items (so later batches finish first) and
// throws for one item, which describe() names as a file.
class SlowDataset : public InMemoryDataset {
 public:
  SlowDataset(std::vector<Sample> s, int sleep_ms, std::size_t fail_at = SIZE_MAX)
      : InMemoryDataset(std::move(s)), sleep_ms_(sleep_ms), fail_at_(fail_at) {}
  Sample load(std::size_t i) const override {
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_ * (size() - i) / size()));
    if (i == fail_at_) throw std::runtime_error("truncated npz");
    return InMemoryDataset::load(i);
  }
  std::string describe(std::size_t i) const override {
    return "/data/slices/slice_" + std::to_string(i) + ".npz";
  }

 private:
  int sleep_ms_;
  std::size_t fail_at_;
};

std::vector<Batch> run_epoch(Loader& loader, std::uint64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

void expect_equal(const Batch& a, const Batch& b, const std::string& what) {
  EXPECT_EQ(a.indices, b.indices) << what;
  EXPECT_EQ(a.sources, b.sources) << what;
  EXPECT_EQ(a.images.shape(), b.images.shape()) << what;
  EXPECT_EQ(a.images.to_vector<float>(), b.images.to_vector<float>()) << what;
  EXPECT_EQ(a.masks.to_vector<float>(), b.masks.to_vector<float>()) << what;
  EXPECT_EQ(a.has_mask.to_vector<float>(), b.has_mask.to_vector<float>()) << what;
  EXPECT_EQ(a.labels.to_vector<std::int32_t>(), b.labels.to_vector<std::int32_t>()) << what;
}

Compose augment() {
  AugmentConfig c;
  c.p_noise = 0.5;
  return train_transforms(c);
}

TEST(LoaderTest, BatchesAreIdenticalForZeroOneAndTwoWorkers) {
  auto data = std::make_shared<SlowDataset>(samples(11), 4);
  SamplerConfig sc;
  sc.seed = 3;
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 2}) {
    LoaderConfig lc;
    lc.batch_size = 4;
    lc.workers = workers;
    lc.seed = 8;
    Loader loader(data, Sampler(*data, sc), augment(), lc);
    EXPECT_EQ(loader.batches_per_epoch(), 3u);
    for (std::uint64_t epoch : {0, 1}) {
      runs.push_back(run_epoch(loader, epoch));
      ASSERT_EQ(runs.back().size(), 3u);
      EXPECT_EQ(runs.back()[2].size(), 3u);
    }
  }
  for (std::size_t r = 2; r < runs.size(); ++r)
    for (std::size_t b = 0; b < 3; ++b)
      expect_equal(runs[r][b], runs[r % 2][b],
                   "run " + std::to_string(r) + " batch " + std::to_string(b));
  EXPECT_NE(runs[0][0].indices, runs[1][0].indices);  // the epoch changes the order
}

TEST(LoaderTest, EachBatchIsTheDatasetInSamplerOrderTransformedPerPosition) {
  auto data = std::make_shared<SlowDataset>(samples(10), 6);
  SamplerConfig sc;
  sc.seed = 1;
  LoaderConfig lc;
  lc.batch_size = 3;
  lc.workers = 2;
  lc.seed = 4;
  const Compose t = augment();
  Sampler reference_order(*data, sc);
  reference_order.set_epoch(2);
  const std::vector<std::size_t> order = reference_order.indices();
  Loader loader(data, Sampler(*data, sc), t, lc);
  const std::vector<Batch> batches = run_epoch(loader, 2);
  ASSERT_EQ(batches.size(), 4u);
  std::size_t pos = 0;
  for (const Batch& b : batches) {
    const std::vector<float> images = b.images.to_vector<float>();
    const std::vector<float> masks = b.masks.to_vector<float>();
    const std::vector<float> has = b.has_mask.to_vector<float>();
    const std::vector<std::int32_t> labels = b.labels.to_vector<std::int32_t>();
    EXPECT_EQ(b.images.shape(), (Shape{static_cast<index_t>(b.size()), 1, 6, 6}));
    EXPECT_EQ(b.masks.shape(), b.images.shape());
    EXPECT_EQ(b.labels.dtype(), DType::i32);
    for (std::size_t j = 0; j < b.size(); ++j, ++pos) {
      ASSERT_EQ(b.indices[j], order[pos]);
      Sample s = data->InMemoryDataset::load(order[pos]);
      t.apply(s, 4, 2, pos);
      for (std::size_t p = 0; p < 36; ++p) {
        ASSERT_EQ(images[j * 36 + p], s.image[p]) << "position " << pos;
        ASSERT_EQ(masks[j * 36 + p], s.mask ? (*s.mask)[p] : 0.0f) << "position " << pos;
      }
      EXPECT_EQ(has[j], s.has_mask() ? 1.0f : 0.0f);
      EXPECT_EQ(labels[j], s.label);
      EXPECT_EQ(b.sources[j], s.source);
    }
  }
  EXPECT_EQ(pos, 10u);
}

TEST(LoaderTest, SamplesWithoutAMaskGetZerosAndHasMaskZero) {
  auto data = std::make_shared<InMemoryDataset>(samples(6));
  SamplerConfig sc;
  sc.mode = SamplerMode::sequential;
  LoaderConfig lc;
  lc.batch_size = 6;
  Loader loader(data, Sampler(*data, sc), Compose(), lc);
  const Batch b = *loader.next();
  const std::vector<float> masks = b.masks.to_vector<float>();
  const std::vector<float> has = b.has_mask.to_vector<float>();
  for (std::size_t j = 0; j < 6; ++j) {
    const Sample s = data->load(j);
    EXPECT_EQ(has[j], s.has_mask() ? 1.0f : 0.0f);
    float sum = 0;
    for (std::size_t p = 0; p < 36; ++p) {
      const float m = masks[j * 36 + p];
      EXPECT_TRUE(m == 0.0f || m == 1.0f);
      EXPECT_EQ(m, s.mask ? (*s.mask)[p] : 0.0f);
      sum += m;
    }
    if (s.has_mask()) {
      EXPECT_GT(sum, 0.0f) << "sample " << j;
    }
  }
  EXPECT_EQ(has[2], 0.0f);
  EXPECT_EQ(has[0], 1.0f);
  EXPECT_FALSE(loader.next().has_value());
}

TEST(LoaderTest, DropLastDropsTheShortBatch) {
  auto data = std::make_shared<InMemoryDataset>(samples(11));
  for (bool drop : {false, true}) {
    LoaderConfig lc;
    lc.batch_size = 4;
    lc.drop_last = drop;
    lc.workers = 1;
    Loader loader(data, Sampler(*data, {}), Compose(), lc);
    const std::vector<Batch> batches = run_epoch(loader, 0);
    ASSERT_EQ(batches.size(), drop ? 2u : 3u);
    for (std::size_t b = 0; b < batches.size(); ++b) EXPECT_EQ(batches[b].size(), b == 2 ? 3u : 4u);
  }
}

TEST(LoaderTest, AWorkerExceptionReachesTheConsumerNamingTheFile) {
  for (int workers : {0, 2}) {
    auto data = std::make_shared<SlowDataset>(samples(12), 2, 7);
    SamplerConfig sc;
    sc.mode = SamplerMode::sequential;
    LoaderConfig lc;
    lc.batch_size = 2;
    lc.workers = workers;
    Loader loader(data, Sampler(*data, sc), Compose(), lc);
    for (std::uint64_t epoch : {0, 1}) {  // a new epoch after the error runs up to it again
      loader.start_epoch(epoch);
      int delivered = 0;
      std::string message;
      try {
        while (loader.next()) ++delivered;
      } catch (const std::runtime_error& e) {
        message = e.what();
      }
      EXPECT_EQ(delivered, 3) << "workers " << workers;  // items 0..5
      EXPECT_NE(message.find("slice_7.npz"), std::string::npos) << message;
      EXPECT_NE(message.find("truncated npz"), std::string::npos) << message;
      EXPECT_FALSE(loader.next().has_value());  // the epoch ended at the error
    }
  }
}

TEST(LoaderTest, DestroyingTheLoaderMidEpochReturnsPromptly) {
  auto data = std::make_shared<SlowDataset>(samples(200), 30);
  LoaderConfig lc;
  lc.batch_size = 2;
  lc.workers = 2;
  lc.prefetch = 2;
  const auto start = std::chrono::steady_clock::now();
  {
    Loader loader(data, Sampler(*data, {}), augment(), lc);
    ASSERT_TRUE(loader.next().has_value());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The epoch sleeps 3 s in all (1.5 s on two workers); stopping waits only for the batches in
  // flight, about 0.1 s.
  EXPECT_LT(seconds, 0.75);
}

TEST(LoaderTest, RejectsMismatchedShapesAndBatchSizes) {
  std::vector<Sample> s = samples(4);
  s[3].height = 4;
  s[3].width = 9;
  auto data = std::make_shared<InMemoryDataset>(s);
  SamplerConfig seq;
  seq.mode = SamplerMode::sequential;
  LoaderConfig lc;
  lc.batch_size = 4;
  Loader loader(data, Sampler(*data, seq), Compose(), lc);
  EXPECT_THROW(loader.next(), std::runtime_error);

  SamplerConfig ratio;
  ratio.mode = SamplerMode::ratio;
  ratio.source_ratio = {{"brats", 0.5}, {"kaggle", 0.5}};
  ratio.batch_size = 2;
  EXPECT_THROW(Loader(data, Sampler(*data, ratio), Compose(), lc), std::invalid_argument);
  lc.batch_size = 0;
  EXPECT_THROW(Loader(data, Sampler(*data, seq), Compose(), lc), std::invalid_argument);
}

// A data-parallel rank's batches (sampler shard of 2, batch 2) hold exactly the samples, augmented
// alike, of one process's batches of 4 over the same order: rank r's k-th item is the single
// order's position 2k + r, and augmentation is keyed by that position.
TEST(LoaderTest, ShardedRanksSeeTheSingleProcessSamplesAugmentedAlike) {
  auto data = std::make_shared<InMemoryDataset>(samples(8));
  SamplerConfig sc;
  sc.seed = 3;
  LoaderConfig lc;
  lc.seed = 8;
  lc.batch_size = 4;
  Loader single(data, Sampler(*data, sc), augment(), lc);
  const std::vector<Batch> whole = run_epoch(single, 1);
  ASSERT_EQ(whole.size(), 2u);
  lc.batch_size = 2;
  for (int rank : {0, 1}) {
    SamplerConfig shard = sc;
    shard.rank = rank;
    shard.world_size = 2;
    Loader loader(data, Sampler(*data, shard), augment(), lc);
    const std::vector<Batch> mine = run_epoch(loader, 1);
    ASSERT_EQ(mine.size(), 2u);
    for (std::size_t b = 0; b < 2; ++b) {
      const auto all = whole[b].images.to_vector<float>();
      const auto got = mine[b].images.to_vector<float>();
      for (std::size_t j = 0; j < 2; ++j) {
        const std::size_t k = 2 * j + static_cast<std::size_t>(rank);  // position in the batch of 4
        EXPECT_EQ(mine[b].indices[j], whole[b].indices[k]);
        EXPECT_TRUE(
            std::equal(got.begin() + j * 36, got.begin() + (j + 1) * 36, all.begin() + k * 36))
            << "rank " << rank << " batch " << b << " item " << j;
      }
    }
  }
}

}  // namespace
}  // namespace glia::data
