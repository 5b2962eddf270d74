// Losses (engine/losses.h): each computes the per-sample values l_n with one fused kernel
// (kernels/{cpu,cuda}/loss), records its backward (the matching *_backward kernel, scaled per
// sample by the incoming gradient), then reduces over samples with the ordinary ops, so the
// reduction's gradient comes from the tape. Tested in tests/engine/loss_test.cpp.
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/losses.h"
#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"

namespace glia {
namespace {

// The denominator of a mean never goes below this, so an all-zero weight gives 0 / tiny = 0.
constexpr double kMinDenominator = 1e-30;
constexpr double kInfinity = std::numeric_limits<double>::infinity();

[[noreturn]] void bad_argument(const char* op, const std::string& why) {
  throw std::invalid_argument(std::string(op) + ": " + why);
}

// logits [N, ...] and a target of the same shape, dtype and device.
kernels::SampleShape sample_shape(const char* op, const Tensor& logits, const Tensor& target) {
  ops::check_floating(op, logits);
  ops::check_compatible(op, logits, target);
  if (logits.dim() < 1) bad_argument(op, "logits " + logits.describe() + " have no sample dim");
  if (target.shape() != logits.shape()) {
    bad_argument(op, "target " + target.describe() + " does not match logits " + logits.describe());
  }
  const index_t samples = logits.size(0);
  return {samples, samples > 0 ? logits.numel() / samples : 0};
}

// logits [N, C] and i32 targets [N] on the same device; an optional per-class tensor [C].
kernels::ClassShape class_shape(const char* op, const Tensor& logits, const Tensor& target,
                                const Tensor& per_class, const char* per_class_name) {
  ops::check_floating(op, logits);
  if (logits.dim() != 2) bad_argument(op, "logits " + logits.describe() + " are not [N, C]");
  if (!target.defined() || target.dtype() != DType::i32 || target.device() != logits.device() ||
      target.shape() != Shape{logits.size(0)}) {
    bad_argument(op, "target " + (target.defined() ? target.describe() : std::string("undefined")) +
                         " is not an i32 [" + std::to_string(logits.size(0)) + "] on " +
                         logits.device().to_string() + " for logits " + logits.describe());
  }
  if (per_class.defined()) {
    ops::check_compatible(op, logits, per_class);
    if (per_class.shape() != Shape{logits.size(1)}) {
      bad_argument(op, std::string(per_class_name) + " " + per_class.describe() + " is not [" +
                           std::to_string(logits.size(1)) + "] for logits " + logits.describe());
    }
  }
  return {logits.size(0), logits.size(1)};
}

// The reduction of engine/losses.h over per-sample values l [N]; `denominator` (d_n) may be
// undefined (all 1).
Tensor reduce_samples(const char* op, const Tensor& l, const Tensor& sample_weight,
                      const Tensor& denominator, Reduction reduction) {
  Tensor s;
  if (sample_weight.defined()) {
    ops::check_compatible(op, l, sample_weight);
    if (sample_weight.shape() != l.shape()) {
      bad_argument(op, "sample weight " + sample_weight.describe() + " is not [" +
                           std::to_string(l.size(0)) + "], one per sample");
    }
    s = relu(sample_weight.detach());
  }
  const Tensor weighted = s.defined() ? mul(l, s) : l;
  switch (reduction) {
    case Reduction::none:
      return weighted;
    case Reduction::sum:
      return sum(weighted);
    case Reduction::mean:
      break;
  }
  if (l.numel() == 0) return zeros({}, TensorOptions{l.dtype(), l.device()});
  if (!s.defined() && !denominator.defined()) return mean(l);
  Tensor d = s.defined() && denominator.defined() ? mul(s, denominator)
             : s.defined()                        ? s
                                                  : denominator;
  return div(sum(weighted), clamp(sum(d), kMinDenominator, kInfinity));
}

// The per-sample BCE values, recording their backward on the logits.
Tensor bce_per_sample(const Tensor& logits, const Tensor& target, double pos_weight) {
  const char* op = "binary_cross_entropy_with_logits";
  const kernels::SampleShape s = sample_shape(op, logits, target);
  Tensor loss({s.samples}, logits.dtype(), logits.device());
  ops::dispatch_float(op, logits.device(), logits.dtype(), [&]<class T>(auto backend) {
    if constexpr (!std::is_same_v<decltype(backend), ops::CpuBackend>) {
      if (const Tensor scratch =
              ops::workspace(ops::kernel::sample_loss_workspace_size(backend, s), logits.device());
          scratch.defined()) {
        ops::kernel::bce_with_logits(backend, logits.data<T>(), target.data<T>(), loss.data<T>(), s,
                                     static_cast<T>(pos_weight), scratch.data<float>());
        return;
      }
    }
    ops::kernel::bce_with_logits(backend, logits.data<T>(), target.data<T>(), loss.data<T>(), s,
                                 static_cast<T>(pos_weight));
  });
  if (needs_grad({logits})) {
    record(op, loss, {logits}, {logits, target},
           [x = logits.detach(), t = target.detach(), s, pos_weight](const Tensor& gl) {
             Tensor gx(x.shape(), x.dtype(), x.device());
             ops::dispatch_float("binary_cross_entropy_with_logits backward", x.device(), x.dtype(),
                                 [&]<class T>(auto backend) {
                                   ops::kernel::bce_with_logits_backward(
                                       backend, x.data<T>(), t.data<T>(), gl.data<T>(),
                                       gx.data<T>(), s, static_cast<T>(pos_weight));
                                 });
             return std::vector<Tensor>{gx};
           });
  }
  return loss;
}

Tensor dice_per_sample(const Tensor& logits, const Tensor& target, double smooth) {
  const char* op = "dice_loss";
  const kernels::SampleShape s = sample_shape(op, logits, target);
  if (smooth < 0) bad_argument(op, "smooth " + std::to_string(smooth) + " is negative");
  Tensor loss({s.samples}, logits.dtype(), logits.device());
  Tensor sums({s.samples, 3}, logits.dtype(), logits.device());
  ops::dispatch_float(op, logits.device(), logits.dtype(), [&]<class T>(auto backend) {
    if constexpr (!std::is_same_v<decltype(backend), ops::CpuBackend>) {
      if (const Tensor scratch =
              ops::workspace(ops::kernel::sample_loss_workspace_size(backend, s), logits.device());
          scratch.defined()) {
        ops::kernel::dice(backend, logits.data<T>(), target.data<T>(), sums.data<T>(),
                          loss.data<T>(), s, static_cast<T>(smooth), scratch.data<float>());
        return;
      }
    }
    ops::kernel::dice(backend, logits.data<T>(), target.data<T>(), sums.data<T>(), loss.data<T>(),
                      s, static_cast<T>(smooth));
  });
  if (needs_grad({logits})) {
    record(op, loss, {logits}, {logits, target},
           [x = logits.detach(), t = target.detach(), sums, s, smooth](const Tensor& gl) {
             Tensor gx(x.shape(), x.dtype(), x.device());
             ops::dispatch_float(
                 "dice_loss backward", x.device(), x.dtype(), [&]<class T>(auto backend) {
                   ops::kernel::dice_backward(backend, x.data<T>(), t.data<T>(), sums.data<T>(),
                                              gl.data<T>(), gx.data<T>(), s,
                                              static_cast<T>(smooth));
                 });
             return std::vector<Tensor>{gx};
           });
  }
  return loss;
}

// dice_weight * Dice + bce_weight * BCE per sample, one fused kernel each way.
Tensor dice_bce_per_sample(const Tensor& logits, const Tensor& target, const DiceBceOptions& o) {
  const char* op = "dice_bce_loss";
  const kernels::SampleShape s = sample_shape(op, logits, target);
  if (o.smooth < 0) bad_argument(op, "smooth " + std::to_string(o.smooth) + " is negative");
  Tensor loss({s.samples}, logits.dtype(), logits.device());
  Tensor sums({s.samples, 3}, logits.dtype(), logits.device());
  ops::dispatch_float(op, logits.device(), logits.dtype(), [&]<class T>(auto backend) {
    const T dw = static_cast<T>(o.dice_weight), bw = static_cast<T>(o.bce_weight);
    const T smooth = static_cast<T>(o.smooth), pw = static_cast<T>(o.pos_weight);
    if constexpr (std::is_same_v<decltype(backend), ops::CpuBackend>) {
      ops::kernel::dice_bce(backend, logits.data<T>(), target.data<T>(), sums.data<T>(),
                            loss.data<T>(), s, dw, bw, smooth, pw);
    } else {
      const Tensor scratch({ops::kernel::dice_bce_workspace_size(backend, s)}, DType::f32,
                           logits.device());
      ops::kernel::dice_bce(backend, logits.data<T>(), target.data<T>(), sums.data<T>(),
                            loss.data<T>(), s, dw, bw, smooth, pw, scratch.data<float>());
    }
  });
  if (needs_grad({logits})) {
    record(op, loss, {logits}, {logits, target},
           [x = logits.detach(), t = target.detach(), sums, s, o](const Tensor& gl) {
             Tensor gx(x.shape(), x.dtype(), x.device());
             ops::dispatch_float(
                 "dice_bce_loss backward", x.device(), x.dtype(), [&]<class T>(auto backend) {
                   ops::kernel::dice_bce_backward(
                       backend, x.data<T>(), t.data<T>(), sums.data<T>(), gl.data<T>(),
                       gx.data<T>(), s, static_cast<T>(o.dice_weight), static_cast<T>(o.bce_weight),
                       static_cast<T>(o.smooth), static_cast<T>(o.pos_weight));
                 });
             return std::vector<Tensor>{gx};
           });
  }
  return loss;
}

template <class T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction, const Tensor& sample_weight,
                                        double pos_weight) {
  return reduce_samples("binary_cross_entropy_with_logits",
                        bce_per_sample(logits, target, pos_weight), sample_weight, {}, reduction);
}

Tensor dice_loss(const Tensor& logits, const Tensor& target, Reduction reduction,
                 const Tensor& sample_weight, double smooth) {
  return reduce_samples("dice_loss", dice_per_sample(logits, target, smooth), sample_weight, {},
                        reduction);
}

Tensor dice_bce_loss(const Tensor& logits, const Tensor& target, Reduction reduction,
                     const Tensor& sample_weight, const DiceBceOptions& options) {
  const Tensor per_sample = dice_bce_per_sample(logits, target, options);
  return reduce_samples("dice_bce_loss", per_sample, sample_weight, {}, reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction,
                     const Tensor& sample_weight, const Tensor& class_weight,
                     double label_smoothing) {
  const char* op = "cross_entropy";
  const kernels::ClassShape s = class_shape(op, logits, target, class_weight, "class weight");
  if (label_smoothing < 0 || label_smoothing > 1) {
    bad_argument(op, "label_smoothing " + std::to_string(label_smoothing) + " is outside [0, 1]");
  }
  if (s.classes == 0 && s.rows > 0)
    bad_argument(op, "logits " + logits.describe() + " have no classes");
  Tensor loss({s.rows}, logits.dtype(), logits.device());
  Tensor lse({s.rows}, logits.dtype(), logits.device());
  Tensor target_weight({s.rows}, logits.dtype(), logits.device());
  const Tensor w = class_weight.defined() ? class_weight.detach() : Tensor();
  ops::dispatch_float(op, logits.device(), logits.dtype(), [&]<class T>(auto backend) {
    ops::kernel::cross_entropy(backend, logits.data<T>(), target.data<std::int32_t>(),
                               data_or_null<T>(w), loss.data<T>(), lse.data<T>(),
                               target_weight.data<T>(), s, static_cast<T>(label_smoothing));
  });
  if (needs_grad({logits})) {
    record(
        op, loss, {logits}, {logits, target, w},
        [x = logits.detach(), t = target.detach(), w, lse, s, label_smoothing](const Tensor& gl) {
          Tensor gx(x.shape(), x.dtype(), x.device());
          ops::dispatch_float(
              "cross_entropy backward", x.device(), x.dtype(), [&]<class T>(auto backend) {
                ops::kernel::cross_entropy_backward(
                    backend, x.data<T>(), t.data<std::int32_t>(), data_or_null<T>(w), lse.data<T>(),
                    gl.data<T>(), gx.data<T>(), s, static_cast<T>(label_smoothing));
              });
          return std::vector<Tensor>{gx};
        });
  }
  return reduce_samples(op, loss, sample_weight, w.defined() ? target_weight : Tensor(), reduction);
}

Tensor focal_loss(const Tensor& logits, const Tensor& target, Reduction reduction,
                  const Tensor& sample_weight, double gamma, const Tensor& alpha) {
  const char* op = "focal_loss";
  const kernels::ClassShape s = class_shape(op, logits, target, alpha, "alpha");
  if (gamma < 0) bad_argument(op, "gamma " + std::to_string(gamma) + " is negative");
  if (s.classes == 0 && s.rows > 0)
    bad_argument(op, "logits " + logits.describe() + " have no classes");
  Tensor loss({s.rows}, logits.dtype(), logits.device());
  Tensor lse({s.rows}, logits.dtype(), logits.device());
  const Tensor a = alpha.defined() ? alpha.detach() : Tensor();
  ops::dispatch_float(op, logits.device(), logits.dtype(), [&]<class T>(auto backend) {
    ops::kernel::focal(backend, logits.data<T>(), target.data<std::int32_t>(), data_or_null<T>(a),
                       loss.data<T>(), lse.data<T>(), s, static_cast<T>(gamma));
  });
  if (needs_grad({logits})) {
    record(op, loss, {logits}, {logits, target, a},
           [x = logits.detach(), t = target.detach(), a, lse, s, gamma](const Tensor& gl) {
             Tensor gx(x.shape(), x.dtype(), x.device());
             ops::dispatch_float(
                 "focal_loss backward", x.device(), x.dtype(), [&]<class T>(auto backend) {
                   ops::kernel::focal_backward(backend, x.data<T>(), t.data<std::int32_t>(),
                                               data_or_null<T>(a), lse.data<T>(), gl.data<T>(),
                                               gx.data<T>(), s, static_cast<T>(gamma));
                 });
             return std::vector<Tensor>{gx};
           });
  }
  return reduce_samples(op, loss, sample_weight, {}, reduction);
}

}  // namespace glia
