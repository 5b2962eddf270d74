// The cpu reference kernels: plain loops (OpenMP where it pays) and BLAS for GEMM, templated on
// the element type (float and double; int32/uint8 where noted). They are the oracle every sim and
// cuda kernel is tested against, and mirror kernels/cuda/launchers.inc op for op.
// Tested in tests/kernels/*.
#pragma once

#include <cstdint>

#include "kernels/conv_shape.h"
#include "kernels/types.h"

namespace glia::kernels::cpu {

// --- fill.cpp: T in {float, double, int32, uint8} ---------------------------------------------
template <class T>
void fill(T* y, index_t n, T value);
template <class T>
void arange(T* y, index_t n, double start, double step);
// S, D in {float, double, int32, uint8}; float to integer truncates toward zero.
template <class S, class D>
void cast(const S* x, D* y, index_t n);

// --- elementwise.cpp: T in {float, double} ---------------------------------------------------
template <class T>
void unary(UnaryOp op, const T* x, T* y, index_t n, UnaryParams p);
template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, index_t n,
                    UnaryParams p);
template <class T>
void binary(BinaryOp op, const T* a, const T* b, T* out, const BroadcastShape& s);
template <class T>
void expand(const T* x, T* y, const BroadcastShape& s);

// --- reduce.cpp: T in {float, double} --------------------------------------------------------
template <class T>
void reduce_sum(const T* x, T* y, const ReduceShape& s, T scale);
template <class T>
void reduce_max(const T* x, T* y, std::int32_t* idx, const ReduceShape& s);
template <class T>
void reduce_max_backward(const T* gy, const std::int32_t* idx, T* gx, const ReduceShape& s);

// --- transpose.cpp: T in {float, double} -----------------------------------------------------
template <class T>
void transpose_last2(const T* x, T* y, index_t batch, index_t rows, index_t cols);

// --- gemm.cpp: T in {float, double}, through cblas_sgemm / cblas_dgemm -------------------------
template <class T>
void gemm(const GemmShape& s, const T* a, const T* b, T* c);

// --- random.cpp: T in {float, double}; the float value of kernels/philox.h, converted -----------
template <class T>
void uniform(T* y, index_t n, std::uint64_t seed, std::uint64_t offset, float lo, float hi);
template <class T>
void normal(T* y, index_t n, std::uint64_t seed, std::uint64_t offset, float mean, float stddev);

// --- conv.cpp: T in {float, double}; 2-D convolution, see kernels/conv_shape.h ------------------
// y = conv(x, w) + bias (bias may be null).
template <class T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y);
// gx = the gradient of the convolution w.r.t. x for output gradient gy (gx is written whole).
template <class T>
void conv2d_backward_data(const ConvShape& s, const T* gy, const T* w, T* gx);
// gw = the gradient w.r.t. the weight (written whole).
template <class T>
void conv2d_backward_filter(const ConvShape& s, const T* x, const T* gy, T* gw);
// gb[co] = sum over n, oh, ow of gy[n, co, oh, ow].
template <class T>
void conv2d_backward_bias(const ConvShape& s, const T* gy, T* gb);

}  // namespace glia::kernels::cpu
