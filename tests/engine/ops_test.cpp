// Every op, forward and backward, over one table of cases (shapes with odd sizes, broadcasting
// across ranks and size-1 dims on either side, reductions over one or several axes, every matmul
// form): the cpu backward against central finite differences in f64 (Ops/...), then the sim and
// cuda forward and backward against cpu in f32 (Sim/..., Cuda/...; the latter skipped without a
// GPU). Also the errors of mismatched operands. Tests engine/ops.h.
#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "engine/ops.h"
#include "tests/common/gradcheck.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using testing::error_of;

using glia::testing::all_close;
using glia::testing::host_doubles;
using glia::testing::random_tensor;
using glia::testing::Tolerance;

struct Input {
  Input(Shape shape, double lo = -2.0, double hi = 2.0) : shape(std::move(shape)), lo(lo), hi(hi) {}
  Shape shape;
  double lo, hi;  // drawn uniformly from [lo, hi)
};

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  OpCase(std::string name, OpFn fn, std::vector<Input> inputs, std::vector<double> kinks = {},
         Tolerance tol = glia::testing::default_tolerance<float>())
      : name(std::move(name)),
        fn(std::move(fn)),
        inputs(std::move(inputs)),
        kinks(std::move(kinks)),
        tol(tol) {}
  std::string name;
  OpFn fn;
  std::vector<Input> inputs;
  std::vector<double> kinks;  // input values where the op is not differentiable
  Tolerance tol;              // of the float32 comparison of sim/cuda against cpu
};

void PrintTo(const OpCase& c, std::ostream* os) {
  *os << c.name;
}

using V = const std::vector<Tensor>&;
const Input kPositive{{4, 5}, 0.5, 2.0};
// Sums of k products of values below 2 in magnitude round at about k * 4 * 2^-24 each.
constexpr Tolerance kGemmTol{1e-4, 1e-4};

std::vector<OpCase> op_cases() {
  return {
      {"add_same_shape", [](V x) { return x[0] + x[1]; }, {{{3, 5}}, {{3, 5}}}},
      {"add_broadcast_rank", [](V x) { return x[0] + x[1]; }, {{{2, 3, 5}}, {{5}}}},
      {"add_broadcast_both_sides", [](V x) { return add(x[0], x[1]); }, {{{4, 1, 3}}, {{2, 1}}}},
      {"sub_broadcast", [](V x) { return x[0] - x[1]; }, {{{7, 1}}, {{1, 9}}}},
      {"mul_broadcast", [](V x) { return x[0] * x[1]; }, {{{2, 3, 4}}, {{3, 1}}}},
      {"div_broadcast", [](V x) { return x[0] / x[1]; }, {{{5, 3}}, {{1, 3}, 0.5, 2.0}}},
      {"div_scalar_tensor", [](V x) { return x[0] / x[1]; }, {{{3, 4}}, {{}, 0.5, 2.0}}},
      {"add_scalar", [](V x) { return x[0] + 2.5; }, {{{3, 7}}}},
      {"sub_scalar", [](V x) { return x[0] - 1.5; }, {{{3, 7}}}},
      {"rsub_scalar", [](V x) { return 3.0 - x[0]; }, {{{3, 7}}}},
      {"mul_scalar", [](V x) { return x[0] * -2.0; }, {{{3, 7}}}},
      {"div_scalar", [](V x) { return x[0] / 4.0; }, {{{3, 7}}}},
      {"rdiv_scalar", [](V x) { return 2.0 / x[0]; }, {kPositive}},
      {"neg", [](V x) { return -x[0]; }, {{{6, 5}}}},
      {"exp", [](V x) { return exp(x[0]); }, {{{6, 5}}}},
      {"log", [](V x) { return log(x[0]); }, {kPositive}},
      {"sqrt", [](V x) { return sqrt(x[0]); }, {kPositive}},
      {"pow_integer", [](V x) { return pow(x[0], 3.0); }, {{{6, 5}}}},
      {"pow_fraction", [](V x) { return pow(x[0], 2.5); }, {kPositive}},
      {"relu", [](V x) { return relu(x[0]); }, {{{6, 5}}}, {0.0}},
      {"sigmoid", [](V x) { return sigmoid(x[0]); }, {{{6, 5}}}},
      {"tanh", [](V x) { return tanh(x[0]); }, {{{6, 5}}}},
      {"clamp", [](V x) { return clamp(x[0], -0.5, 0.7); }, {{{6, 5}}}, {-0.5, 0.7}},
      {"abs", [](V x) { return abs(x[0]); }, {{{6, 5}}}, {0.0}},
      {"sum_all", [](V x) { return sum(x[0]); }, {{{4, 5, 6}}}},
      {"sum_middle_axis", [](V x) { return sum(x[0], {1}); }, {{{4, 5, 6}}}},
      {"sum_two_axes_keepdim",
       [](V x) {
         return sum(x[0], {0, 2}, true);
       },
       {{{4, 5, 6}}}},
      {"sum_last_axis_odd", [](V x) { return sum(x[0], {-1}); }, {{{3, 37}}}},
      {"mean_all", [](V x) { return mean(x[0]); }, {{{5, 7}}}},
      {"mean_two_axes",
       [](V x) {
         return mean(x[0], {0, 2});
       },
       {{{4, 5, 6}}}},
      {"max_middle_axis", [](V x) { return max(x[0], 1).values; }, {{{4, 5, 6}}}},
      {"max_first_axis_keepdim", [](V x) { return max(x[0], 0, true).values; }, {{{7, 3}}}},
      {"reshape_then_broadcast",
       [](V x) {
         return x[0].reshape({2, -1}) * x[1];
       },
       {{{4, 6}}, {{12}}}},
      {"transpose", [](V x) { return transpose(x[0]); }, {{{3, 4, 5}}}},
      {"matmul_2d", [](V x) { return matmul(x[0], x[1]); }, {{{5, 7}}, {{7, 3}}}, {}, kGemmTol},
      {"matmul_odd_sizes",
       [](V x) { return matmul(x[0], x[1]); },
       {{{17, 33}}, {{33, 9}}},
       {},
       kGemmTol},
      {"matmul_batched",
       [](V x) { return matmul(x[0], x[1]); },
       {{{2, 4, 6}}, {{2, 6, 3}}},
       {},
       kGemmTol},
      {"matmul_batch_by_matrix",
       [](V x) { return matmul(x[0], x[1]); },
       {{{2, 3, 4}}, {{4, 5}}},
       {},
       kGemmTol},
      {"composite_layer",
       [](V x) { return tanh(matmul(x[0], x[1]) + x[2]) * sum(sigmoid(x[0])); },
       {{{3, 4}}, {{4, 5}}, {{5}}},
       {},
       kGemmTol},
  };
}

std::vector<Tensor> make_inputs(const OpCase& c, DType dtype, Device device, bool requires_grad) {
  std::vector<Tensor> xs;
  unsigned seed = 17;
  for (const Input& in : c.inputs) {
    Tensor t = random_tensor(in.shape, in.lo, in.hi, seed++, dtype, device);
    t.set_requires_grad(requires_grad);
    xs.push_back(t);
  }
  return xs;
}

// --- cpu backward against finite differences (f64) -------------------------------------------

class OpGradcheck : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpGradcheck, MatchesFiniteDifferences) {
  const OpCase& c = GetParam();
  GradcheckOptions options;
  options.kinks = c.kinks;
  const GradcheckResult r =
      gradcheck(c.fn, make_inputs(c, DType::f64, Device::cpu(), true), options);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_GT(r.checked, 0u) << r.message;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpGradcheck, ::testing::ValuesIn(op_cases()),
                         [](const auto& info) { return info.param.name; });

// --- sim and cuda against cpu (f32) -----------------------------------------------------------

class OpVsCpu : public ::testing::TestWithParam<std::tuple<Device, OpCase>> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(device()); }
  Device device() const { return std::get<0>(GetParam()); }
  const OpCase& op() const { return std::get<1>(GetParam()); }
};

TEST_P(OpVsCpu, ForwardMatchesCpu) {
  const std::vector<Tensor> on_cpu = make_inputs(op(), DType::f32, Device::cpu(), false);
  std::vector<Tensor> on_device;
  for (const Tensor& t : on_cpu) on_device.push_back(t.to(device()));
  const Tensor want = op().fn(on_cpu);
  const Tensor got = op().fn(on_device);
  ASSERT_EQ(got.device(), device());
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_TRUE(all_close(host_doubles(got), host_doubles(want), op().tol));
}

TEST_P(OpVsCpu, BackwardMatchesCpu) {
  // The gradients of sum(f(x) * w) for fixed random weights w.
  auto grads = [&](Device d) {
    const std::vector<Tensor> xs = make_inputs(op(), DType::f32, d, true);
    const Tensor y = op().fn(xs);
    const Tensor w = random_tensor(y.shape(), -1.0, 1.0, 99, DType::f32, d);
    sum(y * w).backward();
    std::vector<std::vector<double>> out;
    for (const Tensor& x : xs) {
      EXPECT_TRUE(x.grad().defined());
      if (x.grad().defined()) out.push_back(host_doubles(x.grad()));
    }
    return out;
  };
  const auto want = grads(Device::cpu());
  const auto got = grads(device());
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(all_close(got[i], want[i], op().tol)) << "gradient of input " << i;
  }
}

std::string vs_cpu_name(const ::testing::TestParamInfo<std::tuple<Device, OpCase>>& info) {
  return std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Sim, OpVsCpu,
                         ::testing::Combine(::testing::Values(Device::sim()),
                                            ::testing::ValuesIn(op_cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(Cuda, OpVsCpu,
                         ::testing::Combine(::testing::Values(Device::cuda()),
                                            ::testing::ValuesIn(op_cases())),
                         vs_cpu_name);

// Long reductions take the kernels' two-pass path (several blocks per output, with a workspace),
// too large for an element-by-element gradient check.
class LongReductionVsCpu : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(GetParam()); }
};

TEST_P(LongReductionVsCpu, SumAndMeanMatchCpu) {
  // 60003 float terms of magnitude below 2 summed in different orders: up to n * 2^-24 * 2 apart
  // in the worst case, far less in practice.
  const Tolerance tol{1e-2, 1e-4};
  const Tensor x = random_tensor({3, 20001}, -2, 2, 5);
  const Tensor d = x.to(GetParam());
  EXPECT_TRUE(all_close(host_doubles(sum(d)), host_doubles(sum(x)), tol));
  EXPECT_TRUE(all_close(host_doubles(mean(d)), host_doubles(mean(x)), tol));
  EXPECT_TRUE(all_close(host_doubles(sum(d, {-1})), host_doubles(sum(x, {-1})), tol));
  EXPECT_TRUE(all_close(host_doubles(max(d, 1).values), host_doubles(max(x, 1).values)));
}

INSTANTIATE_TEST_SUITE_P(Sim, LongReductionVsCpu, ::testing::Values(Device::sim()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, LongReductionVsCpu, ::testing::Values(Device::cuda()),
                         glia::testing::device_param_name);

// --- values that need no reference implementation --------------------------------------------

TEST(OpsTest, BroadcastShapes) {
  EXPECT_EQ(broadcast_shapes({2, 3, 5}, {5}), (Shape{2, 3, 5}));
  EXPECT_EQ(broadcast_shapes({4, 1, 3}, {2, 1}), (Shape{4, 2, 3}));
  EXPECT_EQ(broadcast_shapes({}, {3}), (Shape{3}));
  EXPECT_EQ(broadcast_shapes({1}, {}), (Shape{1}));
}

TEST(OpsTest, MaxReturnsFirstIndexOnTies) {
  const Tensor x = from_vector(std::vector<float>{1, 5, 5, 2, 0, -1}, {2, 3});
  const MaxResult m = max(x, -1);
  EXPECT_EQ(m.values.to_vector<float>(), (std::vector<float>{5, 2}));
  EXPECT_EQ(m.indices.dtype(), DType::i32);
  EXPECT_EQ(m.indices.to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, 0}));
  EXPECT_EQ(max(x, 0, true).values.shape(), (Shape{1, 3}));
}

TEST(OpsTest, SumToInvertsBroadcasting) {
  const Tensor g = ones({4, 2, 3});
  EXPECT_EQ(sum_to(g, {2, 1}).to_vector<float>(), (std::vector<float>{12, 12}));
  EXPECT_EQ(sum_to(g, {3}).to_vector<float>(), (std::vector<float>{8, 8, 8}));
  EXPECT_EQ(sum_to(g, {}).item<float>(), 24.0f);
}

// --- errors --------------------------------------------------------------------------------------

void expect_mentions(const std::string& msg, std::initializer_list<const char*> parts) {
  for (const char* p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

TEST(OpsTest, ErrorsNameShapesDTypesAndDevices) {
  const Tensor a = zeros({2, 3}), b = zeros({4});
  expect_mentions(error_of([&] { (void)(a + b); }), {"add", "[2, 3]", "[4]", "do not broadcast"});
  expect_mentions(error_of([&] {
                    (void)(a * zeros({2, 3}, {.device = Device::sim()}));
                  }),
                  {"mul", "on cpu", "on sim", ".to(device)"});
  expect_mentions(error_of([&] {
                    (void)(a - zeros({2, 3}, {.dtype = DType::f64}));
                  }),
                  {"sub", "f32 tensor", "f64 tensor", ".to(dtype)"});
  expect_mentions(error_of([&] { (void)exp(zeros({2}, {.dtype = DType::i32})); }),
                  {"exp", "i32 tensor [2] on cpu"});
  expect_mentions(error_of([&] {
                    (void)matmul(a, zeros({4, 5}));
                  }),
                  {"matmul", "[2, 3]", "[4, 5]", "inner dims differ (3 vs 4)"});
  expect_mentions(error_of([&] {
                    (void)matmul(zeros({2, 2, 3}), zeros({3, 3, 1}));
                  }),
                  {"batch sizes differ (2 vs 3)"});
  expect_mentions(error_of([&] { (void)matmul(zeros({3}), zeros({3})); }), {"[3]", "supported"});
  expect_mentions(error_of([&] { (void)sum(a, {2}); }), {"axis 2", "[2, 3]"});
  expect_mentions(error_of([&] { (void)sum(a, {1, -1}); }), {"given twice"});
  expect_mentions(error_of([&] { (void)clamp(a, 1.0, 0.0); }), {"lo <= hi"});
  expect_mentions(error_of([&] { (void)expand(b, {4, 2}); }), {"[4]", "[4, 2]"});
}

}  // namespace
}  // namespace glia
