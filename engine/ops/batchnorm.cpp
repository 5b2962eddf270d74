// Batch norm over NCHW tensors, per channel (kernels/types.h BatchNormShape). Forward: the batch
// statistics (training, or no running statistics) with the running update in place, or the
// running statistics (evaluation); then y = (x - mean) * invstd * weight + bias. The mean and
// invstd used are kept for the backward, with xhat = (x - mean) * invstd and M = n * h * w:
//   gbias = sum gy, gweight = sum gy * xhat,
//   gx = weight * invstd * (gy - gbias / M - xhat * gweight / M)    (batch statistics)
//   gx = weight * invstd * gy                                       (running statistics)
// cpu runs the reference kernels, sim our kernels under the emulator, cuda our kernels or cuDNN
// by the batchnorm policy (engine/policy.h); cuDNN has no evaluation-mode backward, so that one is
// always ours. batch_norm_relu2d fuses a ReLU: y = max(bn(x), 0), and the backward masks gy where
// y is not positive before the formulas above (our kernels do both in their passes; after cuDNN a
// ReLU kernel runs in place, and the mask before its backward). On sim and cuda the channel
// reductions get a workspace, so long channels split over many blocks. sync_batch_norm2d
// (PyTorch's SyncBatchNorm) normalises with the statistics of every rank's batch together: one
// all-reduce of the per-channel sum, sum of squares and count forward, one of the two gradient
// sums backward, around the same kernels. Tested in tests/engine/batchnorm_test.cpp and
// tests/dist/ddp_test.cpp.
#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/losses.h"
#include "engine/memory.h"
#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"
#include "engine/ops/policy_runner.h"

#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/batchnorm.h"
#endif

namespace glia {
namespace {

using kernels::BatchNormShape;

constexpr const char* kOp = "batch_norm2d";
constexpr const char* kReluOp = "batch_norm_relu2d";

[[noreturn]] void bad_argument(const Tensor& x, const std::string& why) {
  throw std::invalid_argument(std::string(kOp) + " of " + x.describe() + ": " + why);
}

// A per-channel tensor: undefined, or [c] with x's dtype and device.
void check_channel_vector(const Tensor& x, const Tensor& t, const char* name) {
  if (!t.defined()) return;
  ops::check_compatible(kOp, x, t);
  if (t.shape() != Shape{x.size(1)}) {
    bad_argument(x, std::string(name) + " must have shape [" + std::to_string(x.size(1)) +
                        "] (one value per channel), got " + t.describe());
  }
}

// The statistics the forward normalised with, and how, for the backward.
struct Saved {
  Tensor mean, invstd;
  Tensor y;  // the output, when a ReLU is fused (its mask)
  bool batch_stats = true;
  bool used_cudnn = false;
};

template <class Backend>
constexpr bool has_workspace = !std::is_same_v<Backend, ops::CpuBackend>;

#if defined(GLIA_HAVE_CUDA)
// cuDNN always scales and shifts: ones and zeros stand in for an absent weight / bias.
Tensor or_constant(const Tensor& t, const BatchNormShape& s, double value, const Tensor& x) {
  return t.defined() ? t : full({s.c}, value, TensorOptions{x.dtype(), x.device()});
}
#endif

Tensor backward_input(const Tensor& gy, const Tensor& x, const Tensor& weight, const Saved& saved,
                      const BatchNormShape& s, Tensor& grad_weight, Tensor& grad_bias) {
  Tensor gx(x.shape(), x.dtype(), x.device());
  grad_weight = Tensor({s.c}, x.dtype(), x.device());
  grad_bias = Tensor({s.c}, x.dtype(), x.device());
  if (x.numel() == 0) {
    fill_(grad_weight, 0.0);
    fill_(grad_bias, 0.0);
    return gx;
  }
  ops::dispatch_float(
      saved.y.defined() ? "batch_norm_relu2d backward" : "batch_norm2d backward", x.device(),
      x.dtype(), [&]<class T>(auto backend) {
        const T* w = weight.defined() ? weight.data<T>() : nullptr;
        const bool relu = saved.y.defined();
        auto native = [&] {
          const T* xp = x.data<T>();
          const T* g = gy.data<T>();
          const T* mean = saved.mean.data<T>();
          const T* invstd = saved.invstd.data<T>();
          T* gb = grad_bias.template data<T>();
          T* gw = grad_weight.template data<T>();
          if constexpr (has_workspace<decltype(backend)>) {
            const Tensor ws =
                ops::workspace(ops::kernel::batch_norm_workspace_size(backend, s), x.device());
            float* wsp = ws.defined() ? ws.data<float>() : nullptr;
            if (relu) {
              ops::kernel::batch_norm_relu_backward_reduce(backend, xp, g, saved.y.data<T>(), mean,
                                                           invstd, gb, gw, s, wsp);
            } else {
              ops::kernel::batch_norm_backward_reduce(backend, xp, g, mean, invstd, gb, gw, s, wsp);
            }
          } else if (relu) {
            ops::kernel::batch_norm_relu_backward_reduce(backend, xp, g, saved.y.data<T>(), mean,
                                                         invstd, gb, gw, s);
          } else {
            ops::kernel::batch_norm_backward_reduce(backend, xp, g, mean, invstd, gb, gw, s);
          }
          if (relu) {
            ops::kernel::batch_norm_relu_backward_input(backend, xp, g, saved.y.data<T>(), mean,
                                                        invstd, w, gb, gw, gx.template data<T>(), s,
                                                        saved.batch_stats);
          } else {
            ops::kernel::batch_norm_backward_input(backend, xp, g, mean, invstd, w, gb, gw,
                                                   gx.template data<T>(), s, saved.batch_stats);
          }
        };
        ops::run_with_policy(
            OpFamily::batchnorm,
            saved.used_cudnn && saved.batch_stats ? KernelPolicy::cudnn : KernelPolicy::native, {},
            backend, native, GLIA_CUDNN([&](auto ctx) {
              const Tensor scale = or_constant(weight, s, 1.0, x);
              // cuDNN's backward of the ReLU'd output: gy masked by the output first.
              Tensor masked = gy;
              if (relu) {
                masked = Tensor(gy.shape(), gy.dtype(), gy.device());
                ops::kernel::unary_backward(backend, kernels::UnaryOp::relu, saved.y.data<T>(),
                                            saved.y.data<T>(), gy.data<T>(), masked.data<T>(),
                                            gy.numel(), kernels::UnaryParams{});
              }
              kernels::cudnn::batch_norm_backward(
                  ctx.cudnn(), s, x.data<T>(), masked.data<T>(), scale.data<T>(),
                  saved.mean.data<T>(), saved.invstd.data<T>(), gx.template data<T>(),
                  grad_weight.template data<T>(), grad_bias.template data<T>(), ctx.stream);
            }));
      });
  return gx;
}

// The checks shared by batch_norm2d, batch_norm_relu2d and sync_batch_norm2d, and the shape
// they run on.
BatchNormShape checked_shape(const char* op, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, double momentum, double eps) {
  ops::check_floating(op, x);
  if (x.dim() != 4) bad_argument(x, "needs an NCHW tensor of rank 4");
  check_channel_vector(x, weight, "weight");
  check_channel_vector(x, bias, "bias");
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  if (running_mean.defined() != running_var.defined()) {
    bad_argument(x, "running_mean and running_var must be both defined or both undefined");
  }
  if (!(eps > 0.0)) bad_argument(x, "eps must be positive, got " + std::to_string(eps));
  if (!(momentum >= 0.0 && momentum <= 1.0)) {
    bad_argument(x, "momentum must lie in [0, 1], got " + std::to_string(momentum));
  }
  BatchNormShape s;
  s.n = x.size(0);
  s.c = x.size(1);
  s.h = x.size(2);
  s.w = x.size(3);
  s.eps = eps;
  s.momentum = momentum;
  return s;
}

// Host values of a small tensor on any device, as doubles.
std::vector<double> host_values(const Tensor& t) {
  return t.to(Device::cpu()).to(DType::f64).to_vector<double>();
}

// A [c] tensor of x's dtype and device holding `values`.
Tensor channel_tensor(const std::vector<double>& values, const Tensor& x) {
  return from_vector(values, {static_cast<index_t>(values.size())}).to(x.dtype()).to(x.device());
}

// Per channel [1, c] of the three (or two) reductions side by side: one collective for all.
Tensor all_reduce_rows(const std::vector<Tensor>& rows, dist::Communicator& comm) {
  std::vector<Tensor> parts;
  for (const Tensor& r : rows) parts.push_back(reshape(r, {1, 1, r.numel()}));
  Tensor packed = reshape(concat(parts), {-1});
  comm.all_reduce(packed);
  return packed;
}

Tensor forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
               Tensor& running_var, bool training, double momentum, double eps,
               std::optional<KernelPolicy> policy, bool relu) {
  const char* op = relu ? kReluOp : kOp;
  const BatchNormShape s =
      checked_shape(op, x, weight, bias, running_mean, running_var, momentum, eps);

  Saved saved;
  saved.batch_stats = training || !running_mean.defined();
  if (saved.batch_stats && s.count() < 2 && s.c > 0) {
    bad_argument(x, "batch statistics need more than one value per channel (n * h * w = " +
                        std::to_string(s.count()) + ")");
  }
  Tensor y(x.shape(), x.dtype(), x.device());
  saved.mean = Tensor({s.c}, x.dtype(), x.device());
  saved.invstd = Tensor({s.c}, x.dtype(), x.device());
  const bool update_running = saved.batch_stats && running_mean.defined();
  if (!saved.batch_stats) {
    NoGradGuard no_grad;
    saved.mean = running_mean.detach().clone();
  }

  if (x.numel() > 0) {
    ops::dispatch_float(op, x.device(), x.dtype(), [&]<class T>(auto backend) {
      const T* xp = x.data<T>();
      const T* w = weight.defined() ? weight.data<T>() : nullptr;
      const T* b = bias.defined() ? bias.data<T>() : nullptr;
      T* mean = saved.mean.template data<T>();
      T* invstd = saved.invstd.template data<T>();
      // Where the running update goes (null: none). auto_select's timing runs each candidate
      // several times, so it updates scratch copies instead.
      Tensor rm_scratch, rv_scratch;
      auto running = [&](ops::Run run) -> std::pair<T*, T*> {
        if (!update_running) return {nullptr, nullptr};
        if (run == ops::Run::result) return {running_mean.data<T>(), running_var.data<T>()};
        if (!rm_scratch.defined()) {
          rm_scratch = running_mean.clone();
          rv_scratch = running_var.clone();
        }
        return {rm_scratch.data<T>(), rv_scratch.data<T>()};
      };
      auto native = [&](ops::Run run) {
        const auto [rm, rv] = running(run);
        if (!saved.batch_stats) {
          ops::kernel::batch_norm_invstd(backend, running_var.data<T>(), invstd, s);
        } else if constexpr (has_workspace<decltype(backend)>) {
          const Tensor ws =
              ops::workspace(ops::kernel::batch_norm_workspace_size(backend, s), x.device());
          ops::kernel::batch_norm_stats(backend, xp, mean, invstd, rm, rv, s,
                                        ws.defined() ? ws.data<float>() : nullptr);
        } else {
          ops::kernel::batch_norm_stats(backend, xp, mean, invstd, rm, rv, s);
        }
        if (relu) {
          ops::kernel::batch_norm_relu_apply(backend, xp, mean, invstd, w, b, y.template data<T>(),
                                             s);
        } else {
          ops::kernel::batch_norm_apply(backend, xp, mean, invstd, w, b, y.template data<T>(), s);
        }
      };
      const KernelPolicy ran = ops::run_with_policy(
          OpFamily::batchnorm, policy, {s.n, s.c, s.h, s.w, saved.batch_stats}, backend, native,
          GLIA_CUDNN([&](auto ctx, ops::Run run) {
            const auto [rm, rv] = running(run);
            const Tensor scale = or_constant(weight, s, 1.0, x);
            const Tensor shift = or_constant(bias, s, 0.0, x);
            if (saved.batch_stats) {
              kernels::cudnn::batch_norm_forward_training(ctx.cudnn(), s, xp, scale.data<T>(),
                                                          shift.data<T>(), y.template data<T>(), rm,
                                                          rv, mean, invstd, ctx.stream);
            } else {
              kernels::cudnn::batch_norm_forward_inference(
                  ctx.cudnn(), s, xp, scale.data<T>(), shift.data<T>(), running_mean.data<T>(),
                  running_var.data<T>(), y.template data<T>(), ctx.stream);
              // The backward's invstd; cuDNN computed its own internally.
              ops::kernel::batch_norm_invstd(backend, running_var.data<T>(), invstd, s);
            }
            if (relu) {
              ops::kernel::unary(backend, kernels::UnaryOp::relu, y.template data<T>(),
                                 y.template data<T>(), y.numel(), kernels::UnaryParams{});
            }
          }));
      saved.used_cudnn = ran == KernelPolicy::cudnn;
    });
  }
  if (update_running) {
    running_mean.bump_version();
    running_var.bump_version();
  }

  if (needs_grad({x, weight, bias})) {
    if (relu) saved.y = y.detach();
    record(op, y, {x, weight, bias}, {x, weight, relu ? y : Tensor()},
           [xs = x.detach(), ws = weight.defined() ? weight.detach() : Tensor(), saved, s,
            gx_needed = x.requires_grad(), gw_needed = weight.defined() && weight.requires_grad(),
            gb_needed = bias.defined() && bias.requires_grad()](const Tensor& gy) {
             Tensor grad_weight, grad_bias;
             Tensor gx = backward_input(gy, xs, ws, saved, s, grad_weight, grad_bias);
             return std::vector<Tensor>{gx_needed ? gx : Tensor(),
                                        gw_needed ? grad_weight : Tensor(),
                                        gb_needed ? grad_bias : Tensor()};
           });
  }
  return y;
}

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                    Tensor& running_var, bool training, double momentum, double eps,
                    std::optional<KernelPolicy> policy) {
  return forward(x, weight, bias, running_mean, running_var, training, momentum, eps, policy,
                 false);
}

Tensor batch_norm_relu2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         Tensor& running_mean, Tensor& running_var, bool training, double momentum,
                         double eps, std::optional<KernelPolicy> policy) {
  return forward(x, weight, bias, running_mean, running_var, training, momentum, eps, policy, true);
}

Tensor sync_batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         Tensor& running_mean, Tensor& running_var, bool training, double momentum,
                         double eps, const std::shared_ptr<dist::Communicator>& comm) {
  if (!comm) bad_argument(x, "sync_batch_norm2d needs a communicator");
  if (!training && running_mean.defined()) {
    return batch_norm2d(x, weight, bias, running_mean, running_var, false, momentum, eps);
  }
  const BatchNormShape s =
      checked_shape(kOp, x, weight, bias, running_mean, running_var, momentum, eps);

  // The global batch's statistics from every rank's sum, sum of squares and count.
  std::vector<double> mean(static_cast<std::size_t>(s.c)), invstd(mean.size());
  std::vector<double> count_of(mean.size()), var_of(mean.size());
  {
    NoGradGuard no_grad;
    const Tensor xd = x.detach();
    const Tensor local_count = full({s.c}, static_cast<double>(s.count()), {x.dtype(), x.device()});
    const std::vector<double> g = host_values(
        all_reduce_rows({sum(xd, {0, 2, 3}), sum(mul(xd, xd), {0, 2, 3}), local_count}, *comm));
    const auto c = static_cast<std::size_t>(s.c);
    for (std::size_t k = 0; k < c; ++k) {
      const double count = g[2 * c + k];
      if (count < 2) {
        bad_argument(x, "batch statistics need more than one value per channel over all ranks");
      }
      mean[k] = g[k] / count;
      const double var = std::max(g[c + k] / count - mean[k] * mean[k], 0.0);
      invstd[k] = 1.0 / std::sqrt(var + eps);
      var_of[k] = var;
      count_of[k] = count;
    }
    if (running_mean.defined()) {
      std::vector<double> rm = host_values(running_mean), rv = host_values(running_var);
      for (std::size_t k = 0; k < c; ++k) {
        rm[k] = (1.0 - momentum) * rm[k] + momentum * mean[k];
        rv[k] = (1.0 - momentum) * rv[k] + momentum * var_of[k] * count_of[k] / (count_of[k] - 1.0);
      }
      const Tensor new_rm = channel_tensor(rm, x), new_rv = channel_tensor(rv, x);
      copy_bytes(running_mean.raw_data(), running_mean.device(), new_rm.raw_data(), new_rm.device(),
                 static_cast<std::size_t>(s.c) * dtype_size(x.dtype()));
      copy_bytes(running_var.raw_data(), running_var.device(), new_rv.raw_data(), new_rv.device(),
                 static_cast<std::size_t>(s.c) * dtype_size(x.dtype()));
      running_mean.bump_version();
      running_var.bump_version();
    }
  }
  Saved saved;
  saved.batch_stats = true;
  saved.mean = channel_tensor(mean, x);
  saved.invstd = channel_tensor(invstd, x);

  Tensor y(x.shape(), x.dtype(), x.device());
  if (x.numel() > 0) {
    ops::dispatch_float(kOp, x.device(), x.dtype(), [&]<class T>(auto backend) {
      ops::kernel::batch_norm_apply(
          backend, x.data<T>(), saved.mean.template data<T>(), saved.invstd.template data<T>(),
          weight.defined() ? weight.data<T>() : nullptr, bias.defined() ? bias.data<T>() : nullptr,
          y.template data<T>(), s);
    });
  }

  if (needs_grad({x, weight, bias})) {
    // M_local / M_global: the input kernel divides the sums by this rank's count.
    const double share = static_cast<double>(s.count()) / count_of.front();
    record(
        "sync_batch_norm2d", y, {x, weight, bias}, {x, weight},
        [xs = x.detach(), ws = weight.defined() ? weight.detach() : Tensor(), saved, s, comm, share,
         gx_needed = x.requires_grad(), gw_needed = weight.defined() && weight.requires_grad(),
         gb_needed = bias.defined() && bias.requires_grad()](const Tensor& gy) {
          Tensor sum_dy({s.c}, xs.dtype(), xs.device());
          Tensor sum_dy_xhat({s.c}, xs.dtype(), xs.device());
          if (xs.numel() == 0) {
            fill_(sum_dy, 0.0);
            fill_(sum_dy_xhat, 0.0);
          } else {
            ops::dispatch_float(
                "sync_batch_norm2d backward", xs.device(), xs.dtype(), [&]<class T>(auto backend) {
                  const T* xp = xs.data<T>();
                  const T* g = gy.data<T>();
                  const T* mean = saved.mean.data<T>();
                  const T* invstd = saved.invstd.data<T>();
                  T* dy = sum_dy.template data<T>();
                  T* dyx = sum_dy_xhat.template data<T>();
                  if constexpr (has_workspace<decltype(backend)>) {
                    const Tensor ws = ops::workspace(
                        ops::kernel::batch_norm_workspace_size(backend, s), xs.device());
                    ops::kernel::batch_norm_backward_reduce(
                        backend, xp, g, mean, invstd, dy, dyx, s,
                        ws.defined() ? ws.data<float>() : nullptr);
                  } else {
                    ops::kernel::batch_norm_backward_reduce(backend, xp, g, mean, invstd, dy, dyx,
                                                            s);
                  }
                });
          }
          // Every rank's sums, scaled so that the kernel's division by this rank's count
          // divides by the global one.
          std::vector<double> g = host_values(all_reduce_rows({sum_dy, sum_dy_xhat}, *comm));
          for (double& v : g) v *= share;
          const auto c = static_cast<std::size_t>(s.c);
          const Tensor global_dy = channel_tensor({g.begin(), g.begin() + c}, xs);
          const Tensor global_dy_xhat = channel_tensor({g.begin() + c, g.end()}, xs);
          Tensor gx(xs.shape(), xs.dtype(), xs.device());
          if (gx_needed && xs.numel() > 0) {
            ops::dispatch_float("sync_batch_norm2d backward", xs.device(), xs.dtype(),
                                [&]<class T>(auto backend) {
                                  ops::kernel::batch_norm_backward_input(
                                      backend, xs.data<T>(), gy.data<T>(), saved.mean.data<T>(),
                                      saved.invstd.data<T>(), ws.defined() ? ws.data<T>() : nullptr,
                                      global_dy.data<T>(), global_dy_xhat.data<T>(),
                                      gx.template data<T>(), s, true);
                                });
          }
          return std::vector<Tensor>{gx_needed ? gx : Tensor(), gw_needed ? sum_dy_xhat : Tensor(),
                                     gb_needed ? sum_dy : Tensor()};
        });
  }
  return y;
}

}  // namespace glia
