// The per-op profile: with GLIA_PROFILE=1 in the environment, every op's kernel dispatch
// (engine/ops/dispatch.h) is timed on the host clock under the op's name ("conv2d",
// "conv2d backward", "batch_norm", ...), and at the end of each training step (Optimizer::step)
// the table of time, calls and share of the step per op is printed to stderr and cleared; what
// is left when the process exits (inference) is printed then. Only the outermost dispatch counts,
// so an op that calls others (a fill inside a backward) is not counted twice. Times are exact on
// cpu and sim, whose kernels run synchronously; on cuda they are launch times. Off (one relaxed
// load per dispatch) unless the variable is set. Tested in tests/engine/profile_test.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace glia::profile {

// Whether GLIA_PROFILE is set to something other than "" or "0" (read once), or enable() ran.
bool enabled();
// Turns the profile on or off for this process (tests and benchmarks).
void enable(bool on);

// One op's figures since the last step_end.
struct OpTime {
  std::string op;
  std::int64_t calls = 0;
  double ms = 0.0;
};
// The figures so far, longest first, and the step's wall time since the last step_end.
std::vector<OpTime> snapshot();
double step_ms();
// Prints the table (when enabled and something was timed) and starts the next step.
void step_end();

// Times one dispatch of `op` when the profile is on and no dispatch encloses it.
class Scope {
 public:
  explicit Scope(const char* op) {
    if (enabled()) begin(op);
  }
  ~Scope() {
    if (entered_) end();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  void begin(const char* op);
  void end();
  bool entered_ = false;
  const char* op_ = nullptr;  // null when an enclosing dispatch counts the time
  std::chrono::steady_clock::time_point start_;
};

}  // namespace glia::profile
