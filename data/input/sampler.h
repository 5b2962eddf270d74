// The order in which a loader visits a dataset, one epoch at a time.
//   sequential: 0, 1, 2, ... (wrapping around when the epoch is longer than the dataset);
//   shuffle:    a seeded permutation (several, concatenated, for a longer epoch);
//   weighted:   draws with replacement, item i with probability w_i / sum(w); w_i is the inverse
//               frequency of i's group, the group being its source, its label, or the pair
//               (source, label) (Balance), so each group is drawn equally often on average;
//   ratio:      fixed per-batch source counts round(ratio_s * batch_size), which must add up to
//               the batch size; within a source, items cycle through seeded permutations so each
//               is seen before any repeats; positions within a batch are shuffled; sources
//               without a ratio are not drawn. The epoch is rounded down to whole batches (at
//               least one).
// All randomness comes from SampleRng(seed, epoch, ., sampler stream): set_epoch(e) changes the
// order, reproducibly. The epoch length defaults to the dataset size.
// Data-parallel runs (world_size > 1): every rank draws the same epoch order and keeps its shard,
// positions rank, rank + world, rank + 2 world, ... (shard_indices); as PyTorch's
// DistributedSampler, the order is first padded with its own beginning to a multiple of the
// world size, so every rank gets the same number of items and the shards together are the order
// (plus the padding). Evaluation shards without padding (pad_shards false), so that every item is
// counted exactly once when the ranks' metrics are summed.
// Tested in tests/data/input/sampler_test.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/input/dataset.h"
#include "data/input/sample_rng.h"

namespace glia::data {

enum class SamplerMode { sequential, shuffle, weighted, ratio };
enum class Balance { source, label, source_label };

struct SamplerConfig {
  SamplerMode mode = SamplerMode::shuffle;
  Balance balance = Balance::source_label;     // weighted mode
  std::map<std::string, double> source_ratio;  // ratio mode, e.g. {{"brats", 0.3}, {"kaggle", 0.7}}
  std::size_t batch_size = 0;                  // ratio mode
  std::size_t epoch_length = 0;                // 0: the dataset size
  std::uint64_t seed = 0;
  int rank = 0;            // this process's shard
  int world_size = 1;      // the number of shards
  bool pad_shards = true;  // pad the order to a multiple of world_size (training)
};

class Sampler {
 public:
  // Reads the dataset's metadata once (sources, labels); the dataset need not outlive the
  // sampler. Throws std::invalid_argument for an empty dataset, a ratio naming a source the
  // dataset lacks, ratios that do not round to the batch size, or a negative ratio.
  Sampler(const Dataset& dataset, SamplerConfig config);

  void set_epoch(std::uint64_t epoch) { epoch_ = epoch; }
  std::uint64_t epoch() const { return epoch_; }
  // The dataset indices of the current epoch, in order: this rank's shard of global_indices().
  std::vector<std::size_t> indices() const;
  // The number of indices per epoch (this rank's).
  std::size_t length() const;
  // Where position `local` of indices() lies in global_indices() (padding positions continue past
  // its end): local * world_size + rank. Augmentation draws are keyed by it, so a data-parallel
  // run augments each item of the shared order as a single process would.
  std::size_t global_position(std::size_t local) const {
    return local * static_cast<std::size_t>(config_.world_size) +
           static_cast<std::size_t>(config_.rank);
  }
  // The order every rank shares, and its length.
  std::vector<std::size_t> global_indices() const;
  std::size_t global_length() const;
  const SamplerConfig& config() const { return config_; }
  // Weighted mode: the per-item probabilities (summing to 1); empty in other modes.
  const std::vector<double>& probabilities() const { return probabilities_; }
  // Ratio mode: the per-batch count of each source.
  const std::map<std::string, std::size_t>& batch_counts() const { return batch_counts_; }

 private:
  std::vector<std::size_t> shuffled(std::uint64_t stream_index) const;

  SamplerConfig config_;
  std::size_t dataset_size_ = 0;
  std::uint64_t epoch_ = 0;
  std::vector<double> probabilities_;
  std::vector<double> cumulative_;
  std::map<std::string, std::vector<std::size_t>> by_source_;
  std::map<std::string, std::size_t> batch_counts_;
};

// Rank `rank`'s positions of `order` among `world_size` shards (see above): with `pad`, the order
// padded with its own beginning to a multiple of world_size. Throws for rank outside
// [0, world_size).
std::vector<std::size_t> shard_indices(const std::vector<std::size_t>& order, int rank,
                                       int world_size, bool pad);

// Fisher-Yates permutation of 0..n-1 drawn from `rng`.
std::vector<std::size_t> random_permutation(std::size_t n, SampleRng& rng);

}  // namespace glia::data
