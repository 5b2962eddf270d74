// Sequential, shuffled, inverse-frequency weighted and fixed-ratio samplers (data/input/sampler.h).
// Tested in tests/data/input/sampler_test.cpp.
#include "data/input/sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace glia::data {

std::vector<std::size_t> random_permutation(std::size_t n, SampleRng& rng) {
  std::vector<std::size_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = i;
  for (std::size_t i = n; i > 1; --i) std::swap(p[i - 1], p[rng.uniform_int(i)]);
  return p;
}

Sampler::Sampler(const Dataset& dataset, SamplerConfig config)
    : config_(std::move(config)), dataset_size_(dataset.size()) {
  if (dataset_size_ == 0) throw std::invalid_argument("sampler: the dataset is empty");
  if (config_.epoch_length == 0) config_.epoch_length = dataset_size_;
  if (config_.world_size < 1 || config_.rank < 0 || config_.rank >= config_.world_size) {
    throw std::invalid_argument("sampler: rank " + std::to_string(config_.rank) +
                                " is outside a world of " + std::to_string(config_.world_size));
  }

  if (config_.mode == SamplerMode::weighted) {
    std::vector<std::string> groups(dataset_size_);
    std::map<std::string, std::size_t> count;
    for (std::size_t i = 0; i < dataset_size_; ++i) {
      switch (config_.balance) {
        case Balance::source:
          groups[i] = dataset.source(i);
          break;
        case Balance::label:
          groups[i] = std::to_string(dataset.label(i));
          break;
        case Balance::source_label:
          groups[i] = dataset.source(i) + '\n' + std::to_string(dataset.label(i));
          break;
      }
      ++count[groups[i]];
    }
    // Each group gets total weight 1 / (number of groups), shared by its items.
    const double group_share = 1.0 / static_cast<double>(count.size());
    probabilities_.resize(dataset_size_);
    cumulative_.resize(dataset_size_);
    double sum = 0.0;
    for (std::size_t i = 0; i < dataset_size_; ++i) {
      probabilities_[i] = group_share / static_cast<double>(count[groups[i]]);
      sum += probabilities_[i];
      cumulative_[i] = sum;
    }
  }

  if (config_.mode == SamplerMode::ratio) {
    if (config_.batch_size == 0) {
      throw std::invalid_argument("sampler: ratio mode needs a batch size");
    }
    if (config_.source_ratio.empty()) {
      throw std::invalid_argument("sampler: ratio mode needs source ratios");
    }
    for (std::size_t i = 0; i < dataset_size_; ++i) by_source_[dataset.source(i)].push_back(i);
    std::size_t total = 0;
    std::string listing;
    for (const auto& [source, ratio] : config_.source_ratio) {
      if (!(ratio >= 0.0)) {
        throw std::invalid_argument("sampler: ratio of source '" + source + "' is negative");
      }
      const auto n = static_cast<std::size_t>(std::llround(ratio * config_.batch_size));
      if (n > 0 && !by_source_.contains(source)) {
        throw std::invalid_argument("sampler: ratio names source '" + source +
                                    "', which the dataset does not hold");
      }
      batch_counts_[source] = n;
      total += n;
      listing += (listing.empty() ? "" : ", ") + source + " " + std::to_string(n);
    }
    if (total != config_.batch_size) {
      throw std::invalid_argument(
          "sampler: source ratios give " + listing + " = " + std::to_string(total) +
          " samples per batch, not the batch size " + std::to_string(config_.batch_size) +
          "; choose a batch size for which they add up");
    }
  }
}

std::size_t Sampler::length() const {
  const auto n = global_length();
  const auto world = static_cast<std::size_t>(config_.world_size);
  if (world == 1) return n;
  if (config_.pad_shards) return (n + world - 1) / world;
  const auto rank = static_cast<std::size_t>(config_.rank);
  return n / world + (rank < n % world ? 1 : 0);
}

std::vector<std::size_t> Sampler::indices() const {
  if (config_.world_size == 1) return global_indices();
  return shard_indices(global_indices(), config_.rank, config_.world_size, config_.pad_shards);
}

std::vector<std::size_t> shard_indices(const std::vector<std::size_t>& order, int rank,
                                       int world_size, bool pad) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw std::invalid_argument("sampler: rank " + std::to_string(rank) +
                                " is outside a world of " + std::to_string(world_size));
  }
  const auto world = static_cast<std::size_t>(world_size);
  std::vector<std::size_t> padded = order;
  if (pad && !order.empty()) {
    const std::size_t total = (order.size() + world - 1) / world * world;
    for (std::size_t i = 0; padded.size() < total; ++i) padded.push_back(order[i % order.size()]);
  }
  std::vector<std::size_t> shard;
  for (std::size_t i = static_cast<std::size_t>(rank); i < padded.size(); i += world) {
    shard.push_back(padded[i]);
  }
  return shard;
}

std::size_t Sampler::global_length() const {
  if (config_.mode == SamplerMode::ratio) {
    const std::size_t batches = std::max<std::size_t>(1, config_.epoch_length / config_.batch_size);
    return batches * config_.batch_size;
  }
  return config_.epoch_length;
}

std::vector<std::size_t> Sampler::shuffled(std::uint64_t stream_index) const {
  SampleRng rng(config_.seed, epoch_, stream_index, RngStream::sampler);
  return random_permutation(dataset_size_, rng);
}

std::vector<std::size_t> Sampler::global_indices() const {
  const std::size_t n = global_length();
  std::vector<std::size_t> out;
  out.reserve(n);
  switch (config_.mode) {
    case SamplerMode::sequential:
      for (std::size_t i = 0; i < n; ++i) out.push_back(i % dataset_size_);
      break;
    case SamplerMode::shuffle:
      for (std::uint64_t round = 0; out.size() < n; ++round) {
        for (std::size_t i : shuffled(round)) {
          if (out.size() == n) break;
          out.push_back(i);
        }
      }
      break;
    case SamplerMode::weighted: {
      SampleRng rng(config_.seed, epoch_, 0, RngStream::sampler);
      const double total = cumulative_.back();
      for (std::size_t k = 0; k < n; ++k) {
        const double u = rng.uniform() * total;
        const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
        out.push_back(std::min<std::size_t>(it - cumulative_.begin(), dataset_size_ - 1));
      }
      break;
    }
    case SamplerMode::ratio: {
      SampleRng rng(config_.seed, epoch_, 0, RngStream::sampler);
      // Per source: a permutation being consumed and the position in it.
      std::map<std::string, std::pair<std::vector<std::size_t>, std::size_t>> cursor;
      for (const auto& [source, count] : batch_counts_) {
        if (count > 0) cursor[source] = {{}, 0};
      }
      const std::size_t batch = config_.batch_size;
      std::vector<std::size_t> slots;
      for (std::size_t b = 0; b < n / batch; ++b) {
        slots.clear();
        for (auto& [source, state] : cursor) {
          const std::vector<std::size_t>& items = by_source_.at(source);
          for (std::size_t k = 0; k < batch_counts_.at(source); ++k) {
            auto& [order, pos] = state;
            if (pos == order.size()) {
              order = random_permutation(items.size(), rng);
              pos = 0;
            }
            slots.push_back(items[order[pos++]]);
          }
        }
        for (std::size_t i : random_permutation(slots.size(), rng)) out.push_back(slots[i]);
      }
      break;
    }
  }
  return out;
}

}  // namespace glia::data
