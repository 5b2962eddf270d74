// Test-only GPU memory for the Cuda backend of the kernel tests: a typed device buffer filled from
// and read back to a host vector with the CUDA runtime (the kernels themselves never allocate).
// Every runtime status is checked. Used by tests/kernels/backends.h.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace glia::testing {

inline void cuda_check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorString(status));
  }
}

template <class T>
class CudaBuffer {
 public:
  explicit CudaBuffer(const std::vector<T>& host) : size_(host.size()) {
    if (size_ == 0) return;
    cuda_check(cudaMalloc(reinterpret_cast<void**>(&data_), size_ * sizeof(T)), "cudaMalloc");
    cuda_check(cudaMemcpy(data_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice),
               "cudaMemcpy to the device");
  }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  CudaBuffer(CudaBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  CudaBuffer& operator=(CudaBuffer&&) = delete;
  ~CudaBuffer() {
    if (data_ != nullptr) cudaFree(data_);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }

  // Waits for the kernels queued on the default stream, then copies back.
  std::vector<T> to_host() const {
    std::vector<T> host(size_);
    cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (a kernel failed)");
    if (size_ != 0) {
      cuda_check(cudaMemcpy(host.data(), data_, size_ * sizeof(T), cudaMemcpyDeviceToHost),
                 "cudaMemcpy to the host");
    }
    return host;
  }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// Whether a GPU is usable; otherwise why not, in one line.
inline bool cuda_device_present(std::string* reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    *reason = std::string("no usable CUDA device: ") + cudaGetErrorString(status);
    return false;
  }
  if (count == 0) {
    *reason = "no CUDA device present";
    return false;
  }
  return true;
}

}  // namespace glia::testing
