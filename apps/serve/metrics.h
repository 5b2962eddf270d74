// glia-serve's /metrics in the Prometheus text exposition format (version 0.0.4): requests by
// endpoint and status (a counter), request latency per endpoint and inference batch sizes
// (cumulative histograms with le buckets, _sum and _count), and the queue depth (a gauge read
// when scraped). A request is counted once its answer has been written, so a client can see the
// answer a moment before the count. Thread-safe. Tested in tests/apps/serve_test.cpp.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace glia::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // `name`{labels,le="..."} lines, then _sum and _count; labels like `endpoint="/x"` or empty.
  void write(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<long long> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0.0;
  long long count_ = 0;
};

class Metrics {
 public:
  void count_request(const std::string& endpoint, int status);
  void observe_latency(const std::string& endpoint, double milliseconds);
  void observe_batch(int size);
  std::string text(int queue_depth, int max_queue) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, long long> requests_;
  std::map<std::string, Histogram> latency_;
  Histogram batch_{{1, 2, 4, 8, 16, 32, 64}};
};

}  // namespace glia::serve
