// oneDNN convolution passes on plain NCHW buffers; see conv.h. Each pass builds its primitive
// descriptor with format_tag::any, so oneDNN picks the layout its fastest kernel (jit AVX2 /
// AVX-512 on blocked channels) wants, and reorders between that layout and ours only where they
// differ. Tested in tests/kernels/conv_test.cpp (CpuDnnlConv).
#include "kernels/dnnl/conv.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <stdexcept>
#include <string>

#include "kernels/dnnl/context.h"

namespace glia::kernels::dnnl {
namespace {

using ::dnnl::algorithm;
using ::dnnl::convolution_backward_data;
using ::dnnl::convolution_backward_weights;
using ::dnnl::convolution_forward;
using ::dnnl::memory;
using ::dnnl::prop_kind;
using tag = memory::format_tag;

struct Geometry {
  memory::desc x_any, w_any, y_any, bias;
  memory::desc x_plain, w_plain, y_plain;
  memory::dims strides, dilates, pad_l, pad_r;
};

Geometry geometry(const ConvShape& s) {
  const memory::dims x{s.n, s.c_in, s.h, s.w};
  const memory::dims w{s.c_out, s.c_in, s.kh, s.kw};
  const memory::dims y{s.n, s.c_out, s.out_h, s.out_w};
  constexpr auto f32 = memory::data_type::f32;
  Geometry g;
  g.x_any = memory::desc(x, f32, tag::any);
  g.w_any = memory::desc(w, f32, tag::any);
  g.y_any = memory::desc(y, f32, tag::any);
  g.bias = memory::desc({s.c_out}, f32, tag::x);
  g.x_plain = memory::desc(x, f32, tag::nchw);
  g.w_plain = memory::desc(w, f32, tag::oihw);
  g.y_plain = memory::desc(y, f32, tag::nchw);
  g.strides = {s.stride_h, s.stride_w};
  // oneDNN counts dilation from 0 (no dilation) where PyTorch counts from 1.
  g.dilates = {s.dil_h - 1, s.dil_w - 1};
  g.pad_l = {s.pad_h, s.pad_w};
  // Symmetric padding: oneDNN floors the output size as PyTorch does, so rows the stride skips at
  // the bottom need no adjustment.
  g.pad_r = {s.pad_h, s.pad_w};
  return g;
}

convolution_forward::primitive_desc forward_pd(const ConvShape& s, const Geometry& g,
                                               bool with_bias) {
  const convolution_forward::desc d =
      with_bias ? convolution_forward::desc(prop_kind::forward_training,
                                            algorithm::convolution_direct, g.x_any, g.w_any, g.bias,
                                            g.y_any, g.strides, g.dilates, g.pad_l, g.pad_r)
                : convolution_forward::desc(prop_kind::forward_training,
                                            algorithm::convolution_direct, g.x_any, g.w_any,
                                            g.y_any, g.strides, g.dilates, g.pad_l, g.pad_r);
  (void)s;
  return convolution_forward::primitive_desc(d, cpu_engine());
}

[[noreturn]] void rethrow(const char* pass, const ConvShape& s, const ::dnnl::error& e) {
  throw std::runtime_error(std::string("oneDNN ") + pass + " (" + s.describe() + "): " + e.what());
}

}  // namespace

template <>
void conv2d_forward<float>(const ConvShape& s, const float* x, const float* w, const float* bias,
                           float* y) {
  try {
    const Geometry g = geometry(s);
    const auto pd = forward_pd(s, g, bias != nullptr);
    Args args;
    args.input(DNNL_ARG_SRC, g.x_plain, pd.src_desc(), x);
    args.input(DNNL_ARG_WEIGHTS, g.w_plain, pd.weights_desc(), w);
    if (bias != nullptr) args.input(DNNL_ARG_BIAS, g.bias, g.bias, bias);
    args.output(DNNL_ARG_DST, g.y_plain, pd.dst_desc(), y);
    args.run(convolution_forward(pd));
  } catch (const ::dnnl::error& e) {
    rethrow("convolution forward", s, e);
  }
}

template <>
void conv2d_backward_data<float>(const ConvShape& s, const float* gy, const float* w, float* gx) {
  try {
    const Geometry g = geometry(s);
    const auto hint = forward_pd(s, g, false);
    const convolution_backward_data::desc d(algorithm::convolution_direct, g.x_any, g.w_any,
                                            g.y_any, g.strides, g.dilates, g.pad_l, g.pad_r);
    const convolution_backward_data::primitive_desc pd(d, cpu_engine(), hint);
    Args args;
    args.input(DNNL_ARG_DIFF_DST, g.y_plain, pd.diff_dst_desc(), gy);
    args.input(DNNL_ARG_WEIGHTS, g.w_plain, pd.weights_desc(), w);
    args.output(DNNL_ARG_DIFF_SRC, g.x_plain, pd.diff_src_desc(), gx);
    args.run(convolution_backward_data(pd));
  } catch (const ::dnnl::error& e) {
    rethrow("convolution backward data", s, e);
  }
}

template <>
void conv2d_backward_filter<float>(const ConvShape& s, const float* x, const float* gy, float* gw) {
  try {
    const Geometry g = geometry(s);
    const auto hint = forward_pd(s, g, false);
    const convolution_backward_weights::desc d(algorithm::convolution_direct, g.x_any, g.w_any,
                                               g.y_any, g.strides, g.dilates, g.pad_l, g.pad_r);
    const convolution_backward_weights::primitive_desc pd(d, cpu_engine(), hint);
    Args args;
    args.input(DNNL_ARG_SRC, g.x_plain, pd.src_desc(), x);
    args.input(DNNL_ARG_DIFF_DST, g.y_plain, pd.diff_dst_desc(), gy);
    args.output(DNNL_ARG_DIFF_WEIGHTS, g.w_plain, pd.diff_weights_desc(), gw);
    args.run(convolution_backward_weights(pd));
  } catch (const ::dnnl::error& e) {
    rethrow("convolution backward weights", s, e);
  }
}

template <>
void conv2d_backward<float>(const ConvShape& s, const float* x, const float* gy, const float* w,
                            float* gx, float* gw) {
  try {
    const Geometry g = geometry(s);
    const auto hint = forward_pd(s, g, false);
    const convolution_backward_data::primitive_desc data_pd(
        convolution_backward_data::desc(algorithm::convolution_direct, g.x_any, g.w_any, g.y_any,
                                        g.strides, g.dilates, g.pad_l, g.pad_r),
        cpu_engine(), hint);
    const convolution_backward_weights::primitive_desc weights_pd(
        convolution_backward_weights::desc(algorithm::convolution_direct, g.x_any, g.w_any, g.y_any,
                                           g.strides, g.dilates, g.pad_l, g.pad_r),
        cpu_engine(), hint);
    if (data_pd.diff_dst_desc() != weights_pd.diff_dst_desc()) {
      // The two passes want gy in different layouts: nothing to share.
      conv2d_backward_data<float>(s, gy, w, gx);
      conv2d_backward_filter<float>(s, x, gy, gw);
      return;
    }
    // gy's blocked copy, made by the first call and read again by the second.
    Args data;
    const ::dnnl::memory gy_blocked =
        data.input(DNNL_ARG_DIFF_DST, g.y_plain, data_pd.diff_dst_desc(), gy);
    data.input(DNNL_ARG_WEIGHTS, g.w_plain, data_pd.weights_desc(), w);
    data.output(DNNL_ARG_DIFF_SRC, g.x_plain, data_pd.diff_src_desc(), gx);
    data.run(convolution_backward_data(data_pd));
    Args weights = data.next();
    weights.input(DNNL_ARG_SRC, g.x_plain, weights_pd.src_desc(), x);
    weights.add(DNNL_ARG_DIFF_DST, gy_blocked);
    weights.output(DNNL_ARG_DIFF_WEIGHTS, g.w_plain, weights_pd.diff_weights_desc(), gw);
    weights.run(convolution_backward_weights(weights_pd));
  } catch (const ::dnnl::error& e) {
    rethrow("convolution backward", s, e);
  }
}

}  // namespace glia::kernels::dnnl
