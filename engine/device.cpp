// Device names and the runtime calls of device.h; the CUDA side lives in engine/cuda/runtime.cpp.
// Tested in tests/engine/device_test.cpp.
#include "engine/device.h"

#include <charconv>
#include <ostream>
#include <stdexcept>
#include <string>

#if defined(GLIA_HAVE_CUDA)
#include "engine/cuda/runtime.h"
#endif

namespace glia {

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "sim") return sim();
  if (text == "cuda") return cuda(0);
  if (text.starts_with("cuda:")) {
    const std::string_view digits = text.substr(5);
    int index = -1;
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (err == std::errc() && end == digits.data() + digits.size() && !digits.empty() &&
        index >= 0) {
      return cuda(index);
    }
  }
  throw std::invalid_argument("unknown device '" + std::string(text) +
                              "': expected cpu, sim, cuda or cuda:N (N a GPU ordinal)");
}

std::string Device::to_string() const {
  switch (type) {
    case DeviceType::cpu:
      return "cpu";
    case DeviceType::sim:
      return "sim";
    case DeviceType::cuda:
      return "cuda:" + std::to_string(index);
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, const Device& d) {
  return os << d.to_string();
}

int cuda_device_count() {
#if defined(GLIA_HAVE_CUDA)
  return cudart::device_count();
#else
  return 0;
#endif
}

bool cuda_available() {
  return cuda_device_count() > 0;
}

void check_device_usable(Device d) {
  if (!d.is_cuda()) return;
#if defined(GLIA_HAVE_CUDA)
  const int count = cuda_device_count();
  if (count == 0) {
    throw std::runtime_error("no CUDA device present: use --device cpu or sim");
  }
  if (d.index < 0 || d.index >= count) {
    throw std::runtime_error("device " + d.to_string() + " does not exist: this machine has " +
                             std::to_string(count) +
                             " GPU(s), cuda:0 to cuda:" + std::to_string(count - 1));
  }
#else
  throw std::runtime_error("device " + d.to_string() +
                           " requested but glia was built without CUDA: use --device cpu or sim");
#endif
}

void synchronize(Device d) {
  if (!d.is_cuda()) return;
  check_device_usable(d);
#if defined(GLIA_HAVE_CUDA)
  cudart::synchronize(d.index);
#endif
}

kernels::Stream kernel_stream(Device d) {
  if (!d.is_cuda()) return nullptr;
#if defined(GLIA_HAVE_CUDA)
  return cudart::stream(d.index);
#else
  check_device_usable(d);
  return nullptr;
#endif
}

}  // namespace glia
