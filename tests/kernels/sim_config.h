// The emulator's settings that the kernel tests change, reachable from test code that cannot
// include kernels/simt/simt.h: that header and the CUDA runtime's both define the CUDA vector
// types, so a translation unit holds only one of them. Used by the Sim backend of
// tests/kernels/backends.h.
#pragma once

#include <cstdint>
#include <memory>

namespace glia::testing {

// The grid limit of the Sim backend's reverse-order run and second random run: with it every
// grid-stride kernel, the transpose's row tiles and batches and the GEMM's batches loop over blocks
// on inputs of a few hundred elements, so a bug in a loop's later passes shows on sim. Under the
// random order warps also run ahead of each other, so a block that loops without a barrier before
// it reuses its shared memory (the batch norm reductions' channel loop) shows too.
inline constexpr unsigned kSimLoweredGridLimit = 2;

// Runs the emulator under lane order 0 (forward), 1 (reverse, with the grid limit lowered to
// kSimLoweredGridLimit), 2 (seeded random) or 3 (seeded random with the grid limit lowered) for
// its lifetime, then restores the previous configuration.
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

// The number of kernel launches the emulator was asked for so far in this process.
std::uint64_t sim_launch_count();

}  // namespace glia::testing
