// Counters and histograms in the Prometheus text format; see metrics.h.
#include "apps/serve/metrics.h"

#include <algorithm>
#include <cstdio>

namespace glia::serve {
namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const std::vector<double> kLatencyBoundsMs = {1,   2.5, 5,    10,   25,   50,   100,
                                              250, 500, 1000, 2500, 5000, 10000};

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[static_cast<std::size_t>(bucket)];
  sum_ += value;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  long long cumulative = 0;
  for (std::size_t b = 0; b <= bounds_.size(); ++b) {
    cumulative += counts_[b];
    const std::string le = b < bounds_.size() ? number(bounds_[b]) : "+Inf";
    out += name + "_bucket{" + labels + sep + "le=\"" + le + "\"} " + std::to_string(cumulative) +
           "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

void Metrics::count_request(const std::string& endpoint, int status) {
  const std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
}

void Metrics::observe_latency(const std::string& endpoint, double milliseconds) {
  const std::lock_guard<std::mutex> lock(mutex_);
  latency_.try_emplace(endpoint, kLatencyBoundsMs).first->second.observe(milliseconds);
}

void Metrics::observe_batch(int size) {
  const std::lock_guard<std::mutex> lock(mutex_);
  batch_.observe(size);
}

std::string Metrics::text(int queue_depth, int max_queue) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP glia_requests_total HTTP requests by endpoint and status.\n";
  out += "# TYPE glia_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    out += "glia_requests_total{endpoint=\"" + key.first + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
  }
  out += "# HELP glia_request_latency_ms Wall time of a prediction request, in milliseconds.\n";
  out += "# TYPE glia_request_latency_ms histogram\n";
  for (const auto& [endpoint, histogram] : latency_) {
    histogram.write(out, "glia_request_latency_ms", "endpoint=\"" + endpoint + "\"");
  }
  out += "# HELP glia_batch_size Images per forward pass of the inference worker.\n";
  out += "# TYPE glia_batch_size histogram\n";
  batch_.write(out, "glia_batch_size", "");
  out += "# HELP glia_queue_depth Requests waiting for the inference worker.\n";
  out += "# TYPE glia_queue_depth gauge\n";
  out += "glia_queue_depth " + std::to_string(queue_depth) + "\n";
  out += "# HELP glia_queue_limit Requests the queue holds before answering 503.\n";
  out += "# TYPE glia_queue_limit gauge\n";
  out += "glia_queue_limit " + std::to_string(max_queue) + "\n";
  return out;
}

}  // namespace glia::serve
