// Storage: allocation on construction, release on destruction; see storage.h.
// Tested through tests/engine/tensor_test.cpp.
#include "engine/storage.h"

#include "engine/memory.h"

namespace glia {

Storage::Storage(Device device, std::size_t nbytes, MemoryPool pool)
    : device_(device), nbytes_(nbytes), pool_(pool), data_(allocate_bytes(device, nbytes, pool)) {}

Storage::~Storage() {
  free_bytes(device_, data_, nbytes_, pool_);
}

}  // namespace glia
