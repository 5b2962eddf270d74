// The optimisers, gradient clipping and learning-rate schedules of engine/optim:
// - SGD (plain, momentum, Nesterov), Adam and AdamW over two parameter groups with different lr,
//   weight decay and per-group overrides, several steps (one parameter without a gradient in one
//   of them), against straightforward double implementations written here: on cpu in f64 (tight)
//   and f32; on sim and cuda against cpu in f32;
// - each optimiser minimises a quadratic; AdamW differs from Adam exactly by the decoupled decay;
// - clip_grad_norm_ (returned norm, scaled gradients, no-op under the limit, non-finite norms);
// - the schedules against their formulas evaluated by hand at chosen steps;
// - state export/import round trips; hyper-parameter errors name the value.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/optim/adam.h"
#include "engine/optim/clip_grad.h"
#include "engine/optim/schedule.h"
#include "engine/optim/sgd.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using glia::testing::all_close;
using glia::testing::all_equal;
using glia::testing::host_doubles;
using glia::testing::Tolerance;
using optim::ParamGroup;
using Values = std::vector<double>;

// Uniform values rounded to float, so the f32 and f64 runs start from the same numbers.
Values float_values(std::size_t n, double lo, double hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  Values v(n);
  for (double& x : v) x = static_cast<float>(dist(rng));
  return v;
}

Tensor make_tensor(const Values& v, const Shape& shape, DType dtype, Device device) {
  return from_vector(v, shape).to(dtype).to(device);
}

// --- straightforward double implementations, one state per parameter ---------------------------

struct RefSgd {
  double lr, momentum, weight_decay;
  bool nesterov;
  Values buf;
  void step(Values& p, const Values& g) {
    const bool first = buf.empty();
    if (first) buf.assign(p.size(), 0.0);
    for (std::size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + weight_decay * p[i];
      if (momentum != 0.0) {
        buf[i] = first ? d : momentum * buf[i] + d;
        d = nesterov ? d + momentum * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  }
};

struct RefAdam {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
  Values m, v;
  int t = 0;
  void step(Values& p, const Values& g) {
    if (m.empty()) {
      m.assign(p.size(), 0.0);
      v.assign(p.size(), 0.0);
    }
    ++t;
    for (std::size_t i = 0; i < p.size(); ++i) {
      double gi = g[i];
      if (decoupled) {
        p[i] *= 1.0 - lr * weight_decay;
      } else {
        gi += weight_decay * p[i];
      }
      m[i] = beta1 * m[i] + (1.0 - beta1) * gi;
      v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
      const double m_hat = m[i] / (1.0 - std::pow(beta1, t));
      const double v_hat = v[i] / (1.0 - std::pow(beta2, t));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

using RefStep = std::function<void(Values&, const Values&)>;

// One optimiser configuration: how to build it over two groups, and the reference step of a
// parameter of group g.
struct OptCase {
  std::string name;
  std::function<std::unique_ptr<optim::Optimizer>(std::vector<ParamGroup>)> make;
  std::function<RefStep(int group)> reference;
};

// Group 0: lr 0.1, weight decay 0.01; group 1: lr 0.03, no weight decay, and per-group
// overrides (momentum 0.5; beta1 0.8, eps 1e-6).
constexpr double kLr[] = {0.1, 0.03};
constexpr double kDecay[] = {0.01, 0.0};

std::vector<OptCase> opt_cases() {
  auto sgd = [](std::string name, double momentum, bool nesterov) {
    return OptCase{name,
                   [=](std::vector<ParamGroup> groups) {
                     groups[1].momentum = momentum == 0.0 ? 0.0 : 0.5;
                     return std::make_unique<optim::Sgd>(std::move(groups),
                                                         optim::SgdOptions{momentum, nesterov});
                   },
                   [=](int g) -> RefStep {
                     const double m = g == 0 ? momentum : (momentum == 0.0 ? 0.0 : 0.5);
                     return [r = RefSgd{kLr[g], m, kDecay[g], nesterov, {}}](
                                Values& p, const Values& grad) mutable { r.step(p, grad); };
                   }};
  };
  auto adam = [](std::string name, bool decoupled) {
    return OptCase{name,
                   [=](std::vector<ParamGroup> groups) -> std::unique_ptr<optim::Optimizer> {
                     groups[1].beta1 = 0.8;
                     groups[1].eps = 1e-6;
                     const optim::AdamOptions options{0.9, 0.99, 1e-8};
                     if (decoupled)
                       return std::make_unique<optim::AdamW>(std::move(groups), options);
                     return std::make_unique<optim::Adam>(std::move(groups), options);
                   },
                   [=](int g) -> RefStep {
                     RefAdam r{kLr[g],    g == 0 ? 0.9 : 0.8, 0.99, g == 0 ? 1e-8 : 1e-6,
                               kDecay[g], decoupled,          {},   {},
                               0};
                     return [r](Values& p, const Values& grad) mutable { r.step(p, grad); };
                   }};
  };
  return {sgd("sgd", 0.0, false), sgd("sgd_momentum", 0.9, false), sgd("sgd_nesterov", 0.9, true),
          adam("adam", false), adam("adamw", true)};
}

void PrintTo(const OptCase& c, std::ostream* os) {
  *os << c.name;
}

// Parameters of odd shapes: two in group 0, one in group 1.
const std::vector<Shape> kShapes = {{3, 5}, {7}, {2, 3, 4}};
constexpr int kGroupOf[] = {0, 0, 1};
constexpr int kSteps = 4;
// The step at which parameter 1 gets no gradient (the optimiser must skip it).
constexpr int kSkipStep = 2;
constexpr std::size_t kSkipped = 1;

struct Trajectory {
  std::vector<Values> initial;
  std::vector<std::vector<Values>> grads;  // [step][param]
};

Trajectory make_trajectory(unsigned seed) {
  Trajectory t;
  for (const Shape& s : kShapes) {
    t.initial.push_back(float_values(static_cast<std::size_t>(shape_numel(s)), -1, 1, ++seed));
  }
  for (int step = 0; step < kSteps; ++step) {
    t.grads.emplace_back();
    for (const Shape& s : kShapes) {
      t.grads.back().push_back(
          float_values(static_cast<std::size_t>(shape_numel(s)), -1, 1, ++seed));
    }
  }
  return t;
}

std::vector<Values> run_reference(const OptCase& c, const Trajectory& t) {
  std::vector<Values> p = t.initial;
  std::vector<RefStep> steps;
  for (std::size_t i = 0; i < p.size(); ++i) steps.push_back(c.reference(kGroupOf[i]));
  for (int step = 0; step < kSteps; ++step) {
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (step == kSkipStep && i == kSkipped) continue;
      steps[i](p[i], t.grads[step][i]);
    }
  }
  return p;
}

// Sets each parameter's gradient to `grads` through a backward pass of sum_i sum(p_i * c_i),
// whose gradient is exactly c_i; parameters whose `grads` entry is empty get none.
void set_grads(const std::vector<Tensor>& params, const std::vector<Values>& grads) {
  Tensor loss;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (grads[i].empty()) continue;
    const Tensor c =
        make_tensor(grads[i], params[i].shape(), params[i].dtype(), params[i].device());
    const Tensor term = sum(params[i] * c);
    loss = loss.defined() ? loss + term : term;
  }
  loss.backward();
}

std::vector<Tensor> make_params(const std::vector<Values>& initial, DType dtype, Device device) {
  std::vector<Tensor> params;
  for (std::size_t i = 0; i < initial.size(); ++i) {
    params.push_back(make_tensor(initial[i], kShapes[i], dtype, device).set_requires_grad(true));
  }
  return params;
}

std::vector<ParamGroup> two_groups(const std::vector<Tensor>& params) {
  return {{.params = {params[0], params[1]},
           .lr = kLr[0],
           .weight_decay = kDecay[0],
           .name = "encoder"},
          {.params = {params[2]}, .lr = kLr[1], .weight_decay = kDecay[1], .name = "head"}};
}

std::vector<Values> run_optimizer(const OptCase& c, const Trajectory& t, DType dtype,
                                  Device device) {
  const std::vector<Tensor> params = make_params(t.initial, dtype, device);
  const std::unique_ptr<optim::Optimizer> opt = c.make(two_groups(params));
  for (int step = 0; step < kSteps; ++step) {
    opt->zero_grad();
    std::vector<Values> grads = t.grads[step];
    if (step == kSkipStep) grads[kSkipped].clear();
    set_grads(params, grads);
    opt->step();
  }
  std::vector<Values> out;
  for (const Tensor& p : params) out.push_back(host_doubles(p));
  return out;
}

class OptimizerVsReference : public ::testing::TestWithParam<OptCase> {};

TEST_P(OptimizerVsReference, CpuMatchesDoubleImplementation) {
  const Trajectory t = make_trajectory(11);
  const std::vector<Values> ref = run_reference(GetParam(), t);
  const std::vector<Values> f64 = run_optimizer(GetParam(), t, DType::f64, Device::cpu());
  const std::vector<Values> f32 = run_optimizer(GetParam(), t, DType::f32, Device::cpu());
  for (std::size_t i = 0; i < ref.size(); ++i) {
    SCOPED_TRACE("parameter " + std::to_string(i));
    EXPECT_TRUE(all_close(f64[i], ref[i]));
    EXPECT_TRUE(all_close(f32[i], ref[i], glia::testing::default_tolerance<float>()));
  }
}

INSTANTIATE_TEST_SUITE_P(Optim, OptimizerVsReference, ::testing::ValuesIn(opt_cases()),
                         [](const auto& info) { return info.param.name; });

class OptimizerVsCpu : public ::testing::TestWithParam<std::tuple<Device, OptCase>> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(std::get<0>(GetParam())); }
};

TEST_P(OptimizerVsCpu, MatchesCpuInFloat) {
  const auto& [device, c] = GetParam();
  const Trajectory t = make_trajectory(23);
  const std::vector<Values> cpu = run_optimizer(c, t, DType::f32, Device::cpu());
  const std::vector<Values> got = run_optimizer(c, t, DType::f32, device);
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    SCOPED_TRACE("parameter " + std::to_string(i));
    EXPECT_TRUE(all_close(got[i], cpu[i], glia::testing::default_tolerance<float>()));
  }
}

std::string vs_cpu_name(const ::testing::TestParamInfo<std::tuple<Device, OptCase>>& info) {
  return std::get<1>(info.param).name;
}
INSTANTIATE_TEST_SUITE_P(Sim, OptimizerVsCpu,
                         ::testing::Combine(::testing::Values(Device::sim()),
                                            ::testing::ValuesIn(opt_cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(Cuda, OptimizerVsCpu,
                         ::testing::Combine(::testing::Values(Device::cuda()),
                                            ::testing::ValuesIn(opt_cases())),
                         vs_cpu_name);

// --- behaviour ---------------------------------------------------------------------------------

TEST(OptimTest, EachOptimizerMinimisesAQuadratic) {
  // f(p) = sum((p - target)^2), minimum at target.
  const Values target = float_values(6, -2, 2, 3);
  struct Run {
    const char* name;
    std::function<std::unique_ptr<optim::Optimizer>(Tensor)> make;
    int steps;
    double tol;  // Adam's normalised steps circle the minimum at a radius of order lr
  };
  const std::vector<Run> runs = {
      {"sgd",
       [](Tensor p) {
         return std::make_unique<optim::Sgd>(std::vector<ParamGroup>{{.params = {p}, .lr = 0.1}});
       },
       100, 1e-4},
      {"sgd_momentum",
       [](Tensor p) {
         return std::make_unique<optim::Sgd>(std::vector<ParamGroup>{{.params = {p}, .lr = 0.05}},
                                             optim::SgdOptions{0.9, false});
       },
       300, 1e-4},
      {"sgd_nesterov",
       [](Tensor p) {
         return std::make_unique<optim::Sgd>(std::vector<ParamGroup>{{.params = {p}, .lr = 0.05}},
                                             optim::SgdOptions{0.9, true});
       },
       300, 1e-4},
      {"adam",
       [](Tensor p) {
         return std::make_unique<optim::Adam>(std::vector<ParamGroup>{{.params = {p}, .lr = 0.05}});
       },
       1000, 1e-2},
      {"adamw",
       [](Tensor p) {
         return std::make_unique<optim::AdamW>(
             std::vector<ParamGroup>{{.params = {p}, .lr = 0.05, .weight_decay = 1e-4}});
       },
       1000, 1e-2},
  };
  for (const Run& run : runs) {
    SCOPED_TRACE(run.name);
    Tensor p = zeros({6}).set_requires_grad(true);
    const Tensor t = from_vector(target, {6}).to(DType::f32);
    const std::unique_ptr<optim::Optimizer> opt = run.make(p);
    for (int step = 0; step < run.steps; ++step) {
      opt->zero_grad();
      const Tensor d = p - t;
      sum(d * d).backward();
      opt->step();
    }
    EXPECT_TRUE(all_close(host_doubles(p), target, Tolerance{run.tol, 0.0}));
  }
}

TEST(OptimTest, AdamWDiffersFromAdamExactlyByTheDecoupledDecay) {
  const double lr = 0.01, wd = 0.1;
  const Values initial = float_values(9, -1, 1, 5);
  auto param = [&] { return from_vector(initial, {9}).set_requires_grad(true); };
  Tensor pw = param(), pa = param(), pc = param();
  optim::AdamW adamw({{.params = {pw}, .lr = lr, .weight_decay = wd}});
  optim::Adam adam({{.params = {pa}, .lr = lr}});
  optim::Adam coupled({{.params = {pc}, .lr = lr, .weight_decay = wd}});
  Values w = initial, a = initial;
  for (int step = 0; step < 3; ++step) {
    const Values g = float_values(9, -1, 1, 100 + step);
    for (Tensor* p : {&pw, &pa, &pc}) {
      p->impl()->grad.reset();
      set_grads({*p}, {g});
    }
    adamw.step();
    adam.step();
    coupled.step();
    // The moments see the raw gradient in both, so Adam's update u applies to AdamW unchanged:
    // w_t = w_{t-1} (1 - lr wd) - u_t, with u_t = a_{t-1} - a_t.
    const Values a_next = host_doubles(pa);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = w[i] * (1.0 - lr * wd) - (a[i] - a_next[i]);
    a = a_next;
    EXPECT_TRUE(all_close(host_doubles(pw), w, Tolerance{1e-14, 1e-12}));
  }
  // Adam's coupled decay goes through the moments instead, and lands elsewhere.
  EXPECT_FALSE(all_close(host_doubles(pc), w, Tolerance{1e-6, 0.0}));
}

TEST(OptimTest, ZeroGradDropsOrZeroes) {
  Tensor p = ones({4}).set_requires_grad(true);
  optim::Sgd opt({{.params = {p}, .lr = 0.1}});
  set_grads({p}, {Values(4, 2.0)});
  opt.zero_grad(false);
  ASSERT_TRUE(p.grad().defined());
  EXPECT_TRUE(all_equal(host_doubles(p.grad()), Values(4, 0.0)));
  opt.zero_grad();
  EXPECT_FALSE(p.grad().defined());
  opt.step();  // no gradient: skipped
  EXPECT_TRUE(all_equal(host_doubles(p), Values(4, 1.0)));
  EXPECT_EQ(opt.state(0, 0), nullptr);
}

// --- clipping ----------------------------------------------------------------------------------

class ClipGradNorm : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(GetParam()); }
};

double reference_norm(const std::vector<Values>& grads, double q) {
  double acc = 0.0;
  for (const Values& g : grads) {
    for (const double x : g)
      acc = std::isinf(q) ? std::max(acc, std::fabs(x)) : acc + std::pow(std::fabs(x), q);
  }
  return std::isinf(q) ? acc : std::pow(acc, 1.0 / q);
}

TEST_P(ClipGradNorm, ScalesAboveTheLimitOnly) {
  const Device device = GetParam();
  const std::vector<Values> grads = {float_values(15, -1, 1, 41), float_values(7, -1, 1, 42),
                                     float_values(24, -1, 1, 43)};
  for (const double q : {2.0, 1.0, 3.0, std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE("norm_type " + std::to_string(q));
    const double norm = reference_norm(grads, q);
    for (const double max_norm : {0.5 * norm, 2.0 * norm}) {
      SCOPED_TRACE("max_norm " + std::to_string(max_norm));
      std::vector<Tensor> params = make_params(grads, DType::f32, device);
      params.push_back(zeros({3}, {.device = device}).set_requires_grad(true));  // no gradient
      set_grads({params[0], params[1], params[2]}, grads);
      const double got = optim::clip_grad_norm_(params, max_norm, q);
      EXPECT_NEAR(got, norm, 1e-5 * norm);
      const double coef = std::min(1.0, max_norm / (norm + 1e-6));
      for (std::size_t i = 0; i < grads.size(); ++i) {
        Values expected = grads[i];
        for (double& x : expected) x *= coef;
        const Values g = host_doubles(params[i].grad());
        if (coef == 1.0) {
          EXPECT_TRUE(all_equal(g, grads[i]));  // untouched, bit for bit
        } else {
          EXPECT_TRUE(all_close(g, expected, glia::testing::default_tolerance<float>()));
        }
      }
      EXPECT_FALSE(params[3].grad().defined());
    }
  }
}

TEST_P(ClipGradNorm, NonFiniteNormLeavesGradientsUnchanged) {
  const Device device = GetParam();
  for (const double bad :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    for (const double q : {2.0, std::numeric_limits<double>::infinity()}) {
      std::vector<Values> grads = {float_values(15, -1, 1, 7), float_values(7, -1, 1, 8)};
      grads[1][3] = bad;
      const std::vector<Tensor> params = make_params(grads, DType::f32, device);
      set_grads(params, grads);
      const double got = optim::clip_grad_norm_(params, 1e-3, q);
      EXPECT_FALSE(std::isfinite(got));
      EXPECT_EQ(std::isnan(got), std::isnan(bad));
      for (std::size_t i = 0; i < grads.size(); ++i) {
        EXPECT_TRUE(all_equal(host_doubles(params[i].grad()), grads[i]));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, ClipGradNorm, ::testing::Values(Device::cpu()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Sim, ClipGradNorm, ::testing::Values(Device::sim()),
                         glia::testing::device_param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, ClipGradNorm, ::testing::Values(Device::cuda()),
                         glia::testing::device_param_name);

// --- schedules ---------------------------------------------------------------------------------

// An optimiser over two groups with base lrs 0.1 and 0.02.
struct TwoGroupSgd {
  Tensor a = zeros({2}).set_requires_grad(true);
  Tensor b = zeros({3}).set_requires_grad(true);
  optim::Sgd opt{{{.params = {a}, .lr = 0.1}, {.params = {b}, .lr = 0.02}}};
  double lr(int g) const { return opt.param_groups()[g].lr; }
};

TEST(ScheduleTest, StepLrDecaysEveryStepSize) {
  TwoGroupSgd s;
  optim::StepLr schedule(s.opt, 3, 0.5);
  // Steps 0-2: base; 3-5: base / 2; 6-7: base / 4.
  const double factor[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25};
  for (int t = 0; t < 8; ++t) {
    SCOPED_TRACE("step " + std::to_string(t));
    EXPECT_EQ(schedule.current_step(), t);
    EXPECT_DOUBLE_EQ(s.lr(0), 0.1 * factor[t]);
    EXPECT_DOUBLE_EQ(s.lr(1), 0.02 * factor[t]);
    schedule.step();
  }
}

TEST(ScheduleTest, WarmupCosine) {
  TwoGroupSgd s;
  const double min_lr = 0.001;
  optim::WarmupCosineLr schedule(s.opt, 4, 14, min_lr);
  // Warm-up: t / 4 of base. Then cosine over 10 steps: base at t = 4, halfway (cos = 0) at t = 9,
  // min_lr from t = 14 on.
  const struct {
    int t;
    double lr0, lr1;
  } expected[] = {
      {0, 0.0, 0.0},
      {1, 0.025, 0.005},
      {2, 0.05, 0.01},
      {4, 0.1, 0.02},
      {9, min_lr + (0.1 - min_lr) / 2, min_lr + (0.02 - min_lr) / 2},
      {14, min_lr, min_lr},
      {20, min_lr, min_lr},
  };
  for (const auto& e : expected) {
    SCOPED_TRACE("step " + std::to_string(e.t));
    while (schedule.current_step() < e.t) schedule.step();
    EXPECT_NEAR(s.lr(0), e.lr0, 1e-15);
    EXPECT_NEAR(s.lr(1), e.lr1, 1e-15);
  }
  // A quarter into the cosine (t = 6.5 is not a step; t = 6 is 2/10): (1 + cos(0.2 pi)) / 2.
  schedule.set_step(6);
  EXPECT_NEAR(s.lr(0), min_lr + (0.1 - min_lr) * (1 + std::cos(0.2 * std::numbers::pi)) / 2, 1e-15);
}

TEST(ScheduleTest, ReduceOnPlateauAfterPatienceWithCooldownAndFloor) {
  TwoGroupSgd s;
  optim::ReduceLrOnPlateau plateau(
      s.opt, {.factor = 0.5, .patience = 2, .threshold = 1e-2, .cooldown = 1, .min_lr = 0.02});
  // (metric, lr of group 0 after the step, of group 1)
  const struct {
    double metric, lr0, lr1;
  } steps[] = {
      {1.0, 0.1, 0.02},    // best 1.0
      {0.995, 0.1, 0.02},  // within the 1% threshold: bad 1
      {1.2, 0.1, 0.02},    // bad 2
      {1.0, 0.05, 0.02},   // bad 3 > patience: halve (group 1 already at min_lr), cooldown 1
      {1.0, 0.05, 0.02},   // cooldown: not counted
      {1.0, 0.05, 0.02},   // bad 1
      {0.5, 0.05, 0.02},   // better: best 0.5, bad 0
      {0.6, 0.05, 0.02},   // bad 1
      {0.6, 0.05, 0.02},   // bad 2
      {0.6, 0.025, 0.02},  // bad 3: halve
      {0.6, 0.025, 0.02},  // cooldown
      {0.6, 0.025, 0.02},  // bad 1
      {0.6, 0.025, 0.02},  // bad 2
      {0.6, 0.02, 0.02},   // bad 3: 0.0125 floors at min_lr
  };
  int i = 0;
  for (const auto& st : steps) {
    SCOPED_TRACE("step " + std::to_string(i++));
    plateau.step(st.metric);
    EXPECT_DOUBLE_EQ(s.lr(0), st.lr0);
    EXPECT_DOUBLE_EQ(s.lr(1), st.lr1);
  }
  EXPECT_EQ(plateau.best(), 0.5);
}

TEST(ScheduleTest, ReduceOnPlateauModeMax) {
  TwoGroupSgd s;
  optim::ReduceLrOnPlateau plateau(
      s.opt, {.mode = optim::PlateauMode::max, .factor = 0.1, .patience = 0, .threshold = 0.0});
  plateau.step(0.5);  // best
  EXPECT_DOUBLE_EQ(s.lr(0), 0.1);
  plateau.step(0.7);  // better
  EXPECT_DOUBLE_EQ(s.lr(0), 0.1);
  plateau.step(0.7);  // not better: bad 1 > 0
  EXPECT_DOUBLE_EQ(s.lr(0), 0.1 * 0.1);
}

TEST(ScheduleTest, ReduceOnPlateauStateContinuesIdentically) {
  const double metrics[] = {1.0, 0.9, 0.95, 0.97, 0.96, 0.99, 0.98, 0.97, 0.5, 0.6, 0.7, 0.8};
  TwoGroupSgd whole, first, second;
  const optim::PlateauOptions options{.factor = 0.5, .patience = 1, .cooldown = 1};
  optim::ReduceLrOnPlateau a(whole.opt, options), b(first.opt, options);
  for (double m : metrics) a.step(m);
  for (int i = 0; i < 5; ++i) b.step(metrics[i]);
  // A new schedule on a second optimiser carrying the first one's lrs resumes from the state.
  second.opt.param_groups()[0].lr = first.lr(0);
  second.opt.param_groups()[1].lr = first.lr(1);
  optim::ReduceLrOnPlateau c(second.opt, options);
  c.set_state(b.state());
  for (std::size_t i = 5; i < std::size(metrics); ++i) c.step(metrics[i]);
  EXPECT_DOUBLE_EQ(second.lr(0), whole.lr(0));
  EXPECT_DOUBLE_EQ(second.lr(1), whole.lr(1));
  EXPECT_LT(whole.lr(0), 0.1);  // the sequence did reduce
  EXPECT_EQ(c.state().best, a.state().best);
  EXPECT_EQ(c.state().bad_steps, a.state().bad_steps);
  EXPECT_EQ(c.state().cooldown_left, a.state().cooldown_left);
  EXPECT_THROW(c.set_state({0.0, -1, 0}), std::invalid_argument);
}

// --- state -------------------------------------------------------------------------------------

TEST(OptimStateTest, ExportImportContinuesIdentically) {
  for (const OptCase& c : opt_cases()) {
    SCOPED_TRACE(c.name);
    const Trajectory t = make_trajectory(77);
    const std::vector<Tensor> params = make_params(t.initial, DType::f32, Device::cpu());
    const std::unique_ptr<optim::Optimizer> opt = c.make(two_groups(params));
    auto train = [&](const std::vector<Tensor>& ps, optim::Optimizer& o, int from, int to) {
      for (int step = from; step < to; ++step) {
        o.zero_grad();
        std::vector<Values> grads = t.grads[step];
        if (step == 0) grads[kSkipped].clear();  // one parameter without state at export
        set_grads(ps, grads);
        o.step();
      }
    };
    train(params, *opt, 0, 2);
    opt->param_groups()[1].lr = 0.07;  // as a schedule would
    const optim::StateDict state = opt->export_state();
    EXPECT_TRUE(state.contains("group.1.lr"));
    EXPECT_TRUE(state.contains("state.0.0.step"));

    std::vector<Tensor> copies;
    for (const Tensor& p : params) copies.push_back(p.detach().clone().set_requires_grad(true));
    const std::unique_ptr<optim::Optimizer> resumed = c.make(two_groups(copies));
    resumed->import_state(state);
    EXPECT_EQ(resumed->param_groups()[1].lr, 0.07);
    EXPECT_EQ(resumed->state(0, 0)->step, 2);
    train(params, *opt, 2, kSteps);
    train(copies, *resumed, 2, kSteps);
    for (std::size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(all_equal(host_doubles(copies[i]), host_doubles(params[i])));
    }
  }
}

// On sim and cuda the state is allocated on the parameters' device, exported from there, and
// imported back onto it; the resumed run continues bit for bit.
class OptimizerStateOnDevice : public ::testing::TestWithParam<std::tuple<Device, OptCase>> {
 protected:
  void SetUp() override { GLIA_SKIP_UNLESS_USABLE(std::get<0>(GetParam())); }
};

TEST_P(OptimizerStateOnDevice, LivesOnTheDeviceAndRoundTrips) {
  const auto& [device, c] = GetParam();
  const Trajectory t = make_trajectory(91);
  const std::vector<Tensor> params = make_params(t.initial, DType::f32, device);
  const std::unique_ptr<optim::Optimizer> opt = c.make(two_groups(params));
  auto train = [&](const std::vector<Tensor>& ps, optim::Optimizer& o, int from, int to) {
    for (int step = from; step < to; ++step) {
      o.zero_grad();
      set_grads(ps, t.grads[step]);
      o.step();
    }
  };
  train(params, *opt, 0, 2);
  for (std::size_t i = 0; i < 2; ++i) {
    for (const auto& [name, buffer] : opt->state(0, i)->buffers) {
      EXPECT_EQ(buffer.device(), device) << name;
    }
  }
  const optim::StateDict state = opt->export_state();
  std::vector<Tensor> copies;
  for (const Tensor& p : params) copies.push_back(p.detach().clone().set_requires_grad(true));
  const std::unique_ptr<optim::Optimizer> resumed = c.make(two_groups(copies));
  resumed->import_state(state);
  train(params, *opt, 2, kSteps);
  train(copies, *resumed, 2, kSteps);
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(all_equal(host_doubles(copies[i]), host_doubles(params[i])));
  }
}

INSTANTIATE_TEST_SUITE_P(Sim, OptimizerStateOnDevice,
                         ::testing::Combine(::testing::Values(Device::sim()),
                                            ::testing::ValuesIn(opt_cases())),
                         vs_cpu_name);
INSTANTIATE_TEST_SUITE_P(Cuda, OptimizerStateOnDevice,
                         ::testing::Combine(::testing::Values(Device::cuda()),
                                            ::testing::ValuesIn(opt_cases())),
                         vs_cpu_name);

TEST(OptimStateTest, ImportRejectsMismatchedState) {
  Tensor p = zeros({4}).set_requires_grad(true);
  optim::Adam opt({{.params = {p}, .lr = 0.1}});
  set_grads({p}, {Values(4, 1.0)});
  opt.step();
  optim::StateDict state = opt.export_state();

  Tensor q = zeros({5}).set_requires_grad(true);
  optim::Adam other({{.params = {q}, .lr = 0.1}});
  EXPECT_THROW(other.import_state(state), std::invalid_argument);  // shape [4] vs [5]
  optim::StateDict extra = state;
  extra["state.0.0.momentum"] = zeros({4});
  EXPECT_THROW(opt.import_state(extra), std::invalid_argument);
  optim::StateDict missing = state;
  missing.erase("state.0.0.exp_avg_sq");
  EXPECT_THROW(opt.import_state(missing), std::invalid_argument);
}

// --- errors ------------------------------------------------------------------------------------

template <class Fn>
void expect_error_naming(Fn&& fn, const std::string& text) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one naming " << text;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(OptimTest, BadHyperParametersAreErrorsNamingTheValue) {
  Tensor p = zeros({2}).set_requires_grad(true);
  expect_error_naming([&] { optim::Sgd({{.params = {p}, .lr = -0.1}}); }, "-0.1");
  expect_error_naming([&] { optim::Sgd({{.params = {p}, .lr = 0.1, .weight_decay = -2}}); }, "-2");
  expect_error_naming([&] { optim::Sgd({{.params = {p}, .lr = 0.1}}, {.momentum = -0.5}); },
                      "-0.5");
  expect_error_naming([&] { optim::Sgd({{.params = {p}, .lr = 0.1}}, {.nesterov = true}); },
                      "Nesterov");
  expect_error_naming([&] { optim::Adam({{.params = {p}, .lr = 0.1}}, {.beta1 = 1.0}); },
                      "beta1 (must be in [0, 1)) 1");
  expect_error_naming([&] { optim::Adam({{.params = {p}, .lr = 0.1}}, {.beta2 = -0.25}); },
                      "-0.25");
  expect_error_naming(
      [&] { optim::AdamW({{.params = {p}, .lr = 0.1, .beta1 = 1.5, .name = "head"}}); }, "'head'");
  expect_error_naming([&] { optim::Adam({{.params = {p}, .lr = 0.1}}, {.eps = -1e-8}); }, "-1e-08");
  expect_error_naming(
      [&] {
        optim::Sgd({{.params = {p}, .lr = 0.1}, {.params = {p}, .lr = 0.2}});
      },
      "more than one");
  expect_error_naming([&] { optim::clip_grad_norm_({p}, -1.0); }, "-1");
  TwoGroupSgd s;
  expect_error_naming([&] { optim::StepLr(s.opt, 0); }, "step_size 0");
  expect_error_naming([&] { optim::WarmupCosineLr(s.opt, 10, 10); }, "total_steps 10");
  expect_error_naming([&] { optim::ReduceLrOnPlateau(s.opt, {.factor = 1.5}); }, "factor 1.5");
}

}  // namespace
}  // namespace glia
