// The engine's CUDA runtime (built only with GLIA_HAVE_CUDA): checked calls, and per GPU one
// lazily created stream with one cuBLAS and one cuDNN handle bound to it. Every kernel, copy and
// library call on a device goes to that stream, so work on a device runs in issue order without
// extra events; host-to-device uploads are staged through pinned buffers (upload). A second stream
// per GPU, the copy stream, moves the loader's next batch while the compute stream works on the
// current one (upload_on_copy_stream, engine/upload.h). Tested through
// tests/engine/*_test.cpp (the Cuda tests, run where a GPU is present).
#pragma once

#if !defined(GLIA_HAVE_CUDA)
#error "engine/cuda/runtime.h is part of the CUDA build only"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>

namespace glia::cudart {

[[noreturn]] void throw_cuda_error(const char* call, const char* file, int line, cudaError_t err);
[[noreturn]] void throw_cublas_error(const char* call, const char* file, int line,
                                     cublasStatus_t status);
[[noreturn]] void throw_cudnn_error(const char* call, const char* file, int line,
                                    cudnnStatus_t status);

// Checks a CUDA runtime / cuBLAS call; the exception names the call, file:line and the error.
#define GLIA_CUDA_CHECK(call)                                                      \
  do {                                                                             \
    const cudaError_t glia_cuda_err_ = (call);                                     \
    if (glia_cuda_err_ != cudaSuccess)                                             \
      ::glia::cudart::throw_cuda_error(#call, __FILE__, __LINE__, glia_cuda_err_); \
  } while (0)
#define GLIA_CUBLAS_CHECK(call)                                                           \
  do {                                                                                    \
    const cublasStatus_t glia_cublas_status_ = (call);                                    \
    if (glia_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                     \
      ::glia::cudart::throw_cublas_error(#call, __FILE__, __LINE__, glia_cublas_status_); \
  } while (0)

#define GLIA_CUDNN_CHECK(call)                                                          \
  do {                                                                                  \
    const cudnnStatus_t glia_cudnn_status_ = (call);                                    \
    if (glia_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                     \
      ::glia::cudart::throw_cudnn_error(#call, __FILE__, __LINE__, glia_cudnn_status_); \
  } while (0)

// GPUs visible to this process; 0 when there is no device or no driver (never throws).
int device_count();
cudaStream_t stream(int device);
cublasHandle_t cublas_handle(int device);
cudnnHandle_t cudnn_handle(int device);
void synchronize(int device);

// Copies nbytes from pageable host memory at src to device memory at dst on the device's stream and
// returns once src may be reused, usually before the copy has finished: src is first copied into
// one of two pinned staging buffers (the one the previous upload did not use, waited for by its
// event), from which the GPU copies asynchronously. So an upload does not synchronise the stream,
// and the host prepares the next batch while the GPU still moves and computes on this one; work
// queued later on the stream sees the data (stream order). Copies larger than the staging cap go
// straight from pageable memory and wait for the stream.
void upload(int device, void* dst, const void* src, std::size_t nbytes);

// The device's copy stream (non-blocking, created on first use, kept for the process).
cudaStream_t copy_stream(int device);
// As upload, on the copy stream with its own two staging buffers: the copy runs beside the
// compute stream's work, ordered only after earlier copies. Nothing on the compute stream may
// touch dst before it has waited for an event recorded on the copy stream after this call, and
// dst must come from the upload pool (engine/cuda/allocator.h), whose blocks the compute stream
// never reuses for anything else.
void upload_on_copy_stream(int device, void* dst, const void* src, std::size_t nbytes);

// Makes `device` current for the scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace glia::cudart
