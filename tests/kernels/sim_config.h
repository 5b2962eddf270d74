// The emulator's lane order, settable from test code that cannot include kernels/simt/simt.h: that
// header and the CUDA runtime's both define the CUDA vector types, so a translation unit holds only
// one of them. Used by the Sim backend of tests/kernels/backends.h.
#pragma once

#include <memory>

namespace glia::testing {

// Runs the emulator under lane order 0 (forward), 1 (reverse) or 2 (seeded random) for its
// lifetime, then restores the previous configuration.
class SimLaneOrder {
 public:
  explicit SimLaneOrder(int order);
  ~SimLaneOrder();
  SimLaneOrder(const SimLaneOrder&) = delete;
  SimLaneOrder& operator=(const SimLaneOrder&) = delete;

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

}  // namespace glia::testing
