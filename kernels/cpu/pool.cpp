// Reference 2-D pooling over NCHW planes (kernels/types.h Pool2dShape), one output at a time:
// max (padding is -inf; the index of the first maximum, ih * w + iw within the plane; the first
// NaN wins), average (the window's sum over avg_divisor) and global average (the plane's mean,
// summed in double). Backward scatters each output's gradient into its window; the cuda kernels
// gather instead, so the two are independent checks of each other.
// Tested in tests/kernels/pool_test.cpp.
#include <cmath>
#include <limits>

#include "kernels/cpu/kernels.h"

namespace glia::kernels::cpu {
namespace {

constexpr index_t kParallelThreshold = index_t{1} << 15;

// The window of output (oh, ow) clipped to the input: rows [h0, h1), columns [w0, w1).
struct Window {
  index_t h0, h1, w0, w1;
};

Window clipped_window(const Pool2dShape& s, index_t oh, index_t ow) {
  const index_t h0 = s.window_h0(oh), w0 = s.window_w0(ow);
  return {h0 > 0 ? h0 : 0, h0 + s.kernel_h < s.h ? h0 + s.kernel_h : s.h, w0 > 0 ? w0 : 0,
          w0 + s.kernel_w < s.w ? w0 + s.kernel_w : s.w};
}

}  // namespace

template <class T>
void max_pool2d(const T* x, T* y, std::int32_t* idx, const Pool2dShape& s) {
#pragma omp parallel for schedule(static) if (s.in_numel() > kParallelThreshold)
  for (index_t p = 0; p < s.planes(); ++p) {
    const T* xp = x + p * s.in_plane();
    for (index_t oh = 0; oh < s.out_h; ++oh) {
      for (index_t ow = 0; ow < s.out_w; ++ow) {
        const Window win = clipped_window(s, oh, ow);
        T best = -std::numeric_limits<T>::infinity();
        index_t best_i = win.h0 * s.w + win.w0;
        bool found_nan = false;
        for (index_t ih = win.h0; ih < win.h1 && !found_nan; ++ih) {
          for (index_t iw = win.w0; iw < win.w1 && !found_nan; ++iw) {
            const T v = xp[ih * s.w + iw];
            if (v > best || std::isnan(v)) {
              best = v;
              best_i = ih * s.w + iw;
              found_nan = std::isnan(v);
            }
          }
        }
        const index_t o = p * s.out_plane() + oh * s.out_w + ow;
        y[o] = best;
        idx[o] = static_cast<std::int32_t>(best_i);
      }
    }
  }
}

template <class T>
void max_pool2d_backward(const T* gy, const std::int32_t* idx, T* gx, const Pool2dShape& s) {
#pragma omp parallel for schedule(static) if (s.in_numel() > kParallelThreshold)
  for (index_t p = 0; p < s.planes(); ++p) {
    T* gxp = gx + p * s.in_plane();
    for (index_t i = 0; i < s.in_plane(); ++i) gxp[i] = T(0);
    for (index_t o = p * s.out_plane(); o < (p + 1) * s.out_plane(); ++o) gxp[idx[o]] += gy[o];
  }
}

template <class T>
void avg_pool2d(const T* x, T* y, const Pool2dShape& s) {
#pragma omp parallel for schedule(static) if (s.in_numel() > kParallelThreshold)
  for (index_t p = 0; p < s.planes(); ++p) {
    const T* xp = x + p * s.in_plane();
    for (index_t oh = 0; oh < s.out_h; ++oh) {
      for (index_t ow = 0; ow < s.out_w; ++ow) {
        const Window win = clipped_window(s, oh, ow);
        double sum = 0.0;
        for (index_t ih = win.h0; ih < win.h1; ++ih) {
          for (index_t iw = win.w0; iw < win.w1; ++iw)
            sum += static_cast<double>(xp[ih * s.w + iw]);
        }
        y[p * s.out_plane() + oh * s.out_w + ow] =
            static_cast<T>(sum / static_cast<double>(s.avg_divisor(oh, ow)));
      }
    }
  }
}

template <class T>
void avg_pool2d_backward(const T* gy, T* gx, const Pool2dShape& s) {
#pragma omp parallel for schedule(static) if (s.in_numel() > kParallelThreshold)
  for (index_t p = 0; p < s.planes(); ++p) {
    T* gxp = gx + p * s.in_plane();
    for (index_t i = 0; i < s.in_plane(); ++i) gxp[i] = T(0);
    for (index_t oh = 0; oh < s.out_h; ++oh) {
      for (index_t ow = 0; ow < s.out_w; ++ow) {
        const Window win = clipped_window(s, oh, ow);
        const T g =
            gy[p * s.out_plane() + oh * s.out_w + ow] / static_cast<T>(s.avg_divisor(oh, ow));
        for (index_t ih = win.h0; ih < win.h1; ++ih) {
          for (index_t iw = win.w0; iw < win.w1; ++iw) gxp[ih * s.w + iw] += g;
        }
      }
    }
  }
}

template <class T>
void global_avg_pool2d(const T* x, T* y, const Pool2dShape& s) {
#pragma omp parallel for schedule(static) if (s.in_numel() > kParallelThreshold)
  for (index_t p = 0; p < s.planes(); ++p) {
    double sum = 0.0;
    for (index_t i = 0; i < s.in_plane(); ++i) sum += static_cast<double>(x[p * s.in_plane() + i]);
    y[p] = static_cast<T>(sum / static_cast<double>(s.in_plane()));
  }
}

template <class T>
void global_avg_pool2d_backward(const T* gy, T* gx, const Pool2dShape& s) {
#pragma omp parallel for schedule(static) if (s.in_numel() > kParallelThreshold)
  for (index_t p = 0; p < s.planes(); ++p) {
    const T g = gy[p] / static_cast<T>(s.in_plane());
    for (index_t i = 0; i < s.in_plane(); ++i) gx[p * s.in_plane() + i] = g;
  }
}

#define GLIA_INSTANTIATE(T)                                                                    \
  template void max_pool2d<T>(const T*, T*, std::int32_t*, const Pool2dShape&);                \
  template void max_pool2d_backward<T>(const T*, const std::int32_t*, T*, const Pool2dShape&); \
  template void avg_pool2d<T>(const T*, T*, const Pool2dShape&);                               \
  template void avg_pool2d_backward<T>(const T*, T*, const Pool2dShape&);                      \
  template void global_avg_pool2d<T>(const T*, T*, const Pool2dShape&);                        \
  template void global_avg_pool2d_backward<T>(const T*, T*, const Pool2dShape&);
GLIA_INSTANTIATE(float)
GLIA_INSTANTIATE(double)
#undef GLIA_INSTANTIATE

}  // namespace glia::kernels::cpu
