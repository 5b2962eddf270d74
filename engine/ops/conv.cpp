// 2-D convolution and its transpose (NCHW, groups = 1), both built on the three convolution
// passes of kernels/conv_shape.h:
//   conv2d            y = forward(x, w) + bias;  gx = backward_data(gy, w),
//                     gw = backward_filter(x, gy), gb = sum_{n, h, w} gy
//   conv_transpose2d  the adjoint of a convolution whose input is y: y = backward_data(x, w) +
//   bias;
//                     gx = forward(gy, w), gw = backward_filter(gy, x), gb = sum_{n, h, w} gy
// (w keeps PyTorch's layouts: [c_out, c_in, kh, kw] for conv2d, [c_in, c_out, kh, kw] for the
// transpose, which is exactly the weight of the convolution it is the adjoint of). cpu runs the
// im2col + BLAS reference or oneDNN, sim our kernels under the emulator, cuda our kernels or cuDNN,
// by the conv policy (engine/policy.h), auto timing both once per pass and shape. The native
// kernels serve every configuration, so there is no silent fallback. Under a tf32/bf16/fp16
// precision (engine/precision.h) x, w and gy are rounded to that format before every pass but the
// bias one, which stays FP32 like the bias addition; the forward's precision serves its backward.
// All three passes (the forward, also conv_transpose2d's data gradient; the data pass, also
// conv_transpose2d's forward; the filter pass) then run on sim and cuda as the tensor-core
// implicit GEMMs of kernels/cuda/conv_tc.cu in that format under the native policy.
// Tested in tests/engine/conv_test.cpp and tests/engine/precision_test.cpp.
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "engine/ops.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"
#include "engine/ops/policy_runner.h"
#include "kernels/conv_shape.h"

#if defined(GLIA_HAVE_CUDA)
#include "kernels/cudnn/conv.h"
#endif
#if defined(GLIA_HAVE_DNNL)
#include "kernels/dnnl/conv.h"
#endif

namespace glia {
namespace {

using kernels::ConvShape;

enum class Pass : index_t { forward, backward_data, backward_filter, backward_bias };

// What may make one pass faster with our kernel or with cuDNN: the pass and the whole geometry.
AutotuneKey autotune_key(Pass pass, const ConvShape& s) {
  return {static_cast<index_t>(pass),
          s.n,
          s.c_in,
          s.h,
          s.w,
          s.c_out,
          s.kh,
          s.kw,
          s.stride_h,
          s.stride_w,
          s.pad_h,
          s.pad_w,
          s.dil_h,
          s.dil_w};
}

#if defined(GLIA_HAVE_CUDA)

// cuDNN's scratch for one call, from the device's caching allocator.
Tensor cudnn_workspace(std::size_t bytes, Device device) {
  return Tensor({static_cast<index_t>(bytes)}, DType::u8, device);
}

#endif

// The passes on tensors, recording nothing. Both candidates write their outputs whole, so
// auto_select may time them in place.

Tensor forward_pass(const ConvShape& s, const Tensor& x, const Tensor& w, const Tensor& bias,
                    std::optional<KernelPolicy> policy, Precision prec) {
  Tensor y({s.n, s.c_out, s.out_h, s.out_w}, x.dtype(), x.device());
  if (y.numel() == 0) return y;
  ops::dispatch_float("conv2d", x.device(), x.dtype(), [&]<class T>(auto backend) {
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    ops::run_with_policy(
        OpFamily::conv, policy, autotune_key(Pass::forward, s), backend,
        [&] {
          if constexpr (ops::kernel::has_tensor_cores<decltype(backend)>) {
            if (const auto format = tensor_core_format(prec)) {
              ops::kernel::conv2d_forward_tc(backend, s, *format, x.data<T>(), w.data<T>(), b,
                                             y.data<T>());
              return;
            }
          }
          ops::kernel::conv2d_forward(backend, s, x.data<T>(), w.data<T>(), b, y.data<T>());
        },
        GLIA_CUDNN([&](auto ctx) {
          const std::size_t bytes = kernels::cudnn::conv2d_forward_workspace_size(ctx.cudnn(), s);
          const Tensor ws = cudnn_workspace(bytes, x.device());
          kernels::cudnn::conv2d_forward(ctx.cudnn(), s, x.data<T>(), w.data<T>(), b, y.data<T>(),
                                         ws.raw_data(), bytes, ctx.stream);
        }),
        GLIA_DNNL(T, [&](auto) {
          kernels::dnnl::conv2d_forward(s, x.data<T>(), w.data<T>(), b, y.data<T>());
        }));
  });
  return y;
}

Tensor data_pass(const ConvShape& s, const Tensor& gy, const Tensor& w,
                 std::optional<KernelPolicy> policy, Precision prec) {
  Tensor gx({s.n, s.c_in, s.h, s.w}, gy.dtype(), gy.device());
  if (gx.numel() == 0) return gx;
  if (s.y_numel() == 0) {
    fill_(gx, 0.0);  // no output reads x
    return gx;
  }
  ops::dispatch_float("conv2d backward", gy.device(), gy.dtype(), [&]<class T>(auto backend) {
    ops::run_with_policy(
        OpFamily::conv, policy, autotune_key(Pass::backward_data, s), backend,
        [&] {
          if constexpr (ops::kernel::has_tensor_cores<decltype(backend)>) {
            if (const auto format = tensor_core_format(prec)) {
              ops::kernel::conv2d_backward_data_tc(backend, s, *format, gy.data<T>(), w.data<T>(),
                                                   gx.data<T>());
              return;
            }
          }
          ops::kernel::conv2d_backward_data(backend, s, gy.data<T>(), w.data<T>(), gx.data<T>());
        },
        GLIA_CUDNN([&](auto ctx) {
          const std::size_t bytes =
              kernels::cudnn::conv2d_backward_data_workspace_size(ctx.cudnn(), s);
          const Tensor ws = cudnn_workspace(bytes, gy.device());
          kernels::cudnn::conv2d_backward_data(ctx.cudnn(), s, gy.data<T>(), w.data<T>(),
                                               gx.data<T>(), ws.raw_data(), bytes, ctx.stream);
        }),
        GLIA_DNNL(T, [&](auto) {
          kernels::dnnl::conv2d_backward_data(s, gy.data<T>(), w.data<T>(), gx.data<T>());
        }));
  });
  return gx;
}

Tensor filter_pass(const ConvShape& s, const Tensor& x, const Tensor& gy,
                   std::optional<KernelPolicy> policy, Precision prec) {
  Tensor gw({s.c_out, s.c_in, s.kh, s.kw}, x.dtype(), x.device());
  if (gw.numel() == 0) return gw;
  if (s.y_numel() == 0) {
    fill_(gw, 0.0);
    return gw;
  }
  ops::dispatch_float("conv2d backward", x.device(), x.dtype(), [&]<class T>(auto backend) {
    auto native = [&] {
      if constexpr (std::is_same_v<decltype(backend), ops::CpuBackend>) {
        ops::kernel::conv2d_backward_filter(backend, s, x.data<T>(), gy.data<T>(), gw.data<T>());
      } else {
        if constexpr (ops::kernel::has_tensor_cores<decltype(backend)>) {
          if (const auto format = tensor_core_format(prec)) {
            ops::kernel::conv2d_backward_filter_tc(backend, s, *format, x.data<T>(), gy.data<T>(),
                                                   gw.data<T>());
            return;
          }
        }
        // The split reduction's partial sums, when the shape asks for a split.
        const Tensor ws = ops::workspace(
            ops::kernel::conv2d_backward_filter_workspace_size(backend, s), x.device());
        ops::kernel::conv2d_backward_filter(backend, s, x.data<T>(), gy.data<T>(), gw.data<T>(),
                                            ws.defined() ? ws.data<float>() : nullptr);
      }
    };
    ops::run_with_policy(
        OpFamily::conv, policy, autotune_key(Pass::backward_filter, s), backend, native,
        GLIA_CUDNN([&](auto ctx) {
          const std::size_t bytes =
              kernels::cudnn::conv2d_backward_filter_workspace_size(ctx.cudnn(), s);
          const Tensor ws = cudnn_workspace(bytes, x.device());
          kernels::cudnn::conv2d_backward_filter(ctx.cudnn(), s, x.data<T>(), gy.data<T>(),
                                                 gw.data<T>(), ws.raw_data(), bytes, ctx.stream);
        }),
        GLIA_DNNL(T, [&](auto) {
          kernels::dnnl::conv2d_backward_filter(s, x.data<T>(), gy.data<T>(), gw.data<T>());
        }));
  });
  return gw;
}

// gb[c] = sum over n, h, w of g [n, c, h, w]. With a convolution's shape `conv`, cuDNN may serve
// it; without (the transposed convolution's output is not a convolution's output) our kernel does:
// on sim and cuda kernels/cuda/conv.cu's bias gradient, split over many blocks per channel.
Tensor bias_pass(const Tensor& g, const ConvShape* conv, std::optional<KernelPolicy> policy) {
  ConvShape channels;  // the bias kernels read n, c_out and the output plane only
  channels.n = g.size(0);
  channels.c_out = g.size(1);
  channels.out_h = g.size(2);
  channels.out_w = g.size(3);
  Tensor gb({channels.c_out}, g.dtype(), g.device());
  if (gb.numel() == 0) return gb;
  ops::dispatch_float("conv2d backward", g.device(), g.dtype(), [&]<class T>(auto backend) {
    // Without a convolution's shape only our kernel serves.
    ops::run_with_policy(
        OpFamily::conv,
        conv != nullptr ? policy : std::optional<KernelPolicy>(KernelPolicy::native),
        conv != nullptr ? autotune_key(Pass::backward_bias, *conv) : AutotuneKey{}, backend,
        [&] {
          if constexpr (std::is_same_v<decltype(backend), ops::CpuBackend>) {
            ops::kernel::conv2d_backward_bias(backend, channels, g.data<T>(), gb.data<T>());
          } else {
            // The split reduction's partial sums, so a 1-channel head does not run on one SM.
            const Tensor ws = ops::workspace(
                ops::kernel::conv2d_backward_bias_workspace_size(backend, channels), g.device());
            ops::kernel::conv2d_backward_bias(backend, channels, g.data<T>(), gb.data<T>(),
                                              ws.defined() ? ws.data<float>() : nullptr);
          }
        },
        GLIA_CUDNN([&](auto ctx) {
          kernels::cudnn::conv2d_backward_bias(ctx.cudnn(), *conv, g.data<T>(), gb.data<T>(),
                                               ctx.stream);
        }));
  });
  return gb;
}

// gx and gw of conv2d together: on cpu under the dnnl policy one oneDNN call that puts gy into the
// blocked layout once for both; elsewhere the two passes above.
std::pair<Tensor, Tensor> data_and_filter_passes(const ConvShape& s, const Tensor& x,
                                                 const Tensor& gy, const Tensor& w,
                                                 std::optional<KernelPolicy> policy,
                                                 Precision prec) {
#if defined(GLIA_HAVE_DNNL)
  if (gy.device().is_cpu() && gy.dtype() == DType::f32 && s.y_numel() > 0 && s.x_numel() > 0 &&
      s.w_numel() > 0 &&
      resolve_kernel_policy(OpFamily::conv, policy, PolicyDevice::cpu) == KernelPolicy::dnnl) {
    Tensor gx({s.n, s.c_in, s.h, s.w}, gy.dtype(), gy.device());
    Tensor gw({s.c_out, s.c_in, s.kh, s.kw}, gy.dtype(), gy.device());
    ops::dispatch_float("conv2d backward", gy.device(), gy.dtype(), [&]<class T>(auto) {
      if constexpr (std::is_same_v<T, float>) {
        kernels::dnnl::conv2d_backward(s, x.data<T>(), gy.data<T>(), w.data<T>(), gx.data<T>(),
                                       gw.data<T>());
      }
    });
    return {gx, gw};
  }
#endif
  return {data_pass(s, gy, w, policy, prec), filter_pass(s, x, gy, policy, prec)};
}

// --- argument checks ----------------------------------------------------------------------------

[[noreturn]] void bad_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias,
                           const std::string& why) {
  throw std::invalid_argument(std::string(op) + " of x " + x.describe() + ", w " + w.describe() +
                              (bias.defined() ? ", bias " + bias.describe() : "") + ": " + why);
}

// One device and dtype for every tensor, and 4-D x and w.
void check_tensors(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias) {
  ops::check_floating(op, x);
  ops::check_compatible(op, x, w);
  if (bias.defined()) ops::check_compatible(op, x, bias);
  if (x.dim() != 4) bad_args(op, x, w, bias, "x must be [n, c, h, w]");
  if (w.dim() != 4) bad_args(op, x, w, bias, "w must have 4 dims");
}

void check_pair(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias,
                const char* name, const std::array<index_t, 2>& v, index_t min) {
  if (v[0] < min || v[1] < min) {
    bad_args(op, x, w, bias,
             std::string(name) + " (" + std::to_string(v[0]) + ", " + std::to_string(v[1]) +
                 ") must be at least " + std::to_string(min));
  }
}

void check_params(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias,
                  const Conv2dParams& p) {
  check_pair(op, x, w, bias, "stride", p.stride, 1);
  check_pair(op, x, w, bias, "dilation", p.dilation, 1);
  check_pair(op, x, w, bias, "padding", p.padding, 0);
  check_pair(op, x, w, bias, "output_padding", p.output_padding, 0);
}

void check_bias(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias,
                index_t channels) {
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != channels)) {
    bad_args(op, x, w, bias, "bias must be [" + std::to_string(channels) + "]");
  }
}

ConvShape conv_shape_of(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Conv2dParams& p, index_t h, index_t wd, index_t c_in, index_t c_out) {
  try {
    return kernels::make_conv_shape(x.size(0), c_in, h, wd, c_out, w.size(2), w.size(3),
                                    p.stride[0], p.stride[1], p.padding[0], p.padding[1],
                                    p.dilation[0], p.dilation[1]);
  } catch (const std::invalid_argument& e) {
    bad_args(op, x, w, bias, e.what());
  }
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Conv2dParams p,
              std::optional<KernelPolicy> policy) {
  constexpr const char* op = "conv2d";
  check_tensors(op, x, w, bias);
  check_params(op, x, w, bias, p);
  if (p.output_padding[0] != 0 || p.output_padding[1] != 0) {
    bad_args(op, x, w, bias, "output_padding applies to conv_transpose2d only");
  }
  if (x.size(1) != w.size(1)) {
    bad_args(op, x, w, bias,
             "x has " + std::to_string(x.size(1)) +
                 " channels but w [c_out, c_in, kh, kw] expects " + std::to_string(w.size(1)));
  }
  check_bias(op, x, w, bias, w.size(0));
  const ConvShape s = conv_shape_of(op, x, w, bias, p, x.size(2), x.size(3), x.size(1), w.size(0));

  const Precision prec = precision();
  const Tensor xr = round_to_precision(x, prec), wr = round_to_precision(w, prec);
  Tensor y = forward_pass(s, xr, wr, bias, policy, prec);
  if (needs_grad({x, w, bias})) {
    // Saved as rounded (the originals' versions are still checked), so backward rounds gy only.
    record(
        op, y, {x, w, bias}, {w.requires_grad() ? x : Tensor(), x.requires_grad() ? w : Tensor()},
        [s, xs = xr.detach(), ws = wr.detach(), gx_needed = x.requires_grad(),
         gw_needed = w.requires_grad(), gb_needed = bias.defined() && bias.requires_grad(), policy,
         prec](const Tensor& gy_fp32) {
          const Tensor gy = round_to_precision(gy_fp32, prec);
          Tensor gx, gw;
          if (gx_needed && gw_needed) {
            std::tie(gx, gw) = data_and_filter_passes(s, xs, gy, ws, policy, prec);
          } else if (gx_needed) {
            gx = data_pass(s, gy, ws, policy, prec);
          } else if (gw_needed) {
            gw = filter_pass(s, xs, gy, policy, prec);
          }
          return std::vector<Tensor>{gx, gw, gb_needed ? bias_pass(gy_fp32, &s, policy) : Tensor()};
        });
  }
  return y;
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, Conv2dParams p,
                        std::optional<KernelPolicy> policy) {
  constexpr const char* op = "conv_transpose2d";
  check_tensors(op, x, w, bias);
  check_params(op, x, w, bias, p);
  if (p.output_padding[0] >= p.stride[0] || p.output_padding[1] >= p.stride[1]) {
    bad_args(op, x, w, bias, "output_padding must be smaller than the stride");
  }
  if (x.size(1) != w.size(0)) {
    bad_args(op, x, w, bias,
             "x has " + std::to_string(x.size(1)) +
                 " channels but w [c_in, c_out, kh, kw] expects " + std::to_string(w.size(0)));
  }
  const index_t c_out = w.size(1);
  check_bias(op, x, w, bias, c_out);
  // The output is the input of the convolution whose data gradient this is.
  const index_t oh = (x.size(2) - 1) * p.stride[0] - 2 * p.padding[0] +
                     p.dilation[0] * (w.size(2) - 1) + p.output_padding[0] + 1;
  const index_t ow = (x.size(3) - 1) * p.stride[1] - 2 * p.padding[1] +
                     p.dilation[1] * (w.size(3) - 1) + p.output_padding[1] + 1;
  if (x.size(2) < 1 || x.size(3) < 1 || oh < 1 || ow < 1) {
    bad_args(op, x, w, bias,
             "the output would be " + std::to_string(oh) + "x" + std::to_string(ow) +
                 ", which is empty");
  }
  const ConvShape s = conv_shape_of(op, x, w, bias, p, oh, ow, c_out, x.size(1));

  const Precision prec = precision();
  const Tensor xr = round_to_precision(x, prec), wr = round_to_precision(w, prec);
  Tensor y = data_pass(s, xr, wr, policy, prec);
  if (bias.defined()) {
    NoGradGuard no_grad;  // the whole op records below
    y = add(y, bias.reshape({1, c_out, 1, 1}));
  }
  if (needs_grad({x, w, bias})) {
    record(op, y, {x, w, bias},
           {w.requires_grad() ? x : Tensor(), x.requires_grad() ? w : Tensor()},
           [s, xs = xr.detach(), ws = wr.detach(), gx_needed = x.requires_grad(),
            gw_needed = w.requires_grad(), gb_needed = bias.defined() && bias.requires_grad(),
            policy, prec](const Tensor& gy_fp32) {
             const Tensor gy = round_to_precision(gy_fp32, prec);
             return std::vector<Tensor>{
                 gx_needed ? forward_pass(s, gy, ws, Tensor(), policy, prec) : Tensor(),
                 gw_needed ? filter_pass(s, gy, xs, policy, prec) : Tensor(),
                 gb_needed ? bias_pass(gy_fp32, nullptr, policy) : Tensor()};
           });
  }
  return y;
}

}  // namespace glia
