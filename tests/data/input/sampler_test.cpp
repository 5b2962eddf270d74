// Samplers: the drawn share of each balanced group approaches its target within a bound derived
// from the binomial standard deviation of the draw count (fixed seed); fixed source ratios are
// exact in every batch; shuffles are permutations; every order is reproducible for the same
// (seed, epoch) and changes with the epoch.
#include "data/input/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace glia::data {
namespace {

// Metadata-only samples (1x1 images): an imbalanced mix of sources and labels.
InMemoryDataset mixed(int brats_pos, int brats_neg, int kaggle_pos, int kaggle_neg) {
  InMemoryDataset d;
  auto add = [&](const char* source, int label, int count) {
    for (int i = 0; i < count; ++i) {
      Sample s;
      s.height = s.width = 1;
      s.image = {0.0f};
      s.label = label;
      s.source = source;
      d.add(s);
    }
  };
  add("brats", 1, brats_pos);
  add("brats", 0, brats_neg);
  add("kaggle", 1, kaggle_pos);
  add("kaggle", 0, kaggle_neg);
  return d;
}

// |share - p| within 5 binomial standard deviations of n draws.
void expect_share(std::size_t hits, std::size_t n, double p, const std::string& what) {
  const double share = static_cast<double>(hits) / static_cast<double>(n);
  const double bound = 5.0 * std::sqrt(p * (1 - p) / static_cast<double>(n));
  EXPECT_NEAR(share, p, bound) << what << ": " << hits << " of " << n;
}

TEST(SamplerTest, WeightedDrawsBalanceSourceAndLabel) {
  const InMemoryDataset d = mixed(60, 20, 15, 5);
  const std::size_t n = 20000;
  for (Balance balance : {Balance::source, Balance::label, Balance::source_label}) {
    SamplerConfig c;
    c.mode = SamplerMode::weighted;
    c.balance = balance;
    c.epoch_length = n;
    c.seed = 42;
    const Sampler sampler(d, c);
    const double total =
        std::accumulate(sampler.probabilities().begin(), sampler.probabilities().end(), 0.0);
    EXPECT_NEAR(total, 1.0, 1e-12);
    const std::vector<std::size_t> drawn = sampler.indices();
    ASSERT_EQ(drawn.size(), n);
    std::map<std::string, std::size_t> by_source, by_label, by_cell;
    for (std::size_t i : drawn) {
      ++by_source[d.source(i)];
      ++by_label[std::to_string(d.label(i))];
      ++by_cell[d.source(i) + std::to_string(d.label(i))];
    }
    if (balance != Balance::label) {
      expect_share(by_source["brats"], n, 0.5, "brats");
      expect_share(by_source["kaggle"], n, 0.5, "kaggle");
    }
    if (balance != Balance::source) {
      expect_share(by_label["1"], n, 0.5, "label 1");
    }
    if (balance == Balance::source_label) {
      for (const char* cell : {"brats1", "brats0", "kaggle1", "kaggle0"})
        expect_share(by_cell[cell], n, 0.25, cell);
    }
  }
}

TEST(SamplerTest, WeightedDrawsCoverEveryItemOfARareGroup) {
  const InMemoryDataset d = mixed(60, 20, 15, 5);
  SamplerConfig c;
  c.mode = SamplerMode::weighted;
  c.epoch_length = 4000;
  const std::vector<std::size_t> drawn = Sampler(d, c).indices();
  for (std::size_t i = 95; i < 100; ++i)  // the 5 kaggle negatives, each drawn ~200 times
    EXPECT_GT(std::count(drawn.begin(), drawn.end(), i), 100) << "item " << i;
}

TEST(SamplerTest, FixedRatioIsExactInEveryBatch) {
  const InMemoryDataset d = mixed(8, 4, 30, 10);  // 12 brats, 40 kaggle
  SamplerConfig c;
  c.mode = SamplerMode::ratio;
  c.source_ratio = {{"brats", 0.3}, {"kaggle", 0.7}};
  c.batch_size = 10;
  c.epoch_length = 95;  // rounded down to 9 batches
  c.seed = 3;
  Sampler sampler(d, c);
  EXPECT_EQ(sampler.length(), 90u);
  const std::vector<std::size_t> drawn = sampler.indices();
  ASSERT_EQ(drawn.size(), 90u);
  for (std::size_t b = 0; b < 9; ++b) {
    int brats = 0;
    for (std::size_t k = 0; k < 10; ++k) brats += d.source(drawn[b * 10 + k]) == "brats";
    EXPECT_EQ(brats, 3) << "batch " << b;
  }
  // 27 brats draws from 12 items, cycling through permutations: each item 2 or 3 times.
  std::map<std::size_t, int> count;
  for (std::size_t i : drawn) ++count[i];
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_GE(count[i], 2) << "item " << i;
    EXPECT_LE(count[i], 3) << "item " << i;
  }
  EXPECT_EQ(sampler.indices(), drawn);
  sampler.set_epoch(1);
  EXPECT_NE(sampler.indices(), drawn);
}

TEST(SamplerTest, RatiosThatDoNotRoundToTheBatchAreRejected) {
  const InMemoryDataset d = mixed(4, 4, 4, 4);
  SamplerConfig c;
  c.mode = SamplerMode::ratio;
  c.source_ratio = {{"brats", 0.3}, {"kaggle", 0.7}};
  c.batch_size = 5;  // 1.5 -> 2 and 3.5 -> 4: 6 per batch
  EXPECT_THROW(Sampler(d, c), std::invalid_argument);
  c.batch_size = 10;
  c.source_ratio = {{"brats", 0.3}, {"other", 0.7}};
  EXPECT_THROW(Sampler(d, c), std::invalid_argument);
}

TEST(SamplerTest, ShuffleIsAReproduciblePermutationPerEpoch) {
  const InMemoryDataset d = mixed(10, 7, 5, 3);
  SamplerConfig c;
  c.seed = 9;
  Sampler a(d, c), b(d, c);
  std::vector<std::size_t> e0 = a.indices();
  EXPECT_EQ(e0, b.indices());
  std::vector<std::size_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::size_t> identity(d.size());
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(sorted, identity);
  EXPECT_NE(e0, identity);
  a.set_epoch(1);
  EXPECT_NE(a.indices(), e0);
  b.set_epoch(1);
  EXPECT_EQ(a.indices(), b.indices());
  c.seed = 10;
  EXPECT_NE(Sampler(d, c).indices(), e0);
}

TEST(SamplerTest, EpochLengthRepeatsShufflesAndWrapsSequences) {
  const InMemoryDataset d = mixed(3, 2, 1, 1);  // 7 items
  SamplerConfig c;
  c.epoch_length = 17;
  const std::vector<std::size_t> drawn = Sampler(d, c).indices();
  ASSERT_EQ(drawn.size(), 17u);
  for (std::size_t i = 0; i < 7; ++i) {
    const auto n = std::count(drawn.begin(), drawn.end(), i);
    EXPECT_GE(n, 2);
    EXPECT_LE(n, 3);
  }
  c.mode = SamplerMode::sequential;
  const std::vector<std::size_t> seq = Sampler(d, c).indices();
  for (std::size_t k = 0; k < 17; ++k) EXPECT_EQ(seq[k], k % 7);
}

TEST(SamplerTest, PermutationAndIntegerDrawsAreUniform) {
  // Position of item 0 in 6000 permutations of 6: each position 1/6 of the time.
  std::vector<std::size_t> where(6);
  const std::size_t n = 6000;
  for (std::size_t t = 0; t < n; ++t) {
    SampleRng rng(1, 0, t, RngStream::sampler);
    const std::vector<std::size_t> p = random_permutation(6, rng);
    ++where[std::find(p.begin(), p.end(), 0u) - p.begin()];
  }
  for (std::size_t k = 0; k < 6; ++k) expect_share(where[k], n, 1.0 / 6, "position");
}

TEST(SamplerTest, EmptyDatasetIsRejected) {
  EXPECT_THROW(Sampler(InMemoryDataset(), SamplerConfig{}), std::invalid_argument);
}

// Data-parallel shards: every rank has the same count, the shards are the padded shared order
// taken every world_size-th position, and evaluation shards (no padding) cover it exactly once.
TEST(SamplerTest, RankShardsPartitionTheSharedOrder) {
  const InMemoryDataset d = mixed(4, 3, 2, 2);  // 11 items
  for (SamplerMode mode : {SamplerMode::shuffle, SamplerMode::sequential, SamplerMode::weighted}) {
    SamplerConfig c;
    c.mode = mode;
    c.seed = 5;
    Sampler whole(d, c);
    whole.set_epoch(2);
    const std::vector<std::size_t> order = whole.indices();
    for (bool pad : {true, false}) {
      std::vector<std::size_t> merged(pad ? 12 : 11, 99);
      for (int rank : {0, 1}) {
        SamplerConfig rc = c;
        rc.rank = rank;
        rc.world_size = 2;
        rc.pad_shards = pad;
        Sampler s(d, rc);
        s.set_epoch(2);
        EXPECT_EQ(s.global_indices(), order);
        const std::vector<std::size_t> mine = s.indices();
        EXPECT_EQ(mine.size(), s.length());
        EXPECT_EQ(mine.size(), pad ? 6u : (rank == 0 ? 6u : 5u));
        for (std::size_t k = 0; k < mine.size(); ++k) merged[s.global_position(k)] = mine[k];
      }
      for (std::size_t p = 0; p < merged.size(); ++p) {
        EXPECT_EQ(merged[p], order[p % order.size()]) << "position " << p << " pad " << pad;
      }
    }
  }
  SamplerConfig bad;
  bad.rank = 2;
  bad.world_size = 2;
  EXPECT_THROW(Sampler(d, bad), std::invalid_argument);
}

}  // namespace
}  // namespace glia::data
