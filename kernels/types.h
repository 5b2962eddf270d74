// Shapes and op codes shared by the cpu, cuda (and sim) and cudnn kernel paths, so every backend
// reads the same arithmetic. Plain structs passed by value into kernels; no Tensor here.
// Tested through tests/kernels/*.
#pragma once

#include <cstdint>

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
};

}  // namespace glia::kernels

// --- losses, dropout and channel concat (kernels/*/loss, dropout, concat) ----------------------
namespace glia::kernels {

// A per-sample loss over tensors viewed as [samples, elements]: logits and targets alike.
struct SampleShape {
  index_t samples = 0;
  index_t elements = 0;
};

// Class logits [rows, classes] with one int32 target class per row.
struct ClassShape {
  index_t rows = 0;
  index_t classes = 0;
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
