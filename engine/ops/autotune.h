// Internal to the engine (CUDA builds only): the auto_select policy's choice between our kernels
// and cuDNN for one problem (engine/policy.h). The first call per (family, key) times both on the
// device's stream, a warm-up and a few runs each, and remembers the faster; later calls look it
// up. The candidates must be safe to run repeatedly (callers point in-place outputs such as
// running statistics at scratch copies while timing). Used by engine/ops/matmul.cpp, conv.cpp,
// batchnorm.cpp and pool.cpp; exercised by their Cuda tests and tests/engine/policy_test.cpp.
#pragma once

#if defined(GLIA_HAVE_CUDA)

#include <cuda_runtime.h>

#include <optional>

#include "engine/cuda/runtime.h"
#include "engine/policy.h"

namespace glia::ops {

// Mean time of `run` over a few calls after a warm-up, in milliseconds, on `stream`.
template <class Run>
float mean_time_ms(cudaStream_t stream, Run&& run) {
  constexpr int kReps = 3;
  run();
  cudaEvent_t start = nullptr, stop = nullptr;
  GLIA_CUDA_CHECK(cudaEventCreate(&start));
  GLIA_CUDA_CHECK(cudaEventCreate(&stop));
  GLIA_CUDA_CHECK(cudaEventRecord(start, stream));
  for (int i = 0; i < kReps; ++i) run();
  GLIA_CUDA_CHECK(cudaEventRecord(stop, stream));
  GLIA_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  GLIA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  GLIA_CUDA_CHECK(cudaEventDestroy(start));
  GLIA_CUDA_CHECK(cudaEventDestroy(stop));
  return ms / kReps;
}

// `policy` resolved to native or cudnn: itself unless auto_select, then the remembered or newly
// timed winner for (family, key).
template <class Native, class Cudnn>
KernelPolicy choose_implementation(KernelPolicy policy, OpFamily family, const AutotuneKey& key,
                                   cudaStream_t stream, Native&& native, Cudnn&& cudnn) {
  if (policy != KernelPolicy::auto_select) return policy;
  std::optional<KernelPolicy> winner = autotune_lookup(family, key);
  if (!winner) {
    const float native_ms = mean_time_ms(stream, native);
    const float cudnn_ms = mean_time_ms(stream, cudnn);
    winner = native_ms <= cudnn_ms ? KernelPolicy::native : KernelPolicy::cudnn;
    autotune_store(family, key, *winner);
  }
  return *winner;
}

}  // namespace glia::ops

#endif
