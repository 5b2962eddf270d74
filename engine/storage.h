// A block of memory on one device, owned by the tensors that view it (through shared_ptr) and
// returned to its allocator (host free, or the cuda cache) when the last of them goes.
// Tested through tests/engine/tensor_test.cpp.
#pragma once

#include <cstddef>

#include "engine/device.h"
#include "engine/memory.h"

namespace glia {

class Storage {
 public:
  Storage(Device device, std::size_t nbytes, MemoryPool pool = MemoryPool::compute);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  Device device_;
  std::size_t nbytes_;
  MemoryPool pool_;
  void* data_;
};

}  // namespace glia
