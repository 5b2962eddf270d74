// softmax and log_softmax over the last axis, the tensor viewed as [rows, classes] (kernels/types.h
// ClassShape): rows = the product of the leading dims, classes = the last. cpu runs the reference
// kernels, sim our kernels under the emulator, cuda our kernels or cuDNN by the softmax policy
// (engine/policy.h). Both backward passes need only the output y (saved) and gy:
//   softmax      gx = y * (gy - sum_c gy * y)
//   log_softmax  gx = gy - exp(y) * sum_c gy
// run by the implementation that ran the forward. Tested in tests/engine/softmax_test.cpp.
#include <stdexcept>
#include <string>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"
#include "engine/ops/policy_runner.h"

#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/softmax.h"
#endif

namespace glia {
namespace {

using kernels::ClassShape;

const char* op_name(bool log) {
  return log ? "log_softmax" : "softmax";
}

// The [rows, classes] view of x for a softmax along `axis`, which must name the last dim.
ClassShape class_shape(const char* op, const Tensor& x, int axis) {
  ops::check_floating(op, x);
  if (x.dim() == 0) {
    throw std::invalid_argument(std::string(op) + " needs a tensor of rank >= 1, got " +
                                x.describe());
  }
  const int last = x.dim() - 1;
  if (axis != -1 && axis != last) {
    throw std::invalid_argument(std::string(op) + " of " + x.describe() + " along axis " +
                                std::to_string(axis) + ": only the last axis (-1 or " +
                                std::to_string(last) + ") is supported");
  }
  const index_t classes = x.size(last);
  return ClassShape{classes == 0 ? 0 : x.numel() / classes, classes};
}

struct Forward {
  Tensor y;
  bool used_cudnn = false;
};

Forward softmax_forward(bool log, const Tensor& x, const ClassShape& s,
                        std::optional<KernelPolicy> policy) {
  const char* op = op_name(log);
  Forward f;
  f.y = Tensor(x.shape(), x.dtype(), x.device());
  if (f.y.numel() == 0) return f;
  ops::dispatch_float(op, x.device(), x.dtype(), [&]<class T>(auto backend) {
    const T* xp = x.data<T>();
    T* yp = f.y.template data<T>();
    auto native = [&] {
      if (log) {
        ops::kernel::log_softmax(backend, xp, yp, s);
      } else {
        ops::kernel::softmax(backend, xp, yp, s);
      }
    };
    f.used_cudnn = ops::run_with_policy(OpFamily::softmax, policy, {log, s.rows, s.classes},
                                        backend, native, GLIA_CUDNN([&](auto ctx) {
                                          kernels::cudnn::softmax_forward(ctx.cudnn(), log, s, xp,
                                                                          yp, ctx.stream);
                                        })) == KernelPolicy::cudnn;
  });
  return f;
}

Tensor softmax_backward(bool log, const ClassShape& s, const Tensor& y, const Tensor& gy,
                        bool used_cudnn) {
  const char* op = log ? "log_softmax backward" : "softmax backward";
  Tensor gx(y.shape(), gy.dtype(), gy.device());
  if (gx.numel() == 0) return gx;
  ops::dispatch_float(op, gy.device(), gy.dtype(), [&]<class T>(auto backend) {
    const T* yp = y.data<T>();
    const T* gyp = gy.data<T>();
    T* gxp = gx.template data<T>();
    auto native = [&] {
      if (log) {
        ops::kernel::log_softmax_backward(backend, yp, gyp, gxp, s);
      } else {
        ops::kernel::softmax_backward(backend, yp, gyp, gxp, s);
      }
    };
    ops::run_with_policy(OpFamily::softmax, used_cudnn ? KernelPolicy::cudnn : KernelPolicy::native,
                         {}, backend, native, GLIA_CUDNN([&](auto ctx) {
                           kernels::cudnn::softmax_backward(ctx.cudnn(), log, s, yp, gyp, gxp,
                                                            ctx.stream);
                         }));
  });
  return gx;
}

Tensor softmax_op(bool log, const Tensor& x, int axis, std::optional<KernelPolicy> policy) {
  const ClassShape s = class_shape(op_name(log), x, axis);
  Forward f = softmax_forward(log, x, s, policy);
  if (needs_grad({x})) {
    record(op_name(log), f.y, {x}, {f.y},
           [log, s, y = f.y.detach(), used_cudnn = f.used_cudnn](const Tensor& gy) {
             return std::vector<Tensor>{softmax_backward(log, s, y, gy, used_cudnn)};
           });
  }
  return f.y;
}

}  // namespace

Tensor softmax(const Tensor& x, int axis, std::optional<KernelPolicy> policy) {
  return softmax_op(false, x, axis, policy);
}

Tensor log_softmax(const Tensor& x, int axis, std::optional<KernelPolicy> policy) {
  return softmax_op(true, x, axis, policy);
}

}  // namespace glia
