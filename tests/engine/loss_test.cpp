// The losses and small layer ops of engine/losses.h. Every loss, each reduction, with and without
// a per-sample weight (zero and negative weights included): the f64 cpu backward against central
// finite differences, the f64 values against the straightforward double formulas written out
// below (PyTorch's definitions, independent of the kernels' stable forms), and the sim and cuda
// forward and backward against cpu in f32 (cuda skipped without a GPU). Also Dice's empty/empty
// case, a zero total weight, dropout's mask (same on cpu and sim, eval identity, scale, keep rate),
// concat/split round trips and gradients, linear, and the errors naming shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "engine/losses.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "tests/common/gradcheck.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using glia::testing::all_close;
using glia::testing::host_doubles;
using glia::testing::random_tensor;
using glia::testing::Tolerance;

using V = const std::vector<Tensor>&;
using LossFn = std::function<Tensor(V)>;
// f32 results (as doubles) against f32 results of another backend.
constexpr Tolerance kF32 = glia::testing::default_tolerance<float>();

const char* reduction_name(Reduction r) {
  return r == Reduction::mean ? "mean" : r == Reduction::sum ? "sum" : "none";
}

// --- the reference: straightforward double formulas ----------------------------------------

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// Per-sample values l_n and denominators d_n, reduced as engine/losses.h defines.
std::vector<double> reduce_ref(const std::vector<double>& l, const std::vector<double>& weight,
                               const std::vector<double>& denominator, Reduction r) {
  double num = 0.0, den = 0.0;
  std::vector<double> none;
  for (std::size_t n = 0; n < l.size(); ++n) {
    const double s = weight.empty() ? 1.0 : std::max(weight[n], 0.0);
    const double d = denominator.empty() ? 1.0 : denominator[n];
    none.push_back(s * l[n]);
    num += s * l[n];
    den += s * d;
  }
  if (r == Reduction::none) return none;
  if (r == Reduction::sum) return {num};
  return {den > 0 ? num / den : 0.0};
}

struct Problem {
  std::vector<double> x;              // logits, [n, elements] or [n, classes]
  std::vector<double> t;              // float targets of x's shape (BCE, Dice)
  std::vector<std::int32_t> classes;  // class targets [n] (cross-entropy, focal)
  std::vector<double> per_class;      // class weight / alpha, may be empty
  index_t n = 0, m = 0;               // samples and elements (or classes) per sample
};

std::vector<double> bce_ref(const Problem& p, double pos_weight) {
  std::vector<double> l(static_cast<std::size_t>(p.n), 0.0);
  for (index_t n = 0; n < p.n; ++n) {
    for (index_t e = 0; e < p.m; ++e) {
      const double x = p.x[n * p.m + e], t = p.t[n * p.m + e];
      l[n] -= pos_weight * t * std::log(sigmoid(x)) + (1 - t) * std::log(1 - sigmoid(x));
    }
    l[n] /= static_cast<double>(p.m);
  }
  return l;
}

std::vector<double> dice_ref(const Problem& p, double smooth) {
  std::vector<double> l;
  for (index_t n = 0; n < p.n; ++n) {
    double inter = 0, sp = 0, st = 0;
    for (index_t e = 0; e < p.m; ++e) {
      const double q = sigmoid(p.x[n * p.m + e]), t = p.t[n * p.m + e];
      inter += q * t;
      sp += q;
      st += t;
    }
    l.push_back(1.0 - (2 * inter + smooth) / (sp + st + smooth));
  }
  return l;
}

std::vector<double> log_softmax_row(const Problem& p, index_t n) {
  double z = 0;
  for (index_t c = 0; c < p.m; ++c) z += std::exp(p.x[n * p.m + c]);
  std::vector<double> out;
  for (index_t c = 0; c < p.m; ++c) out.push_back(std::log(std::exp(p.x[n * p.m + c]) / z));
  return out;
}

double class_weight_of(const Problem& p, index_t c) {
  return p.per_class.empty() ? 1.0 : p.per_class[c];
}

// PyTorch's cross_entropy(weight, label_smoothing): the mean divides by sum_n w[t_n].
std::vector<double> cross_entropy_ref(const Problem& p, double eps, std::vector<double>* den) {
  std::vector<double> l;
  for (index_t n = 0; n < p.n; ++n) {
    const std::vector<double> logp = log_softmax_row(p, n);
    const index_t t = p.classes[n];
    double smooth = 0;
    for (index_t c = 0; c < p.m; ++c) smooth += class_weight_of(p, c) * logp[c];
    l.push_back(-(1 - eps) * class_weight_of(p, t) * logp[t] - eps / p.m * smooth);
    if (!p.per_class.empty()) den->push_back(class_weight_of(p, t));
  }
  return l;
}

std::vector<double> focal_ref(const Problem& p, double gamma) {
  std::vector<double> l;
  for (index_t n = 0; n < p.n; ++n) {
    const index_t t = p.classes[n];
    const double logp = log_softmax_row(p, n)[t];
    l.push_back(-class_weight_of(p, t) * std::pow(1 - std::exp(logp), gamma) * logp);
  }
  return l;
}

// --- the cases -----------------------------------------------------------------------------

struct LossCase {
  std::string name;
  Problem problem;
  Shape shape;                        // of the logits
  std::vector<double> sample_weight;  // may be empty
  LossFn fn;  // inputs: logits, float target or i32 classes, sample weight, per-class tensor
  std::vector<double> expected;
};

void PrintTo(const LossCase& c, std::ostream* os) {
  *os << c.name;
}

// Inputs of a case as tensors of `dtype` on `device` (class targets stay i32).
std::vector<Tensor> inputs_of(const LossCase& c, DType dtype, Device device) {
  const Problem& p = c.problem;
  const auto floats = [&](const std::vector<double>& v, const Shape& shape) {
    return v.empty() ? Tensor() : from_vector(v, shape).to(dtype).to(device);
  };
  Tensor target =
      p.classes.empty() ? floats(p.t, c.shape) : from_vector(p.classes, {p.n}).to(device);
  return {floats(p.x, c.shape), target, floats(c.sample_weight, {p.n}), floats(p.per_class, {p.m})};
}

Problem make_problem(const Shape& shape, bool class_targets, bool per_class, unsigned seed) {
  Problem p;
  p.n = shape[0];
  p.m = shape_numel(shape) / p.n;
  p.x = host_doubles(random_tensor(shape, -3.0, 3.0, seed, DType::f64));
  if (class_targets) {
    const std::vector<double> u =
        host_doubles(random_tensor({p.n}, 0.0, 1.0, seed + 1, DType::f64));
    for (double v : u) p.classes.push_back(static_cast<std::int32_t>(v * static_cast<double>(p.m)));
    if (per_class) p.per_class = host_doubles(random_tensor({p.m}, 0.2, 2.0, seed + 2, DType::f64));
  } else {
    p.t = host_doubles(random_tensor(shape, 0.0, 1.0, seed + 1, DType::f64));
    for (std::size_t i = 0; i < p.t.size(); i += 2) p.t[i] = p.t[i] < 0.5 ? 0.0 : 1.0;
  }
  return p;
}

std::vector<double> sample_weights(index_t n) {
  std::vector<double> w;
  for (index_t i = 0; i < n; ++i) w.push_back(i % 3 == 1 ? 0.0 : i % 3 == 2 ? -0.5 : 0.5 + i);
  if (n == 1) w = {1.5};
  return w;
}

std::vector<LossCase> loss_cases() {
  std::vector<LossCase> cases;
  unsigned seed = 1;
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    for (bool weighted : {false, true}) {
      const std::string suffix =
          std::string("_") + reduction_name(r) + (weighted ? "_weighted" : "");
      const auto add = [&](std::string name, const Shape& shape, bool class_targets, bool per_class,
                           auto per_sample, auto fn) {
        LossCase c;
        c.name = name + suffix;
        c.shape = shape;
        c.problem = make_problem(shape, class_targets, per_class, seed += 7);
        if (weighted) c.sample_weight = sample_weights(shape[0]);
        std::vector<double> den;
        const std::vector<double> l = per_sample(c.problem, &den);
        c.expected = reduce_ref(l, c.sample_weight, den, r);
        c.fn = [fn, r](V in) { return fn(in, r); };
        cases.push_back(std::move(c));
      };
      for (const Shape& shape : {Shape{3, 2, 5}, Shape{1, 7}, Shape{4, 1, 3, 2}}) {
        const std::string dims = std::to_string(shape.size()) + "d" + std::to_string(shape[0]);
        add(
            "bce_" + dims, shape, false, false,
            [](const Problem& p, std::vector<double>*) { return bce_ref(p, 1.0); },
            [](V in, Reduction r) {
              return binary_cross_entropy_with_logits(in[0], in[1], r, in[2]);
            });
        add(
            "bce_pos_weight_" + dims, shape, false, false,
            [](const Problem& p, std::vector<double>*) { return bce_ref(p, 2.5); },
            [](V in, Reduction r) {
              return binary_cross_entropy_with_logits(in[0], in[1], r, in[2], 2.5);
            });
        add(
            "dice_" + dims, shape, false, false,
            [](const Problem& p, std::vector<double>*) { return dice_ref(p, 1.0); },
            [](V in, Reduction r) { return dice_loss(in[0], in[1], r, in[2]); });
        add(
            "dice_smooth0_" + dims, shape, false, false,
            [](const Problem& p, std::vector<double>*) { return dice_ref(p, 0.0); },
            [](V in, Reduction r) { return dice_loss(in[0], in[1], r, in[2], 0.0); });
        add(
            "dice_bce_" + dims, shape, false, false,
            [](const Problem& p, std::vector<double>*) {
              const std::vector<double> d = dice_ref(p, 1.0), b = bce_ref(p, 1.0);
              std::vector<double> l;
              for (std::size_t i = 0; i < d.size(); ++i) l.push_back(0.3 * d[i] + 0.7 * b[i]);
              return l;
            },
            [](V in, Reduction r) {
              return dice_bce_loss(in[0], in[1], r, in[2], {.dice_weight = 0.3, .bce_weight = 0.7});
            });
      }
      for (const Shape& shape : {Shape{5, 3}, Shape{1, 2}, Shape{4, 17}}) {
        const std::string dims = std::to_string(shape[0]) + "x" + std::to_string(shape[1]);
        add(
            "cross_entropy_" + dims, shape, true, false,
            [](const Problem& p, std::vector<double>* d) { return cross_entropy_ref(p, 0.0, d); },
            [](V in, Reduction r) { return cross_entropy(in[0], in[1], r, in[2]); });
        add(
            "cross_entropy_weighted_smoothed_" + dims, shape, true, true,
            [](const Problem& p, std::vector<double>* d) { return cross_entropy_ref(p, 0.1, d); },
            [](V in, Reduction r) { return cross_entropy(in[0], in[1], r, in[2], in[3], 0.1); });
        add(
            "focal_" + dims, shape, true, false,
            [](const Problem& p, std::vector<double>*) { return focal_ref(p, 2.0); },
            [](V in, Reduction r) { return focal_loss(in[0], in[1], r, in[2]); });
        add(
            "focal_alpha_gamma_half_" + dims, shape, true, true,
            [](const Problem& p, std::vector<double>*) { return focal_ref(p, 0.5); },
            [](V in, Reduction r) { return focal_loss(in[0], in[1], r, in[2], 0.5, in[3]); });
      }
    }
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<LossCase>& info) {
  return info.param.name;
}

class Losses : public ::testing::TestWithParam<LossCase> {};

TEST_P(Losses, ValuesMatchTheDoubleFormulas) {
  const LossCase& c = GetParam();
  const Tensor loss = c.fn(inputs_of(c, DType::f64, Device::cpu()));
  EXPECT_TRUE(all_close(host_doubles(loss), c.expected, Tolerance{1e-12, 1e-10}));
}

TEST_P(Losses, GradcheckF64) {
  const LossCase& c = GetParam();
  std::vector<Tensor> in = inputs_of(c, DType::f64, Device::cpu());
  // Only the logits are differentiated (and gradcheck takes only f64 tensors): the targets and
  // weights stay fixed.
  const GradcheckResult r = gradcheck(
      [&](V logits) {
        std::vector<Tensor> all = in;
        all[0] = logits[0];
        return c.fn(all);
      },
      {in[0]});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_GT(r.checked, 0u);
}

INSTANTIATE_TEST_SUITE_P(Cpu, Losses, ::testing::ValuesIn(loss_cases()), case_name);

// sim and cuda in f32 against cpu in f32: the loss and the logits' gradient of sum(loss).
class LossesVsCpu : public ::testing::TestWithParam<std::tuple<Device, LossCase>> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(std::get<0>(GetParam())); }
};

std::pair<std::vector<double>, std::vector<double>> loss_and_grad(const LossCase& c, Device d) {
  std::vector<Tensor> in = inputs_of(c, DType::f32, d);
  in[0].set_requires_grad(true);
  const Tensor loss = c.fn(in);
  sum(loss).backward();
  return {host_doubles(loss), host_doubles(in[0].grad())};
}

TEST_P(LossesVsCpu, ForwardAndBackwardMatchCpu) {
  const auto& [device, c] = GetParam();
  const auto [loss, grad] = loss_and_grad(c, device);
  const auto [loss_ref, grad_ref] = loss_and_grad(c, Device::cpu());
  EXPECT_TRUE(all_close(loss, loss_ref, kF32));
  EXPECT_TRUE(all_close(grad, grad_ref, kF32));
}

std::string vs_cpu_name(const ::testing::TestParamInfo<std::tuple<Device, LossCase>>& info) {
  return std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(Sim, LossesVsCpu,
                         ::testing::Combine(::testing::Values(Device::sim()),
                                            ::testing::ValuesIn(loss_cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(Cuda, LossesVsCpu,
                         ::testing::Combine(::testing::Values(Device::cuda()),
                                            ::testing::ValuesIn(loss_cases())),
                         vs_cpu_name);

// --- special values ----------------------------------------------------------------------------

const double kInf = std::numeric_limits<double>::infinity();

class LossDevices : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(GetParam()); }
};

// An empty prediction (logits -inf, p = 0) of an empty target: a perfect match, loss exactly 0
// and a zero gradient, with smooth 1 and with smooth 0 (the explicit 0 / 0 case).
TEST_P(LossDevices, DiceOfEmptyTargetAndPredictionIsZero) {
  for (double smooth : {1.0, 0.0}) {
    const Tensor x = full({2, 1, 3, 3}, -kInf, {.device = GetParam()}).set_requires_grad(true);
    const Tensor loss =
        dice_loss(x, zeros({2, 1, 3, 3}, {.device = GetParam()}), Reduction::mean, {}, smooth);
    loss.backward();
    EXPECT_EQ(loss.to(Device::cpu()).item<float>(), 0.0f) << "smooth " << smooth;
    for (double g : host_doubles(x.grad())) EXPECT_EQ(g, 0.0);
  }
}

TEST_P(LossDevices, ZeroTotalWeightGivesZeroNotNan) {
  const TensorOptions on{.device = GetParam()};
  Tensor x = random_tensor({3, 4}, -2, 2, 9).to(GetParam()).set_requires_grad(true);
  const Tensor t = random_tensor({3, 4}, 0, 1, 10).to(GetParam());
  const Tensor w = zeros({3}, on);
  const Tensor classes = from_vector(std::vector<std::int32_t>{0, 3, 1}, {3}).to(GetParam());
  for (const Tensor& loss :
       {binary_cross_entropy_with_logits(x, t, Reduction::mean, w),
        dice_loss(x, t, Reduction::mean, w), dice_bce_loss(x, t, Reduction::mean, w),
        cross_entropy(x, classes, Reduction::mean, w, ones({4}, on), 0.1),
        focal_loss(x, classes, Reduction::mean, w)}) {
    EXPECT_EQ(loss.to(Device::cpu()).item<float>(), 0.0f);
    loss.backward();
    for (double g : host_doubles(x.grad())) EXPECT_EQ(g, 0.0);
    x.zero_grad();
  }
}

// Samples longer than one segment (8192 elements) take the kernels' two-pass per-sample sums,
// with a workspace the op allocates.
TEST_P(LossDevices, LongSamplesMatchCpu) {
  const Tensor x = random_tensor({2, 1, 21, 20, 21}, -3, 3, 15);
  const Tensor t = random_tensor({2, 1, 21, 20, 21}, 0, 1, 16);
  const auto run = [&](Device d) {
    const Tensor xd = x.to(d).set_requires_grad(true);
    const Tensor loss = dice_bce_loss(xd, t.to(d));
    loss.backward();
    return std::pair{host_doubles(loss), host_doubles(xd.grad())};
  };
  const auto [loss, grad] = run(GetParam());
  const auto [loss_ref, grad_ref] = run(Device::cpu());
  EXPECT_TRUE(all_close(loss, loss_ref, kF32));
  EXPECT_TRUE(all_close(grad, grad_ref, kF32));
}

// --- dropout -----------------------------------------------------------------------------------

TEST_P(LossDevices, DropoutMaskIsTheSameAsOnCpu) {
  const Tensor x = random_tensor({3, 5, 7}, 0.5, 2.0, 11);
  Generator on_cpu(77), on_device(77);
  const Tensor y_cpu = dropout(x, 0.4, true, &on_cpu);
  const Tensor xd = x.to(GetParam()).set_requires_grad(true);
  const Tensor y = dropout(xd, 0.4, true, &on_device);
  EXPECT_TRUE(
      glia::testing::all_equal(y.to(Device::cpu()).to_vector<float>(), y_cpu.to_vector<float>()));
  // The backward applies the same mask and scale: d sum(y) / dx = y / x.
  sum(y).backward();
  const std::vector<double> g = host_doubles(xd.grad()), yv = host_doubles(y_cpu),
                            xv = host_doubles(x);
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], yv[i] / xv[i], 1e-5);
  EXPECT_EQ(on_cpu.offset(), on_device.offset());
}

TEST(Dropout, EvalModeAndZeroRateAreIdentity) {
  const Tensor x = random_tensor({4, 6}, -1, 1, 12);
  EXPECT_TRUE(dropout(x, 0.5, false).shares_storage_with(x));
  EXPECT_TRUE(dropout(x, 0.0, true).shares_storage_with(x));
}

TEST(Dropout, RateOneGivesZerosAndZeroGradient) {
  const Tensor x = random_tensor({5, 3}, -1, 1, 13, DType::f64).set_requires_grad(true);
  const Tensor y = dropout(x, 1.0, true);
  sum(y).backward();
  for (double v : host_doubles(y)) EXPECT_EQ(v, 0.0);
  for (double g : host_doubles(x.grad())) EXPECT_EQ(g, 0.0);
}

// Kept values are x / (1 - p), and the kept fraction is near 1 - p (100k Bernoulli draws:
// standard deviation below 0.0016).
TEST(Dropout, ScalesKeptValuesAndKeepsAboutOneMinusP) {
  const double p = 0.3;
  const Tensor x = ones({100000});
  Generator g(5);
  const std::vector<float> y = dropout(x, p, true, &g).to_vector<float>();
  double kept = 0;
  for (float v : y) {
    if (v != 0.0f) {
      EXPECT_FLOAT_EQ(v, static_cast<float>(1.0 / (1.0 - p)));
      ++kept;
    }
  }
  EXPECT_NEAR(kept / static_cast<double>(y.size()), 1.0 - p, 0.01);
  // The generator moved past the draw: a second call drops other elements.
  EXPECT_NE(dropout(x, p, true, &g).to_vector<float>(), y);
}

TEST(Dropout, GradcheckWithAFixedDraw) {
  const Tensor x = random_tensor({3, 4, 5}, -1, 1, 14, DType::f64);
  const GradcheckResult r = gradcheck(
      [](V in) {
        Generator g(3);
        return dropout(in[0], 0.35, true, &g);
      },
      {x});
  EXPECT_TRUE(r.ok) << r.message;
}

// --- concat, split, linear ---------------------------------------------------------------------

TEST(Layers, ConcatAndSplitRoundTripNchwAndFeatures) {
  for (const Shape& tail : {Shape{}, Shape{3, 5}, Shape{2, 2, 2}}) {
    std::vector<Tensor> parts;
    std::vector<index_t> sizes = {1, 4, 2};
    for (index_t c : sizes) {
      Shape shape{2, c};
      shape.insert(shape.end(), tail.begin(), tail.end());
      parts.push_back(random_tensor(shape, -1, 1, static_cast<unsigned>(20 + c)));
    }
    const Tensor whole = concat(parts);
    EXPECT_EQ(whole.size(1), 7);
    const std::vector<Tensor> back = split(whole, sizes);
    ASSERT_EQ(back.size(), parts.size());
    for (std::size_t k = 0; k < parts.size(); ++k) {
      EXPECT_EQ(back[k].shape(), parts[k].shape());
      EXPECT_EQ(back[k].to_vector<float>(), parts[k].to_vector<float>());
    }
  }
}

TEST(Layers, ConcatAndSplitGradcheck) {
  const Tensor a = random_tensor({2, 1, 3, 3}, -1, 1, 30, DType::f64);
  const Tensor b = random_tensor({2, 2, 3, 3}, -1, 1, 31, DType::f64);
  const Tensor c = random_tensor({2, 3, 3, 3}, -1, 1, 32, DType::f64);
  GradcheckResult r = gradcheck([](V in) { return concat({in[0], in[1], in[2]}); }, {a, b, c});
  EXPECT_TRUE(r.ok) << r.message;
  // Split and put back in another order, so each piece's backward lands in its own range.
  r = gradcheck(
      [](V in) {
        const std::vector<Tensor> p = split(in[0], {1, 0, 2});
        return concat({p[2], p[1], p[0]});
      },
      {c});
  EXPECT_TRUE(r.ok) << r.message;
  const Tensor f = random_tensor({4, 5}, -1, 1, 33, DType::f64);
  r = gradcheck([](V in) { return concat({in[0], in[1]}); }, {f, f.clone()});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Layers, LinearMatchesTheFormulaAndGradcheck) {
  const Tensor x = random_tensor({3, 5}, -1, 1, 40, DType::f64);
  const Tensor w = random_tensor({4, 5}, -1, 1, 41, DType::f64);
  const Tensor b = random_tensor({4}, -1, 1, 42, DType::f64);
  const std::vector<double> xv = host_doubles(x), wv = host_doubles(w), bv = host_doubles(b);
  std::vector<double> expected;
  for (int n = 0; n < 3; ++n) {
    for (int o = 0; o < 4; ++o) {
      double acc = bv[o];
      for (int i = 0; i < 5; ++i) acc += xv[n * 5 + i] * wv[o * 5 + i];
      expected.push_back(acc);
    }
  }
  EXPECT_TRUE(all_close(host_doubles(linear(x, w, b)), expected, Tolerance{1e-12, 1e-12}));
  GradcheckResult r = gradcheck([](V in) { return linear(in[0], in[1], in[2]); }, {x, w, b});
  EXPECT_TRUE(r.ok) << r.message;
  r = gradcheck([](V in) { return linear(in[0], in[1]); }, {x, w});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST_P(LossDevices, LayersMatchCpu) {
  const Device d = GetParam();
  const Tensor a = random_tensor({2, 3, 5}, -1, 1, 50), b = random_tensor({2, 2, 5}, -1, 1, 51);
  const Tensor da = a.to(d).set_requires_grad(true), db = b.to(d).set_requires_grad(true);
  const Tensor weights = random_tensor({2, 5, 5}, -1, 1, 52).to(d);
  const std::vector<Tensor> pieces = split(concat({da, db}), {4, 1});
  sum(mul(concat({pieces[1], pieces[0]}), weights)).backward();
  const Tensor ca = a.clone().set_requires_grad(true), cb = b.clone().set_requires_grad(true);
  const std::vector<Tensor> cpieces = split(concat({ca, cb}), {4, 1});
  sum(mul(concat({cpieces[1], cpieces[0]}), weights.to(Device::cpu()))).backward();
  EXPECT_TRUE(all_close(host_doubles(da.grad()), host_doubles(ca.grad()), kF32));
  EXPECT_TRUE(all_close(host_doubles(db.grad()), host_doubles(cb.grad()), kF32));

  const Tensor x = random_tensor({6, 7}, -1, 1, 53), w = random_tensor({3, 7}, -1, 1, 54),
               bias = random_tensor({3}, -1, 1, 55);
  EXPECT_TRUE(all_close(host_doubles(linear(x.to(d), w.to(d), bias.to(d))),
                        host_doubles(linear(x, w, bias)), kF32));
}

INSTANTIATE_TEST_SUITE_P(Sim, LossDevices, ::testing::Values(Device::sim()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, LossDevices, ::testing::Values(Device::cuda()),
                         glia::testing::device_param_name);

// --- errors ------------------------------------------------------------------------------------

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

void expect_mentions(const std::string& msg, std::initializer_list<const char*> parts) {
  for (const char* p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

TEST(LossErrors, NameTheShapes) {
  const Tensor x = zeros({3, 4});
  const Tensor classes = from_vector(std::vector<std::int32_t>{0, 1, 2}, {3});
  expect_mentions(error_of([&] {
                    (void)binary_cross_entropy_with_logits(x, zeros({3, 5}));
                  }),
                  {"binary_cross_entropy_with_logits", "[3, 5]", "[3, 4]"});
  expect_mentions(error_of([&] {
                    (void)dice_loss(x, zeros({3, 4}), Reduction::mean, ones({2}));
                  }),
                  {"dice_loss", "[2]", "one per sample"});
  expect_mentions(error_of([&] { (void)cross_entropy(x, zeros({3})); }),
                  {"cross_entropy", "i32 [3]", "[3, 4]"});
  expect_mentions(
      error_of([&] { (void)cross_entropy(x, classes, Reduction::mean, {}, ones({3})); }),
      {"class weight", "[3]", "[4]"});
  expect_mentions(error_of([&] {
                    (void)focal_loss(zeros({3, 4, 1}), classes);
                  }),
                  {"focal_loss", "[3, 4, 1]", "[N, C]"});
  expect_mentions(error_of([&] {
                    (void)cross_entropy(x, from_vector(std::vector<std::int32_t>{0, 4, 1}, {3}));
                  }),
                  {"target 4", "row 1", "[0, 4)"});
  expect_mentions(error_of([&] { (void)dropout(x, 1.5, true); }), {"dropout", "1.5", "[3, 4]"});
  expect_mentions(error_of([&] {
                    (void)concat({x, zeros({2, 4})});
                  }),
                  {"concat", "[3, 4]", "[2, 4]"});
  expect_mentions(error_of([&] { (void)split(x, {1, 2}); }), {"split", "[3, 4]", "[1, 2]"});
  expect_mentions(error_of([&] {
                    (void)linear(x, zeros({5, 3}));
                  }),
                  {"linear", "[3, 4]", "[5, 3]"});
  expect_mentions(error_of([&] {
                    (void)linear(x, zeros({5, 4}), zeros({4}));
                  }),
                  {"bias", "[4]", "[out]"});
}

}  // namespace
}  // namespace glia
