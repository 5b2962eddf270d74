// The learning-rate schedules of engine/optim/schedule.h. Tested in tests/engine/optim_test.cpp.
#include "engine/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <string>

namespace glia::optim {
namespace {

void require(bool ok, const char* schedule, const char* what, double value, const char* rule) {
  if (!ok) {
    std::ostringstream msg;
    msg << schedule << ": invalid " << what << " " << value << " (" << rule << ")";
    throw std::invalid_argument(msg.str());
  }
}

}  // namespace

LrSchedule::LrSchedule(Optimizer& optimizer) : optimizer_(optimizer) {
  for (const ParamGroup& group : optimizer.param_groups()) base_lrs_.push_back(group.lr);
}

void LrSchedule::step() {
  set_step(step_ + 1);
}

void LrSchedule::set_step(std::int64_t step) {
  require(step >= 0, "LrSchedule", "step", static_cast<double>(step), "must be >= 0");
  std::vector<ParamGroup>& groups = optimizer_.param_groups();
  if (groups.size() != base_lrs_.size()) {
    throw std::logic_error("LrSchedule: the optimiser has " + std::to_string(groups.size()) +
                           " groups, the schedule was made for " +
                           std::to_string(base_lrs_.size()));
  }
  step_ = step;
  for (std::size_t g = 0; g < groups.size(); ++g) groups[g].lr = lr_at(g, step_);
}

StepLr::StepLr(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LrSchedule(optimizer), step_size_(step_size), gamma_(gamma) {
  require(step_size > 0, "StepLr", "step_size", static_cast<double>(step_size), "must be > 0");
  require(std::isfinite(gamma) && gamma > 0.0, "StepLr", "gamma", gamma, "must be > 0");
  set_step(0);
}

double StepLr::lr_at(std::size_t group, std::int64_t step) const {
  return base_lrs()[group] * std::pow(gamma_, static_cast<double>(step / step_size_));
}

WarmupCosineLr::WarmupCosineLr(Optimizer& optimizer, std::int64_t warmup_steps,
                               std::int64_t total_steps, double min_lr)
    : LrSchedule(optimizer),
      warmup_steps_(warmup_steps),
      total_steps_(total_steps),
      min_lr_(min_lr) {
  require(warmup_steps >= 0, "WarmupCosineLr", "warmup_steps", static_cast<double>(warmup_steps),
          "must be >= 0");
  require(total_steps > warmup_steps, "WarmupCosineLr", "total_steps",
          static_cast<double>(total_steps), "must exceed warmup_steps");
  require(std::isfinite(min_lr) && min_lr >= 0.0, "WarmupCosineLr", "min_lr", min_lr,
          "must be >= 0");
  set_step(0);
}

double WarmupCosineLr::lr_at(std::size_t group, std::int64_t step) const {
  const double base = base_lrs()[group];
  if (step < warmup_steps_) {
    return base * static_cast<double>(step) / static_cast<double>(warmup_steps_);
  }
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps_) /
                                            static_cast<double>(total_steps_ - warmup_steps_));
  return min_lr_ + (base - min_lr_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

ReduceLrOnPlateau::ReduceLrOnPlateau(Optimizer& optimizer, PlateauOptions options)
    : optimizer_(optimizer), options_(options) {
  const char* name = "ReduceLrOnPlateau";
  require(options.factor > 0.0 && options.factor < 1.0, name, "factor", options.factor,
          "must be in (0, 1)");
  require(options.patience >= 0, name, "patience", options.patience, "must be >= 0");
  require(std::isfinite(options.threshold) && options.threshold >= 0.0, name, "threshold",
          options.threshold, "must be >= 0");
  require(options.cooldown >= 0, name, "cooldown", options.cooldown, "must be >= 0");
  require(std::isfinite(options.min_lr) && options.min_lr >= 0.0, name, "min_lr", options.min_lr,
          "must be >= 0");
  require(std::isfinite(options.eps) && options.eps >= 0.0, name, "eps", options.eps,
          "must be >= 0");
  const double inf = std::numeric_limits<double>::infinity();
  best_ = options.mode == PlateauMode::min ? inf : -inf;
}

void ReduceLrOnPlateau::set_state(const State& state) {
  if (state.bad_steps < 0 || state.cooldown_left < 0) {
    throw std::invalid_argument("ReduceLrOnPlateau: negative counters in the restored state");
  }
  best_ = state.best;
  bad_steps_ = state.bad_steps;
  cooldown_left_ = state.cooldown_left;
}

bool ReduceLrOnPlateau::is_better(double metric) const {
  if (options_.mode == PlateauMode::min) return metric < best_ * (1.0 - options_.threshold);
  return metric > best_ * (1.0 + options_.threshold);
}

void ReduceLrOnPlateau::step(double metric) {
  if (is_better(metric)) {
    best_ = metric;
    bad_steps_ = 0;
  } else {
    ++bad_steps_;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    bad_steps_ = 0;
  }
  if (bad_steps_ > options_.patience) {
    for (ParamGroup& group : optimizer_.param_groups()) {
      const double reduced = std::max(group.lr * options_.factor, options_.min_lr);
      if (group.lr - reduced > options_.eps) group.lr = reduced;
    }
    cooldown_left_ = options_.cooldown;
    bad_steps_ = 0;
  }
}

}  // namespace glia::optim
