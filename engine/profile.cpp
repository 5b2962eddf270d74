// The per-op profile's counters and its table; see profile.h.
#include "engine/profile.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string_view>

namespace glia::profile {
namespace {

bool from_environment() {
  const char* env = std::getenv("GLIA_PROFILE");
  return env != nullptr && std::string_view(env) != "" && std::string_view(env) != "0";
}

std::atomic<bool>& flag() {
  static std::atomic<bool> on{from_environment()};
  return on;
}

// The counters of every thread that dispatches ops (the trainer, a loader's workers, the server's
// worker), and the start of the step.
struct Counters {
  std::mutex mutex;
  std::map<std::string, OpTime, std::less<>> ops;
  std::chrono::steady_clock::time_point step_start = std::chrono::steady_clock::now();
  int step = 0;

  // What is left at exit: the inference run's table.
  ~Counters() {
    if (!ops.empty() && flag().load(std::memory_order_relaxed)) print("end");
  }

  void print(const char* what) {
    const double total =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - step_start)
            .count();
    std::vector<OpTime> rows;
    for (const auto& [name, t] : ops) rows.push_back(t);
    std::sort(rows.begin(), rows.end(),
              [](const OpTime& a, const OpTime& b) { return a.ms > b.ms; });
    double timed = 0.0;
    for (const OpTime& r : rows) timed += r.ms;
    std::fprintf(stderr, "glia profile: %s %d, %.1f ms (%.1f ms in ops)\n", what, step, total,
                 timed);
    std::fprintf(stderr, "  %-28s %7s %11s %7s\n", "op", "calls", "ms", "share");
    for (const OpTime& r : rows) {
      std::fprintf(stderr, "  %-28s %7lld %11.2f %6.1f%%\n", r.op.c_str(),
                   static_cast<long long>(r.calls), r.ms, total > 0 ? 100.0 * r.ms / total : 0.0);
    }
    std::fflush(stderr);
  }
};

Counters& counters() {
  static Counters c;
  return c;
}

thread_local int t_depth = 0;

}  // namespace

bool enabled() {
  return flag().load(std::memory_order_relaxed);
}

void enable(bool on) {
  flag().store(on, std::memory_order_relaxed);
  if (on) {
    Counters& c = counters();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.ops.clear();
    c.step_start = std::chrono::steady_clock::now();
  }
}

std::vector<OpTime> snapshot() {
  Counters& c = counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  std::vector<OpTime> rows;
  for (const auto& [name, t] : c.ops) rows.push_back(t);
  std::sort(rows.begin(), rows.end(), [](const OpTime& a, const OpTime& b) { return a.ms > b.ms; });
  return rows;
}

double step_ms() {
  Counters& c = counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c.step_start)
      .count();
}

void step_end() {
  if (!enabled()) return;
  Counters& c = counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (!c.ops.empty()) c.print("step");
  c.ops.clear();
  ++c.step;
  c.step_start = std::chrono::steady_clock::now();
}

void Scope::begin(const char* op) {
  entered_ = true;
  if (t_depth++ > 0) return;  // inside another op's dispatch: counted there
  op_ = op;
  start_ = std::chrono::steady_clock::now();
}

void Scope::end() {
  --t_depth;
  if (op_ == nullptr) return;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  Counters& c = counters();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.ops.find(std::string_view(op_));
  if (it == c.ops.end()) it = c.ops.emplace(op_, OpTime{op_, 0, 0.0}).first;
  ++it->second.calls;
  it->second.ms += ms;
}

}  // namespace glia::profile
