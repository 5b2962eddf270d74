// Where a tensor lives (DESIGN.md section 2): cpu (host memory, reference kernels), sim (host
// memory, kernels/cuda run by the SIMT emulator) or cuda (GPU memory, one stream per device).
// Also the device-level runtime calls that do not depend on CUDA headers: availability,
// synchronisation and the kernel stream. Tested in tests/engine/device_test.cpp.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

#include "kernels/types.h"

namespace glia {

enum class DeviceType { cpu, sim, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;  // the GPU ordinal on cuda; always 0 on cpu and sim

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device sim() { return {DeviceType::sim, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  // "cpu", "sim", "cuda" or "cuda:N"; anything else throws, listing the accepted forms.
  static Device parse(std::string_view text);

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_sim() const { return type == DeviceType::sim; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  // Host memory is directly addressable (cpu and sim).
  bool is_host() const { return type != DeviceType::cuda; }
  std::string to_string() const;  // "cpu", "sim", "cuda:0"

  bool operator==(const Device&) const = default;
};

// Writes to_string(); also how test frameworks print a Device.
std::ostream& operator<<(std::ostream& os, const Device& d);

// True when glia was built with CUDA and at least one GPU is present.
bool cuda_available();
// Number of GPUs; 0 without CUDA or without a GPU.
int cuda_device_count();
// Throws a message a user can act on when `d` cannot be used here (a cuda device in a build without
// CUDA, on a machine without a GPU, or an ordinal out of range).
void check_device_usable(Device d);
// Waits until the work queued on `d` has finished; a no-op on cpu and sim (their kernels are
// synchronous).
void synchronize(Device d);
// The stream every kernel on `d` is queued on: the device's cudaStream_t on cuda, null elsewhere.
kernels::Stream kernel_stream(Device d);

}  // namespace glia
