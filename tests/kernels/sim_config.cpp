// SimLaneOrder and sim_launch_count (see sim_config.h) over the emulator's configuration.
#include "tests/kernels/sim_config.h"

#include "kernels/simt/simt.h"

namespace glia::testing {

struct SimLaneOrder::Saved {
  simt::ScopedConfig scope;
};

namespace {

simt::Config lane_order_config(int order) {
  simt::Config c = simt::config();
  c.order = order == 0   ? simt::LaneOrder::forward
            : order == 1 ? simt::LaneOrder::reverse
                         : simt::LaneOrder::random;
  c.seed = 20261125;
  if (order == 1 || order == 3) c.grid_limit = kSimLoweredGridLimit;
  return c;
}

}  // namespace

SimLaneOrder::SimLaneOrder(int order)
    : saved_(new Saved{simt::ScopedConfig(lane_order_config(order))}) {}

SimLaneOrder::~SimLaneOrder() = default;

std::uint64_t sim_launch_count() {
  return simt::launch_count();
}

}  // namespace glia::testing
