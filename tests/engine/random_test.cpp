// The Philox generator and random fills: offset bookkeeping (ceil(n / 4) blocks per fill),
// reproducibility from a seed, that consecutive fills continue one stream, and that cpu, sim and
// cuda produce the same numbers for the same seed and offset. Tests engine/random.h.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "engine/random.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using glia::testing::all_close;
using glia::testing::all_equal;

TEST(RandomTest, OffsetAdvancesByPhiloxBlocks) {
  Generator g(7);
  Tensor x = empty({10});
  uniform_(x, 0, 1, &g);
  EXPECT_EQ(g.offset(), 3u);  // ceil(10 / 4)
  Tensor y = empty({4});
  normal_(y, 0, 1, &g);
  EXPECT_EQ(g.offset(), 4u);
  g.manual_seed(9);
  EXPECT_EQ(g.seed(), 9u);
  EXPECT_EQ(g.offset(), 0u);
}

TEST(RandomTest, SameSeedSameNumbersAndFillsContinueTheStream) {
  Generator a(42), b(42);
  const Tensor x = rand({16}, {}, &a);
  EXPECT_EQ(x.to_vector<float>(), rand({16}, {}, &b).to_vector<float>());
  // Two fills of 8 (a multiple of 4) read the blocks one fill of 16 reads.
  Generator c(42);
  const std::vector<float> first = rand({8}, {}, &c).to_vector<float>();
  const std::vector<float> second = rand({8}, {}, &c).to_vector<float>();
  const std::vector<float> whole = x.to_vector<float>();
  EXPECT_EQ(first, std::vector<float>(whole.begin(), whole.begin() + 8));
  EXPECT_EQ(second, std::vector<float>(whole.begin() + 8, whole.end()));
  Generator d(43);
  EXPECT_NE(rand({16}, {}, &d).to_vector<float>(), whole);
}

TEST(RandomTest, DefaultGeneratorFollowsManualSeed) {
  manual_seed(5);
  const std::vector<float> first = randn({9}).to_vector<float>();
  manual_seed(5);
  EXPECT_EQ(randn({9}).to_vector<float>(), first);
  EXPECT_EQ(default_generator().offset(), 3u);
}

TEST(RandomTest, FillsHaveTheRightRangeAndMoments) {
  Generator g(1);
  const std::vector<float> u = rand({20000}, {}, &g).to_vector<float>();
  for (float v : u) ASSERT_TRUE(v >= 0.0f && v < 1.0f) << v;
  Tensor scaled = empty({1000});
  uniform_(scaled, -3, -2, &g);
  for (float v : scaled.to_vector<float>()) ASSERT_TRUE(v >= -3.0f && v < -2.0f) << v;
  const std::vector<float> n = randn({20000}, {}, &g).to_vector<float>();
  const double mean = std::accumulate(n.begin(), n.end(), 0.0) / n.size();
  double var = 0;
  for (float v : n) var += (v - mean) * (v - mean);
  var /= n.size();
  // 20000 samples: the standard error of the mean is 0.007, of the variance 0.01.
  EXPECT_NEAR(mean, 0.0, 0.05);
  EXPECT_NEAR(var, 1.0, 0.05);
}

TEST(RandomTest, F64FillIsTheF32FillConverted) {
  Generator a(3), b(3);
  Tensor d = empty({11}, {.dtype = DType::f64});
  normal_(d, 1.0, 2.0, &a);
  Tensor f = empty({11});
  normal_(f, 1.0, 2.0, &b);
  const std::vector<float> fv = f.to_vector<float>();
  EXPECT_TRUE(all_equal(d.to_vector<double>(), std::vector<double>(fv.begin(), fv.end())));
}

class RandomOnDevice : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(GetParam()); }
};

TEST_P(RandomOnDevice, SameNumbersAsCpuForSameSeedAndOffset) {
  for (index_t n : {1, 7, 64, 1001}) {
    Generator on_cpu(11), on_device(11);
    on_cpu.set_offset(5);
    on_device.set_offset(5);
    Tensor u_cpu = empty({n}), u_dev = empty({n}, {.device = GetParam()});
    uniform_(u_cpu, -1, 3, &on_cpu);
    uniform_(u_dev, -1, 3, &on_device);
    EXPECT_TRUE(all_equal(u_dev.to_vector<float>(), u_cpu.to_vector<float>())) << "n = " << n;
    Tensor n_cpu = empty({n}), n_dev = empty({n}, {.device = GetParam()});
    normal_(n_cpu, 0.5, 2, &on_cpu);
    normal_(n_dev, 0.5, 2, &on_device);
    // Box-Muller calls log/sin/cos, whose float results may differ by an ulp between the host
    // library and the device's.
    EXPECT_TRUE(all_close(n_dev.to_vector<float>(), n_cpu.to_vector<float>())) << "n = " << n;
    EXPECT_EQ(on_cpu.offset(), on_device.offset());
  }
}

INSTANTIATE_TEST_SUITE_P(Sim, RandomOnDevice, ::testing::Values(Device::sim()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, RandomOnDevice, ::testing::Values(Device::cuda()),
                         glia::testing::device_param_name);

}  // namespace
}  // namespace glia
