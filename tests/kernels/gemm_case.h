// A GEMM test case and the GemmShape it stands for, shared by the FP32 GEMM tests (gemm_test.cpp)
// and the tensor-core GEMM tests (gemm_tc_test.cpp): sizes, batch, alpha/beta, and padding of the
// stored rows and batch entries, so leading dimensions and strides differ from the logical sizes.
#pragma once

#include "kernels/types.h"

namespace glia::testing {

struct GemmCase {
  kernels::index_t m, n, k;
  kernels::index_t batch = 1;
  double alpha = 1.0, beta = 0.0;
  kernels::index_t pad = 0;  // extra elements at the end of every stored row and batch entry
};

// The shape of a row-major op(A) op(B) with the given transposes, rows padded by c.pad.
inline kernels::GemmShape shape_of(const GemmCase& c, bool trans_a, bool trans_b) {
  kernels::GemmShape s;
  s.m = c.m;
  s.n = c.n;
  s.k = c.k;
  s.trans_a = trans_a;
  s.trans_b = trans_b;
  s.lda = (trans_a ? c.m : c.k) + c.pad;
  s.ldb = (trans_b ? c.k : c.n) + c.pad;
  s.ldc = c.n + c.pad;
  s.batch = c.batch;
  s.stride_a = (trans_a ? c.k : c.m) * s.lda + c.pad;
  s.stride_b = (trans_b ? c.n : c.k) * s.ldb + c.pad;
  s.stride_c = c.m * s.ldc + c.pad;
  s.alpha = c.alpha;
  s.beta = c.beta;
  return s;
}

}  // namespace glia::testing
