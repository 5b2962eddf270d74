// Timing of device work for the auto_select kernel policy (engine/policy.h): the mean time of a
// few runs of a callable on a stream, measured with CUDA events. Built only with GLIA_HAVE_CUDA.
// Used by engine/ops/matmul.cpp and engine/ops/conv.cpp; exercised by tests/engine/policy_test.cpp
// and the Cuda conv tests where a GPU is present.
#pragma once

#include "engine/cuda/runtime.h"

namespace glia::cudart {

// Mean time of `run` over a few calls after a warm-up, in milliseconds, on `stream`.
template <class Run>
float time_on_stream(cudaStream_t stream, Run&& run) {
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

}  // namespace glia::cudart
