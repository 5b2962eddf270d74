// Reference 2-D convolution (kernels/conv_shape.h) by im2col + BLAS GEMM, one image at a time:
//   forward          y[n] (c_out x out_plane) = w (c_out x patch) * col(x[n]) (patch x out_plane)
//   backward data    gx[n] = col2im(w^T (patch x c_out) * gy[n])
//   backward filter  gw = sum_n gy[n] * col(x[n])^T          (n in order: deterministic)
//   backward bias    gb[co] = sum_{n, oh, ow} gy[n, co, oh, ow]
// col(x[n])[(c, i, j), (oh, ow)] = x[n, c, oh * stride_h - pad_h + i * dil_h, ...] (0 in the
// padding). The GEMMs go through cpu::gemm, which spreads each product over the OpenMP team; im2col
// runs OpenMP over column rows, col2im over channels. A 1x1 convolution with unit stride and no
// padding reads x[n] as its own column matrix. Tested in tests/kernels/conv_test.cpp.
#include <algorithm>
#include <vector>

#include "kernels/conv_shape.h"
#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {
namespace {

// Below this many column entries per image the OpenMP fork costs more than the copy it splits.
constexpr index_t kParallelColumnEntries = index_t{1} << 16;

bool worth_threads(const ConvShape& s) {
  return s.patch() * s.out_plane() >= kParallelColumnEntries;
}

bool is_pointwise(const ConvShape& s) {
  return s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
         s.pad_w == 0;
}

// The outputs o in [0, out) whose input index o * stride + offset lies in [0, extent): one
// contiguous range, so the copy loops below need no per-element bounds test.
struct ValidRange {
  index_t begin, end;
};
ValidRange valid_range(index_t offset, index_t stride, index_t extent, index_t out) {
  // o * stride + offset >= 0  <=>  o >= ceil(-offset / stride);
  // o * stride + offset < extent  <=>  o < ceil((extent - offset) / stride).
  auto ceil_div = [](index_t a, index_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); };
  const index_t begin = std::clamp<index_t>(ceil_div(-offset, stride), 0, out);
  const index_t end = std::clamp<index_t>(ceil_div(extent - offset, stride), begin, out);
  return {begin, end};
}

// col[(c, i, j), (oh, ow)] = x[c, ih, iw] for one image x [c_in, h, w]. One column row (c, i, j)
// per iteration, so even a single input channel spreads over the threads.
template <class T>
void im2col(const ConvShape& s, const T* x, T* col) {
  const index_t rows = s.c_in * s.kh * s.kw;
#pragma omp parallel for schedule(static) if (worth_threads(s))
  for (index_t r = 0; r < rows; ++r) {
    const index_t c = r / (s.kh * s.kw), i = (r / s.kw) % s.kh, j = r % s.kw;
    T* row = col + r * s.out_plane();
    const index_t w_offset = j * s.dil_w - s.pad_w;
    const ValidRange cols = valid_range(w_offset, s.stride_w, s.w, s.out_w);
    for (index_t oh = 0; oh < s.out_h; ++oh) {
      T* out = row + oh * s.out_w;
      const index_t ih = oh * s.stride_h - s.pad_h + i * s.dil_h;
      if (ih < 0 || ih >= s.h) {
        std::fill(out, out + s.out_w, T(0));
        continue;
      }
      const T* in = x + (c * s.h + ih) * s.w + w_offset;
      std::fill(out, out + cols.begin, T(0));
      if (s.stride_w == 1) {
        std::copy(in + cols.begin, in + cols.end, out + cols.begin);
      } else {
        for (index_t ow = cols.begin; ow < cols.end; ++ow) out[ow] = in[ow * s.stride_w];
      }
      std::fill(out + cols.end, out + s.out_w, T(0));
    }
  }
}

// The adjoint of im2col: gx[c, ih, iw] = sum of the col entries that read it (gx is written whole).
// Parallel over channels only: the rows of one channel add into the same pixels.
template <class T>
void col2im(const ConvShape& s, const T* col, T* gx) {
#pragma omp parallel for schedule(static) if (worth_threads(s))
  for (index_t c = 0; c < s.c_in; ++c) {
    T* plane = gx + c * s.in_plane();
    std::fill(plane, plane + s.in_plane(), T(0));
    for (index_t i = 0; i < s.kh; ++i) {
      for (index_t j = 0; j < s.kw; ++j) {
        const T* row = col + ((c * s.kh + i) * s.kw + j) * s.out_plane();
        const index_t w_offset = j * s.dil_w - s.pad_w;
        const ValidRange cols = valid_range(w_offset, s.stride_w, s.w, s.out_w);
        const ValidRange rows = valid_range(i * s.dil_h - s.pad_h, s.stride_h, s.h, s.out_h);
        for (index_t oh = rows.begin; oh < rows.end; ++oh) {
          const index_t ih = oh * s.stride_h - s.pad_h + i * s.dil_h;
          T* out = plane + ih * s.w + w_offset;
          const T* in = row + oh * s.out_w;
          for (index_t ow = cols.begin; ow < cols.end; ++ow) out[ow * s.stride_w] += in[ow];
        }
      }
    }
  }
}

// Row-major (m x k) * (k x n), one matrix, with the given transposes and beta.
GemmShape matrix_product(index_t m, index_t n, index_t k, bool trans_a, bool trans_b, double beta) {
  GemmShape g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  g.lda = trans_a ? m : k;
  g.ldb = trans_b ? k : n;
  g.ldc = n;
  g.beta = beta;
  return g;
}

}  // namespace

template <class T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* bias, T* y) {
  if (s.y_numel() == 0) return;
  const bool pointwise = is_pointwise(s);
  std::vector<T> col(pointwise ? 0 : static_cast<std::size_t>(s.patch() * s.out_plane()));
  const GemmShape g =
      matrix_product(s.c_out, s.out_plane(), s.patch(), false, false, bias != nullptr ? 1.0 : 0.0);
  for (index_t n = 0; n < s.n; ++n) {
    const T* xn = x + n * s.c_in * s.in_plane();
    T* yn = y + n * s.c_out * s.out_plane();
    if (bias != nullptr) {
      for (index_t co = 0; co < s.c_out; ++co) {
        for (index_t e = 0; e < s.out_plane(); ++e) yn[co * s.out_plane() + e] = bias[co];
      }
    }
    if (!pointwise) im2col(s, xn, col.data());
    gemm(g, w, pointwise ? xn : col.data(), yn);
  }
}

template <class T>
void conv2d_backward_data(const ConvShape& s, const T* gy, const T* w, T* gx) {
  if (s.x_numel() == 0) return;
  const bool pointwise = is_pointwise(s);
  std::vector<T> col(pointwise ? 0 : static_cast<std::size_t>(s.patch() * s.out_plane()));
  const GemmShape g = matrix_product(s.patch(), s.out_plane(), s.c_out, true, false, 0.0);
  for (index_t n = 0; n < s.n; ++n) {
    T* gxn = gx + n * s.c_in * s.in_plane();
    const T* gyn = gy + n * s.c_out * s.out_plane();
    if (pointwise) {
      gemm(g, w, gyn, gxn);
    } else {
      gemm(g, w, gyn, col.data());
      col2im(s, col.data(), gxn);
    }
  }
}

template <class T>
void conv2d_backward_filter(const ConvShape& s, const T* x, const T* gy, T* gw) {
  if (s.w_numel() == 0) return;
  if (s.n == 0 || s.out_plane() == 0) {
    for (index_t e = 0; e < s.w_numel(); ++e) gw[e] = T(0);
    return;
  }
  const bool pointwise = is_pointwise(s);
  std::vector<T> col(pointwise ? 0 : static_cast<std::size_t>(s.patch() * s.out_plane()));
  for (index_t n = 0; n < s.n; ++n) {
    const T* xn = x + n * s.c_in * s.in_plane();
    const T* gyn = gy + n * s.c_out * s.out_plane();
    if (!pointwise) im2col(s, xn, col.data());
    const GemmShape g =
        matrix_product(s.c_out, s.patch(), s.out_plane(), false, true, n == 0 ? 0.0 : 1.0);
    gemm(g, gyn, pointwise ? xn : col.data(), gw);
  }
}

template <class T>
void conv2d_backward_bias(const ConvShape& s, const T* gy, T* gb) {
#pragma omp parallel for schedule(static) if (s.y_numel() >= kParallelColumnEntries)
  for (index_t co = 0; co < s.c_out; ++co) {
    T total = T(0);
    for (index_t n = 0; n < s.n; ++n) {
      const T* plane = gy + (n * s.c_out + co) * s.out_plane();
      for (index_t e = 0; e < s.out_plane(); ++e) total += plane[e];
    }
    gb[co] = total;
  }
}

#define GLIA_INSTANTIATE_CONV(T)                                                       \
  template void conv2d_forward<T>(const ConvShape&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_data<T>(const ConvShape&, const T*, const T*, T*);     \
  template void conv2d_backward_filter<T>(const ConvShape&, const T*, const T*, T*);   \
  template void conv2d_backward_bias<T>(const ConvShape&, const T*, T*);
GLIA_INSTANTIATE_CONV(float)
GLIA_INSTANTIATE_CONV(double)
#undef GLIA_INSTANTIATE_CONV

}  // namespace glia::kernels::cpu
