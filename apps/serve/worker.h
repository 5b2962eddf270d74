// The inference worker of glia-serve: one thread owns the predictor and runs the queued requests.
// Requests that can share a forward pass (same image size, same options, no MC dropout) are
// coalesced: the worker takes the oldest request, waits up to batch_wait for more of its kind
// (until max_batch), and runs them as one batch. In eval mode every image of a batch is computed
// independently of the others, so a batched answer equals the answer alone; MC-dropout requests run
// alone, since their masks follow the predictor's random stream. A full queue refuses new work
// (the server answers 503); stop() lets the queued requests finish. Tested in
// tests/apps/serve_test.cpp.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "nets/infer/inference.h"
#include "nets/infer/predictor.h"

namespace glia::serve {

struct WorkResult {
  nets::Prediction prediction;
  std::vector<float> cam;   // height * width in [0, 1]; empty without Grad-CAM
  double confidence = 0.0;  // softmax probability of the predicted class
  int batch_size = 1;       // images in the forward pass that computed it
};

class InferenceWorker {
 public:
  // on_batch (may be empty) is told each batch's size, from the worker thread.
  InferenceWorker(std::unique_ptr<nets::Predictor> predictor, int max_batch,
                  std::chrono::milliseconds batch_wait, int max_queue,
                  std::function<void(int)> on_batch = {});
  ~InferenceWorker();
  InferenceWorker(const InferenceWorker&) = delete;
  InferenceWorker& operator=(const InferenceWorker&) = delete;

  // Queues an image ([1, h, w] pixels); nullopt when max_queue requests are waiting already or
  // the worker stops. The future holds the result or the predictor's exception.
  std::optional<std::future<WorkResult>> submit(nets::InputImage image,
                                                const nets::PredictOptions& options);
  // Requests waiting for the worker (not yet in a batch).
  int queued() const;
  // Finishes every queued request, then ends the thread. Idempotent.
  void stop();
  const nets::Predictor& predictor() const { return *predictor_; }

 private:
  struct Job {
    nets::InputImage image;
    nets::PredictOptions options;
    std::promise<WorkResult> done;
  };
  void loop();
  void run_batch(std::vector<Job>& jobs);
  static bool compatible(const Job& a, const Job& b);

  std::unique_ptr<nets::Predictor> predictor_;
  int max_batch_;
  std::chrono::milliseconds batch_wait_;
  int max_queue_;
  std::function<void(int)> on_batch_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace glia::serve
