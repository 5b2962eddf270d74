// Checked CUDA calls, per-device streams and cuBLAS/cuDNN handles; see runtime.h.
// Tested by the Cuda tests of tests/engine (skipped without a GPU).
#include "engine/cuda/runtime.h"

#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

namespace glia::cudart {
namespace {

// Enough for any single node; an ordinal beyond it is rejected by check_device_usable first.
constexpr int kMaxDevices = 64;

struct PerDevice {
  cudaStream_t stream = nullptr;
  cudaStream_t copy_stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
};

// Streams and handles live for the whole process on purpose: destroying them from static
// destructors races the CUDA driver's own teardown.
std::mutex g_mutex;
std::array<PerDevice, kMaxDevices> g_devices;

PerDevice& per_device(int device) {
  if (device < 0 || device >= kMaxDevices || device >= device_count()) {
    throw std::runtime_error("cuda:" + std::to_string(device) + " does not exist on this machine");
  }
  return g_devices[static_cast<std::size_t>(device)];
}

}  // namespace

void throw_cuda_error(const char* call, const char* file, int line, cudaError_t err) {
  throw std::runtime_error(std::string(call) + " failed at " + file + ":" + std::to_string(line) +
                           ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

void throw_cublas_error(const char* call, const char* file, int line, cublasStatus_t status) {
  throw std::runtime_error(std::string(call) + " failed at " + file + ":" + std::to_string(line) +
                           ": " + cublasGetStatusName(status) + " (" +
                           cublasGetStatusString(status) + ")");
}

void throw_cudnn_error(const char* call, const char* file, int line, cudnnStatus_t status) {
  throw std::runtime_error(std::string(call) + " failed at " + file + ":" + std::to_string(line) +
                           ": " + cudnnGetErrorString(status));
}

int device_count() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      // No driver or no device: not an error for a build that also runs on cpu and sim. Clear
      // the error so it does not surface from a later, unrelated call.
      (void)cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

namespace {

// The stream in `slot` of `device`'s state, created non-blocking on first use.
cudaStream_t lazy_stream(int device, cudaStream_t PerDevice::*slot) {
  std::lock_guard<std::mutex> lock(g_mutex);
  PerDevice& d = per_device(device);
  if (d.*slot == nullptr) {
    DeviceGuard guard(device);
    GLIA_CUDA_CHECK(cudaStreamCreateWithFlags(&(d.*slot), cudaStreamNonBlocking));
  }
  return d.*slot;
}

}  // namespace

cudaStream_t stream(int device) {
  return lazy_stream(device, &PerDevice::stream);
}

cudaStream_t copy_stream(int device) {
  return lazy_stream(device, &PerDevice::copy_stream);
}

cublasHandle_t cublas_handle(int device) {
  cudaStream_t s = stream(device);
  std::lock_guard<std::mutex> lock(g_mutex);
  PerDevice& d = per_device(device);
  if (d.cublas == nullptr) {
    DeviceGuard guard(device);
    GLIA_CUBLAS_CHECK(cublasCreate(&d.cublas));
    GLIA_CUBLAS_CHECK(cublasSetStream(d.cublas, s));
  }
  return d.cublas;
}

cudnnHandle_t cudnn_handle(int device) {
  cudaStream_t s = stream(device);
  std::lock_guard<std::mutex> lock(g_mutex);
  PerDevice& d = per_device(device);
  if (d.cudnn == nullptr) {
    DeviceGuard guard(device);
    GLIA_CUDNN_CHECK(cudnnCreate(&d.cudnn));
    GLIA_CUDNN_CHECK(cudnnSetStream(d.cudnn, s));
  }
  return d.cudnn;
}

namespace {

// The largest upload that goes through the pinned staging buffers (a training batch of 32
// 256 x 256 images is 8 MiB); larger ones are rare and go straight.
constexpr std::size_t kStagingCap = std::size_t{256} << 20;

// Two pinned buffers per device and stream, used in turn; each with the event that marks the end
// of the last copy out of it.
struct Staging {
  std::mutex mutex;
  void* buffer[2] = {nullptr, nullptr};
  std::size_t capacity[2] = {0, 0};
  cudaEvent_t done[2] = {nullptr, nullptr};
  int next = 0;
};

Staging& staging(int device, cudaStream_t stream) {
  static std::mutex m;
  static std::map<std::pair<int, cudaStream_t>, std::unique_ptr<Staging>> all;
  const std::lock_guard<std::mutex> lock(m);
  std::unique_ptr<Staging>& s = all[{device, stream}];
  if (!s) s = std::make_unique<Staging>();
  return *s;
}

// The upload of `upload` and `upload_on_copy_stream`, on stream s of the device.
void staged_upload(int device, cudaStream_t s, void* dst, const void* src, std::size_t nbytes) {
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  if (nbytes > kStagingCap) {
    GLIA_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, s));
    GLIA_CUDA_CHECK(cudaStreamSynchronize(s));
    return;
  }
  Staging& st = staging(device, s);
  const std::lock_guard<std::mutex> lock(st.mutex);
  const int i = st.next;
  st.next = 1 - i;
  if (st.done[i] == nullptr) {
    GLIA_CUDA_CHECK(cudaEventCreateWithFlags(&st.done[i], cudaEventDisableTiming));
  } else {
    GLIA_CUDA_CHECK(cudaEventSynchronize(st.done[i]));  // the buffer's previous copy is over
  }
  if (st.capacity[i] < nbytes) {
    if (st.buffer[i] != nullptr) GLIA_CUDA_CHECK(cudaFreeHost(st.buffer[i]));
    st.buffer[i] = nullptr;
    st.capacity[i] = 0;
    GLIA_CUDA_CHECK(cudaHostAlloc(&st.buffer[i], nbytes, cudaHostAllocDefault));
    st.capacity[i] = nbytes;
  }
  std::memcpy(st.buffer[i], src, nbytes);
  GLIA_CUDA_CHECK(cudaMemcpyAsync(dst, st.buffer[i], nbytes, cudaMemcpyHostToDevice, s));
  GLIA_CUDA_CHECK(cudaEventRecord(st.done[i], s));
}

}  // namespace

void upload(int device, void* dst, const void* src, std::size_t nbytes) {
  staged_upload(device, stream(device), dst, src, nbytes);
}

void upload_on_copy_stream(int device, void* dst, const void* src, std::size_t nbytes) {
  staged_upload(device, copy_stream(device), dst, src, nbytes);
}

void synchronize(int device) {
  DeviceGuard guard(device);
  GLIA_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}

DeviceGuard::DeviceGuard(int device) {
  GLIA_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) {
    GLIA_CUDA_CHECK(cudaSetDevice(device));
    changed_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  // A destructor must not throw; failing to restore the previous device leaves the new one
  // current, which the next guard corrects.
  if (changed_) (void)cudaSetDevice(previous_);
}

}  // namespace glia::cudart
