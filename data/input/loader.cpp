// Batch assembly and the worker pool of the loader (data/input/loader.h).
// Tested in tests/data/input/loader_test.cpp.
#include "data/input/loader.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace glia::data {

Loader::Loader(std::shared_ptr<const Dataset> dataset, Sampler sampler, Compose transforms,
               LoaderConfig config)
    : dataset_(std::move(dataset)),
      sampler_(std::move(sampler)),
      transforms_(std::move(transforms)),
      config_(config) {
  if (!dataset_) throw std::invalid_argument("loader: null dataset");
  if (config_.batch_size == 0) throw std::invalid_argument("loader: batch size must be > 0");
  if (config_.workers < 0) throw std::invalid_argument("loader: workers must be >= 0");
  if (config_.prefetch == 0) throw std::invalid_argument("loader: prefetch must be > 0");
  const SamplerConfig& sc = sampler_.config();
  if (sc.mode == SamplerMode::ratio && sc.batch_size != config_.batch_size) {
    throw std::invalid_argument("loader: batch size " + std::to_string(config_.batch_size) +
                                " differs from the ratio sampler's " +
                                std::to_string(sc.batch_size) +
                                ", so batches would not keep the source ratio");
  }
}

Loader::~Loader() {
  stop_workers();
}

std::size_t Loader::batches_per_epoch() const {
  const std::size_t n = sampler_.length(), b = config_.batch_size;
  return config_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::stop_workers() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  space_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void Loader::start_epoch(std::uint64_t epoch) {
  stop_workers();
  sampler_.set_epoch(epoch);
  epoch_ = epoch;
  order_ = sampler_.indices();
  batches_ = batches_per_epoch();
  done_.clear();
  next_claim_ = 0;
  next_deliver_ = 0;
  stop_ = false;
  started_ = true;
  for (int w = 0; w < config_.workers; ++w) threads_.emplace_back([this] { work(); });
}

void Loader::work() {
  const std::size_t window = static_cast<std::size_t>(config_.workers) * config_.prefetch;
  for (;;) {
    std::size_t k;
    {
      std::unique_lock lock(mutex_);
      space_.wait(lock, [&] {
        return stop_ || next_claim_ >= batches_ || next_claim_ < next_deliver_ + window;
      });
      if (stop_ || next_claim_ >= batches_) return;
      k = next_claim_++;
    }
    Result r;
    try {
      r.batch = build(k);
    } catch (...) {
      r.error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      done_.emplace(k, std::move(r));
    }
    ready_.notify_all();
  }
}

std::optional<Batch> Loader::next() {
  if (!started_) start_epoch(sampler_.epoch());
  if (next_deliver_ >= batches_) return std::nullopt;
  if (config_.workers == 0) {
    const std::size_t k = next_deliver_++;
    try {
      return build(k);
    } catch (...) {
      next_deliver_ = batches_;  // the epoch ends at an error, as with workers
      throw;
    }
  }
  Result r;
  {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return done_.contains(next_deliver_); });
    auto it = done_.find(next_deliver_);
    r = std::move(it->second);
    done_.erase(it);
    ++next_deliver_;
  }
  space_.notify_all();
  if (r.error) {
    stop_workers();
    next_deliver_ = batches_;
    std::rethrow_exception(r.error);
  }
  return std::move(r.batch);
}

Batch Loader::build(std::size_t k) const {
  const std::size_t begin = k * config_.batch_size;
  const std::size_t end = std::min(begin + config_.batch_size, order_.size());
  const std::size_t n = end - begin;
  Batch b;
  b.indices.assign(order_.begin() + static_cast<std::ptrdiff_t>(begin),
                   order_.begin() + static_cast<std::ptrdiff_t>(end));
  b.sources.reserve(n);
  std::vector<float> has_mask(n);
  std::vector<std::int32_t> labels(n);
  float* images = nullptr;
  float* masks = nullptr;
  int height = 0, width = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t idx = b.indices[j];
    Sample s;
    try {
      s = dataset_->load(idx);
      transforms_.apply(s, config_.seed, epoch_, sampler_.global_position(begin + j));
      s.check(dataset_->describe(idx));
    } catch (const std::exception& e) {
      throw std::runtime_error("loader: " + dataset_->describe(idx) + ": " + e.what());
    }
    if (j == 0) {
      height = s.height;
      width = s.width;
      const Shape shape{static_cast<index_t>(n), 1, height, width};
      b.images = Tensor(shape, DType::f32, Device::cpu());
      b.masks = Tensor(shape, DType::f32, Device::cpu());
      images = b.images.data<float>();
      masks = b.masks.data<float>();
    } else if (s.height != height || s.width != width) {
      throw std::runtime_error("loader: " + dataset_->describe(idx) + " is " +
                               std::to_string(s.height) + "x" + std::to_string(s.width) +
                               " after transforms, but the batch's first sample is " +
                               std::to_string(height) + "x" + std::to_string(width));
    }
    const std::size_t plane = static_cast<std::size_t>(height) * width;
    std::memcpy(images + j * plane, s.image.data(), plane * sizeof(float));
    float* m = masks + j * plane;
    if (s.mask) {
      for (std::size_t p = 0; p < plane; ++p) m[p] = static_cast<float>((*s.mask)[p]);
    } else {
      std::fill(m, m + plane, 0.0f);
    }
    has_mask[j] = s.mask ? 1.0f : 0.0f;
    labels[j] = s.label;
    b.sources.push_back(std::move(s.source));
  }
  b.has_mask = Tensor({static_cast<index_t>(n)}, DType::f32, Device::cpu());
  std::memcpy(b.has_mask.data<float>(), has_mask.data(), n * sizeof(float));
  b.labels = Tensor({static_cast<index_t>(n)}, DType::i32, Device::cpu());
  std::memcpy(b.labels.data<std::int32_t>(), labels.data(), n * sizeof(std::int32_t));
  return b;
}

}  // namespace glia::data
