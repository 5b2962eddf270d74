// Shapes and op codes shared by the cpu, cuda (and sim) and cudnn kernel paths, so every backend
// reads the same arithmetic. Plain structs passed by value into kernels; no Tensor here. Each
// shape's describe() (host only) is its one human-readable form for error and log messages.
// Tested through tests/kernels/*.
#pragma once

#include <cstdint>
#include <string>

// Functions shared verbatim by the cpu reference and the cuda/sim kernels (philox.h,
// elementwise_math.h): host+device under nvcc, plain inline for the host compiler.
#if defined(__CUDACC__)
#define GLIA_HD __host__ __device__ __forceinline__
#else
#define GLIA_HD inline
#endif

namespace glia::kernels {

using index_t = std::int64_t;
// A device stream: cudaStream_t on cuda, ignored on cpu and sim.
using Stream = void*;

inline constexpr int kMaxDims = 5;

// y = f(x; a, b) elementwise. Scalar parameters live in UnaryParams.
enum class UnaryOp : int {
  copy,         // y = x
  neg,          // y = -x
  exp,          // y = e^x
  log,          // y = ln x
  sqrt,         // y = sqrt x
  abs,          // y = |x|
  relu,         // y = max(x, 0)
  sigmoid,      // y = 1 / (1 + e^-x)
  tanh,         // y = tanh x
  add_scalar,   // y = x + a
  mul_scalar,   // y = a * x
  rsub_scalar,  // y = a - x
  rdiv_scalar,  // y = a / x
  pow_scalar,   // y = x^a
  clamp,        // y = min(max(x, a), b)
};

struct UnaryParams {
  double a = 0.0;
  double b = 0.0;
};

// out = a (op) b with broadcasting; see BroadcastShape.
enum class BinaryOp : int { add, sub, mul, div };

// Output of ndim dims (row-major, contiguous); a and b are read at sum_d idx[d] * stride[d], where
// a broadcast (size-1) input dim has stride 0. Also used by expand (only a_stride is read).
struct BroadcastShape {
  int ndim = 0;
  index_t numel = 0;
  index_t shape[kMaxDims] = {};
  index_t a_stride[kMaxDims] = {};
  index_t b_stride[kMaxDims] = {};
};

// A reduction over the middle axis of a contiguous [outer, reduce, inner] view.
struct ReduceShape {
  index_t outer = 1;
  index_t reduce = 1;
  index_t inner = 1;

  // "[outer, reduce, inner]"
  std::string describe() const {
    return "[" + std::to_string(outer) + ", " + std::to_string(reduce) + ", " +
           std::to_string(inner) + "]";
  }
};

// Row-major, batched: C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b], op(A) is m x k, op(B) is
// k x n, C is m x n. lda/ldb/ldc are the row strides of A, B, C as stored (before op).
// beta == 0 means C is write-only (its old contents, even NaN, are ignored).
struct GemmShape {
  index_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  index_t lda = 0, ldb = 0, ldc = 0;
  index_t batch = 1;
  index_t stride_a = 0, stride_b = 0, stride_c = 0;
  double alpha = 1.0, beta = 0.0;

  // "m 4, n 5, k 6, batch 1, trans_a 0, trans_b 1, lda 6, ldb 6, ldc 5"
  std::string describe() const {
    return "m " + std::to_string(m) + ", n " + std::to_string(n) + ", k " + std::to_string(k) +
           ", batch " + std::to_string(batch) + ", trans_a " + (trans_a ? "1" : "0") +
           ", trans_b " + (trans_b ? "1" : "0") + ", lda " + std::to_string(lda) + ", ldb " +
           std::to_string(ldb) + ", ldc " + std::to_string(ldc);
  }
};

}  // namespace glia::kernels

// --- losses, dropout and channel concat (kernels/*/loss, dropout, concat) ----------------------
namespace glia::kernels {

// A per-sample loss over tensors viewed as [samples, elements]: logits and targets alike.
struct SampleShape {
  index_t samples = 0;
  index_t elements = 0;

  // "[samples, elements]"
  std::string describe() const {
    return "[" + std::to_string(samples) + ", " + std::to_string(elements) + "]";
  }
};

// Class logits [rows, classes]: a softmax over each row's classes, and for the losses one int32
// target class per row.
struct ClassShape {
  index_t rows = 0;
  index_t classes = 0;

  // "[rows, classes]"
  std::string describe() const {
    return "[" + std::to_string(rows) + ", " + std::to_string(classes) + "]";
  }
};

// A channel slice: the part [outer, part_channels, inner] is channels
// [offset, offset + part_channels) of the whole [outer, whole_channels, inner].
struct ChannelSlice {
  index_t outer = 1;
  index_t inner = 1;
  index_t part_channels = 0;
  index_t whole_channels = 0;
  index_t offset = 0;
};

}  // namespace glia::kernels

// --- batch norm and pooling ----------------------------------------------------------------------
namespace glia::kernels {

// Batch norm over an NCHW tensor, per channel c: the statistics of channel c are taken over its
// count() = n * h * w elements x[n, c, h, w]. eps is added to the (biased) variance; momentum
// weighs the batch statistics in the running ones (PyTorch's convention:
// running = (1 - momentum) * running + momentum * batch, with the unbiased variance).
struct BatchNormShape {
  index_t n = 0, c = 0, h = 1, w = 1;
  double eps = 1e-5;
  double momentum = 0.1;

  GLIA_HD index_t plane() const { return h * w; }
  GLIA_HD index_t count() const { return n * h * w; }
  GLIA_HD index_t numel() const { return n * c * h * w; }
  // The channel of flat NCHW element i.
  GLIA_HD index_t channel_of(index_t i) const { return (i / plane()) % c; }

  // "[n, c, h, w], eps 0.000010"
  std::string describe() const {
    return "[" + std::to_string(n) + ", " + std::to_string(c) + ", " + std::to_string(h) + ", " +
           std::to_string(w) + "], eps " + std::to_string(eps);
  }
};

// 2-D pooling of an NCHW tensor [n, c, h, w] to [n, c, out_h, out_w], plane by plane (n, c).
// Output (oh, ow) pools the window of rows [oh * stride_h - pad_h, + kernel_h) and columns
// [ow * stride_w - pad_w, + kernel_w); positions outside the input are padding. Sizes as PyTorch
// with ceil_mode false: out = (in + 2 * pad - kernel) / stride + 1. Global average pooling is the
// window of the whole plane (global()).
struct Pool2dShape {
  index_t n = 0, c = 0, h = 0, w = 0;
  index_t kernel_h = 1, kernel_w = 1;
  index_t stride_h = 1, stride_w = 1;
  index_t pad_h = 0, pad_w = 0;
  index_t out_h = 0, out_w = 0;
  bool count_include_pad = true;  // average pooling: padding counts in the divisor

  // A square window; out_h/out_w computed. Check valid() before use.
  static Pool2dShape make(index_t n, index_t c, index_t h, index_t w, index_t kernel,
                          index_t stride, index_t padding, bool count_include_pad = true) {
    Pool2dShape s;
    s.n = n;
    s.c = c;
    s.h = h;
    s.w = w;
    s.kernel_h = s.kernel_w = kernel;
    s.stride_h = s.stride_w = stride;
    s.pad_h = s.pad_w = padding;
    s.count_include_pad = count_include_pad;
    if (kernel > 0 && stride > 0) {
      s.out_h = (h + 2 * padding - kernel) / stride + 1;
      s.out_w = (w + 2 * padding - kernel) / stride + 1;
    }
    return s;
  }
  // One window over the whole plane: [n, c, h, w] -> [n, c, 1, 1].
  static Pool2dShape global(index_t n, index_t c, index_t h, index_t w) {
    Pool2dShape s;
    s.n = n;
    s.c = c;
    s.h = s.kernel_h = s.stride_h = h;
    s.w = s.kernel_w = s.stride_w = w;
    s.out_h = s.out_w = 1;
    return s;
  }
  // Positive kernel and stride, padding at most half the kernel (as PyTorch: every window then
  // holds an input element), and at least one output position.
  bool valid() const {
    return kernel_h > 0 && kernel_w > 0 && stride_h > 0 && stride_w > 0 && pad_h >= 0 &&
           pad_w >= 0 && 2 * pad_h <= kernel_h && 2 * pad_w <= kernel_w &&
           h + 2 * pad_h >= kernel_h && w + 2 * pad_w >= kernel_w && out_h > 0 && out_w > 0;
  }

  GLIA_HD index_t planes() const { return n * c; }
  GLIA_HD index_t in_plane() const { return h * w; }
  GLIA_HD index_t out_plane() const { return out_h * out_w; }
  GLIA_HD index_t in_numel() const { return n * c * h * w; }
  GLIA_HD index_t out_numel() const { return n * c * out_h * out_w; }
  // The first row / column of output (oh, ow)'s window; negative inside the padding.
  GLIA_HD index_t window_h0(index_t oh) const { return oh * stride_h - pad_h; }
  GLIA_HD index_t window_w0(index_t ow) const { return ow * stride_w - pad_w; }
  // The outputs whose window covers input row ih are [first_oh(ih), end_oh(ih)); columns alike.
  GLIA_HD index_t first_oh(index_t ih) const {
    return covering_first(ih + pad_h, kernel_h, stride_h);
  }
  GLIA_HD index_t end_oh(index_t ih) const { return covering_end(ih + pad_h, stride_h, out_h); }
  GLIA_HD index_t first_ow(index_t iw) const {
    return covering_first(iw + pad_w, kernel_w, stride_w);
  }
  GLIA_HD index_t end_ow(index_t iw) const { return covering_end(iw + pad_w, stride_w, out_w); }
  // Average pooling's divisor for output (oh, ow): the window clipped to the padded input, or to
  // the input itself when padding does not count (PyTorch's rule).
  GLIA_HD index_t avg_divisor(index_t oh, index_t ow) const {
    index_t h0 = window_h0(oh), w0 = window_w0(ow);
    index_t h1 = h0 + kernel_h < h + pad_h ? h0 + kernel_h : h + pad_h;
    index_t w1 = w0 + kernel_w < w + pad_w ? w0 + kernel_w : w + pad_w;
    if (!count_include_pad) {
      h0 = h0 > 0 ? h0 : 0;
      w0 = w0 > 0 ? w0 : 0;
      h1 = h1 < h ? h1 : h;
      w1 = w1 < w ? w1 : w;
    }
    return (h1 - h0) * (w1 - w0);
  }

  // "input [n, c, h, w], kernel 3x3, stride 2x2, padding 1x1"
  std::string describe() const {
    return "input [" + std::to_string(n) + ", " + std::to_string(c) + ", " + std::to_string(h) +
           ", " + std::to_string(w) + "], kernel " + std::to_string(kernel_h) + "x" +
           std::to_string(kernel_w) + ", stride " + std::to_string(stride_h) + "x" +
           std::to_string(stride_w) + ", padding " + std::to_string(pad_h) + "x" +
           std::to_string(pad_w);
  }

 private:
  // Window o covers padded position p when o * stride <= p < o * stride + kernel.
  GLIA_HD static index_t covering_first(index_t p, index_t kernel, index_t stride) {
    return p < kernel ? 0 : (p - kernel) / stride + 1;
  }
  GLIA_HD static index_t covering_end(index_t p, index_t stride, index_t out) {
    const index_t end = p / stride + 1;
    return end < out ? end : out;
  }
};

}  // namespace glia::kernels

// --- tensor-core operand formats (kernels/cuda/mma.cuh, kernels/cuda/gemm_tc.cu) ---------------
namespace glia::kernels {

// The format that the operands of a tensor-core product are rounded to (products and sums stay
// FP32): tf32 (1, 8, 10 bits, round_to_tf32), bf16 and f16 (kernels/half.h).
enum class TensorFormat : int { tf32, bf16, f16 };

inline const char* format_name(TensorFormat f) {
  return f == TensorFormat::tf32 ? "tf32" : f == TensorFormat::bf16 ? "bf16" : "f16";
}

}  // namespace glia::kernels
