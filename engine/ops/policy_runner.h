// Internal to the engine: the one place where the kernel policy (engine/policy.h) chooses between
// our kernels and cuDNN/cuBLAS on cuda, or oneDNN on cpu. Every op family with an alternative
// calls, inside its dispatch lambda (engine/ops/dispatch.h), with the same shape:
//
//   ops::run_with_policy(OpFamily::pool, policy, {shape fields}, backend,
//                        [&] { /* our kernels through ops::kernel */ },
//                        GLIA_CUDNN([&](auto ctx) { /* kernels::cudnn::f(ctx.cudnn(), ...) */ }),
//                        GLIA_DNNL(T, [&](auto ctx) { /* kernels::dnnl::f(...) */ }));
//
// sim runs the native candidate: it has one implementation. cpu does the same as cuda below with
// the dnnl candidate in cudnn's place (timed on the host clock), when the family passes one and
// the element type is float (oneDNN's candidates are f32; f64 runs native). cuda resolves the
// per-call override, else the family's setting: native and cudnn run that candidate; auto_select
// runs the remembered winner for (family, device, key), or the first time times both candidates on
// the device's stream (a warm-up and a few runs each) and remembers the faster. The key holds every
// problem parameter that can change which candidate is faster (the runner adds the device). The
// result says which candidate ran; a backward that must use its forward's implementation passes
// that as the override (and no key: nothing is timed).
// Candidates are timed in place, so they must write their outputs whole; one that also updates
// state in place (batch norm's running statistics) takes an ops::Run and, under Run::timing,
// writes that state to scratch instead. The cuDNN candidate is generic in its context (auto ctx) so
// that its float-only body is compiled for the cuda backend alone; GLIA_CUDNN drops it from builds
// without CUDA. Used by engine/ops/matmul.cpp, conv.cpp, batchnorm.cpp, pool.cpp and softmax.cpp;
// exercised by their tests and tests/engine/policy_test.cpp.
#pragma once

#include <optional>
#include <type_traits>
#include <utility>

#include "engine/ops/dispatch.h"
#include "engine/policy.h"

#include <chrono>

#if defined(GLIA_HAVE_CUDA)
#include <cuda_runtime.h>

#include "engine/cuda/runtime.h"
#include "kernels/cudnn/settings.h"
#endif

namespace glia::ops {

// Why a candidate runs: for the op's result, or to be timed by auto_select (maybe several times).
enum class Run { result, timing };

// The cuDNN candidate's stand-in in builds without CUDA; never called.
struct NoCudnn {};
// The oneDNN candidate's stand-in in builds without oneDNN, for element types other than float,
// and for families without one; never called.
struct NoDnnl {};
// What a oneDNN candidate is given: nothing yet (the engine is global); a type of its own keeps
// the candidate generic, so that its float-only body is compiled only where it may run.
struct DnnlContext {};

#if defined(GLIA_HAVE_DNNL)

// The oneDNN candidate for element type T: `fn` for float, else NoDnnl.
template <class T, class Fn>
auto dnnl_candidate(Fn&& fn) {
  if constexpr (std::is_same_v<T, float>) {
    return std::forward<Fn>(fn);
  } else {
    return NoDnnl{};
  }
}
#define GLIA_DNNL(T, ...) ::glia::ops::dnnl_candidate<T>(__VA_ARGS__)

#else

// Without oneDNN the candidate's text is dropped, as GLIA_CUDNN's is without CUDA.
#define GLIA_DNNL(T, ...) \
  ::glia::ops::NoDnnl {}

#endif

#if defined(GLIA_HAVE_CUDA)

#define GLIA_CUDNN(...) __VA_ARGS__

// What a cuDNN/cuBLAS candidate needs: the device's handles and the stream its kernels run on.
struct CudnnContext {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn() const { return cudart::cudnn_handle(device); }
  cublasHandle_t cublas() const { return cudart::cublas_handle(device); }
};

// The key under which auto_select remembers a cuda winner: the device, the cuDNN settings in
// force (math, deterministic, find: the cuDNN candidate runs the algorithm they choose, so a
// winner timed under other settings says nothing), then the op's problem key.
inline AutotuneKey cuda_autotune_key(int device, const AutotuneKey& key) {
  const kernels::cudnn::Settings s = kernels::cudnn::settings();
  AutotuneKey k{device, static_cast<std::int64_t>(s.math), s.deterministic ? 1 : 0, s.find ? 1 : 0};
  k.insert(k.end(), key.begin(), key.end());
  return k;
}

// Mean time of `run` over a few calls after a warm-up, in milliseconds, on `stream`. The warm-up
// also makes the cuDNN candidate's plan (algorithm choice, cudnnFind's own timing when
// settings().find), so only the chosen algorithm is timed.
template <class Fn>
float mean_time_ms(cudaStream_t stream, Fn&& run) {
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

#else

#define GLIA_CUDNN(...) \
  ::glia::ops::NoCudnn {}

#endif

namespace detail {

// fn(args..., run) for a candidate that takes the Run, else fn(args...).
template <class Fn, class... Args>
void run_candidate(Fn& fn, Run run, Args&&... args) {
  if constexpr (std::is_invocable_v<Fn&, Args..., Run>) {
    fn(std::forward<Args>(args)..., run);
  } else {
    fn(std::forward<Args>(args)...);
  }
}

// Mean host time of `run` over a few calls after a warm-up, in milliseconds (cpu candidates run
// synchronously).
template <class Fn>
double host_time_ms(Fn&& run) {
  constexpr int kReps = 3;
  run();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kReps; ++i) run();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
             .count() /
         kReps;
}

}  // namespace detail

// Runs `native`, `cudnn` or `dnnl` for one op as the policy decides (see above); returns the one
// that ran, KernelPolicy::native, cudnn or dnnl.
template <class Backend, class Native, class Cudnn, class Dnnl = NoDnnl>
KernelPolicy run_with_policy(OpFamily family, std::optional<KernelPolicy> policy,
                             const AutotuneKey& key, const Backend& backend, Native&& native,
                             Cudnn&& cudnn, Dnnl&& dnnl = Dnnl{}) {
  if constexpr (std::is_same_v<Backend, CpuBackend> &&
                !std::is_same_v<std::decay_t<Dnnl>, NoDnnl>) {
    KernelPolicy chosen = resolve_kernel_policy(family, policy, PolicyDevice::cpu);
    if (chosen == KernelPolicy::auto_select) {
      AutotuneKey cpu_key{-1};  // cuda keys start with the device index, >= 0
      cpu_key.insert(cpu_key.end(), key.begin(), key.end());
      std::optional<KernelPolicy> winner = autotune_lookup(family, cpu_key);
      if (!winner) {
        const double native_ms =
            detail::host_time_ms([&] { detail::run_candidate(native, Run::timing); });
        const double dnnl_ms =
            detail::host_time_ms([&] { detail::run_candidate(dnnl, Run::timing, DnnlContext{}); });
        winner = native_ms <= dnnl_ms ? KernelPolicy::native : KernelPolicy::dnnl;
        autotune_store(family, cpu_key, *winner);
      }
      chosen = *winner;
    }
    if (chosen == KernelPolicy::dnnl) {
      detail::run_candidate(dnnl, Run::result, DnnlContext{});
      return KernelPolicy::dnnl;
    }
    detail::run_candidate(native, Run::result);
    return KernelPolicy::native;
  }
#if defined(GLIA_HAVE_CUDA)
  if constexpr (std::is_same_v<Backend, CudaBackend>) {
    const CudnnContext ctx{backend.device, static_cast<cudaStream_t>(backend.stream)};
    KernelPolicy chosen = resolve_kernel_policy(family, policy, PolicyDevice::cuda);
    if (chosen == KernelPolicy::auto_select) {
      const AutotuneKey device_key = cuda_autotune_key(backend.device, key);
      std::optional<KernelPolicy> winner = autotune_lookup(family, device_key);
      if (!winner) {
        const float native_ms =
            mean_time_ms(ctx.stream, [&] { detail::run_candidate(native, Run::timing); });
        const float cudnn_ms =
            mean_time_ms(ctx.stream, [&] { detail::run_candidate(cudnn, Run::timing, ctx); });
        winner = native_ms <= cudnn_ms ? KernelPolicy::native : KernelPolicy::cudnn;
        autotune_store(family, device_key, *winner);
      }
      chosen = *winner;
    }
    if (chosen == KernelPolicy::cudnn) {
      detail::run_candidate(cudnn, Run::result, ctx);
      return KernelPolicy::cudnn;
    }
    detail::run_candidate(native, Run::result);
    return KernelPolicy::native;
  }
#endif
  (void)family;  // one implementation on cpu and sim
  (void)policy;
  (void)key;
  (void)backend;
  (void)cudnn;
  (void)dnnl;
  detail::run_candidate(native, Run::result);
  return KernelPolicy::native;
}

}  // namespace glia::ops
