// Whether ops record the autograd tape, per thread: on by default, off inside a NoGradGuard
// (inference, optimiser steps, and every backward function). Tested in
// tests/engine/autograd_test.cpp.
#pragma once

namespace glia {

class GradMode {
 public:
  static bool enabled();
  static void set_enabled(bool enabled);
};

// Disables recording for its scope and restores the previous mode on exit.
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace glia
