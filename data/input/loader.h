// The batch loader: takes an epoch's indices from a Sampler, loads and transforms each sample and
// stacks them into cpu f32 tensors:
//   images   N x 1 x H x W   the z-scored slices
//   masks    N x 1 x H x W   0/1 targets; all zeros for a sample without a mask
//   has_mask N               1 where the sample has a mask, else 0: a loss must weight the
//                            segmentation term by it, never train on the zero mask
//   labels   N (i32)         tumour class
// plus the sources and dataset indices. Batch k holds the epoch positions [k*B, (k+1)*B); the last
// batch is shorter unless drop_last. Sample p of epoch e is transformed with the stream
// (seed, e, p), so batches are identical whatever the number of workers; p is the position in the
// order all ranks share (Sampler::global_position), so a data-parallel rank augments an item as
// one process would.
// Workers: 0 builds each batch in the calling thread; n > 0 starts n threads per epoch that claim
// batches in order and hand them back through a bounded window of n * prefetch batches (a worker
// waits while the consumer is that far behind); next() returns batches strictly in order. An
// exception in a worker ends the epoch and is rethrown by next(), naming the item (its file for
// file-backed datasets). Destroying the loader mid-epoch stops and joins the workers. One thread
// consumes: start_epoch and next are not to be called concurrently.
// Tested in tests/data/input/loader_test.cpp; throughput in bench/loader.cpp.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/input/dataset.h"
#include "data/input/sampler.h"
#include "data/input/transforms.h"
#include "engine/tensor.h"

namespace glia::data {

struct Batch {
  Tensor images;    // N x 1 x H x W f32
  Tensor masks;     // N x 1 x H x W f32 0/1
  Tensor has_mask;  // N f32 0/1
  Tensor labels;    // N i32
  std::vector<std::string> sources;
  std::vector<std::size_t> indices;  // dataset indices
  std::size_t size() const { return indices.size(); }
};

struct LoaderConfig {
  std::size_t batch_size = 8;
  int workers = 0;
  std::size_t prefetch = 2;  // batches ahead per worker
  bool drop_last = false;
  std::uint64_t seed = 0;  // of the transforms' streams
};

class Loader {
 public:
  // Throws std::invalid_argument for batch size 0, negative workers, prefetch 0, or a ratio
  // sampler whose batch size differs from the loader's.
  Loader(std::shared_ptr<const Dataset> dataset, Sampler sampler, Compose transforms,
         LoaderConfig config);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts epoch `epoch` (the sampler's order for it), abandoning any epoch in progress.
  void start_epoch(std::uint64_t epoch);
  // The next batch of the current epoch (starting the sampler's epoch on first use), or nullopt
  // when the epoch is over. Rethrows a worker's exception.
  std::optional<Batch> next();
  std::size_t batches_per_epoch() const;
  const Sampler& sampler() const { return sampler_; }

 private:
  struct Result {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  Batch build(std::size_t k) const;
  void work();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  Sampler sampler_;
  Compose transforms_;
  LoaderConfig config_;

  bool started_ = false;
  std::uint64_t epoch_ = 0;
  std::vector<std::size_t> order_;
  std::size_t batches_ = 0;

  std::mutex mutex_;
  std::condition_variable ready_;  // a batch was finished
  std::condition_variable space_;  // the consumer took one, or stop
  std::map<std::size_t, Result> done_;
  std::size_t next_claim_ = 0;
  std::size_t next_deliver_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace glia::data
