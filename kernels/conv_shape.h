// The geometry of a 2-D convolution (cross-correlation, groups = 1, NCHW), shared by the cpu,
// cuda (and sim) and cudnn paths so every backend reads the same arithmetic:
//   x [n, c_in, h, w], weight [c_out, c_in, kh, kw], y [n, c_out, out_h, out_w]
//   y[n, co, oh, ow] = sum_{c, i, j} w[co, c, i, j] * x[n, c, oh * stride_h - pad_h + i * dil_h,
//                                                          ow * stride_w - pad_w + j * dil_w]
// (x is zero outside [0, h) x [0, w)), out_h = (h + 2 pad_h - dil_h (kh - 1) - 1) / stride_h + 1.
// The transposed convolution is this convolution's data gradient, described by the same struct
// with x as its output. Built once by make_conv_shape, which checks the arguments; a plain struct
// passed by value into kernels. Tested in tests/kernels/conv_test.cpp and
// tests/engine/conv_test.cpp.
#pragma once

#include <stdexcept>
#include <string>

#include "kernels/types.h"

namespace glia::kernels {

struct ConvShape {
  index_t n = 0, c_in = 0, h = 0, w = 0;
  index_t c_out = 0, kh = 0, kw = 0;
  index_t stride_h = 1, stride_w = 1;
  index_t pad_h = 0, pad_w = 0;
  index_t dil_h = 1, dil_w = 1;
  index_t out_h = 0, out_w = 0;

  // The implicit-GEMM view: the reduction length of the forward pass (c, i, j) ...
  GLIA_HD index_t patch() const { return c_in * kh * kw; }
  GLIA_HD index_t in_plane() const { return h * w; }
  GLIA_HD index_t out_plane() const { return out_h * out_w; }
  // ... and the element counts of the three tensors.
  GLIA_HD index_t x_numel() const { return n * c_in * h * w; }
  GLIA_HD index_t w_numel() const { return c_out * c_in * kh * kw; }
  GLIA_HD index_t y_numel() const { return n * c_out * out_h * out_w; }

  // "x [2, 3, 9, 9], w [8, 3, 3, 3], stride 1x1, pad 1x1, dilation 1x1": for error messages.
  std::string describe() const {
    auto dims = [](index_t a, index_t b, index_t c, index_t d) {
      return "[" + std::to_string(a) + ", " + std::to_string(b) + ", " + std::to_string(c) + ", " +
             std::to_string(d) + "]";
    };
    auto pair = [](index_t a, index_t b) { return std::to_string(a) + "x" + std::to_string(b); };
    return "x " + dims(n, c_in, h, w) + ", w " + dims(c_out, c_in, kh, kw) + ", stride " +
           pair(stride_h, stride_w) + ", pad " + pair(pad_h, pad_w) + ", dilation " +
           pair(dil_h, dil_w);
  }
};

// Checks the arguments and computes out_h/out_w; throws std::invalid_argument naming the shape when
// a size is negative, a stride or dilation is below 1, or the output would be empty.
inline ConvShape make_conv_shape(index_t n, index_t c_in, index_t h, index_t w, index_t c_out,
                                 index_t kh, index_t kw, index_t stride_h, index_t stride_w,
                                 index_t pad_h, index_t pad_w, index_t dil_h, index_t dil_w) {
  ConvShape s;
  s.n = n;
  s.c_in = c_in;
  s.h = h;
  s.w = w;
  s.c_out = c_out;
  s.kh = kh;
  s.kw = kw;
  s.stride_h = stride_h;
  s.stride_w = stride_w;
  s.pad_h = pad_h;
  s.pad_w = pad_w;
  s.dil_h = dil_h;
  s.dil_w = dil_w;
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("conv2d (" + s.describe() + "): " + why);
  };
  if (n < 0 || c_in < 0 || h < 0 || w < 0 || c_out < 0) fail("sizes must be non-negative");
  if (kh < 1 || kw < 1) fail("the kernel must be at least 1x1");
  if (stride_h < 1 || stride_w < 1) fail("the stride must be at least 1");
  if (dil_h < 1 || dil_w < 1) fail("the dilation must be at least 1");
  if (pad_h < 0 || pad_w < 0) fail("the padding must be non-negative");
  const index_t span_h = dil_h * (kh - 1) + 1, span_w = dil_w * (kw - 1) + 1;
  if (h + 2 * pad_h < span_h || w + 2 * pad_w < span_w) {
    fail("the padded input " + std::to_string(h + 2 * pad_h) + "x" + std::to_string(w + 2 * pad_w) +
         " is smaller than the dilated kernel " + std::to_string(span_h) + "x" +
         std::to_string(span_w) + ", so the output is empty");
  }
  s.out_h = (h + 2 * pad_h - span_h) / stride_h + 1;
  s.out_w = (w + 2 * pad_w - span_w) / stride_w + 1;
  return s;
}

}  // namespace glia::kernels
