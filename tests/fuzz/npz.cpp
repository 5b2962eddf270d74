// Fuzz target: .npz archives (zip, stored or deflated members) as the loader reads prepared
// slices: io::read_slice opens the archive with io::read_npz (libzip, every member decoded by
// io::decode_npy) and then checks the slice's keys, dtypes and shapes.
// Run by scripts/fuzz; seeds and regressions replayed by replay_test.cpp.
#include <cstddef>
#include <cstdint>

#include "io/slice.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = glia::fuzz::write_input(data, size, "input.npz");
  glia::fuzz::accept_or_reject([&] { (void)glia::io::read_slice(path); });
  return 0;
}
