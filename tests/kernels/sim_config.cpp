// SimLaneOrder (see sim_lane_order.h) over the emulator's scoped configuration.
#include "tests/kernels/sim_lane_order.h"

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
  return c;
}

}  // namespace

SimLaneOrder::SimLaneOrder(int order)
    : saved_(new Saved{simt::ScopedConfig(lane_order_config(order))}) {}

SimLaneOrder::~SimLaneOrder() = default;

}  // namespace glia::testing
