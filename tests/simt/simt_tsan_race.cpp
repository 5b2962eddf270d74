// A program for the ThreadSanitizer configuration of the SIMT emulator's tests (see
// CMakeLists.txt): `simt_tsan_race race` runs the planted kernel without its barrier, which TSan
// must report as a data race; `simt_tsan_race clean` runs it with the barrier, plus a shuffle
// reduction and cross-block atomics, which must run without any report.
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/cuda/portable.cuh"
#include "tests/simt/planted_kernels.h"

namespace glia::simt::testing {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// Launch: blocks of 128 threads; sums[blockIdx.x] = sum of the block's x, through shuffles and
// shared memory; total gets every block's sum atomically.
__global__ void block_sum(const float* x, float* sums, float* total) {
  __shared__ float warp_sums[4];
  float v = x[blockIdx.x * blockDim.x + threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFull, v, offset);
  if (threadIdx.x % warpSize == 0) warp_sums[threadIdx.x / warpSize] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    const float s = warp_sums[0] + warp_sums[1] + warp_sums[2] + warp_sums[3];
    sums[blockIdx.x] = s;
    atomicAdd(total, s);
  }
  __syncwarp();
}

bool rotate(bool with_barrier, unsigned blocks) {
  const unsigned n = 64;
  std::vector<int> out(blocks * n, -1);
  GLIA_LAUNCH(rotate_through_shared, blocks, n, n * sizeof(int), nullptr, out.data(), with_barrier);
  for (unsigned i = 0; i < out.size(); ++i)
    if (out[i] != rotate_value((i % n + 1) % n)) return false;
  return true;
}

int run_clean() {
  for (const LaneOrder order : {LaneOrder::forward, LaneOrder::reverse, LaneOrder::random}) {
    ScopedConfig scoped(Config{order, 1, 0});
    if (!rotate(true, 4)) {
      std::fprintf(stderr, "rotate with its barrier gave a wrong result\n");
      return 1;
    }
    std::vector<float> x(8 * 128, 1.0f), sums(8, 0.0f);
    float total = 0.0f;
    GLIA_LAUNCH(block_sum, 8, 128, 0, nullptr, x.data(), sums.data(), &total);
    if (total != 1024.0f || sums[7] != 128.0f) {
      std::fprintf(stderr, "block_sum gave %g, expected 1024\n", static_cast<double>(total));
      return 1;
    }
  }
  std::printf("clean kernels done\n");
  return 0;
}

int run_race() {
  rotate(false, 1);
  std::printf("racy kernel done\n");
  return 0;
}

}  // namespace
}  // namespace glia::simt::testing

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "clean") == 0) return glia::simt::testing::run_clean();
  if (argc == 2 && std::strcmp(argv[1], "race") == 0) return glia::simt::testing::run_race();
  std::fprintf(stderr, "usage: %s clean|race\n", argv[0]);
  return 2;
}
