// 2-D pooling of NCHW tensors (kernels/types.h Pool2dShape): max, average and global average.
// cpu runs the reference kernels, sim our kernels under the emulator, cuda our kernels or cuDNN by
// the pool policy (engine/policy.h). Backward:
//   max:     gx = gy routed to the index each window chose (saved as i32, ih * w + iw in the
//            plane); under cuDNN, which keeps no indices, from the saved x and y instead
//   average: each input gathers gy / divisor from every window that covers it
//   global:  gx = gy / (h * w)
// Tested in tests/engine/pool_test.cpp.
#include <stdexcept>
#include <string>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"
#include "engine/ops/policy_runner.h"

#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/pool.h"
#endif

namespace glia {
namespace {

using kernels::Pool2dShape;

enum class PoolKind { max, average, global_average };

const char* op_name(PoolKind kind) {
  switch (kind) {
    case PoolKind::max:
      return "max_pool2d";
    case PoolKind::average:
      return "avg_pool2d";
    case PoolKind::global_average:
      return "global_avg_pool2d";
  }
  return "?";
}

void check_nchw(const char* op, const Tensor& x) {
  ops::check_floating(op, x);
  if (x.dim() != 4) {
    throw std::invalid_argument(std::string(op) + " needs an NCHW tensor of rank 4, got " +
                                x.describe());
  }
}

[[noreturn]] void bad_window(const char* op, const Tensor& x, const std::string& why) {
  throw std::invalid_argument(std::string(op) + " of " + x.describe() + ": " + why);
}

Pool2dShape window_shape(const char* op, const Tensor& x, int kernel, int stride, int padding,
                         bool count_include_pad) {
  check_nchw(op, x);
  if (kernel < 1) bad_window(op, x, "kernel " + std::to_string(kernel) + " must be at least 1");
  if (stride == 0) stride = kernel;
  if (stride < 0) bad_window(op, x, "stride " + std::to_string(stride) + " must be positive");
  if (padding < 0 || 2 * padding > kernel) {
    bad_window(op, x,
               "padding " + std::to_string(padding) + " must lie in [0, kernel / 2] (kernel " +
                   std::to_string(kernel) + ")");
  }
  const index_t h = x.size(2), w = x.size(3);
  if (h + 2 * padding < kernel || w + 2 * padding < kernel) {
    bad_window(op, x,
               "the " + std::to_string(h) + " x " + std::to_string(w) + " plane padded by " +
                   std::to_string(padding) + " is smaller than the kernel " +
                   std::to_string(kernel));
  }
  return Pool2dShape::make(x.size(0), x.size(1), h, w, kernel, stride, padding, count_include_pad);
}

// What the backward needs: the max indices of our kernel, or x and y for cuDNN's.
struct Forward {
  Tensor y;
  Tensor indices;
  bool used_cudnn = false;
};

#if defined(GLIA_HAVE_CUDA)
kernels::cudnn::PoolMode cudnn_mode(PoolKind kind) {
  return kind == PoolKind::max ? kernels::cudnn::PoolMode::max : kernels::cudnn::PoolMode::average;
}
#endif

Forward pool_forward(PoolKind kind, const Tensor& x, const Pool2dShape& s,
                     std::optional<KernelPolicy> policy) {
  const char* op = op_name(kind);
  Forward f;
  f.y = Tensor({s.n, s.c, s.out_h, s.out_w}, x.dtype(), x.device());
  if (kind == PoolKind::max) f.indices = Tensor(f.y.shape(), DType::i32, x.device());
  if (f.y.numel() == 0) return f;
  ops::dispatch_float(op, x.device(), x.dtype(), [&]<class T>(auto backend) {
    const T* xp = x.data<T>();
    T* yp = f.y.template data<T>();
    auto native = [&] {
      switch (kind) {
        case PoolKind::max:
          ops::kernel::max_pool2d(backend, xp, yp, f.indices.template data<std::int32_t>(), s);
          break;
        case PoolKind::average:
          ops::kernel::avg_pool2d(backend, xp, yp, s);
          break;
        case PoolKind::global_average:
          ops::kernel::global_avg_pool2d(backend, xp, yp, s);
          break;
      }
    };
    const AutotuneKey key{static_cast<std::int64_t>(kind),
                          s.n,
                          s.c,
                          s.h,
                          s.w,
                          s.kernel_h,
                          s.kernel_w,
                          s.stride_h,
                          s.stride_w,
                          s.pad_h,
                          s.pad_w,
                          s.count_include_pad};
    f.used_cudnn =
        ops::run_with_policy(
            OpFamily::pool, policy, key, backend, native, GLIA_CUDNN([&](auto ctx) {
              kernels::cudnn::pool2d_forward(ctx.cudnn(), cudnn_mode(kind), s, xp, yp, ctx.stream);
            })) == KernelPolicy::cudnn;
  });
  return f;
}

Tensor pool_backward(PoolKind kind, const Pool2dShape& s, const Tensor& gy, const Tensor& x,
                     const Tensor& y, const Tensor& indices, bool used_cudnn) {
  Tensor gx({s.n, s.c, s.h, s.w}, gy.dtype(), gy.device());
  if (gx.numel() == 0) return gx;
  ops::dispatch_float("pool backward", gy.device(), gy.dtype(), [&]<class T>(auto backend) {
    const T* gyp = gy.data<T>();
    T* gxp = gx.template data<T>();
    auto native = [&] {
      switch (kind) {
        case PoolKind::max:
          ops::kernel::max_pool2d_backward(backend, gyp, indices.data<std::int32_t>(), gxp, s);
          break;
        case PoolKind::average:
          ops::kernel::avg_pool2d_backward(backend, gyp, gxp, s);
          break;
        case PoolKind::global_average:
          ops::kernel::global_avg_pool2d_backward(backend, gyp, gxp, s);
          break;
      }
    };
    ops::run_with_policy(OpFamily::pool, used_cudnn ? KernelPolicy::cudnn : KernelPolicy::native,
                         {}, backend, native, GLIA_CUDNN([&](auto ctx) {
                           kernels::cudnn::pool2d_backward(ctx.cudnn(), cudnn_mode(kind), s,
                                                           x.data<T>(), y.data<T>(), gyp, gxp,
                                                           ctx.stream);
                         }));
    (void)x;  // read by the cuDNN backward only
    (void)y;
  });
  return gx;
}

Tensor pool(PoolKind kind, const Tensor& x, const Pool2dShape& s,
            std::optional<KernelPolicy> policy) {
  Forward f = pool_forward(kind, x, s, policy);
  if (needs_grad({x})) {
    // cuDNN's backward reads x and y; ours needs at most the indices.
    const Tensor saved_x = f.used_cudnn ? x.detach() : Tensor();
    const Tensor saved_y = f.used_cudnn ? f.y.detach() : Tensor();
    record(op_name(kind), f.y, {x}, {saved_x, saved_y},
           [kind, s, saved_x, saved_y, indices = f.indices,
            used_cudnn = f.used_cudnn](const Tensor& gy) {
             return std::vector<Tensor>{
                 pool_backward(kind, s, gy, saved_x, saved_y, indices, used_cudnn)};
           });
  }
  return f.y;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, int kernel, int stride, int padding,
                  std::optional<KernelPolicy> policy) {
  return pool(PoolKind::max, x, window_shape("max_pool2d", x, kernel, stride, padding, true),
              policy);
}

Tensor avg_pool2d(const Tensor& x, int kernel, int stride, int padding, bool count_include_pad,
                  std::optional<KernelPolicy> policy) {
  return pool(PoolKind::average, x,
              window_shape("avg_pool2d", x, kernel, stride, padding, count_include_pad), policy);
}

Tensor global_avg_pool2d(const Tensor& x, std::optional<KernelPolicy> policy) {
  check_nchw("global_avg_pool2d", x);
  if (x.size(2) == 0 || x.size(3) == 0) {
    throw std::invalid_argument("global_avg_pool2d of " + x.describe() + ": empty planes");
  }
  return pool(PoolKind::global_average, x,
              Pool2dShape::global(x.size(0), x.size(1), x.size(2), x.size(3)), policy);
}

}  // namespace glia
