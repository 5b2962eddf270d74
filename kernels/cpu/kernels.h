// The cpu reference kernels: plain loops (OpenMP where it pays) and BLAS for GEMM, templated on
// the element type (float and double; int32/uint8 where noted). They are the oracle every sim and
// cuda kernel is tested against, and mirror kernels/cuda/launchers.inc op for op.
// Tested in tests/kernels/*.
#pragma once

#include <cstdint>

#include "kernels/conv_shape.h"
#include "kernels/rounding.h"
#include "kernels/types.h"

namespace glia::kernels::cpu {

// --- fill.cpp: T in {float, double, int32, uint8} ---------------------------------------------
template <class T>
void fill(T* y, index_t n, T value);
template <class T>
void arange(T* y, index_t n, double start, double step);

// --- cast.cpp ----------------------------------------------------------------------------------
// S, D in {float, double, int32, uint8}; float to integer truncates toward zero. Also float or
// double to and from bf16 and f16 (kernels/half.h: nearest even; double goes through float).
template <class S, class D>
void cast(const S* x, D* y, index_t n);
// y[i] = round_to_format(x[i], format) (kernels/rounding.h); y may be x.
void round_to_format(const float* x, float* y, index_t n, TensorFormat format);

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

// --- optim.cpp: T in {float, double}; fused optimiser updates in place (kernels/optim_math.h) ---
template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buf, index_t n, double lr, double momentum,
              double weight_decay, bool nesterov, bool first_step);
template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, index_t n, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled,
               std::int64_t step);

// --- loss.cpp: T in {float, double}; per-sample sums accumulated in double --------------------
// loss[n] = mean_e bce_with_logits(x[n, e], t[n, e]; pos_weight).
template <class T>
void bce_with_logits(const T* x, const T* t, T* loss, const SampleShape& s, T pos_weight);
// gx[n, e] = gloss[n] / elements * dbce/dx.
template <class T>
void bce_with_logits_backward(const T* x, const T* t, const T* gloss, T* gx, const SampleShape& s,
                              T pos_weight);
// sums[n] = {sum p t, sum p, sum t} with p = sigmoid(x[n, :]), and loss[n] = 1 - Dice.
template <class T>
void dice(const T* x, const T* t, T* sums, T* loss, const SampleShape& s, T smooth);
template <class T>
void dice_backward(const T* x, const T* t, const T* sums, const T* gloss, T* gx,
                   const SampleShape& s, T smooth);
// loss[n] = dice_weight * (1 - Dice) + bce_weight * mean BCE in one pass over x and t, with
// sums[n] = {sum p t, sum p, sum t} for the backward.
template <class T>
void dice_bce(const T* x, const T* t, T* sums, T* loss, const SampleShape& s, T dice_weight,
              T bce_weight, T smooth, T pos_weight);
template <class T>
void dice_bce_backward(const T* x, const T* t, const T* sums, const T* gloss, T* gx,
                       const SampleShape& s, T dice_weight, T bce_weight, T smooth, T pos_weight);
// loss[n], lse[n] = logsumexp(x[n, :]) and target_weight[n] = w[target[n]] (1 without weights,
// which may be null). A target outside [0, classes) throws.
template <class T>
void cross_entropy(const T* x, const std::int32_t* target, const T* class_weight, T* loss, T* lse,
                   T* target_weight, const ClassShape& s, T smoothing);
template <class T>
void cross_entropy_backward(const T* x, const std::int32_t* target, const T* class_weight,
                            const T* lse, const T* gloss, T* gx, const ClassShape& s, T smoothing);
// alpha (per class) may be null (1 for every class).
template <class T>
void focal(const T* x, const std::int32_t* target, const T* alpha, T* loss, T* lse,
           const ClassShape& s, T gamma);
template <class T>
void focal_backward(const T* x, const std::int32_t* target, const T* alpha, const T* lse,
                    const T* gloss, T* gx, const ClassShape& s, T gamma);

// --- dropout.cpp: T in {float, double} --------------------------------------------------------
// Element i keeps when the Philox uniform of (seed, offset, i) (as kernels/cpu/random.cpp's
// uniform fill) is >= p: y = keep ? x * scale : 0, mask = keep.
template <class T>
void dropout(const T* x, T* y, std::uint8_t* mask, index_t n, float p, T scale, std::uint64_t seed,
             std::uint64_t offset);
template <class T>
void dropout_backward(const T* gy, const std::uint8_t* mask, T* gx, index_t n, T scale);

// --- concat.cpp: T in {float, double} ---------------------------------------------------------
// whole[o, offset + c, i] = part[o, c, i] (the rest of whole untouched), and its inverse.
template <class T>
void copy_into_channels(const T* part, T* whole, const ChannelSlice& s);
template <class T>
void copy_from_channels(const T* whole, T* part, const ChannelSlice& s);

// --- batchnorm.cpp: T in {float, double}; per channel c of NCHW, see BatchNormShape -------------
// mean[c] and invstd[c] = 1 / sqrt(var[c] + eps) of the batch (two passes, biased variance), and
// when running_mean is not null the momentum update of running_mean / running_var (unbiased).
template <class T>
void batch_norm_stats(const T* x, T* mean, T* invstd, T* running_mean, T* running_var,
                      const BatchNormShape& s);
// invstd[c] = 1 / sqrt(var[c] + eps): evaluation mode's from the running variance.
template <class T>
void batch_norm_invstd(const T* var, T* invstd, const BatchNormShape& s);
// y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]; null weight / bias read as 1 / 0.
template <class T>
void batch_norm_apply(const T* x, const T* mean, const T* invstd, const T* weight, const T* bias,
                      T* y, const BatchNormShape& s);
// sum_dy[c] = sum gy and sum_dy_xhat[c] = sum gy * xhat over channel c, xhat = (x - mean) * invstd:
// the bias and weight gradients.
template <class T>
void batch_norm_backward_reduce(const T* x, const T* gy, const T* mean, const T* invstd, T* sum_dy,
                                T* sum_dy_xhat, const BatchNormShape& s);
// gx through the batch statistics (training: w * invstd * (gy - sum_dy / M - xhat * sum_dy_xhat /
// M), M = count()) or through the affine map only (evaluation: gy * w * invstd).
template <class T>
void batch_norm_backward_input(const T* x, const T* gy, const T* mean, const T* invstd,
                               const T* weight, const T* sum_dy, const T* sum_dy_xhat, T* gx,
                               const BatchNormShape& s, bool training);

// The same fused with a ReLU: y = max(bn(x), 0) (NaN propagates); the backward masks gy where
// the fused output y is not positive, then runs the formulas above.
template <class T>
void batch_norm_relu_apply(const T* x, const T* mean, const T* invstd, const T* weight,
                           const T* bias, T* y, const BatchNormShape& s);
template <class T>
void batch_norm_relu_backward_reduce(const T* x, const T* gy, const T* y, const T* mean,
                                     const T* invstd, T* sum_dy, T* sum_dy_xhat,
                                     const BatchNormShape& s);
template <class T>
void batch_norm_relu_backward_input(const T* x, const T* gy, const T* y, const T* mean,
                                    const T* invstd, const T* weight, const T* sum_dy,
                                    const T* sum_dy_xhat, T* gx, const BatchNormShape& s,
                                    bool training);

// sum[c] = sum over n, h, w of g[n, c, h, w] in double (the convolution bias gradient).
template <class T>
void channel_sum(const T* g, T* sum, const BatchNormShape& s);

// --- pool.cpp: T in {float, double}; see Pool2dShape -------------------------------------------
// y = max over the window (padding is -inf) and idx = its flat ih * w + iw within the plane (the
// first on ties; the first NaN wins).
template <class T>
void max_pool2d(const T* x, T* y, std::int32_t* idx, const Pool2dShape& s);
// gx[plane, idx[o]] += gy[o] for every output o (gx is written whole).
template <class T>
void max_pool2d_backward(const T* gy, const std::int32_t* idx, T* gx, const Pool2dShape& s);
// y = the window's sum / avg_divisor.
template <class T>
void avg_pool2d(const T* x, T* y, const Pool2dShape& s);
template <class T>
void avg_pool2d_backward(const T* gy, T* gx, const Pool2dShape& s);
// y[n, c] = the mean of plane (n, c); s = Pool2dShape::global(...).
template <class T>
void global_avg_pool2d(const T* x, T* y, const Pool2dShape& s);
template <class T>
void global_avg_pool2d_backward(const T* gy, T* gx, const Pool2dShape& s);

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

// --- softmax.cpp: T in {float, double}; the rows of [rows, classes] (ClassShape) --------------
// Max-subtracted, row sums in double: softmax y = exp(x - m) / sum exp(x - m), log_softmax
// y = x - m - log sum exp(x - m), with m the row's max.
template <class T>
void softmax(const T* x, T* y, const ClassShape& s);
template <class T>
void log_softmax(const T* x, T* y, const ClassShape& s);
// From the forward's output y: softmax gx = y * (gy - sum_c gy * y); log_softmax
// gx = gy - exp(y) * sum_c gy (gx is written whole).
template <class T>
void softmax_backward(const T* y, const T* gy, T* gx, const ClassShape& s);
template <class T>
void log_softmax_backward(const T* y, const T* gy, T* gx, const ClassShape& s);

}  // namespace glia::kernels::cpu
