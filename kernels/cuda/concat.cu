// The channel-offset copies behind concat and split on the device: the part
// [outer, part_channels, inner] is channels [offset, offset + part_channels) of the whole
// [outer, whole_channels, inner] (NCHW with inner = H * W, or [N, F] with inner = 1).
// Launch: grid (blocks along a run, outer), 256 threads. For each o the part's run of
// part_channels * inner floats is contiguous on both sides, so block row o copies it with no
// index arithmetic per element: float4 at a time when both runs start 16-byte aligned and the run
// is whole float4s, else one float at a time. Tested in tests/kernels/loss_test.cpp.
#include "kernels/cuda/portable.cuh"

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/vector_access.cuh"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

constexpr index_t kMaxGridY = 65535;

// Copies run o of the part to or from its place in the whole (kInto: part -> whole).
template <int V, bool kInto>
__global__ void __launch_bounds__(kThreadsPerBlock)
    channel_copy_kernel(const float* src, float* dst, ChannelSlice s) {
  const index_t run = s.part_channels * s.inner, loads = run / V;
  for (index_t o = blockIdx.y; o < s.outer; o += gridDim.y) {
    const index_t part_base = o * run, whole_base = (o * s.whole_channels + s.offset) * s.inner;
    const float* from = src + (kInto ? part_base : whole_base);
    float* to = dst + (kInto ? whole_base : part_base);
    for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < loads;
         i += static_cast<index_t>(gridDim.x) * blockDim.x) {
      float v[V];
      load<V>(from + i * V, v);
      store<V>(to + i * V, v);
    }
  }
}
GLIA_LAUNCH_BOUNDS((channel_copy_kernel<1, false>), kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS((channel_copy_kernel<4, false>), kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS((channel_copy_kernel<1, true>), kThreadsPerBlock);
GLIA_LAUNCH_BOUNDS((channel_copy_kernel<4, true>), kThreadsPerBlock);

template <bool kInto>
void channel_copy(const float* src, float* dst, const ChannelSlice& s, Stream stream) {
  const index_t run = s.part_channels * s.inner;
  if (s.outer * run == 0) return;
  const float* whole = kInto ? dst : src;
  const float* part = kInto ? src : dst;
  const bool vec = run % 4 == 0 && (s.whole_channels * s.inner) % 4 == 0 &&
                   (s.offset * s.inner) % 4 == 0 && aligned16(whole) && aligned16(part);
  const index_t loads = vec ? run / 4 : run;
  const index_t x = (loads + kThreadsPerBlock - 1) / kThreadsPerBlock;
  const index_t x_limit = grid_limit(kMaxGridStrideBlocks), y_limit = grid_limit(kMaxGridY);
  const dim3 grid(static_cast<unsigned>(x < x_limit ? x : x_limit),
                  static_cast<unsigned>(s.outer < y_limit ? s.outer : y_limit));
  // Named pointers: a template-id with two arguments would split the launch macro's arguments.
  const auto channel_copy_vec4 = &channel_copy_kernel<4, kInto>;
  const auto channel_copy_scalar = &channel_copy_kernel<1, kInto>;
  if (vec) {
    GLIA_LAUNCH(channel_copy_vec4, grid, kThreadsPerBlock, 0, stream, src, dst, s);
  } else {
    GLIA_LAUNCH(channel_copy_scalar, grid, kThreadsPerBlock, 0, stream, src, dst, s);
  }
}

}  // namespace

void copy_into_channels(const float* part, float* whole, const ChannelSlice& s, Stream stream) {
  channel_copy<true>(part, whole, s, stream);
}

void copy_from_channels(const float* whole, float* part, const ChannelSlice& s, Stream stream) {
  channel_copy<false>(whole, part, s, stream);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
