// The channel-offset copies behind concat and split on the device: the part
// [outer, part_channels, inner] is channels [offset, offset + part_channels) of the whole
// [outer, whole_channels, inner] (NCHW with inner = H * W, or [N, F] with inner = 1).
// Launch: 1-D grid-stride, 256 threads; thread i handles part element (o, c, k) with
// i = (o * part_channels + c) * inner + k, so consecutive threads touch consecutive addresses
// on both sides. Tested in tests/kernels/loss_test.cpp.
#include "kernels/cuda/portable.cuh"

#include "kernels/cuda/grid.cuh"
#include "kernels/cuda/launchers.h"

namespace glia::kernels::GLIA_KERNEL_NS {
namespace {

// The index in the whole of part element i.
__device__ inline index_t whole_index(index_t i, const ChannelSlice& s) {
  const index_t run = s.part_channels * s.inner;
  const index_t o = i / run, within = i % run;  // within = c * inner + k
  return (o * s.whole_channels + s.offset) * s.inner + within;
}

__global__ void copy_into_channels_kernel(const float* part, float* whole, ChannelSlice s) {
  const index_t n = s.outer * s.part_channels * s.inner;
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    whole[whole_index(i, s)] = part[i];
  }
}

__global__ void copy_from_channels_kernel(const float* whole, float* part, ChannelSlice s) {
  const index_t n = s.outer * s.part_channels * s.inner;
  for (index_t i = global_thread_index(); i < n; i += grid_thread_count()) {
    part[i] = whole[whole_index(i, s)];
  }
}

}  // namespace

void copy_into_channels(const float* part, float* whole, const ChannelSlice& s, Stream stream) {
  const index_t n = s.outer * s.part_channels * s.inner;
  if (n == 0) return;
  GLIA_LAUNCH(copy_into_channels_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, part,
              whole, s);
}

void copy_from_channels(const float* whole, float* part, const ChannelSlice& s, Stream stream) {
  const index_t n = s.outer * s.part_channels * s.inner;
  if (n == 0) return;
  GLIA_LAUNCH(copy_from_channels_kernel, grid_stride_blocks(n), kThreadsPerBlock, 0, stream, whole,
              part, s);
}

}  // namespace glia::kernels::GLIA_KERNEL_NS
