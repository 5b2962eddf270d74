// The inference worker: queue, coalescing and the batched predictor call; see worker.h.
#include "apps/serve/worker.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>

#include "engine/ops.h"

namespace glia::serve {

InferenceWorker::InferenceWorker(std::unique_ptr<nets::Predictor> predictor, int max_batch,
                                 std::chrono::milliseconds batch_wait, int max_queue,
                                 std::function<void(int)> on_batch)
    : predictor_(std::move(predictor)),
      max_batch_(std::max(1, max_batch)),
      batch_wait_(batch_wait),
      max_queue_(std::max(1, max_queue)),
      on_batch_(std::move(on_batch)),
      thread_([this] { loop(); }) {}

InferenceWorker::~InferenceWorker() {
  stop();
}

std::optional<std::future<WorkResult>> InferenceWorker::submit(
    nets::InputImage image, const nets::PredictOptions& options) {
  Job job{std::move(image), options, {}};
  std::future<WorkResult> result = job.done.get_future();
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || static_cast<int>(queue_.size()) >= max_queue_) return std::nullopt;
    queue_.push_back(std::move(job));
  }
  wake_.notify_all();
  return result;
}

int InferenceWorker::queued() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(queue_.size());
}

void InferenceWorker::stop() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool InferenceWorker::compatible(const Job& a, const Job& b) {
  const nets::PredictOptions &x = a.options, &y = b.options;
  return x.mc_dropout == 0 && y.mc_dropout == 0 && a.image.height == b.image.height &&
         a.image.width == b.image.width && x.gradcam == y.gradcam && x.segment == y.segment &&
         x.threshold == y.threshold && x.cls_threshold == y.cls_threshold;
}

void InferenceWorker::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping with nothing left
    const auto partners = [this] {
      return static_cast<int>(std::count_if(queue_.begin(), queue_.end(), [this](const Job& j) {
        return compatible(queue_.front(), j);
      }));
    };
    // Coalesce: wait a little for requests that can share the first one's forward pass.
    if (queue_.front().options.mc_dropout == 0) {
      const auto deadline = std::chrono::steady_clock::now() + batch_wait_;
      while (!stopping_ && partners() < max_batch_ &&
             wake_.wait_until(lock, deadline) != std::cv_status::timeout) {
      }
    }
    std::vector<Job> batch;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    if (batch.front().options.mc_dropout == 0) {
      for (auto it = queue_.begin();
           it != queue_.end() && static_cast<int>(batch.size()) < max_batch_;) {
        if (compatible(batch.front(), *it)) {
          batch.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    lock.unlock();
    run_batch(batch);
    lock.lock();
  }
}

void InferenceWorker::run_batch(std::vector<Job>& jobs) {
  const auto n = static_cast<index_t>(jobs.size());
  const int h = jobs.front().image.height, w = jobs.front().image.width;
  const auto plane = static_cast<std::size_t>(h) * static_cast<std::size_t>(w);
  try {
    std::vector<float> pixels;
    pixels.reserve(plane * jobs.size());
    for (const Job& j : jobs)
      pixels.insert(pixels.end(), j.image.pixels.begin(), j.image.pixels.end());
    nets::PredictOptions options = jobs.front().options;
    options.batch = static_cast<int>(n);
    const nets::PredictionBatch out =
        predictor_->predict(from_vector(pixels, {n, 1, index_t{h}, index_t{w}}), options);
    if (on_batch_) on_batch_(static_cast<int>(n));
    const std::vector<float> logits = out.cls_logits.to_vector<float>();
    const std::vector<float> cams =
        out.gradcam.defined() ? out.gradcam.to_vector<float>() : std::vector<float>{};
    const auto classes = static_cast<std::size_t>(out.cls_logits.size(1));
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      WorkResult r;
      r.prediction = out.predictions[i];
      r.batch_size = static_cast<int>(n);
      if (!cams.empty()) {
        const auto first = cams.begin() + static_cast<std::ptrdiff_t>(i * plane);
        r.cam.assign(first, first + static_cast<std::ptrdiff_t>(plane));
      }
      // Softmax of the predicted class, computed as tumour_probability is: relative to the max.
      const float* l = logits.data() + i * classes;
      const float top = *std::max_element(l, l + classes);
      double sum = 0.0;
      for (std::size_t k = 0; k < classes; ++k) sum += std::exp(double{l[k]} - top);
      r.confidence = std::exp(double{l[r.prediction.predicted_class]} - top) / sum;
      jobs[i].done.set_value(std::move(r));
    }
  } catch (...) {
    for (Job& j : jobs) {
      try {
        j.done.set_exception(std::current_exception());
      } catch (const std::future_error&) {
        // This job's value was set before the failure.
      }
    }
  }
}

}  // namespace glia::serve
