// Learning-rate schedules over an optimiser's parameter groups. Each keeps the groups' lrs at
// construction as their base lrs and sets group g's lr from base_lr[g] and its step count t
// (0 at construction, +1 per step(); a step is whatever the caller counts: an epoch or a batch):
//   StepLr:            lr = base * gamma^floor(t / step_size)                (torch StepLR)
//   WarmupCosineLr:    t < W: lr = base * t / W   (linear warm-up from 0, as Hugging Face's
//                      get_cosine_schedule_with_warmup);
//                      t >= W: lr = min_lr + (base - min_lr) * (1 + cos(pi * p)) / 2,
//                      p = min(1, (t - W) / (T - W)), for W warmup_steps and T total_steps
//   ReduceLrOnPlateau: torch.optim.lr_scheduler.ReduceLROnPlateau with a relative threshold:
//                      a metric is better than the best so far when below best * (1 - threshold)
//                      (mode min) or above best * (1 + threshold) (mode max); after more than
//                      `patience` steps without improvement every lr becomes
//                      max(lr * factor, min_lr) (unless that changes it by at most eps), then
//                      `cooldown` steps pass before bad steps are counted again.
// A schedule refers to its optimiser, which must outlive it.
// Tested in tests/engine/optim_test.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/optim/optimizer.h"

namespace glia::optim {

// A schedule that is a function of the step count alone.
class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  LrSchedule(const LrSchedule&) = delete;
  LrSchedule& operator=(const LrSchedule&) = delete;

  // Advances the step count by one and sets every group's lr.
  void step();
  // Sets the step count (resuming from a checkpoint) and every group's lr.
  void set_step(std::int64_t step);
  std::int64_t current_step() const { return step_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // Group g's lr at step t.
  virtual double lr_at(std::size_t group, std::int64_t step) const = 0;

 protected:
  // Keeps the base lrs; the subclass then calls set_step(0) once its parameters are set.
  explicit LrSchedule(Optimizer& optimizer);

 private:
  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  std::int64_t step_ = 0;
};

class StepLr : public LrSchedule {
 public:
  StepLr(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);
  double lr_at(std::size_t group, std::int64_t step) const override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

class WarmupCosineLr : public LrSchedule {
 public:
  WarmupCosineLr(Optimizer& optimizer, std::int64_t warmup_steps, std::int64_t total_steps,
                 double min_lr = 0.0);
  double lr_at(std::size_t group, std::int64_t step) const override;

 private:
  std::int64_t warmup_steps_, total_steps_;
  double min_lr_;
};

enum class PlateauMode { min, max };

struct PlateauOptions {
  PlateauMode mode = PlateauMode::min;
  double factor = 0.1;      // in (0, 1)
  int patience = 10;        // bad steps tolerated before a reduction
  double threshold = 1e-4;  // relative improvement that counts
  int cooldown = 0;         // steps after a reduction during which bad steps are not counted
  double min_lr = 0.0;
  double eps = 1e-8;  // reductions smaller than this are skipped
};

class ReduceLrOnPlateau {
 public:
  ReduceLrOnPlateau(Optimizer& optimizer, PlateauOptions options = {});
  // Records one value of the monitored metric and reduces the lrs when it has plateaued.
  void step(double metric);
  double best() const { return best_; }
  int bad_steps() const { return bad_steps_; }

  // What a resumed run needs to continue exactly (the lrs themselves live in the optimiser).
  struct State {
    double best = 0;
    int bad_steps = 0;
    int cooldown_left = 0;
  };
  State state() const { return {best_, bad_steps_, cooldown_left_}; }
  void set_state(const State& state);

 private:
  bool is_better(double metric) const;

  Optimizer& optimizer_;
  PlateauOptions options_;
  double best_;
  int bad_steps_ = 0;
  int cooldown_left_ = 0;
};

}  // namespace glia::optim
