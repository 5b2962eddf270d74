// The oneDNN implementation of 2-D convolution for the cpu device: the same contract as the
// reference kernels/cpu conv2d_* (NCHW, float, cross-correlation, groups = 1; see
// kernels/conv_shape.h), used by the engine under the `dnnl` policy (engine/policy.h). Each pass
// lets oneDNN choose its preferred (blocked) layouts and reorders our plain NCHW / OIHW buffers in
// and out around the call; oneDNN's primitive cache keeps the compiled kernels per shape. Errors
// from oneDNN are rethrown as std::runtime_error naming the pass and the shape. Tested against the
// reference kernels in tests/kernels/conv_test.cpp (CpuDnnlConv) and, through the engine, in
// tests/engine/conv_test.cpp (CpuDnnl*).
#pragma once

#include "kernels/conv_shape.h"

namespace glia::kernels::dnnl {

// Templates defined for T = float only (oneDNN's f32 path), so that the engine's dispatch, which
// is generic in the element type, can name them for every type and call them only for float.

// y = conv(x, w) + bias (bias may be null); y written whole.
template <class T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y);
// gx = the gradient w.r.t. x (written whole).
template <class T>
void conv2d_backward_data(const ConvShape& s, const T* gy, const T* w, T* gx);
// gw = the gradient w.r.t. the weight (written whole).
template <class T>
void conv2d_backward_filter(const ConvShape& s, const T* x, const T* gy, T* gw);
// Both gradients at once, gx = backward_data(gy, w) and gw = backward_filter(x, gy), with gy put
// into the blocked layout once for the two (the training step's largest copy).
template <class T>
void conv2d_backward(const ConvShape& s, const T* x, const T* gy, const T* w, T* gx, T* gw);

template <>
void conv2d_forward<float>(const ConvShape& s, const float* x, const float* w, const float* bias,
                           float* y);
template <>
void conv2d_backward_data<float>(const ConvShape& s, const float* gy, const float* w, float* gx);
template <>
void conv2d_backward_filter<float>(const ConvShape& s, const float* x, const float* gy, float* gw);
template <>
void conv2d_backward<float>(const ConvShape& s, const float* x, const float* gy, const float* w,
                            float* gx, float* gw);

}  // namespace glia::kernels::dnnl
